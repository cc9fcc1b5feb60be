#include "kernels/vec_dot.hpp"

#include "kernels/cpu.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "qforge/half.hpp"
#include "quant/blocks.hpp"

namespace qforge {

float vec_dot_q4_0_q8_0_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sum = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            sumi += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + 16];
        }
        sum += static_cast<float>(sumi) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return sum;
}

float vec_dot_q8_0_q8_0_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sum = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
        sum += static_cast<float>(sumi) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return sum;
}

float vec_dot_generic(GgmlType wt, int64_t n, const void* vx, const void* vy) {
    const TypeTraits& w = type_traits(wt);
    const TypeTraits& a = type_traits(w.vec_dot_type);
    std::vector<float> xf(static_cast<size_t>(n)), yf(static_cast<size_t>(n));
    w.dequantize(vx, xf.data(), n);
    a.dequantize(vy, yf.data(), n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(xf[static_cast<size_t>(i)]) * yf[static_cast<size_t>(i)];
    return static_cast<float>(s);
}


float vec_dot_q4_k_q8_k_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        unpack_k4_scales(x[i].scales, sc, mn);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
            const uint8_t* q = x[i].qs + 32 * (j / 2);
            const int8_t* a = y[i].qs + 32 * j;
            int s = 0;
            for (int l = 0; l < 32; ++l) s += ((j % 2) ? (q[l] >> 4) : (q[l] & 0xF)) * a[l];
            sumi += s * sc[j];
            summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d), dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(summ);
    }
    return sum;
}

float vec_dot_q6_k_q8_k_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ6_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int sumi = 0;
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        const int8_t* a = y[i].qs;
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, a += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                sumi += sc[is + 0] * q1 * a[l] + sc[is + 2] * q2 * a[l + 32] + sc[is + 4] * q3 * a[l + 64] + sc[is + 6] * q4 * a[l + 96];
            }
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(sumi);
    }
    return sum;
}

namespace {

struct Kernel {
    GgmlType type;
    VecDotFn scalar;  // reference; nullptr where rows are converted to f32 instead
    VecDotFn simd;    // this build's SIMD version, if any
};

#if defined(__x86_64__)
const Kernel kKernels[] = {
    {GgmlType::F16, nullptr, vec_dot_f16_f16_avx2},
    {GgmlType::Q4_0, vec_dot_q4_0_q8_0_scalar, vec_dot_q4_0_q8_0_avx2},
    {GgmlType::Q5_0, nullptr, vec_dot_q5_0_q8_0_avx2},
    {GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar, vec_dot_q8_0_q8_0_avx2},
    {GgmlType::Q2_K, nullptr, vec_dot_q2_k_q8_k_avx2},
    {GgmlType::Q3_K, nullptr, vec_dot_q3_k_q8_k_avx2},
    {GgmlType::Q4_K, vec_dot_q4_k_q8_k_scalar, vec_dot_q4_k_q8_k_avx2},
    {GgmlType::Q5_K, nullptr, vec_dot_q5_k_q8_k_avx2},
    {GgmlType::Q6_K, vec_dot_q6_k_q8_k_scalar, vec_dot_q6_k_q8_k_avx2},
};
bool simd_enabled() { return !kernels_forced_scalar() && cpu_has_avx2(); }
#elif defined(__aarch64__)
const Kernel kKernels[] = {
    {GgmlType::Q4_0, vec_dot_q4_0_q8_0_scalar, vec_dot_q4_0_q8_0_neon},
    {GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar, vec_dot_q8_0_q8_0_neon},
    {GgmlType::Q4_K, vec_dot_q4_k_q8_k_scalar, nullptr},
    {GgmlType::Q6_K, vec_dot_q6_k_q8_k_scalar, nullptr},
};
bool simd_enabled() { return !kernels_forced_scalar(); }
#else
const Kernel kKernels[] = {
    {GgmlType::Q4_0, vec_dot_q4_0_q8_0_scalar, nullptr},
    {GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar, nullptr},
    {GgmlType::Q4_K, vec_dot_q4_k_q8_k_scalar, nullptr},
    {GgmlType::Q6_K, vec_dot_q6_k_q8_k_scalar, nullptr},
};
bool simd_enabled() { return false; }
#endif

}  // namespace

VecDotFn find_vec_dot(GgmlType t) {
    static const bool simd = simd_enabled();
    for (const auto& k : kKernels)
        if (k.type == t) return simd && k.simd ? k.simd : k.scalar;
    return nullptr;
}

#if defined(__aarch64__)
const char* neon_isa_name();
#endif

const char* vec_dot_isa() {
    if (find_vec_dot(GgmlType::Q4_0) == vec_dot_q4_0_q8_0_scalar) return "scalar";
#if defined(__x86_64__)
    return "avx2";
#elif defined(__aarch64__)
    return neon_isa_name();
#else
    return "scalar";
#endif
}

}  // namespace qforge

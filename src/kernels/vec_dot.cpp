#include "kernels/vec_dot.hpp"

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
#if defined(__x86_64__)
bool avx2_ok() {
    __builtin_cpu_init();
    const char* e = std::getenv("QFORGE_KERNELS");
    if (e && std::strcmp(e, "scalar") == 0) return false;
    // Every CPU with AVX2 also has F16C (clang 14 cannot query "f16c" here).
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
}  // namespace

bool force_scalar_kernels() {
    const char* e = std::getenv("QFORGE_KERNELS");
    return e && std::strcmp(e, "scalar") == 0;
}

VecDotFn find_vec_dot(GgmlType t) {
#if defined(__x86_64__)
    static const bool simd = avx2_ok();
    const VecDotFn q40 = vec_dot_q4_0_q8_0_avx2, q80 = vec_dot_q8_0_q8_0_avx2, q4k = vec_dot_q4_k_q8_k_avx2, q6k = vec_dot_q6_k_q8_k_avx2;
#elif defined(__aarch64__)
    static const bool simd = !force_scalar_kernels();
    const VecDotFn q40 = vec_dot_q4_0_q8_0_neon, q80 = vec_dot_q8_0_q8_0_neon, q4k = vec_dot_q4_k_q8_k_neon, q6k = vec_dot_q6_k_q8_k_neon;
#else
    static const bool simd = false;
    const VecDotFn q40 = nullptr, q80 = nullptr, q4k = nullptr, q6k = nullptr;
#endif
#if defined(__x86_64__)
    switch (t) {
        case GgmlType::F16: return simd ? vec_dot_f16_f16_avx2 : nullptr;
        case GgmlType::Q5_0: return simd ? vec_dot_q5_0_q8_0_avx2 : nullptr;
        case GgmlType::Q5_K: return simd ? vec_dot_q5_k_q8_k_avx2 : nullptr;
        case GgmlType::Q3_K: return simd ? vec_dot_q3_k_q8_k_avx2 : nullptr;
        case GgmlType::Q2_K: return simd ? vec_dot_q2_k_q8_k_avx2 : nullptr;
        default: break;
    }
#endif
    switch (t) {
        case GgmlType::Q4_0: return simd ? q40 : vec_dot_q4_0_q8_0_scalar;
        case GgmlType::Q8_0: return simd ? q80 : vec_dot_q8_0_q8_0_scalar;
        case GgmlType::Q4_K: return simd ? q4k : vec_dot_q4_k_q8_k_scalar;
        case GgmlType::Q6_K: return simd ? q6k : vec_dot_q6_k_q8_k_scalar;
        default: return nullptr;
    }
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

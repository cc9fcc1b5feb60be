#include "kernels/vec_dot.hpp"

#include "kernels/cpu.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <vector>

#include "qforge/half.hpp"
#include "quant/affine_blocks.hpp"
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

// Q4_1/Q5_1 against q8_1: d_x d_y sum(q y) + m_x s_y, where s_y = d_y sum(y) is stored in f16
// (so this differs from the f32 dot of the dequantized rows by that rounding, as in ggml).
template <class Block, int kHighBits>
float dot_q8_1_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const Block*>(vx);
    const auto* y = static_cast<const BlockQ8_1*>(vy);
    float sum = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        uint32_t qh = 0;
        if constexpr (kHighBits) std::memcpy(&qh, x[ib].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (x[ib].qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (x[ib].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            sumi += lo * y[ib].qs[j] + hi * y[ib].qs[j + 16];
        }
        sum += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi) + fp16_to_fp32(x[ib].m) * fp16_to_fp32(y[ib].s);
    }
    return sum;
}

float vec_dot_q4_1_q8_1_scalar(int64_t n, const void* vx, const void* vy) { return dot_q8_1_scalar<BlockQ4_1, 0>(n, vx, vy); }
float vec_dot_q5_1_q8_1_scalar(int64_t n, const void* vx, const void* vy) { return dot_q8_1_scalar<BlockQ5_1, 1>(n, vx, vy); }

// MLX affine blocks against q8_0: d_y (d_x sum(q y) + m_x sum(y)), both sums exact integers.
template <class Block>
float vec_dot_mlx_q8_0_scalar(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const Block*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sum = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        int sqy = 0, sy = 0;
        for (int j = 0; j < 32; ++j) {
            sqy += mlx_block_code(x[ib], j) * y[ib].qs[j];
            sy += y[ib].qs[j];
        }
        sum += fp16_to_fp32(y[ib].d) * (fp16_to_fp32(x[ib].d) * static_cast<float>(sqy) + fp16_to_fp32(x[ib].m) * static_cast<float>(sy));
    }
    return sum;
}
template float vec_dot_mlx_q8_0_scalar<BlockMlxA2>(int64_t, const void*, const void*);
template float vec_dot_mlx_q8_0_scalar<BlockMlxA3>(int64_t, const void*, const void*);
template float vec_dot_mlx_q8_0_scalar<BlockMlxA6>(int64_t, const void*, const void*);
template float vec_dot_mlx_q8_0_scalar<BlockMlxA8>(int64_t, const void*, const void*);

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

struct ScalarKernel {
    GgmlType type;
    VecDotFn scalar;
};
const ScalarKernel kScalar[] = {
    {GgmlType::Q4_0, vec_dot_q4_0_q8_0_scalar},
    {GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar},
    {GgmlType::Q4_1, vec_dot_q4_1_q8_1_scalar},
    {GgmlType::Q5_1, vec_dot_q5_1_q8_1_scalar},
    {GgmlType::Q4_K, vec_dot_q4_k_q8_k_scalar},
    {GgmlType::Q6_K, vec_dot_q6_k_q8_k_scalar},
    {GgmlType::MLX_A2, vec_dot_mlx_q8_0_scalar<BlockMlxA2>},
    {GgmlType::MLX_A3, vec_dot_mlx_q8_0_scalar<BlockMlxA3>},
    {GgmlType::MLX_A6, vec_dot_mlx_q8_0_scalar<BlockMlxA6>},
    {GgmlType::MLX_A8, vec_dot_mlx_q8_0_scalar<BlockMlxA8>},
};

#if defined(__aarch64__)
const DotKernel kNeon[] = {
    {GgmlType::Q4_0, vec_dot_q4_0_q8_0_neon, vec_dot_n_q4_0_q8_0_neon, vec_dot2_q4_0_q8_0_i8mm},
    {GgmlType::Q8_0, vec_dot_q8_0_q8_0_neon, vec_dot_n_q8_0_q8_0_neon, vec_dot2_q8_0_q8_0_i8mm},
    {GgmlType::Q4_K, vec_dot_q4_k_q8_k_neon, vec_dot_n_q4_k_q8_k_neon},
    {GgmlType::Q6_K, vec_dot_q6_k_q8_k_neon, vec_dot_n_q6_k_q8_k_neon},
    {GgmlType::Q5_K, vec_dot_q5_k_q8_k_neon, vec_dot_n_q5_k_q8_k_neon},
    {GgmlType::Q3_K, vec_dot_q3_k_q8_k_neon, vec_dot_n_q3_k_q8_k_neon},
    {GgmlType::Q2_K, vec_dot_q2_k_q8_k_neon, vec_dot_n_q2_k_q8_k_neon},
    {GgmlType::Q5_0, vec_dot_q5_0_q8_0_neon, vec_dot_n_q5_0_q8_0_neon},
    {GgmlType::Q5_1, vec_dot_q5_1_q8_1_neon, vec_dot_n_q5_1_q8_1_neon},
    {GgmlType::Q4_1, vec_dot_q4_1_q8_1_neon, vec_dot_n_q4_1_q8_1_neon},
    {GgmlType::IQ4_NL, vec_dot_iq4_nl_q8_0_neon, vec_dot_n_iq4_nl_q8_0_neon},
    {GgmlType::IQ4_XS, vec_dot_iq4_xs_q8_k_neon, vec_dot_n_iq4_xs_q8_k_neon},
};
#endif

std::vector<KernelSet> detect_kernel_sets() {
    std::vector<KernelSet> sets;
    if (kernels_forced_scalar()) return sets;
#if defined(__x86_64__)
    if (cpu_has_avx512vnni() && !kernels_forced_avx2()) sets.push_back(kernel_set_avx512vnni());
    if (cpu_has_avx2()) sets.push_back(kernel_set_avx2());
#elif defined(__aarch64__)
    sets.push_back({"neon", std::begin(kNeon), std::end(kNeon)});
#endif
    return sets;
}

}  // namespace

const std::vector<KernelSet>& usable_kernel_sets() {
    static const std::vector<KernelSet> sets = detect_kernel_sets();
    return sets;
}

namespace {

const DotKernel* find_kernel(GgmlType t) {
    for (const auto& s : usable_kernel_sets())
        for (const DotKernel* k = s.begin; k != s.end; ++k)
            if (k->type == t) return k;
    return nullptr;
}

}  // namespace

VecDotFn find_vec_dot(GgmlType t) {
    if (const DotKernel* k = find_kernel(t)) return k->one;
    for (const auto& k : kScalar)
        if (k.type == t) return k.scalar;
    return nullptr;
}

QuantizeRowFn find_act_quantizer(GgmlType t) {
    const auto& sets = usable_kernel_sets();
    for (const auto& s : sets) {
        if (t == GgmlType::Q8_0 && s.quantize_q8_0) return s.quantize_q8_0;
        if (t == GgmlType::Q8_K && s.quantize_q8_k) return s.quantize_q8_k;
        if (t == GgmlType::F16 && s.quantize_f16) return s.quantize_f16;
    }
    return type_traits(t).quantize;
}

F16GemmFn find_f16_gemm() {
    for (const auto& s : usable_kernel_sets())
        if (s.f16_gemm) return s.f16_gemm;
    return nullptr;
}

F16X4GemmFn find_f16_x4_gemm() {
    for (const auto& s : usable_kernel_sets())
        if (s.f16_x4_gemm) return s.f16_x4_gemm;
    return nullptr;
}

void repack_f16_x4(const uint16_t* W, int64_t rows, int64_t K, uint16_t* out) {
    for (int64_t g = 0; g < rows / kF16X4Rows; ++g)
        for (int64_t i = 0; i < K; i += kF16X4Chunk)
            for (int r = 0; r < kF16X4Rows; ++r, out += kF16X4Chunk)
                std::copy_n(W + static_cast<size_t>(g * kF16X4Rows + r) * static_cast<size_t>(K) + static_cast<size_t>(i), kF16X4Chunk, out);
}

VecDotNFn find_vec_dot_n(GgmlType t) {
    const DotKernel* k = find_kernel(t);
    return k ? k->many : nullptr;
}

VecDot2Fn find_vec_dot_2(GgmlType t) {
#if defined(__aarch64__)
    if (!neon_has_i8mm()) return nullptr;
#endif
    const DotKernel* k = find_kernel(t);
    return k ? k->two : nullptr;
}

#if defined(__aarch64__)
const char* neon_isa_name();
#endif

const char* vec_dot_isa() {
    const auto& sets = usable_kernel_sets();
    if (sets.empty()) return "scalar";
#if defined(__aarch64__)
    return neon_isa_name();
#else
    return sets.front().isa;
#endif
}

}  // namespace qforge

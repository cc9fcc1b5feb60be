// ARM NEON kernels (Apple Silicon, Graviton, …): f32 GEMM, and int8 dot products for Q4_0/Q8_0
// weights with q8_0 activations, using the dotprod extension when the CPU has it.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>

#include "kernels/gemm.hpp"
#include "kernels/vec_dot.hpp"
#include "qforge/half.hpp"
#include "quant/blocks.hpp"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

namespace qforge {

namespace {

// Same reduction for every output, whatever the tiling: two 4-lane partial sums, then the tail.
inline float finish(float32x4_t a0, float32x4_t a1, const float* w, const float* x, int64_t k0, int64_t K) {
    float r = vaddvq_f32(vaddq_f32(a0, a1));
    for (int64_t i = k0; i < K; ++i) r += w[i] * x[i];
    return r;
}

template <int R, int C>
inline void tile(const float* W, size_t ldw, const float* X, size_t ldx, int64_t K, float* Y, size_t ldy) {
    float32x4_t a0[R][C], a1[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) a0[r][c] = a1[r][c] = vdupq_n_f32(0.f);
    const int64_t K8 = K / 8 * 8;
    for (int64_t i = 0; i < K8; i += 8) {
        float32x4_t x0[C], x1[C];
        for (int c = 0; c < C; ++c) {
            x0[c] = vld1q_f32(X + static_cast<size_t>(c) * ldx + i);
            x1[c] = vld1q_f32(X + static_cast<size_t>(c) * ldx + i + 4);
        }
        for (int r = 0; r < R; ++r) {
            const float32x4_t w0 = vld1q_f32(W + static_cast<size_t>(r) * ldw + i), w1 = vld1q_f32(W + static_cast<size_t>(r) * ldw + i + 4);
            for (int c = 0; c < C; ++c) {
                a0[r][c] = vfmaq_f32(a0[r][c], w0, x0[c]);
                a1[r][c] = vfmaq_f32(a1[r][c], w1, x1[c]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            Y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] =
                finish(a0[r][c], a1[r][c], W + static_cast<size_t>(r) * ldw, X + static_cast<size_t>(c) * ldx, K8, K);
}

bool has_dotprod() {
    static const bool v = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    return v;
}

// Sum of the products of two int8x16 vectors: with the dotprod instruction when available.
__attribute__((target("arch=armv8.2-a+dotprod"))) inline int32x4_t dot16_dp(int32x4_t acc, int8x16_t a, int8x16_t b) {
    return vdotq_s32(acc, a, b);
}
inline int32x4_t dot16_base(int32x4_t acc, int8x16_t a, int8x16_t b) {
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t hi = vmull_high_s8(a, b);
    return vaddq_s32(acc, vaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi)));
}

template <bool DP>
float q4_0_q8_0(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sum = 0;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        const uint8x16_t q = vld1q_u8(x[ib].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        int32x4_t acc = vdupq_n_s32(0);
        if constexpr (DP) {
            acc = dot16_dp(acc, lo, vld1q_s8(y[ib].qs));
            acc = dot16_dp(acc, hi, vld1q_s8(y[ib].qs + 16));
        } else {
            acc = dot16_base(acc, lo, vld1q_s8(y[ib].qs));
            acc = dot16_base(acc, hi, vld1q_s8(y[ib].qs + 16));
        }
        sum += static_cast<float>(vaddvq_s32(acc)) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return sum;
}

template <bool DP>
float q8_0_q8_0(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sum = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 32; h += 16) {
            if constexpr (DP) acc = dot16_dp(acc, vld1q_s8(x[ib].qs + h), vld1q_s8(y[ib].qs + h));
            else acc = dot16_base(acc, vld1q_s8(x[ib].qs + h), vld1q_s8(y[ib].qs + h));
        }
        sum += static_cast<float>(vaddvq_s32(acc)) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return sum;
}

}  // namespace

void gemm_f32_neon(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                   size_t ldy) {
    for (int64_t r = 0; r < n_rows; ++r) {
        int b = 0;
        for (; b + 4 <= B; b += 4) tile<1, 4>(W + static_cast<size_t>(r) * ldw, ldw, X + static_cast<size_t>(b) * ldx, ldx, K, Y + static_cast<size_t>(b) * ldy + r, ldy);
        for (; b < B; ++b) tile<1, 1>(W + static_cast<size_t>(r) * ldw, ldw, X + static_cast<size_t>(b) * ldx, ldx, K, Y + static_cast<size_t>(b) * ldy + r, ldy);
    }
}

float vec_dot_q4_0_q8_0_neon(int64_t n, const void* vx, const void* vy) {
    return has_dotprod() ? q4_0_q8_0<true>(n, vx, vy) : q4_0_q8_0<false>(n, vx, vy);
}
float vec_dot_q8_0_q8_0_neon(int64_t n, const void* vx, const void* vy) {
    return has_dotprod() ? q8_0_q8_0<true>(n, vx, vy) : q8_0_q8_0<false>(n, vx, vy);
}
const char* neon_isa_name() { return has_dotprod() ? "neon+dotprod" : "neon"; }

}  // namespace qforge

#endif  // __aarch64__

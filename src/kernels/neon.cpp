// ARM NEON kernels (Apple Silicon, Graviton, …): f32 GEMM, and int8 dot products for Q4_0/Q8_0
// (q8_0 activations) and Q4_K/Q6_K (q8_K) weights, using the dotprod extension when the CPU has it.
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

// Sum of four int32 lanes of a*b products over 16 int8 pairs: dotprod or the base instructions.
template <bool DP>
inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    if constexpr (DP) return dot16_dp(acc, a, b);
    else return dot16_base(acc, a, b);
}

// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins; the mins meet the activations' bsums.
template <bool DP>
float q4_k_q8_k(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        unpack_k4_scales(x[i].scales, sc, mn);
        // mins: sum_j mn[j] * (bsums[2j] + bsums[2j+1])
        const int16x8_t bs = vpaddq_s16(vld1q_s16(y[i].bsums), vld1q_s16(y[i].bsums + 8));
        const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
        const int32x4_t mm = vaddq_s32(vmull_s16(vget_low_s16(bs), vget_low_s16(m16)), vmull_high_s16(bs, m16));
        int32_t sumi = 0;
        for (int j = 0; j < 4; ++j) {
            const uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * j), q1 = vld1q_u8(x[i].qs + 32 * j + 16);
            const int8_t* a = y[i].qs + 64 * j;
            int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
            lo = dot16<DP>(lo, vreinterpretq_s8_u8(vandq_u8(q0, m4)), vld1q_s8(a));
            lo = dot16<DP>(lo, vreinterpretq_s8_u8(vandq_u8(q1, m4)), vld1q_s8(a + 16));
            hi = dot16<DP>(hi, vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vld1q_s8(a + 32));
            hi = dot16<DP>(hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(a + 48));
            sumi += vaddvq_s32(lo) * sc[2 * j] + vaddvq_s32(hi) * sc[2 * j + 1];
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d), dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sum += d * static_cast<float>(sumi) - dmin * static_cast<float>(vaddvq_s32(mm));
    }
    return sum;
}

// Q6_K: codes q - 32 with sixteen int8 scales per super-block.
template <bool DP>
float q6_k_q8_k(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ6_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    const int8x16_t c32 = vdupq_n_s8(32);
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t sumi = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = x[i].ql + 64 * half;
            const uint8_t* qh = x[i].qh + 32 * half;
            const int8_t* sc = x[i].scales + 8 * half;
            const int8_t* a = y[i].qs + 128 * half;
            for (int l = 0; l < 32; l += 16) {  // two 16-byte columns of the 32 positions
                const uint8x16_t l0 = vld1q_u8(ql + l), l1 = vld1q_u8(ql + 32 + l), h = vld1q_u8(qh + l);
                const int8x16_t q[4] = {
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, m2), 4))), c32),
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m2), 4))), c32),
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m2), 4))), c32),
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4))), c32),
                };
                for (int k = 0; k < 4; ++k) {
                    const int32x4_t p = dot16<DP>(vdupq_n_s32(0), q[k], vld1q_s8(a + 32 * k + l));
                    sumi += vaddvq_s32(p) * sc[2 * k + l / 16];
                }
            }
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(sumi);
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
float vec_dot_q4_k_q8_k_neon(int64_t n, const void* vx, const void* vy) {
    return has_dotprod() ? q4_k_q8_k<true>(n, vx, vy) : q4_k_q8_k<false>(n, vx, vy);
}
float vec_dot_q6_k_q8_k_neon(int64_t n, const void* vx, const void* vy) {
    return has_dotprod() ? q6_k_q8_k<true>(n, vx, vy) : q6_k_q8_k<false>(n, vx, vy);
}
const char* neon_isa_name() { return has_dotprod() ? "neon+dotprod" : "neon"; }

}  // namespace qforge

#endif  // __aarch64__

// ARM NEON kernels (Apple Silicon, Graviton, …): f32 GEMM, and int8 dot products of every
// quantized llama.cpp format against the activations ggml pairs it with (q8_0, q8_1, q8_K), using
// the dotprod extension when the CPU has it.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <type_traits>
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

bool has_i8mm() {
#ifdef HWCAP2_I8MM
    static const bool v = (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
    return v;
#else
    return false;
#endif
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

// Sum of four int32 lanes of a*b products over 16 int8 pairs: dotprod or the base instructions.
template <bool DP>
inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    if constexpr (DP) return dot16_dp(acc, a, b);
    else return dot16_base(acc, a, b);
}

// Q4_K's and Q5_K's mins against the activations: sum_j mn[j] * (bsums[2j] + bsums[2j+1]).
inline int32_t k4_min_sum(const BlockQ8_K& y, const uint8_t* mn) {
    const int16x8_t bs = vpaddq_s16(vld1q_s16(y.bsums), vld1q_s16(y.bsums + 8));
    const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    return vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(bs), vget_low_s16(m16)), vmull_high_s16(bs, m16)));
}

// The quantized kernels below take one weight row against NC (1..kMaxDotCols) activation rows
// (ActRows: blocks of q8_K, q8_0 or q8_1) `by` bytes apart: each block's codes are decoded once
// and met by every token, and each token gets the integer sums and float steps of the one-token
// form (NC = 1), so the same bits.
template <class YBlock, int NC>
struct ActRows {
    const YBlock* y[NC];
    ActRows(const void* vy, size_t by) {
        for (int c = 0; c < NC; ++c) y[c] = reinterpret_cast<const YBlock*>(static_cast<const uint8_t*>(vy) + static_cast<size_t>(c) * by);
    }
};

// Q4_K (and Q5_K with kFive: a fifth bit from qh, bit 2j for chunk j's low nibbles, 2j+1 for its
// high): 8 sub-blocks of 32 with 6-bit scales and mins; the mins meet the activations' bsums.
template <bool DP, int NC, bool kFive>
void q45_k_q8_k(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    using Block = std::conditional_t<kFive, BlockQ5_K, BlockQ4_K>;
    const auto* x = static_cast<const Block*>(vx);
    const ActRows<BlockQ8_K, NC> ys(vy, by);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), one = vdupq_n_u8(1);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        unpack_k4_scales(x[i].scales, sc, mn);
        int8x16_t q[16];  // chunk j: low nibbles of its two 16-byte halves, then the high ones
        for (int j = 0; j < 4; ++j) {
            const uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * j), q1 = vld1q_u8(x[i].qs + 32 * j + 16);
            uint8x16_t v[4] = {vandq_u8(q0, m4), vandq_u8(q1, m4), vshrq_n_u8(q0, 4), vshrq_n_u8(q1, 4)};
            if constexpr (kFive) {  // the fifth bits of this chunk, moved to bit 4
                const uint8x16_t h0 = vld1q_u8(x[i].qh), h1 = vld1q_u8(x[i].qh + 16);
                const int8x16_t sl = vdupq_n_s8(static_cast<int8_t>(-2 * j)), sh = vdupq_n_s8(static_cast<int8_t>(-2 * j - 1));
                v[0] = vorrq_u8(v[0], vshlq_n_u8(vandq_u8(vshlq_u8(h0, sl), one), 4));
                v[1] = vorrq_u8(v[1], vshlq_n_u8(vandq_u8(vshlq_u8(h1, sl), one), 4));
                v[2] = vorrq_u8(v[2], vshlq_n_u8(vandq_u8(vshlq_u8(h0, sh), one), 4));
                v[3] = vorrq_u8(v[3], vshlq_n_u8(vandq_u8(vshlq_u8(h1, sh), one), 4));
            }
            for (int k = 0; k < 4; ++k) q[4 * j + k] = vreinterpretq_s8_u8(v[k]);
        }
        const float xd = fp16_to_fp32(x[i].d), xdmin = fp16_to_fp32(x[i].dmin);
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_K& y = ys.y[c][i];
            const int32_t msum = k4_min_sum(y, mn);
            int32_t sumi = 0;
            for (int j = 0; j < 4; ++j) {
                const int8_t* a = y.qs + 64 * j;
                int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
                lo = dot16<DP>(lo, q[4 * j], vld1q_s8(a));
                lo = dot16<DP>(lo, q[4 * j + 1], vld1q_s8(a + 16));
                hi = dot16<DP>(hi, q[4 * j + 2], vld1q_s8(a + 32));
                hi = dot16<DP>(hi, q[4 * j + 3], vld1q_s8(a + 48));
                sumi += vaddvq_s32(lo) * sc[2 * j] + vaddvq_s32(hi) * sc[2 * j + 1];
            }
            const float d = y.d * xd, dmin = y.d * xdmin;
            sum[c] += d * static_cast<float>(sumi) - dmin * static_cast<float>(msum);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

// Q6_K: codes q - 32 with sixteen int8 scales per super-block.
template <bool DP, int NC>
void q6_k_q8_k(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    const auto* x = static_cast<const BlockQ6_K*>(vx);
    const ActRows<BlockQ8_K, NC> ys(vy, by);
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    const int8x16_t c32 = vdupq_n_s8(32);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int8x16_t q[16];  // [half][16-byte column l][k]
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = x[i].ql + 64 * half;
            const uint8_t* qh = x[i].qh + 32 * half;
            for (int l = 0; l < 2; ++l) {
                const uint8x16_t l0 = vld1q_u8(ql + 16 * l), l1 = vld1q_u8(ql + 32 + 16 * l), h = vld1q_u8(qh + 16 * l);
                int8x16_t* v = q + 8 * half + 4 * l;
                v[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, m2), 4))), c32);
                v[1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m2), 4))), c32);
                v[2] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m2), 4))), c32);
                v[3] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4))), c32);
            }
        }
        const float xd = fp16_to_fp32(x[i].d);
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_K& y = ys.y[c][i];
            int32_t sumi = 0;
            for (int half = 0; half < 2; ++half) {
                const int8_t* sc = x[i].scales + 8 * half;
                const int8_t* a = y.qs + 128 * half;
                for (int l = 0; l < 2; ++l)
                    for (int k = 0; k < 4; ++k) {
                        const int32x4_t p = dot16<DP>(vdupq_n_s32(0), q[8 * half + 4 * l + k], vld1q_s8(a + 32 * k + 16 * l));
                        sumi += vaddvq_s32(p) * sc[2 * k + l];
                    }
            }
            sum[c] += xd * y.d * static_cast<float>(sumi);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

// The one-token form of a kernel K::run<DP, NC> (QF_NEON_DOT below), and the many-token form (nc
// of 1..kMaxDotCols, outputs os floats apart); dotprod chosen at run time.
template <class K>
float k_one(int64_t n, const void* vx, const void* vy) {
    float s;
    if (has_dotprod()) K::template run<true, 1>(n, vx, vy, 0, &s);
    else K::template run<false, 1>(n, vx, vy, 0, &s);
    return s;
}
template <class K>
void k_many(int64_t n, const void* vx, const void* vy, size_t by, int nc, float* out, size_t os) {
    static_assert(kMaxDotCols == 4);
    float s[kMaxDotCols];
    const bool dp = has_dotprod();
    switch (nc) {
        case 1: dp ? K::template run<true, 1>(n, vx, vy, by, s) : K::template run<false, 1>(n, vx, vy, by, s); break;
        case 2: dp ? K::template run<true, 2>(n, vx, vy, by, s) : K::template run<false, 2>(n, vx, vy, by, s); break;
        case 3: dp ? K::template run<true, 3>(n, vx, vy, by, s) : K::template run<false, 3>(n, vx, vy, by, s); break;
        default: dp ? K::template run<true, 4>(n, vx, vy, by, s) : K::template run<false, 4>(n, vx, vy, by, s); break;
    }
    for (int c = 0; c < nc; ++c) out[static_cast<size_t>(c) * os] = s[c];
}

// Q3_K and Q2_K: 2-bit codes from 32-apart positions (shift j of byte l is element 128h + 32j + l),
// sixteen groups of 16. Q3_K: codes q2 + 4*hbit - 4 with 6-bit scales less 32; Q2_K: codes q2
// with 4-bit scales, and 4-bit minimums that meet the activations' 16-element sums.
inline void q3k_scales16(const uint8_t* s, int8_t* out) {
    for (int g = 0; g < 16; ++g) {
        const int lo = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
        const int hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
        out[g] = static_cast<int8_t>((lo | (hi << 4)) - 32);
    }
}

template <bool DP, int NC, bool kQ3>
void q23_k_q8_k(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    const ActRows<BlockQ8_K, NC> ys(vy, by);
    const uint8x16_t m3 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs;
        const uint8_t* hm = nullptr;
        int8_t sc[16];
        uint8_t mins[16] = {};
        float xd, xdmin = 0;
        if constexpr (kQ3) {
            const auto& xb = static_cast<const BlockQ3_K*>(vx)[i];
            qs = xb.qs;
            hm = xb.hmask;
            q3k_scales16(xb.scales, sc);
            xd = fp16_to_fp32(xb.d);
        } else {
            const auto& xb = static_cast<const BlockQ2_K*>(vx)[i];
            qs = xb.qs;
            for (int g = 0; g < 16; ++g) {
                sc[g] = static_cast<int8_t>(xb.scales[g] & 0xF);
                mins[g] = static_cast<uint8_t>(xb.scales[g] >> 4);
            }
            xd = fp16_to_fp32(xb.d);
            xdmin = fp16_to_fp32(xb.dmin);
        }
        int8x16_t q[16];  // [h][j][16-byte half]
        for (int h = 0; h < 2; ++h) {
            const uint8x16_t b0 = vld1q_u8(qs + 32 * h), b1 = vld1q_u8(qs + 32 * h + 16);
            for (int j = 0; j < 4; ++j) {
                const int8x16_t sj = vdupq_n_s8(static_cast<int8_t>(-2 * j));
                int8x16_t c0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b0, sj), m3));
                int8x16_t c1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b1, sj), m3));
                if constexpr (kQ3) {  // minus 4 where the high bit is clear
                    const int8x16_t sk = vdupq_n_s8(static_cast<int8_t>(-(4 * h + j)));
                    const uint8x16_t k0 = vandq_u8(vshlq_u8(vld1q_u8(hm), sk), one), k1 = vandq_u8(vshlq_u8(vld1q_u8(hm + 16), sk), one);
                    c0 = vsubq_s8(c0, vreinterpretq_s8_u8(vshlq_n_u8(veorq_u8(k0, one), 2)));
                    c1 = vsubq_s8(c1, vreinterpretq_s8_u8(vshlq_n_u8(veorq_u8(k1, one), 2)));
                }
                q[8 * h + 2 * j] = c0;
                q[8 * h + 2 * j + 1] = c1;
            }
        }
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_K& yb = ys.y[c][i];
            int32_t msum = 0;
            if constexpr (!kQ3)
                for (int g = 0; g < 16; ++g) msum += mins[g] * yb.bsums[g];
            const float d = yb.d * xd, dmin = kQ3 ? 0.f : yb.d * xdmin;
            int32_t sumi = 0;
            for (int h = 0; h < 2; ++h)
                for (int j = 0; j < 4; ++j) {
                    const int8_t* a = yb.qs + 128 * h + 32 * j;
                    const int32x4_t p0 = dot16<DP>(vdupq_n_s32(0), q[8 * h + 2 * j], vld1q_s8(a));
                    const int32x4_t p1 = dot16<DP>(vdupq_n_s32(0), q[8 * h + 2 * j + 1], vld1q_s8(a + 16));
                    sumi += vaddvq_s32(p0) * sc[8 * h + 2 * j] + vaddvq_s32(p1) * sc[8 * h + 2 * j + 1];
                }
            sum[c] += d * static_cast<float>(sumi) - dmin * static_cast<float>(msum);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

// Q5_0 (q8_0 activations) and Q5_1 / Q4_1 (q8_1: the offset meets the activations' stored sum).
// The fifth bits (qh, bit l for element l) as 16 bytes of 0 or 16.
inline uint8x16_t fifth_bits(uint32_t qh, int first) {
    alignas(16) uint8_t b[16];
    for (int l = 0; l < 16; ++l) b[l] = static_cast<uint8_t>(((qh >> (first + l)) & 1) << 4);
    return vld1q_u8(b);
}

// Q4_0 (codes less 8) and Q8_0 against q8_0 activations.
template <bool DP, int NC, bool kQ4>
void q4_8_0_q8_0(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    using Block = std::conditional_t<kQ4, BlockQ4_0, BlockQ8_0>;
    const auto* x = static_cast<const Block*>(vx);
    const ActRows<BlockQ8_0, NC> ys(vy, by);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        int8x16_t lo, hi;
        if constexpr (kQ4) {
            const uint8x16_t q = vld1q_u8(x[ib].qs);
            lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
            hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        } else {
            lo = vld1q_s8(x[ib].qs);
            hi = vld1q_s8(x[ib].qs + 16);
        }
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_0& yb = ys.y[c][ib];
            const int32x4_t acc = dot16<DP>(dot16<DP>(vdupq_n_s32(0), lo, vld1q_s8(yb.qs)), hi, vld1q_s8(yb.qs + 16));
            sum[c] += static_cast<float>(vaddvq_s32(acc)) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(yb.d));
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

template <bool DP, int NC, class Block, int kBits, bool kOffset>
void q45_legacy(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    const auto* x = static_cast<const Block*>(vx);
    using YBlock = std::conditional_t<kOffset, BlockQ8_1, BlockQ8_0>;
    const ActRows<YBlock, NC> ys(vy, by);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        const uint8x16_t q = vld1q_u8(x[ib].qs);
        uint8x16_t lo = vandq_u8(q, m4), hi = vshrq_n_u8(q, 4);
        if constexpr (kBits == 5) {
            uint32_t qh;
            std::memcpy(&qh, x[ib].qh, 4);
            lo = vorrq_u8(lo, fifth_bits(qh, 0));
            hi = vorrq_u8(hi, fifth_bits(qh, 16));
        }
        int8x16_t l = vreinterpretq_s8_u8(lo), h = vreinterpretq_s8_u8(hi);
        if constexpr (!kOffset) {  // Q5_0: codes less 16
            l = vsubq_s8(l, vdupq_n_s8(16));
            h = vsubq_s8(h, vdupq_n_s8(16));
        }
        for (int c = 0; c < NC; ++c) {
            const YBlock& yb = ys.y[c][ib];
            const int32_t isum = vaddvq_s32(dot16<DP>(dot16<DP>(vdupq_n_s32(0), l, vld1q_s8(yb.qs)), h, vld1q_s8(yb.qs + 16)));
            if constexpr (kOffset) sum[c] += fp16_to_fp32(x[ib].d) * fp16_to_fp32(yb.d) * static_cast<float>(isum) + fp16_to_fp32(x[ib].m) * fp16_to_fp32(yb.s);
            else sum[c] += static_cast<float>(isum) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(yb.d));
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

// IQ4_NL (q8_0) and IQ4_XS (q8_K): the sixteen non-linear levels by table lookup; 16 bytes of
// IQ4 codes are elements 0-15 (low nibbles) and 16-31 (high).
struct Iq4Codes {
    int8x16_t l, h;
    explicit Iq4Codes(const uint8_t* qs) {
        const int8x16_t tab = vld1q_s8(kIq4nlValues);
        const uint8x16_t q = vld1q_u8(qs), m4 = vdupq_n_u8(0x0F);
        l = vqtbl1q_s8(tab, vandq_u8(q, m4));
        h = vqtbl1q_s8(tab, vshrq_n_u8(q, 4));
    }
    template <bool DP>
    int32_t dot(const int8_t* y) const { return vaddvq_s32(dot16<DP>(dot16<DP>(vdupq_n_s32(0), l, vld1q_s8(y)), h, vld1q_s8(y + 16))); }
};

template <bool DP, int NC>
void iq4_nl_q8_0(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    const auto* x = static_cast<const BlockIQ4_NL*>(vx);
    const ActRows<BlockQ8_0, NC> ys(vy, by);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        const Iq4Codes q(x[ib].qs);
        for (int c = 0; c < NC; ++c) {
            const BlockQ8_0& yb = ys.y[c][ib];
            sum[c] += static_cast<float>(q.dot<DP>(yb.qs)) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(yb.d));
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}

template <bool DP, int NC>
void iq4_xs_q8_k(int64_t n, const void* vx, const void* vy, size_t by, float* out) {
    const auto* x = static_cast<const BlockIQ4_XS*>(vx);
    const ActRows<BlockQ8_K, NC> ys(vy, by);
    float sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t sumi[NC] = {};
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const Iq4Codes q(x[i].qs + 16 * ib);
            for (int c = 0; c < NC; ++c) sumi[c] += q.dot<DP>(ys.y[c][i].qs + 32 * ib) * (ls - 32);
        }
        for (int c = 0; c < NC; ++c) sum[c] += fp16_to_fp32(x[i].d) * ys.y[c][i].d * static_cast<float>(sumi[c]);
    }
    for (int c = 0; c < NC; ++c) out[c] = sum[c];
}


// Two Q8_0 or Q4_0 rows against tokens two at a time with the i8mm matrix instruction (SMMLA: a
// 2x8 by 8x2 int8 product into 2x2 int32): per block the four integer sums, then per lane the
// one-row kernel's float steps in its order, so every output has its bits.
template <bool kQ4>
__attribute__((target("arch=armv8.2-a+i8mm"))) void x2_q8_0_i8mm(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc,
                                                                 float* out, size_t os) {
    using Block = std::conditional_t<kQ4, BlockQ4_0, BlockQ8_0>;
    const auto* x0 = static_cast<const Block*>(w0);
    const auto* x1 = static_cast<const Block*>(w1);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int c = 0; c < nc; c += 2) {
        const int c1 = c + 1 < nc ? c + 1 : c;  // an odd last token meets itself
        const auto* y0 = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(vy) + static_cast<size_t>(c) * by);
        const auto* y1 = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(vy) + static_cast<size_t>(c1) * by);
        float32x4_t sum = vdupq_n_f32(0.f);
        for (int64_t ib = 0; ib < n / 32; ++ib) {
            int8x16_t a0, b0, a1, b1;  // elements 0-15 and 16-31 of rows 0 and 1
            if constexpr (kQ4) {
                const uint8x16_t q0 = vld1q_u8(x0[ib].qs), q1 = vld1q_u8(x1[ib].qs);
                a0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q0, m4)), eight);
                b0 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), eight);
                a1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q1, m4)), eight);
                b1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), eight);
            } else {
                a0 = vld1q_s8(x0[ib].qs), b0 = vld1q_s8(x0[ib].qs + 16);
                a1 = vld1q_s8(x1[ib].qs), b1 = vld1q_s8(x1[ib].qs + 16);
            }
            const int8_t* t0 = y0[ib].qs;
            const int8_t* t1 = y1[ib].qs;
            int32x4_t acc = vdupq_n_s32(0);
            acc = vmmlaq_s32(acc, vcombine_s8(vget_low_s8(a0), vget_low_s8(a1)), vcombine_s8(vld1_s8(t0), vld1_s8(t1)));
            acc = vmmlaq_s32(acc, vcombine_s8(vget_high_s8(a0), vget_high_s8(a1)), vcombine_s8(vld1_s8(t0 + 8), vld1_s8(t1 + 8)));
            acc = vmmlaq_s32(acc, vcombine_s8(vget_low_s8(b0), vget_low_s8(b1)), vcombine_s8(vld1_s8(t0 + 16), vld1_s8(t1 + 16)));
            acc = vmmlaq_s32(acc, vcombine_s8(vget_high_s8(b0), vget_high_s8(b1)), vcombine_s8(vld1_s8(t0 + 24), vld1_s8(t1 + 24)));
            const float dx0 = fp16_to_fp32(x0[ib].d), dx1 = fp16_to_fp32(x1[ib].d), dy0 = fp16_to_fp32(y0[ib].d), dy1 = fp16_to_fp32(y1[ib].d);
            const float dxs[4] = {dx0, dx0, dx1, dx1}, dys[4] = {dy0, dy1, dy0, dy1};
            sum = vaddq_f32(sum, vmulq_f32(vcvtq_f32_s32(acc), vmulq_f32(vld1q_f32(dxs), vld1q_f32(dys))));
        }
        out[static_cast<size_t>(c) * os] = vgetq_lane_f32(sum, 0);
        out[static_cast<size_t>(c) * os + 1] = vgetq_lane_f32(sum, 2);
        if (c1 != c) {
            out[static_cast<size_t>(c1) * os] = vgetq_lane_f32(sum, 1);
            out[static_cast<size_t>(c1) * os + 1] = vgetq_lane_f32(sum, 3);
        }
    }
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

// Each quantized format's one-token and many-token entry points (vec_dot.hpp): the kernel template
// fn<DP, NC, extra...> behind them.
#define QF_NEON_DOT(name, fn, ...)                                                                                      \
    struct name##_kernel {                                                                                              \
        template <bool DP, int NC>                                                                                      \
        static void run(int64_t n, const void* vx, const void* vy, size_t by, float* out) {                             \
            fn<DP, NC __VA_OPT__(, ) __VA_ARGS__>(n, vx, vy, by, out);                                                  \
        }                                                                                                               \
    };                                                                                                                  \
    float vec_dot_##name##_neon(int64_t n, const void* vx, const void* vy) { return k_one<name##_kernel>(n, vx, vy); } \
    void vec_dot_n_##name##_neon(int64_t n, const void* vx, const void* vy, size_t by, int nc, float* out, size_t os) { \
        k_many<name##_kernel>(n, vx, vy, by, nc, out, os);                                                              \
    }
QF_NEON_DOT(q4_0_q8_0, q4_8_0_q8_0, true)
QF_NEON_DOT(q8_0_q8_0, q4_8_0_q8_0, false)
QF_NEON_DOT(q4_k_q8_k, q45_k_q8_k, false)
QF_NEON_DOT(q5_k_q8_k, q45_k_q8_k, true)
QF_NEON_DOT(q6_k_q8_k, q6_k_q8_k)
QF_NEON_DOT(q3_k_q8_k, q23_k_q8_k, true)
QF_NEON_DOT(q2_k_q8_k, q23_k_q8_k, false)
QF_NEON_DOT(q5_0_q8_0, q45_legacy, BlockQ5_0, 5, false)
QF_NEON_DOT(q5_1_q8_1, q45_legacy, BlockQ5_1, 5, true)
QF_NEON_DOT(q4_1_q8_1, q45_legacy, BlockQ4_1, 4, true)
QF_NEON_DOT(iq4_nl_q8_0, iq4_nl_q8_0)
QF_NEON_DOT(iq4_xs_q8_k, iq4_xs_q8_k)
#undef QF_NEON_DOT
void vec_dot2_q8_0_q8_0_i8mm(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc, float* out, size_t os) {
    x2_q8_0_i8mm<false>(n, w0, w1, vy, by, nc, out, os);
}
void vec_dot2_q4_0_q8_0_i8mm(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc, float* out, size_t os) {
    x2_q8_0_i8mm<true>(n, w0, w1, vy, by, nc, out, os);
}
bool neon_has_i8mm() { return has_i8mm(); }
const char* neon_isa_name() { return has_i8mm() ? (has_dotprod() ? "neon+dotprod+i8mm" : "neon+i8mm") : has_dotprod() ? "neon+dotprod" : "neon"; }

}  // namespace qforge

#endif  // __aarch64__

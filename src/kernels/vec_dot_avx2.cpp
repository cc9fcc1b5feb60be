// AVX2 int8 dot products (this file alone is compiled with -mavx2 -mfma).
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/vec_dot.hpp"
#include "qforge/half.hpp"
#include "quant/blocks.hpp"

namespace qforge {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Signed x signed int8 products, summed in pairs then fours: 8 int32 lanes.
inline __m256i dot_i8(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

}  // namespace

float vec_dot_q4_0_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    __m256 acc = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[ib].qs));
        __m256i bx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
        bx = _mm256_sub_epi8(bx, eight);
        const __m256i by = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[ib].qs));
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(bx, by)), acc);
    }
    return hsum(acc);
}

float vec_dot_q8_0_q8_0_avx2(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        const __m256i bx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[ib].qs));
        const __m256i by = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[ib].qs));
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(bx, by)), acc);
    }
    return hsum(acc);
}

float vec_dot_q4_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ4_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    const __m256i low = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        const uint8_t* q = x[i].scales;
        for (int j = 0; j < 8; ++j) {
            if (j < 4) {
                sc[j] = q[j] & 63;
                mn[j] = q[j + 4] & 63;
            } else {
                sc[j] = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
                mn[j] = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
            }
        }
        int summ = 0;
        for (int j = 0; j < 8; ++j) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(q4, low), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low);
            const __m256i ylo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j));
            const __m256i yhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j + 32));
            const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_set1_epi16(sc[2 * j]));
            const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yhi), _mm256_set1_epi16(sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d), dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc_m += dmin * static_cast<float>(summ);
    }
    return hsum(acc) - acc_m;
}

float vec_dot_q6_k_q8_k_avx2(int64_t n, const void* vx, const void* vy) {
    const auto* x = static_cast<const BlockQ6_K*>(vx);
    const auto* y = static_cast<const BlockQ8_K*>(vy);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), c32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        const int8_t* a = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, a += 128) {
            const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4)),
            };
            for (int k = 0; k < 4; ++k) {
                const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 32 * k));
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yk), _mm256_maddubs_epi16(c32, yk));
                const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_fp32(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

}  // namespace qforge

#endif  // __x86_64__

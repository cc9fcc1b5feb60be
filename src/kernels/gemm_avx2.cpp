// AVX2+FMA f32 GEMM micro-kernels (this file alone is compiled with -mavx2 -mfma).
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/gemm.hpp"

namespace qforge {

namespace {

// The same reduction for every output: 8-lane partial sums, a fixed horizontal sum, then the tail.
inline float finish(__m256 acc, const float* w, const float* x, int64_t k0, int64_t K) {
    const __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (int64_t i = k0; i < K; ++i) r += w[i] * x[i];
    return r;
}

template <int R, int C>
inline void tile(const float* W, size_t ldw, const float* X, size_t ldx, int64_t K, float* Y, size_t ldy) {
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    const int64_t K8 = K / 8 * 8;
    for (int64_t i = 0; i < K8; i += 8) {
        __m256 xv[C];
        for (int c = 0; c < C; ++c) xv[c] = _mm256_loadu_ps(X + static_cast<size_t>(c) * ldx + i);
        for (int r = 0; r < R; ++r) {
            const __m256 wv = _mm256_loadu_ps(W + static_cast<size_t>(r) * ldw + i);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            Y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] =
                finish(acc[r][c], W + static_cast<size_t>(r) * ldw, X + static_cast<size_t>(c) * ldx, K8, K);
}

template <int R>
inline void row_block(const float* W, size_t ldw, const float* X, size_t ldx, int B, int64_t K, float* Y, size_t ldy) {
    int b = 0;
    for (; b + 4 <= B; b += 4) tile<R, 4>(W, ldw, X + static_cast<size_t>(b) * ldx, ldx, K, Y + static_cast<size_t>(b) * ldy, ldy);
    for (; b < B; ++b) tile<R, 1>(W, ldw, X + static_cast<size_t>(b) * ldx, ldx, K, Y + static_cast<size_t>(b) * ldy, ldy);
}

}  // namespace

float dot_f32_avx2(const float* a, const float* b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    alignas(32) float s[8];
    _mm256_store_ps(s, acc);
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
}

void round_f16_f32_avx2(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; ++i) {
        const __m128 v = _mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT));
        y[i] = _mm_cvtss_f32(v);
    }
}

void axpy_f32_avx2(float a, const float* x, float* y, int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    for (; i < n; ++i) y[i] += a * x[i];
}

void dot_f32_rows_avx2(const float* q, const float* k, size_t ldk, int64_t rows, int64_t n, float* out) {
    int64_t p = 0;
    if (n % 8 == 0) {
        for (; p + 4 <= rows; p += 4) {
            const float* kp = k + static_cast<size_t>(p) * ldk;
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t i = 0; i < n; i += 8) {
                const __m256 qv = _mm256_loadu_ps(q + i);
                for (int j = 0; j < 4; ++j) a[j] = _mm256_add_ps(a[j], _mm256_mul_ps(qv, _mm256_loadu_ps(kp + static_cast<size_t>(j) * ldk + i)));
            }
            // Lane j of the result: ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) of a[j], as dot_f32_avx2.
            const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
            _mm_storeu_ps(out + p, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
        }
    }
    for (; p < rows; ++p) out[p] = dot_f32_avx2(q, k + static_cast<size_t>(p) * ldk, n);
}

// y[0, 8W) += s[p] * v[p][0, 8W) for every p in order, y in registers.
template <int W>
static void axpy_rows_block(const float* s, const float* v, size_t ldv, int64_t rows, float* y) {
    __m256 acc[W];
    for (int j = 0; j < W; ++j) acc[j] = _mm256_loadu_ps(y + 8 * j);
    for (int64_t p = 0; p < rows; ++p) {
        const __m256 sv = _mm256_set1_ps(s[p]);
        const float* vp = v + static_cast<size_t>(p) * ldv;
        for (int j = 0; j < W; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(sv, _mm256_loadu_ps(vp + 8 * j)));
    }
    for (int j = 0; j < W; ++j) _mm256_storeu_ps(y + 8 * j, acc[j]);
}

void axpy_f32_rows_avx2(const float* s, const float* v, size_t ldv, int64_t rows, int64_t n, float* y) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) axpy_rows_block<8>(s, v + i, ldv, rows, y + i);
    for (; i + 8 <= n; i += 8) axpy_rows_block<1>(s, v + i, ldv, rows, y + i);
    for (; i < n; ++i)
        for (int64_t p = 0; p < rows; ++p) y[i] += s[p] * v[static_cast<size_t>(p) * ldv + static_cast<size_t>(i)];
}

void gemm_f32_avx2(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                   size_t ldy) {
    int64_t r = 0;
    if (B == 1) {
        for (; r + 4 <= n_rows; r += 4) tile<4, 1>(W + static_cast<size_t>(r) * ldw, ldw, X, ldx, K, Y + r, ldy);
    } else {
        for (; r + 2 <= n_rows; r += 2) row_block<2>(W + static_cast<size_t>(r) * ldw, ldw, X, ldx, B, K, Y + r, ldy);
    }
    for (; r < n_rows; ++r) row_block<1>(W + static_cast<size_t>(r) * ldw, ldw, X, ldx, B, K, Y + r, ldy);
}

}  // namespace qforge

#endif  // __x86_64__

#include "kernels/gemm.hpp"

#include "kernels/cpu.hpp"
#include "qforge/half.hpp"


namespace qforge {

float dot_f32(const float* a, const float* b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void dot_f32_rows(const float* q, const float* k, size_t ldk, int64_t rows, int64_t n, float* out) {
    for (int64_t p = 0; p < rows; ++p) out[p] = dot_f32(q, k + static_cast<size_t>(p) * ldk, n);
}

void axpy_f32_rows(const float* s, const float* v, size_t ldv, int64_t rows, int64_t n, float* y) {
    for (int64_t p = 0; p < rows; ++p) axpy_f32(s[p], v + static_cast<size_t>(p) * ldv, y, n);
}

void round_f16_f32(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = round_fp16(x[i]);
}

// The AVX2 form of a helper where this CPU has AVX2 (and QFORGE_KERNELS=scalar is not set), else
// the portable one; both give the same bits. (The AVX2 forms exist in x86-64 builds only.)
#if defined(__x86_64__)
#define QF_AVX2_OR(fn) ((!kernels_forced_scalar() && cpu_has_avx2()) ? fn##_avx2 : fn)
#else
#define QF_AVX2_OR(fn) (fn)
#endif

RoundF16Fn best_round_f16() {
    static const RoundF16Fn fn = QF_AVX2_OR(round_f16_f32);
    return fn;
}

DotF32Fn best_dot_f32() {
    static const DotF32Fn fn = QF_AVX2_OR(dot_f32);
    return fn;
}

AxpyF32Fn best_axpy_f32() {
    static const AxpyF32Fn fn = QF_AVX2_OR(axpy_f32);
    return fn;
}

DotRowsFn best_dot_f32_rows() {
    static const DotRowsFn fn = QF_AVX2_OR(dot_f32_rows);
    return fn;
}

AxpyRowsFn best_axpy_f32_rows() {
    static const AxpyRowsFn fn = QF_AVX2_OR(axpy_f32_rows);
    return fn;
}

#undef QF_AVX2_OR

void gemm_f32_scalar(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                     size_t ldy) {
    for (int64_t r = 0; r < n_rows; ++r)
        for (int b = 0; b < B; ++b)
            Y[static_cast<size_t>(b) * ldy + static_cast<size_t>(r)] =
                dot_f32(W + static_cast<size_t>(r) * ldw, X + static_cast<size_t>(b) * ldx, K);
}


GemmFn best_gemm_f32() {
#if defined(__x86_64__)
    static const GemmFn fn = (!kernels_forced_scalar() && cpu_has_avx2()) ? gemm_f32_avx2 : gemm_f32_scalar;
#elif defined(__aarch64__)
    static const GemmFn fn = kernels_forced_scalar() ? gemm_f32_scalar : gemm_f32_neon;
#else
    static const GemmFn fn = gemm_f32_scalar;
#endif
    return fn;
}

const char* gemm_f32_name() {
    if (best_gemm_f32() == gemm_f32_scalar) return "scalar";
#if defined(__x86_64__)
    return "avx2+fma";
#else
    return "neon";
#endif
}

}  // namespace qforge

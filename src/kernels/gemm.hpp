// f32 matrix products used by the forward pass: Y[b][r] = W[r] . X[b].
// A portable scalar reference and an AVX2+FMA kernel, chosen at run time by CPU features.
// Every output element is accumulated the same way whatever the tiling, so results do not
// depend on how rows are split between threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qforge {

// W: rows [0, n_rows) of length K, row stride ldw floats; X: B vectors of length K, stride ldx;
// Y[b * ldy + r] for r in [0, n_rows).
using GemmFn = void (*)(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                        size_t ldy);

void gemm_f32_scalar(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                     size_t ldy);
void gemm_f32_avx2(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                   size_t ldy);  // x86-64 builds only
void gemm_f32_neon(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                   size_t ldy);  // aarch64 builds only

// Dot product with eight independent partial sums in a fixed order (vectorisable, deterministic);
// the reduction every scalar product here uses.
float dot_f32(const float* a, const float* b, int64_t n);
// y[i] += a * x[i] (a multiply, then an add: no fused rounding).
void axpy_f32(float a, const float* x, float* y, int64_t n);
float dot_f32_avx2(const float* a, const float* b, int64_t n);  // x86-64 builds only: the same bits
void axpy_f32_avx2(float a, const float* x, float* y, int64_t n);
// y[i] = x[i] rounded to f16 and back (round_fp16); y may be x.
void round_f16_f32(const float* x, float* y, int64_t n);
void round_f16_f32_avx2(const float* x, float* y, int64_t n);  // x86-64 builds only (F16C): the same bits
using RoundF16Fn = void (*)(const float*, float*, int64_t);
RoundF16Fn best_round_f16();
using DotF32Fn = float (*)(const float*, const float*, int64_t);
using AxpyF32Fn = void (*)(float, const float*, float*, int64_t);
// The fastest of the above on this CPU; every one gives the same bits.
DotF32Fn best_dot_f32();
AxpyF32Fn best_axpy_f32();

// Attention over a cache, many positions a call: out[p] = dot_f32(q, k + p * ldk, n) for p < rows,
// and y += s[p] * (v + p * ldv) for p = 0, 1, ... in order. The same bits as the one-row helpers
// (the AVX2 forms run four dot products side by side and keep y in registers).
void dot_f32_rows(const float* q, const float* k, size_t ldk, int64_t rows, int64_t n, float* out);
void axpy_f32_rows(const float* s, const float* v, size_t ldv, int64_t rows, int64_t n, float* y);
void dot_f32_rows_avx2(const float* q, const float* k, size_t ldk, int64_t rows, int64_t n, float* out);  // x86-64 builds only
void axpy_f32_rows_avx2(const float* s, const float* v, size_t ldv, int64_t rows, int64_t n, float* y);   // x86-64 builds only
using DotRowsFn = void (*)(const float*, const float*, size_t, int64_t, int64_t, float*);
using AxpyRowsFn = void (*)(const float*, const float*, size_t, int64_t, int64_t, float*);
DotRowsFn best_dot_f32_rows();
AxpyRowsFn best_axpy_f32_rows();

// The best kernel this CPU supports (QFORGE_KERNELS=scalar forces the reference).
GemmFn best_gemm_f32();
const char* gemm_f32_name();

}  // namespace qforge

// Dot products of a quantized weight row with activations quantized to the type ggml pairs it
// with (q8_0 for Q4_0/Q8_0, q8_K for the k-quants). A scalar reference for each, and AVX2
// versions chosen at run time; used for generation, where each weight row meets few tokens.
#pragma once

#include <cstdint>

#include "qforge/types.hpp"

namespace qforge {

// sum over the row of w[i] * x[i]; n is the row length; vx: weight blocks, vy: activation blocks.
using VecDotFn = float (*)(int64_t n, const void* vx, const void* vy);

float vec_dot_q4_0_q8_0_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q8_0_q8_0_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q4_k_q8_k_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q6_k_q8_k_scalar(int64_t n, const void* vx, const void* vy);

float vec_dot_q4_0_q8_0_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q8_0_q8_0_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q4_k_q8_k_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q6_k_q8_k_avx2(int64_t n, const void* vx, const void* vy);

// Reference for any weight type: both operands converted to f32 (for tests and fallbacks).
float vec_dot_generic(GgmlType weight_type, int64_t n, const void* vx, const void* vy);
float vec_dot_f16_f16_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q5_0_q8_0_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q5_k_q8_k_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q3_k_q8_k_avx2(int64_t n, const void* vx, const void* vy);
float vec_dot_q2_k_q8_k_avx2(int64_t n, const void* vx, const void* vy);

float vec_dot_q4_0_q8_0_neon(int64_t n, const void* vx, const void* vy);
float vec_dot_q8_0_q8_0_neon(int64_t n, const void* vx, const void* vy);
const char* vec_dot_isa();  // "avx2", "neon+dotprod", "neon" or "scalar"

// The fastest kernel for a weight type, or nullptr when there is none (then the caller converts
// rows to f32). QFORGE_KERNELS=scalar selects the scalar references.
VecDotFn find_vec_dot(GgmlType weight_type);

}  // namespace qforge

// Dot products of a quantized weight row with activations quantized to the type ggml pairs it
// with (q8_0 for Q4_0/Q8_0, q8_1 for Q4_1/Q5_1, q8_K for the k-quants and IQ4_XS, f16 for F16).
// Scalar references, and SIMD versions (AVX2, AVX-512 VNNI, NEON) chosen at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/panel.hpp"
#include "qforge/types.hpp"

namespace qforge {

// sum over the row of w[i] * x[i]; n is the row length; vx: weight blocks, vy: activation blocks.
using VecDotFn = float (*)(int64_t n, const void* vx, const void* vy);

float vec_dot_q4_0_q8_0_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q8_0_q8_0_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q4_1_q8_1_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q5_1_q8_1_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q4_k_q8_k_scalar(int64_t n, const void* vx, const void* vy);
float vec_dot_q6_k_q8_k_scalar(int64_t n, const void* vx, const void* vy);
// MLX affine blocks (quant/affine_blocks.hpp: BlockMlxA2 … BlockMlxA8) against q8_0.
template <class Block>
float vec_dot_mlx_q8_0_scalar(int64_t n, const void* vx, const void* vy);

// Reference for any weight type: both operands converted to f32 (for tests and fallbacks).
float vec_dot_generic(GgmlType weight_type, int64_t n, const void* vx, const void* vy);

// One weight row against nc (1..kMaxDotCols) activation rows that lie `by` bytes apart:
// out[c * os] = vx . row c. Each weight block is unpacked once for all nc rows, so a prompt is
// processed as a matrix-matrix product; a row's result is the same whatever nc is.
inline constexpr int kMaxDotCols = 4;
using VecDotNFn = void (*)(int64_t n, const void* vx, const void* vy, size_t by, int nc, float* out, size_t os);

// F16 weight rows [0, n_rows) (stride ldw elements) against B tokens of f32 activations that hold
// f16 values (stride ldx): Y[b * ldy + r]. Results do not depend on n_rows, B or the tiling.
using F16GemmFn = void (*)(const uint16_t* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K,
                           float* Y, size_t ldy);

// F16 weights regrouped four rows at a time (repack_f16_x4): each group holds, for every 16 weights
// of a row, those of rows 0..3 in turn. n_groups groups against B tokens of f16 activations X: the
// same bits as F16GemmFn on the rows as stored and X as f32. K must be a multiple of kF16X4Chunk.
inline constexpr int kF16X4Rows = 4, kF16X4Chunk = 16;
using F16X4GemmFn = void (*)(const uint16_t* G, int64_t n_groups, const uint16_t* X, size_t ldx, int B, int64_t K, float* Y, size_t ldy);
void repack_f16_x4(const uint16_t* W, int64_t rows, int64_t K, uint16_t* out);  // rows % kF16X4Rows == 0

// Two weight rows (w0, w1) against nc activation rows `by` bytes apart: out[c * os] = w0 . y_c,
// out[c * os + 1] = w1 . y_c, each the same bits as the one-row kernel gives.
using VecDot2Fn = void (*)(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc, float* out, size_t os);

struct DotKernel {
    GgmlType type;
    VecDotFn one;    // one activation row
    VecDotNFn many;  // up to kMaxDotCols rows
    VecDot2Fn two = nullptr;  // two weight rows at once (ARM i8mm), any number of activation rows
};
struct KernelSet {
    const char* isa;
    const DotKernel* begin;
    const DotKernel* end;
    int panel_max_code = 0;            // largest |weight code| its panel kernels take
    PanelGemmFn panel[2][2] = {};      // [group of 16 or 32][with minimums]
    const PanelPacker* packers_begin = nullptr;
    const PanelPacker* packers_end = nullptr;
    QuantizeRowFn quantize_q8_0 = nullptr;  // activation quantizers, equal to the portable ones
    QuantizeRowFn quantize_q8_k = nullptr;
    X8GemmFn q4_0_x8 = nullptr;             // repacked Q4_0 and Q4_K (panel.hpp)
    XKGemmFn q4_k_x8 = nullptr;
    XKGemmFn q6_k_x8 = nullptr;
    QuantizeRowFn quantize_f16 = nullptr;   // f16 activations (F16 weights), equal to fp32_to_fp16
    XKGemmFn q5_k_x8 = nullptr;             // repacked Q5_K
    F16GemmFn f16_gemm = nullptr;           // F16 weights (prompts and generation)
    XKGemmFn q3_k_x8 = nullptr;             // repacked Q3_K and Q2_K
    XKGemmFn q2_k_x8 = nullptr;
    XKGemm16Fn q4_k_x16 = nullptr;          // two groups at once, 8 tokens (AVX-512)
    XKGemm16Fn q5_k_x16 = nullptr;
    XKGemm16Fn q6_k_x16 = nullptr;
    X8GemmFn q8_0_x8 = nullptr;             // repacked Q8_0 and Q5_0
    X8GemmFn q5_0_x8 = nullptr;
    F16X4GemmFn f16_x4_gemm = nullptr;      // F16 regrouped four rows at a time
    XKGemm16Fn q3_k_x16 = nullptr;          // as q4_k_x16, for Q3_K and Q2_K (AVX-512)
    XKGemm16Fn q2_k_x16 = nullptr;
};
KernelSet kernel_set_avx2();        // x86-64 builds only
KernelSet kernel_set_avx512vnni();  // x86-64 builds only
// The SIMD kernel sets this CPU can run, best first (empty with QFORGE_KERNELS=scalar).
const std::vector<KernelSet>& usable_kernel_sets();  // detected once
// How activations are quantized to `act_type` for the dot products: a SIMD quantizer with the
// same output where there is one, else the type's own.
QuantizeRowFn find_act_quantizer(GgmlType act_type);
// The best F16 matrix product this CPU runs, or nullptr (then the row kernels serve).
F16GemmFn find_f16_gemm();
F16X4GemmFn find_f16_x4_gemm();  // nullptr where there is none
// The best multi-row kernel for a weight type, or nullptr.
VecDotNFn find_vec_dot_n(GgmlType weight_type);
VecDot2Fn find_vec_dot_2(GgmlType weight_type);  // nullptr where the CPU has none

// NEON (neon.cpp): each format's one-token kernel and its form for up to kMaxDotCols tokens.
#define QF_NEON_DOT_DECL(name)                                                \
    float vec_dot_##name##_neon(int64_t n, const void* vx, const void* vy); \
    void vec_dot_n_##name##_neon(int64_t n, const void* vx, const void* vy, size_t by, int nc, float* out, size_t os);
QF_NEON_DOT_DECL(q4_0_q8_0)
QF_NEON_DOT_DECL(q8_0_q8_0)
QF_NEON_DOT_DECL(q4_k_q8_k)
QF_NEON_DOT_DECL(q5_k_q8_k)
QF_NEON_DOT_DECL(q6_k_q8_k)
QF_NEON_DOT_DECL(q3_k_q8_k)
QF_NEON_DOT_DECL(q2_k_q8_k)
QF_NEON_DOT_DECL(q5_0_q8_0)
QF_NEON_DOT_DECL(q5_1_q8_1)
QF_NEON_DOT_DECL(q4_1_q8_1)
QF_NEON_DOT_DECL(iq4_nl_q8_0)
QF_NEON_DOT_DECL(iq4_xs_q8_k)
#undef QF_NEON_DOT_DECL
void vec_dot2_q8_0_q8_0_i8mm(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc, float* out, size_t os);
void vec_dot2_q4_0_q8_0_i8mm(int64_t n, const void* w0, const void* w1, const void* vy, size_t by, int nc, float* out, size_t os);
bool neon_has_i8mm();
const char* vec_dot_isa();  // "avx512vnni", "avx2", "neon+dotprod", "neon" or "scalar"

// The fastest kernel for a weight type, or nullptr when there is none (then the caller converts
// rows to f32). QFORGE_KERNELS=scalar selects the scalar references.
VecDotFn find_vec_dot(GgmlType weight_type);

}  // namespace qforge

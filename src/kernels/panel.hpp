// Prompt processing as int8 matrix-matrix products over "panels": eight weight rows unpacked to
// int8 codes and interleaved four codes at a time, so that one 32-bit lane of a vector holds one
// row. A broadcast of four activation codes then meets eight rows in one dot-product instruction
// (vpdpbusd with AVX-512 VNNI, vpmaddubsw + vpmaddwd with AVX2), and the scales are applied to
// eight rows at once. Weights stay in their stored format: a panel is unpacked per thread from
// the stored blocks, once per batch of tokens, and reused for every token of the batch.
//
// Every supported format is written as  w = scale_g * q + min_g  over groups of G (16 or 32)
// elements with int8 codes q; activations keep ggml's quantization (q8_0 or q8_K codes and
// scales), made unsigned (+128) once per batch, with the offset undone by a per-group bias.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qforge/types.hpp"

namespace qforge {

inline constexpr int kPanelRows = 8;

struct Panel {
    int64_t K = 0;
    int G = 32;
    std::vector<int8_t> codes;   // [K/4][8 rows][4]
    std::vector<float> scale;    // [K/G][8]
    std::vector<float> min;      // [K/G][8], zero for formats without a minimum
    std::vector<int32_t> bias;   // [K/G][8]: -128 * sum of the group's codes
};

struct PanelActs {
    int64_t K = 0;
    int G = 32;
    int n = 0;                  // tokens
    std::vector<uint8_t> yu;    // [n][K]: activation codes + 128
    std::vector<float> dy;      // [n][K/G]: the activation scale of each group
    std::vector<float> sy;      // [n][K/G]: dy * sum of the group's activation codes
};

// A weight format as panels: its group size, whether it has minimums, the largest |code| (AVX2's
// vpmaddubsw saturates above 64), and how to unpack one row into codes and per-group floats.
struct PanelFormat {
    GgmlType type;
    int G;
    bool has_min;
    int max_code;
    void (*unpack)(const uint8_t* row, int64_t K, int8_t* codes, float* scale, float* min);
};

// nullptr where a format has no panel form.
const PanelFormat* find_panel_format(GgmlType weight_type);

// Rows [0, nrows) (nrows <= 8; the rest are zero) of stored weights into a panel.
void pack_panel(const PanelFormat& f, const uint8_t* rows, size_t row_bytes, int nrows, int64_t K, Panel& p);

// Token `t`'s quantized activation row (q8_0 or q8_K blocks) into the batch's panel form.
void pack_panel_acts(GgmlType act_type, const void* q, int t, PanelActs& a);
void resize_panel_acts(PanelActs& a, int64_t K, int G, int n);

// out[c * 8 + r] = row r of the panel . token (c0 + c), for c < nc (1..4).
using PanelGemmFn = void (*)(const Panel& p, const PanelActs& a, int c0, int nc, float* out);
void panel_gemm_scalar(const Panel& p, const PanelActs& a, int c0, int nc, float* out);

using PanelPackFn = void (*)(const uint8_t* rows, size_t row_bytes, int nrows, int64_t K, Panel& p);
struct PanelPacker {
    GgmlType type;
    PanelPackFn pack;
};
struct PanelKernels {
    PanelPackFn pack = nullptr;  // SIMD packer, or nullptr for pack_panel
    PanelGemmFn gemm = nullptr;
};
// The fastest panel kernels this CPU runs for a format; gemm is nullptr where there are none
// (then the row kernels serve).
PanelKernels find_panel_kernels(const PanelFormat& f);

}  // namespace qforge

namespace qforge {

// ---- Q4_0 repacked for the CPU (llama.cpp does the same at load time) ----------------------------
// Rows regrouped eight at a time: per 32-element block, the eight rows' f16 scales (16 bytes),
// then four 32-byte vectors whose 32-bit lane r holds row r's quant bytes 4j..4j+3 (j = 0..3).
// The same 144 bytes as eight stored blocks, so generation streams the same amount of memory;
// the nibbles are the unsigned operand of the dot product as they are (no unpacking per row).
inline constexpr size_t kQ4_0x8Block = 144;
void repack_q4_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);

// Activations for it: q8_0 codes as they are, the f32 scale and 8 * (sum of codes) per block.
struct X8Acts {
    int64_t K = 0;
    int n = 0;
    std::vector<int8_t> q;       // [n][K]
    std::vector<float> d;        // [n][K/32]
    std::vector<int32_t> s8;     // [n][K/32]
};
void resize_x8_acts(X8Acts& a, int64_t K, int n);
void pack_x8_acts(const void* q8_0_row, int t, X8Acts& a);

// out[c * 8 + r] = row r of the eight-row group at `group` . token (c0 + c), c < nc (1..kGemmCols).
inline constexpr int kGemmCols = 8;
using X8GemmFn = void (*)(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out);
void q4_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out);

// ---- Q8_0 regrouped the same way -------------------------------------------------------------------
// Per 32-element block of eight rows: the eight f16 scales (16 bytes), then eight 32-byte vectors
// whose lane r holds row r's codes 4k..4k+3 (k = 0..7): 272 bytes, as stored. One broadcast of four
// activation codes meets eight rows, and the scales are applied to eight rows at once.
inline constexpr size_t kQ8_0x8Block = 272;
void repack_q8_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q8_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out);

// ---- Q5_0 regrouped the same way -------------------------------------------------------------------
// Per block of eight rows: the eight f16 scales (16 bytes), the fifth bits as one 32-byte vector
// whose lane r, byte i, bit k is row r's bit of element 4k + i (so a shift and a mask bring word k's
// bits to bit 4 of each byte), then the nibbles as Q4_0's: 176 bytes, as stored.
inline constexpr size_t kQ5_0x8Block = 176;
void repack_q5_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q5_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out);

// The 32-element formats regrouped eight rows at a time (Q4_0, Q5_0, Q8_0): the repacker and this
// CPU's kernel (gemm: nullptr where none runs; then rows stay as stored). nullptr for other types.
struct X8Format {
    GgmlType type;
    void (*repack)(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
    X8GemmFn gemm;
};
const X8Format* find_x8_format(GgmlType t);

}  // namespace qforge

namespace qforge {

// ---- Q4_K regrouped the same way ------------------------------------------------------------------
// Per super-block of eight rows (1184 bytes, 2.8% more than stored): d and dmin (f16, 8 rows each),
// the eight 6-bit scales and mins unpacked to bytes [sub-block][row], then the quant bytes: for
// chunk j (elements 64j..64j+63) and word m, a 32-byte vector whose lane r holds row r's bytes
// 32j+4m..32j+4m+3 (low nibbles: sub-block 2j, high nibbles: sub-block 2j+1).
inline constexpr size_t kQ4_Kx8Block = 1184;
void repack_q4_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);

// Activations: q8_K codes, the f32 scale per 256, and the sums of each 32-element sub-block as
// int16 pairs (sub-blocks 2q and 2q+1 in one 32-bit word) for the mins.
struct XKActs {
    int64_t K = 0;
    int n = 0;
    std::vector<int8_t> q;       // [n][K]
    std::vector<float> d;        // [n][K/256]
    std::vector<int32_t> bs;     // [n][K/64]
    std::vector<int32_t> bs16;   // [n][K/32]: the 16-element sums, 2q and 2q+1 in one word
};
void resize_xk_acts(XKActs& a, int64_t K, int n);
void pack_xk_acts(const void* q8_k_row, int t, XKActs& a);

using XKGemmFn = void (*)(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);
// Two consecutive groups (sixteen rows, the second group_bytes after the first) against tokens
// c0 .. c0+7: out[c * 16 + r]. Where one broadcast can serve sixteen rows (AVX-512).
using XKGemm16Fn = void (*)(const uint8_t* group, size_t group_bytes, const XKActs& a, int c0, float* out);
void q4_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);

// ---- Q5_K: Q4_K's regrouped layout with the high bits before the nibbles ---------------------------
// The first 160 bytes as Q4_K's (d, dmin, scales, mins), then for word m a 32-byte vector whose
// lane r holds row r's qh[4m .. 4m+3] (bit 2j of those bytes is the fifth bit of chunk j's
// low-nibble elements, bit 2j+1 of its high-nibble ones), then the nibbles as Q4_K's at 160 + 256:
// 1440 bytes, 2.3% more than stored, read front to back (what the hardware prefetcher follows).
inline constexpr size_t kQ5_Kx8Block = 1440;
inline constexpr size_t kQ5_Kx8Qh = 160, kQ5_Kx8Qs = 416;
void repack_q5_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q5_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);

// ---- Q6_K regrouped the same way (1680 bytes per super-block of eight rows, as stored) -----------
// d (f16 x 8), the sixteen int8 scales [group][row], then per half h and word m, in the order
// the kernel reads them, three vectors b0, b1, b2 whose lane r holds row r's four codes of
// elements 128h + 32k + 4m .. +3 (k = 0, 1, 2) in bits 0-5, and in bits 6-7 bits 2k, 2k+1 of
// the codes of k = 3: three codes come out with one mask, the fourth with three shifts, three
// masks and two ors (the file's ql/qh split takes seventeen operations for the four).
inline constexpr size_t kQ6_Kx8Block = 1680;
void repack_q6_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q6_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);

// ---- Q3_K regrouped (912 bytes per super-block of eight rows, 3.6% more than stored) -------------
// d (f16 x 8), the sixteen 6-bit scales less 32 as int8 [group][row], then for word m the high-bit
// vector (lane r: row r's hmask[4m .. 4m+3]), then per half h and word m the 2-bit code vector
// (lane r: row r's qs[32h + 4m ..]); codes 0..7 (q + 4) meet the activations unsigned.
inline constexpr size_t kQ3_Kx8Block = 912;
inline constexpr size_t kQ3_Kx8Hmask = 144, kQ3_Kx8Qs = 400;
void repack_q3_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q3_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);

// ---- Q2_K regrouped (672 bytes per super-block of eight rows, as stored) --------------------------
// d and dmin (f16 x 8 each), the sixteen scale/min bytes as stored [group][row] (low nibble scale,
// high nibble min), then per half h and word m the code vector (lane r: row r's qs[32h + 4m ..]).
inline constexpr size_t kQ2_Kx8Block = 672;
inline constexpr size_t kQ2_Kx8Qs = 160;
void repack_q2_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
void q2_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out);

// The K-quants regrouped eight rows at a time (Q2_K … Q6_K): bytes per super-block of eight
// rows, the repacker, and this CPU's kernel (gemm: nullptr where none runs; then rows are not
// regrouped). nullptr for other types.
struct XKFormat {
    GgmlType type;
    size_t block_bytes;
    void (*repack)(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst);
    XKGemmFn gemm;
    XKGemm16Fn gemm16;  // nullptr where none runs
};
const XKFormat* find_xk_format(GgmlType t);

}  // namespace qforge

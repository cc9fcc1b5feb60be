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

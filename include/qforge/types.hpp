// The one table of ggml tensor types. Every generic piece of code (sizes, readers, writers,
// quantize, dequantize) asks this table; adding a format means adding a row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qforge {

enum class GgmlType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
    IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
    // qforge's own in-memory layouts, never written to or read from a GGUF: MLX affine codes of
    // 2, 3, 6 and 8 bits in blocks of 32 with an f16 scale and bias (quant/affine_blocks.hpp), so
    // an MLX model runs on its own weights (4 and 5 bits are ggml's Q4_1 / Q5_1).
    MLX_A2 = 1002, MLX_A3 = 1003, MLX_A6 = 1006, MLX_A8 = 1008,
};

// Quantize n floats (a multiple of block_size) into blocks. imatrix may be null; when given it
// has one importance weight per column of the row (n_per_row values).
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n, const float* imatrix);
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);

struct TypeTraits {
    GgmlType type;
    const char* name;      // ggml's name, e.g. "q4_K"
    int64_t block_size;    // elements per block
    size_t type_size;      // bytes per block
    bool is_quantized;
    QuantizeRowFn quantize = nullptr;      // reference quantizer (bit-exact with ggml)
    DequantizeRowFn dequantize = nullptr;  // to f32
    // The type ggml converts the other operand (activations) to for dot products with it.
    GgmlType vec_dot_type = GgmlType::F32;
    bool needs_imatrix = false;            // ggml refuses to quantize it without one
    bool internal = false;                 // qforge's in-memory layout, not a GGUF type
    double bits_per_weight() const { return 8.0 * static_cast<double>(type_size) / static_cast<double>(block_size); }
};

// nullptr for an id that is not (or no longer) a ggml type; qforge's internal types are found too
// (callers that read files check TypeTraits::internal).
const TypeTraits* find_type(uint32_t id);
const TypeTraits& type_traits(GgmlType t);
// Case-insensitive lookup by ggml name ("q4_k", "Q4_K", "bf16").
const TypeTraits* find_type_by_name(std::string_view name);
// Bytes of a row of n elements; nullopt when n is not a multiple of the block size.
std::optional<uint64_t> row_bytes(const TypeTraits& t, int64_t n);

}  // namespace qforge

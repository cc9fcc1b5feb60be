#include "qforge/types.hpp"

#include <array>

#include "core/strings.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

namespace {

using T = GgmlType;

// Ordered by id. Block sizes and bytes per block are those of ggml's block structs.
const std::array kTypes = {
    TypeTraits{T::F32, "f32", 1, 4, false, quantize_row_f32, dequantize_row_f32, T::F32, false},
    TypeTraits{T::F16, "f16", 1, 2, false, quantize_row_f16, dequantize_row_f16, T::F16, false},
    TypeTraits{T::Q4_0, "q4_0", 32, 18, true, quantize_row_q4_0, dequantize_row_q4_0, T::Q8_0, false},
    TypeTraits{T::Q4_1, "q4_1", 32, 20, true, quantize_row_q4_1, dequantize_row_q4_1, T::Q8_1, false},
    TypeTraits{T::Q5_0, "q5_0", 32, 22, true, quantize_row_q5_0, dequantize_row_q5_0, T::Q8_0, false},
    TypeTraits{T::Q5_1, "q5_1", 32, 24, true, quantize_row_q5_1, dequantize_row_q5_1, T::Q8_1, false},
    TypeTraits{T::Q8_0, "q8_0", 32, 34, true, quantize_row_q8_0, dequantize_row_q8_0, T::Q8_0, false},
    TypeTraits{T::Q8_1, "q8_1", 32, 36, true, quantize_row_q8_1, dequantize_row_q8_1, T::Q8_1, false},
    TypeTraits{T::Q2_K, "q2_K", 256, 84, true, quantize_row_q2_k, dequantize_row_q2_k, T::Q8_K, false},
    TypeTraits{T::Q3_K, "q3_K", 256, 110, true, quantize_row_q3_k, dequantize_row_q3_k, T::Q8_K, false},
    TypeTraits{T::Q4_K, "q4_K", 256, 144, true, quantize_row_q4_k, dequantize_row_q4_k, T::Q8_K, false},
    TypeTraits{T::Q5_K, "q5_K", 256, 176, true, quantize_row_q5_k, dequantize_row_q5_k, T::Q8_K, false},
    TypeTraits{T::Q6_K, "q6_K", 256, 210, true, quantize_row_q6_k, dequantize_row_q6_k, T::Q8_K, false},
    TypeTraits{T::Q8_K, "q8_K", 256, 292, true, quantize_row_q8_k, dequantize_row_q8_k, T::Q8_K, false},
    TypeTraits{T::IQ2_XXS, "iq2_xxs", 256, 66, true, nullptr, nullptr, T::F32, true},
    TypeTraits{T::IQ2_XS, "iq2_xs", 256, 74, true, nullptr, nullptr, T::F32, true},
    TypeTraits{T::IQ3_XXS, "iq3_xxs", 256, 98, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::IQ1_S, "iq1_s", 256, 50, true, nullptr, nullptr, T::F32, true},
    TypeTraits{T::IQ4_NL, "iq4_nl", 32, 18, true, quantize_row_iq4_nl, dequantize_row_iq4_nl, T::Q8_0, false},
    TypeTraits{T::IQ3_S, "iq3_s", 256, 110, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::IQ2_S, "iq2_s", 256, 82, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::IQ4_XS, "iq4_xs", 256, 136, true, quantize_row_iq4_xs, dequantize_row_iq4_xs, T::Q8_K, false},
    TypeTraits{T::I8, "i8", 1, 1, false, nullptr, nullptr, T::F32, false},
    TypeTraits{T::I16, "i16", 1, 2, false, nullptr, nullptr, T::F32, false},
    TypeTraits{T::I32, "i32", 1, 4, false, nullptr, nullptr, T::F32, false},
    TypeTraits{T::I64, "i64", 1, 8, false, nullptr, nullptr, T::F32, false},
    TypeTraits{T::F64, "f64", 1, 8, false, nullptr, nullptr, T::F32, false},
    TypeTraits{T::IQ1_M, "iq1_m", 256, 56, true, nullptr, nullptr, T::F32, true},
    TypeTraits{T::BF16, "bf16", 1, 2, false, quantize_row_bf16, dequantize_row_bf16, T::BF16, false},
    TypeTraits{T::TQ1_0, "tq1_0", 256, 54, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::TQ2_0, "tq2_0", 256, 66, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::MXFP4, "mxfp4", 32, 17, true, nullptr, nullptr, T::F32, false},
    TypeTraits{T::MLX_A2, "mlx_affine2", 32, 12, true, quantize_row_mlx_a2, dequantize_row_mlx_a2, T::Q8_0, false, true},
    TypeTraits{T::MLX_A3, "mlx_affine3", 32, 16, true, quantize_row_mlx_a3, dequantize_row_mlx_a3, T::Q8_0, false, true},
    TypeTraits{T::MLX_A6, "mlx_affine6", 32, 28, true, quantize_row_mlx_a6, dequantize_row_mlx_a6, T::Q8_0, false, true},
    TypeTraits{T::MLX_A8, "mlx_affine8", 32, 36, true, quantize_row_mlx_a8, dequantize_row_mlx_a8, T::Q8_0, false, true},
};

}  // namespace

const TypeTraits* find_type(uint32_t id) {
    for (const auto& t : kTypes) {
        if (static_cast<uint32_t>(t.type) == id) return &t;
    }
    return nullptr;
}

const TypeTraits& type_traits(GgmlType t) { return *find_type(static_cast<uint32_t>(t)); }

const TypeTraits* find_type_by_name(std::string_view name) {
    for (const auto& t : kTypes) {
        if (iequals(t.name, name)) return &t;
    }
    return nullptr;
}

std::optional<uint64_t> row_bytes(const TypeTraits& t, int64_t n) {
    if (n < 0 || n % t.block_size != 0) return std::nullopt;
    return static_cast<uint64_t>(n / t.block_size) * t.type_size;
}

}  // namespace qforge

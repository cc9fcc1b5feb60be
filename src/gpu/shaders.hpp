// The compute shaders (gpu/shaders/*.comp), compiled to SPIR-V at build time and embedded.
#pragma once

#include <cstdint>
#include <span>

#include "qforge/types.hpp"

namespace qforge::gpu {

// The matrix-vector shader for weights stored as t (every ggml type qforge quantizes to, and
// qforge's MLX blocks), or an empty span (then weights go up as f32).
std::span<const uint32_t> matvec_spirv(GgmlType t);
// The tiled matrix-matrix shader for prompts (same formats; empty where matvec_spirv is).
std::span<const uint32_t> matmul_spirv(GgmlType t);
// The same on tensor cores (matmul_cm.comp, VK_NV_cooperative_matrix; inputs rounded to f16):
// empty for F32 and BF16 (whose values f16 cannot always hold: their prompts keep the f32 product).
std::span<const uint32_t> matmul_cm_spirv(GgmlType t);
std::span<const uint32_t> matvec_dot_spirv(GgmlType t);  // empty where the format has none
std::span<const uint32_t> rmsnorm_spirv();
std::span<const uint32_t> rmsnorm_parts_spirv();  // RMSNorm from matvec_dot.comp's sum-of-squares parts
std::span<const uint32_t> rope_spirv();
std::span<const uint32_t> attention_spirv();
std::span<const uint32_t> attn_combine_spirv();
std::span<const uint32_t> attention_batch_spirv();  // prompts: 16 tokens of one head a workgroup  // the split attention's parts into outputs
std::span<const uint32_t> kv_store_spirv();
std::span<const uint32_t> swiglu_spirv();
std::span<const uint32_t> to_f16_spirv();  // f32 activations to f16 for matmul_cm.comp

}  // namespace qforge::gpu

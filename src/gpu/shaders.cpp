#include "gpu/shaders.hpp"

namespace qforge::gpu {

namespace {
// glslc -mfmt=c output: a braced list of SPIR-V words.
const uint32_t kMatvec_f32[] =
#include "matvec_f32.inc"
    ;
const uint32_t kMatmul_f32[] =
#include "matmul_f32.inc"
    ;
const uint32_t kMatvec_f16[] =
#include "matvec_f16.inc"
    ;
const uint32_t kMatmul_f16[] =
#include "matmul_f16.inc"
    ;
const uint32_t kMatvec_q8_0[] =
#include "matvec_q8_0.inc"
    ;
const uint32_t kMatmul_q8_0[] =
#include "matmul_q8_0.inc"
    ;
const uint32_t kMatvec_q4_0[] =
#include "matvec_q4_0.inc"
    ;
const uint32_t kMatmul_q4_0[] =
#include "matmul_q4_0.inc"
    ;
const uint32_t kMatvec_q4_1[] =
#include "matvec_q4_1.inc"
    ;
const uint32_t kMatmul_q4_1[] =
#include "matmul_q4_1.inc"
    ;
const uint32_t kMatvec_q5_0[] =
#include "matvec_q5_0.inc"
    ;
const uint32_t kMatmul_q5_0[] =
#include "matmul_q5_0.inc"
    ;
const uint32_t kMatvec_q5_1[] =
#include "matvec_q5_1.inc"
    ;
const uint32_t kMatmul_q5_1[] =
#include "matmul_q5_1.inc"
    ;
const uint32_t kMatvec_q2_k[] =
#include "matvec_q2_k.inc"
    ;
const uint32_t kMatmul_q2_k[] =
#include "matmul_q2_k.inc"
    ;
const uint32_t kMatvec_q3_k[] =
#include "matvec_q3_k.inc"
    ;
const uint32_t kMatmul_q3_k[] =
#include "matmul_q3_k.inc"
    ;
const uint32_t kMatvec_q4_k[] =
#include "matvec_q4_k.inc"
    ;
const uint32_t kMatmul_q4_k[] =
#include "matmul_q4_k.inc"
    ;
const uint32_t kMatvec_q5_k[] =
#include "matvec_q5_k.inc"
    ;
const uint32_t kMatmul_q5_k[] =
#include "matmul_q5_k.inc"
    ;
const uint32_t kMatvec_q6_k[] =
#include "matvec_q6_k.inc"
    ;
const uint32_t kMatmul_q6_k[] =
#include "matmul_q6_k.inc"
    ;
const uint32_t kMatvec_iq4_nl[] =
#include "matvec_iq4_nl.inc"
    ;
const uint32_t kMatmul_iq4_nl[] =
#include "matmul_iq4_nl.inc"
    ;
const uint32_t kMatvec_iq4_xs[] =
#include "matvec_iq4_xs.inc"
    ;
const uint32_t kMatmul_iq4_xs[] =
#include "matmul_iq4_xs.inc"
    ;
const uint32_t kMatvec_bf16[] =
#include "matvec_bf16.inc"
    ;
const uint32_t kMatmul_bf16[] =
#include "matmul_bf16.inc"
    ;
const uint32_t kMatvec_mlx_a2[] =
#include "matvec_mlx_a2.inc"
    ;
const uint32_t kMatmul_mlx_a2[] =
#include "matmul_mlx_a2.inc"
    ;
const uint32_t kMatvec_mlx_a3[] =
#include "matvec_mlx_a3.inc"
    ;
const uint32_t kMatmul_mlx_a3[] =
#include "matmul_mlx_a3.inc"
    ;
const uint32_t kMatvec_mlx_a6[] =
#include "matvec_mlx_a6.inc"
    ;
const uint32_t kMatmul_mlx_a6[] =
#include "matmul_mlx_a6.inc"
    ;
const uint32_t kMatvec_mlx_a8[] =
#include "matvec_mlx_a8.inc"
    ;
const uint32_t kMatmul_mlx_a8[] =
#include "matmul_mlx_a8.inc"
    ;
const uint32_t kMatmulCm_f16[] =
#include "matmul_cm_f16.inc"
    ;
const uint32_t kMatmulCm_q8_0[] =
#include "matmul_cm_q8_0.inc"
    ;
const uint32_t kMatmulCm_q4_0[] =
#include "matmul_cm_q4_0.inc"
    ;
const uint32_t kMatmulCm_q4_1[] =
#include "matmul_cm_q4_1.inc"
    ;
const uint32_t kMatmulCm_q5_0[] =
#include "matmul_cm_q5_0.inc"
    ;
const uint32_t kMatmulCm_q5_1[] =
#include "matmul_cm_q5_1.inc"
    ;
const uint32_t kMatmulCm_q2_k[] =
#include "matmul_cm_q2_k.inc"
    ;
const uint32_t kMatmulCm_q3_k[] =
#include "matmul_cm_q3_k.inc"
    ;
const uint32_t kMatmulCm_q4_k[] =
#include "matmul_cm_q4_k.inc"
    ;
const uint32_t kMatmulCm_q5_k[] =
#include "matmul_cm_q5_k.inc"
    ;
const uint32_t kMatmulCm_q6_k[] =
#include "matmul_cm_q6_k.inc"
    ;
const uint32_t kMatmulCm_iq4_nl[] =
#include "matmul_cm_iq4_nl.inc"
    ;
const uint32_t kMatmulCm_iq4_xs[] =
#include "matmul_cm_iq4_xs.inc"
    ;
const uint32_t kMatmulCm_mlx_a2[] =
#include "matmul_cm_mlx_a2.inc"
    ;
const uint32_t kMatmulCm_mlx_a3[] =
#include "matmul_cm_mlx_a3.inc"
    ;
const uint32_t kMatmulCm_mlx_a6[] =
#include "matmul_cm_mlx_a6.inc"
    ;
const uint32_t kMatmulCm_mlx_a8[] =
#include "matmul_cm_mlx_a8.inc"
    ;
const uint32_t kMatvecDot_q8_0[] =
#include "matvec_dot_q8_0.inc"
    ;
const uint32_t kMatvecDot_q4_0[] =
#include "matvec_dot_q4_0.inc"
    ;
const uint32_t kMatvecDot_q4_k[] =
#include "matvec_dot_q4_k.inc"
    ;
const uint32_t kMatvecDot_q6_k[] =
#include "matvec_dot_q6_k.inc"
    ;
const uint32_t kRmsnorm[] =
#include "rmsnorm.inc"
    ;
const uint32_t kRmsnormParts[] =
#include "rmsnorm_parts.inc"
    ;
const uint32_t kRope[] =
#include "rope.inc"
    ;
const uint32_t kKvStore[] =
#include "kv_store.inc"
    ;
const uint32_t kAttention[] =
#include "attention.inc"
    ;
const uint32_t kAttnCombine[] =
#include "attn_combine.inc"
    ;
const uint32_t kAttentionBatch[] =
#include "attention_batch.inc"
    ;
const uint32_t kToF16[] =
#include "to_f16.inc"
    ;
const uint32_t kSwiglu[] =
#include "swiglu.inc"
    ;
// Each weight format's matrix-vector, tiled and tensor-core shaders (none of the tensor-core ones
// for F32 and BF16, whose values f16 cannot always hold), and the matrix-vector product on integer
// dot products where there is one.
struct FormatShaders {
    GgmlType type;
    std::span<const uint32_t> matvec, matmul, matmul_cm, matvec_dot = {};
};
const FormatShaders kFormats[] = {
    {GgmlType::F32, kMatvec_f32, kMatmul_f32, {}},
    {GgmlType::F16, kMatvec_f16, kMatmul_f16, kMatmulCm_f16},
    {GgmlType::Q8_0, kMatvec_q8_0, kMatmul_q8_0, kMatmulCm_q8_0, kMatvecDot_q8_0},
    {GgmlType::Q4_0, kMatvec_q4_0, kMatmul_q4_0, kMatmulCm_q4_0, kMatvecDot_q4_0},
    {GgmlType::Q4_1, kMatvec_q4_1, kMatmul_q4_1, kMatmulCm_q4_1},
    {GgmlType::Q5_0, kMatvec_q5_0, kMatmul_q5_0, kMatmulCm_q5_0},
    {GgmlType::Q5_1, kMatvec_q5_1, kMatmul_q5_1, kMatmulCm_q5_1},
    {GgmlType::Q2_K, kMatvec_q2_k, kMatmul_q2_k, kMatmulCm_q2_k},
    {GgmlType::Q3_K, kMatvec_q3_k, kMatmul_q3_k, kMatmulCm_q3_k},
    {GgmlType::Q4_K, kMatvec_q4_k, kMatmul_q4_k, kMatmulCm_q4_k, kMatvecDot_q4_k},
    {GgmlType::Q5_K, kMatvec_q5_k, kMatmul_q5_k, kMatmulCm_q5_k},
    {GgmlType::Q6_K, kMatvec_q6_k, kMatmul_q6_k, kMatmulCm_q6_k, kMatvecDot_q6_k},
    {GgmlType::IQ4_NL, kMatvec_iq4_nl, kMatmul_iq4_nl, kMatmulCm_iq4_nl},
    {GgmlType::IQ4_XS, kMatvec_iq4_xs, kMatmul_iq4_xs, kMatmulCm_iq4_xs},
    {GgmlType::BF16, kMatvec_bf16, kMatmul_bf16, {}},
    {GgmlType::MLX_A2, kMatvec_mlx_a2, kMatmul_mlx_a2, kMatmulCm_mlx_a2},
    {GgmlType::MLX_A3, kMatvec_mlx_a3, kMatmul_mlx_a3, kMatmulCm_mlx_a3},
    {GgmlType::MLX_A6, kMatvec_mlx_a6, kMatmul_mlx_a6, kMatmulCm_mlx_a6},
    {GgmlType::MLX_A8, kMatvec_mlx_a8, kMatmul_mlx_a8, kMatmulCm_mlx_a8},
};
const FormatShaders* format_shaders(GgmlType t) {
    for (const auto& f : kFormats)
        if (f.type == t) return &f;
    return nullptr;
}
}  // namespace

std::span<const uint32_t> matvec_spirv(GgmlType t) {
    const FormatShaders* f = format_shaders(t);
    return f ? f->matvec : std::span<const uint32_t>{};
}
std::span<const uint32_t> matmul_spirv(GgmlType t) {
    const FormatShaders* f = format_shaders(t);
    return f ? f->matmul : std::span<const uint32_t>{};
}
std::span<const uint32_t> matmul_cm_spirv(GgmlType t) {
    const FormatShaders* f = format_shaders(t);
    return f ? f->matmul_cm : std::span<const uint32_t>{};
}
std::span<const uint32_t> matvec_dot_spirv(GgmlType t) {
    const FormatShaders* f = format_shaders(t);
    return f ? f->matvec_dot : std::span<const uint32_t>{};
}
std::span<const uint32_t> rmsnorm_spirv() { return kRmsnorm; }
std::span<const uint32_t> rmsnorm_parts_spirv() { return kRmsnormParts; }
std::span<const uint32_t> rope_spirv() { return kRope; }
std::span<const uint32_t> attention_spirv() { return kAttention; }
std::span<const uint32_t> attn_combine_spirv() { return kAttnCombine; }
std::span<const uint32_t> attention_batch_spirv() { return kAttentionBatch; }
std::span<const uint32_t> kv_store_spirv() { return kKvStore; }
std::span<const uint32_t> swiglu_spirv() { return kSwiglu; }
std::span<const uint32_t> to_f16_spirv() { return kToF16; }

}  // namespace qforge::gpu

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
const uint32_t kRmsnorm[] =
#include "rmsnorm.inc"
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
const uint32_t kSwiglu[] =
#include "swiglu.inc"
    ;
}  // namespace

std::span<const uint32_t> matvec_spirv(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return kMatvec_f32;
        case GgmlType::F16: return kMatvec_f16;
        case GgmlType::Q8_0: return kMatvec_q8_0;
        case GgmlType::Q4_0: return kMatvec_q4_0;
        case GgmlType::Q4_1: return kMatvec_q4_1;
        case GgmlType::Q5_0: return kMatvec_q5_0;
        case GgmlType::Q5_1: return kMatvec_q5_1;
        case GgmlType::Q2_K: return kMatvec_q2_k;
        case GgmlType::Q3_K: return kMatvec_q3_k;
        case GgmlType::Q4_K: return kMatvec_q4_k;
        case GgmlType::Q5_K: return kMatvec_q5_k;
        case GgmlType::Q6_K: return kMatvec_q6_k;
        case GgmlType::IQ4_NL: return kMatvec_iq4_nl;
        case GgmlType::IQ4_XS: return kMatvec_iq4_xs;
        case GgmlType::BF16: return kMatvec_bf16;
        case GgmlType::MLX_A2: return kMatvec_mlx_a2;
        case GgmlType::MLX_A3: return kMatvec_mlx_a3;
        case GgmlType::MLX_A6: return kMatvec_mlx_a6;
        case GgmlType::MLX_A8: return kMatvec_mlx_a8;
        default: return {};
    }
}
std::span<const uint32_t> matmul_spirv(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return kMatmul_f32;
        case GgmlType::F16: return kMatmul_f16;
        case GgmlType::Q8_0: return kMatmul_q8_0;
        case GgmlType::Q4_0: return kMatmul_q4_0;
        case GgmlType::Q4_1: return kMatmul_q4_1;
        case GgmlType::Q5_0: return kMatmul_q5_0;
        case GgmlType::Q5_1: return kMatmul_q5_1;
        case GgmlType::Q2_K: return kMatmul_q2_k;
        case GgmlType::Q3_K: return kMatmul_q3_k;
        case GgmlType::Q4_K: return kMatmul_q4_k;
        case GgmlType::Q5_K: return kMatmul_q5_k;
        case GgmlType::Q6_K: return kMatmul_q6_k;
        case GgmlType::IQ4_NL: return kMatmul_iq4_nl;
        case GgmlType::IQ4_XS: return kMatmul_iq4_xs;
        case GgmlType::BF16: return kMatmul_bf16;
        case GgmlType::MLX_A2: return kMatmul_mlx_a2;
        case GgmlType::MLX_A3: return kMatmul_mlx_a3;
        case GgmlType::MLX_A6: return kMatmul_mlx_a6;
        case GgmlType::MLX_A8: return kMatmul_mlx_a8;
        default: return {};
    }
}
std::span<const uint32_t> matmul_cm_spirv(GgmlType t) {
    switch (t) {
        case GgmlType::F16: return kMatmulCm_f16;
        case GgmlType::Q8_0: return kMatmulCm_q8_0;
        case GgmlType::Q4_0: return kMatmulCm_q4_0;
        case GgmlType::Q4_1: return kMatmulCm_q4_1;
        case GgmlType::Q5_0: return kMatmulCm_q5_0;
        case GgmlType::Q5_1: return kMatmulCm_q5_1;
        case GgmlType::Q2_K: return kMatmulCm_q2_k;
        case GgmlType::Q3_K: return kMatmulCm_q3_k;
        case GgmlType::Q4_K: return kMatmulCm_q4_k;
        case GgmlType::Q5_K: return kMatmulCm_q5_k;
        case GgmlType::Q6_K: return kMatmulCm_q6_k;
        case GgmlType::IQ4_NL: return kMatmulCm_iq4_nl;
        case GgmlType::IQ4_XS: return kMatmulCm_iq4_xs;
        case GgmlType::MLX_A2: return kMatmulCm_mlx_a2;
        case GgmlType::MLX_A3: return kMatmulCm_mlx_a3;
        case GgmlType::MLX_A6: return kMatmulCm_mlx_a6;
        case GgmlType::MLX_A8: return kMatmulCm_mlx_a8;
        default: return {};
    }
}
std::span<const uint32_t> rmsnorm_spirv() { return kRmsnorm; }
std::span<const uint32_t> rope_spirv() { return kRope; }
std::span<const uint32_t> attention_spirv() { return kAttention; }
std::span<const uint32_t> attn_combine_spirv() { return kAttnCombine; }
std::span<const uint32_t> kv_store_spirv() { return kKvStore; }
std::span<const uint32_t> swiglu_spirv() { return kSwiglu; }

}  // namespace qforge::gpu

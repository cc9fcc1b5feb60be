#include "gpu/shaders.hpp"

namespace qforge::gpu {

namespace {
// glslc -mfmt=c output: a braced list of SPIR-V words.
const uint32_t kMatvecF32[] =
#include "matvec_f32.inc"
    ;
const uint32_t kMatvecF16[] =
#include "matvec_f16.inc"
    ;
const uint32_t kMatvecQ8_0[] =
#include "matvec_q8_0.inc"
    ;
const uint32_t kMatvecQ4_0[] =
#include "matvec_q4_0.inc"
    ;
const uint32_t kRmsnorm[] =
#include "rmsnorm.inc"
    ;
const uint32_t kRope[] =
#include "rope.inc"
    ;
const uint32_t kAttention[] =
#include "attention.inc"
    ;
const uint32_t kSwiglu[] =
#include "swiglu.inc"
    ;
}  // namespace

std::span<const uint32_t> matvec_spirv(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return kMatvecF32;
        case GgmlType::F16: return kMatvecF16;
        case GgmlType::Q8_0: return kMatvecQ8_0;
        case GgmlType::Q4_0: return kMatvecQ4_0;
        default: return {};
    }
}
std::span<const uint32_t> rmsnorm_spirv() { return kRmsnorm; }
std::span<const uint32_t> rope_spirv() { return kRope; }
std::span<const uint32_t> attention_spirv() { return kAttention; }
std::span<const uint32_t> swiglu_spirv() { return kSwiglu; }

}  // namespace qforge::gpu

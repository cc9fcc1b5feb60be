#version 450
// Activations rounded to f16 once for the tensor-core products (matmul_cm.comp), four a thread:
// every workgroup of those products reads them as halves instead of reading f32 and rounding.
// glu: silu(x) * up first (SwiGLU, common.glsl's swiglu_of), for ffn_down's input.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n4, glu; } p;  // the number of groups of four
layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer H { uvec2 h2[]; };
layout(std430, binding = 2) readonly buffer U { vec4 u4[]; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64;
    if (i >= p.n4) return;
    vec4 v = x4[i];
    if (p.glu != 0) v = swiglu_of(v, u4[i]);
    h2[i] = uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));
}

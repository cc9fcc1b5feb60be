#version 450
// gate = silu(gate) * up
#include "common.glsl"
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n; } p;
layout(std430, binding = 0) buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer U { float u[]; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64;
    if (i >= p.n) return;
    g[i] = swiglu_of(g[i], u[i]);
}

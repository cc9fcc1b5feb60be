#version 450
// gate = silu(gate) * up
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n; } p;
layout(std430, binding = 0) buffer G { float g[]; };
layout(std430, binding = 1) readonly buffer U { float u[]; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64;
    if (i >= p.n) return;
    const float a = g[i];
    g[i] = a / (1.0 + exp(-a)) * u[i];
}

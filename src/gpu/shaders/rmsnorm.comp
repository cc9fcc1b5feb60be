#version 450
// y[b] = x[b] / sqrt(mean(x[b]^2) + eps) * w, one workgroup of 256 per token (wide, so that one
// token's norm is not a long chain of dependent loads).
#include "common.glsl"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { uint n; float eps; uint x_row0; } p;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
shared float partial[256];

void main() {
    const uint b = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    const uint xo = (p.x_row0 + b) * p.n, yo = b * p.n;
    float s = 0.0;
    for (uint i = t; i < p.n; i += 256) s += x[xo + i] * x[xo + i];
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float total = 0.0;
    for (uint k = 0; k < gl_NumSubgroups; ++k) total += partial[k];
    const float scale = 1.0 / sqrt(total / float(p.n) + p.eps);
    for (uint i = t; i < p.n; i += 256) y[yo + i] = x[xo + i] * scale * w[i];
}

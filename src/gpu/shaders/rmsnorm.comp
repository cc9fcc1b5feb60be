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
    // Four independent sums, so four loads are in flight at a time (one workgroup per token: its
    // time is the latency of its loads).
    vec4 s4 = vec4(0.0);
    uint i = t;
    for (; i + 768 < p.n; i += 1024) {
        const vec4 v = vec4(x[xo + i], x[xo + i + 256], x[xo + i + 512], x[xo + i + 768]);
        s4 += v * v;
    }
    for (; i < p.n; i += 256) s4.x += x[xo + i] * x[xo + i];
    float s = subgroupAdd(s4.x + s4.y + s4.z + s4.w);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float total = 0.0;
    for (uint k = 0; k < gl_NumSubgroups; ++k) total += partial[k];
    const float scale = 1.0 / sqrt(total / float(p.n) + p.eps);
    for (uint i = t; i < p.n; i += 256) y[yo + i] = x[xo + i] * scale * w[i];
}

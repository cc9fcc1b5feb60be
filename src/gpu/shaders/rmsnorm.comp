#version 450
// y[b] = x[b] / sqrt(mean(x[b]^2) + eps) * w, one workgroup of 256 per token. A token's norm is a
// chain of dependent steps (load, reduce, scale), so each thread loads all its elements at once
// and keeps them in registers for the second pass (up to 16 each: rows of 4096; longer rows
// read the rest again).
#include "common.glsl"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push { uint n; float eps; uint x_row0; } p;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
shared float partial[256];

const uint PER = 16;

void main() {
    const uint b = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    const uint xo = (p.x_row0 + b) * p.n, yo = b * p.n;
    float v[PER];
    [[unroll]] for (uint k = 0; k < PER; ++k) {
        const uint i = t + 256 * k;
        v[k] = i < p.n ? x[xo + i] : 0.0;
    }
    vec4 s4 = vec4(0.0);
    [[unroll]] for (uint k = 0; k < PER; k += 4) s4 += vec4(v[k], v[k + 1], v[k + 2], v[k + 3]) * vec4(v[k], v[k + 1], v[k + 2], v[k + 3]);
    float s = dot(s4, vec4(1.0));
    for (uint i = t + 256 * PER; i < p.n; i += 256) s += x[xo + i] * x[xo + i];
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float total = 0.0;
    for (uint k = 0; k < gl_NumSubgroups; ++k) total += partial[k];
    const float scale = 1.0 / sqrt(total / float(p.n) + p.eps);
    [[unroll]] for (uint k = 0; k < PER; ++k) {
        const uint i = t + 256 * k;
        if (i < p.n) y[yo + i] = v[k] * scale * w[i];
    }
    for (uint i = t + 256 * PER; i < p.n; i += 256) y[yo + i] = x[xo + i] * scale * w[i];
}

#version 450
// RMSNorm when the product that made x left x's sum of squares in parts (matvec_dot.comp's
// SUMSQ: one part per workgroup of rows): y[b] = x[b] / sqrt(sum(parts[b]) / n + eps) * w. The
// sum needs no pass over x, so the row is spread over many workgroups (one of 64 threads per 256
// elements) instead of one a token: workgroup (i, b) sums token b's parts in a fixed order (the
// same total in every workgroup) and scales elements 256 i .. 256 i + 255 of row x_row0 + b.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n; float eps; uint x_row0; uint n_parts; } p;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Parts { float parts[]; };  // [token][part]
shared float partial[64];

void main() {
    const uint t = gl_LocalInvocationID.x, b = gl_WorkGroupID.y, row = p.x_row0 + b;
    const uint i0 = 256 * gl_WorkGroupID.x + t;
    // The row's four elements first (their loads out while the parts are summed).
    float v[4];
    [[unroll]] for (uint k = 0; k < 4; ++k) v[k] = i0 + 64 * k < p.n ? x[row * p.n + i0 + 64 * k] : 0.0;
    const uint po = row * p.n_parts;
    float s = 0.0;
    for (uint k = 4 * t; k < p.n_parts; k += 256) {
        float q[4];
        [[unroll]] for (uint j = 0; j < 4; ++j) q[j] = k + j < p.n_parts ? parts[po + k + j] : 0.0;
        s += (q[0] + q[1]) + (q[2] + q[3]);
    }
    s = subgroupAdd(s);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();
    float total = 0.0;
    for (uint k = 0; k < gl_NumSubgroups; ++k) total += partial[k];
    const float scale = 1.0 / sqrt(total / float(p.n) + p.eps);
    [[unroll]] for (uint k = 0; k < 4; ++k) {
        const uint i = i0 + 64 * k;
        if (i < p.n) y[b * p.n + i] = v[k] * scale * w[i];
    }
}

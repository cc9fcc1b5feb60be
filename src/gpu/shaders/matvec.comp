#version 450
// y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b] for one weight format (WTYPE, the
// stored ggml/qforge block layout, byte for byte): one workgroup per row and 8 tokens; its 64
// threads take 8-element parts of the row in turn (four to a 32-element unit: a block, or a
// sub-block of a 256-element super-block) and add their partial sums in shared memory.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

// Tokens per workgroup: each part's weights are decoded once for NT tokens (prompts).
const uint NT = 8;
shared float partial[NT][64];  // [token][subgroup]

void main() {
    const uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;  // rows beyond 65535 use z
    const uint b0 = gl_WorkGroupID.y * NT;
    const uint nt = min(NT, p.B - b0);
    const uint t = gl_LocalInvocationID.x;
    float acc[NT];
    for (uint i = 0; i < NT; ++i) acc[i] = 0.0;
    if (r < p.rows) {
#ifdef FAST_UNITS
        for (uint u = t; u < p.cols / UE; u += 64) {
            float c[UE];
            unit_weights(r, u, c);
            for (uint i = 0; i < NT; ++i) {
                if (i >= nt) break;
                const uint xr = (b0 + i) * p.cols;
                float s = 0.0;
                for (uint ch = 0; ch < UE / 16; ++ch) {
                    const uint xo = (xr + unit_x(u, ch)) / 4;
                    for (uint v = 0; v < 4; ++v)
                        s += dot(vec4(c[16 * ch + 4 * v], c[16 * ch + 4 * v + 1], c[16 * ch + 4 * v + 2], c[16 * ch + 4 * v + 3]), x4[xo + v]);
                }
                acc[i] += s;
            }
        }
#else
        for (uint q = t; q < p.cols / 8; q += 64) {
            float c[8], d, m;
            part_codes(r, q / 4, q % 4, c, d, m);
            const vec4 ca = vec4(c[0], c[1], c[2], c[3]), cb = vec4(c[4], c[5], c[6], c[7]);
            for (uint i = 0; i < NT; ++i) {
                if (i >= nt) break;
                const uint xb = ((b0 + i) * p.cols + q * 8) / 4;
                const vec4 xa = x4[xb], xc = x4[xb + 1];
                acc[i] += d * (dot(ca, xa) + dot(cb, xc)) + m * dot(xa + xc, vec4(1.0));
            }
        }
#endif
    }
    // Sums within each subgroup, then across the workgroup's subgroups.
    for (uint i = 0; i < NT; ++i) {
        if (i >= nt) break;
        const float v = subgroupAdd(acc[i]);
        if (subgroupElect()) partial[i][gl_SubgroupID] = v;
    }
    barrier();
    if (t < nt && r < p.rows) {
        float v = 0.0;
        for (uint k = 0; k < gl_NumSubgroups; ++k) v += partial[t][k];
        if (p.has_bias != 0) v += bias[r];
        const uint yo = (b0 + t) * p.rows + r;
        y[yo] = p.accumulate != 0 ? y[yo] + v : v;
    }
}

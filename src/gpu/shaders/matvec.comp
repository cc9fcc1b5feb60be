#version 450
// y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b] for one weight format (WTYPE,
// weights.glsl) and up to 8 tokens (generation; prompts go through matmul.comp): a workgroup of
// 128 threads takes 8 rows, 16 threads a row, which take the row's units in turn (a whole block
// with 16-byte loads where weights.glsl has FAST_UNITS, else 8-element parts) and add their
// partial sums in shared memory. Many rows a workgroup: a row of a 4-bit matrix is only a few KB.
#include "common.glsl"

layout(local_size_x = 128) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

// Tokens per workgroup: each unit's weights are decoded once for NT tokens.
const uint NT = 8, R = 8, TPR = 16;  // R rows of TPR threads
shared float partial[NT][R * TPR];

void main() {
    const uint t = gl_LocalInvocationID.x, lane = t % TPR;
    const uint r0 = (gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x) * R;  // row groups beyond 65535 use z
    const uint r = r0 + t / TPR;
    const uint b0 = gl_WorkGroupID.y * NT;
    const uint nt = min(NT, p.B - b0);
    float acc[NT];
    for (uint i = 0; i < NT; ++i) acc[i] = 0.0;
    if (r < p.rows) {
#ifdef FAST_UNITS
        for (uint u = lane; u < p.cols / UE; u += TPR) {
            float c[UE];
            unit_weights(r, u, c);
            for (uint i = 0; i < NT; ++i) {
                if (i >= nt) break;
                const uint xr = (b0 + i) * p.cols;
                float s = 0.0;
                [[unroll]] for (uint ch = 0; ch < UE / 16; ++ch) {
                    const uint xo = (xr + unit_x(u, ch)) / 4;
                    [[unroll]] for (uint v = 0; v < 4; ++v)
                        s += dot(vec4(c[16 * ch + 4 * v], c[16 * ch + 4 * v + 1], c[16 * ch + 4 * v + 2], c[16 * ch + 4 * v + 3]), x4[xo + v]);
                }
                acc[i] += s;
            }
        }
#else
        for (uint q = lane; q < p.cols / 8; q += TPR) {
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
    for (uint i = 0; i < NT; ++i) {
        if (i >= nt) break;
        partial[i][t] = acc[i];
    }
    barrier();
    for (uint k = t; k < R * nt; k += R * TPR) {  // one (row, token) sum per thread
        const uint rr = k / nt, i = k % nt, row = r0 + rr;
        if (row >= p.rows) continue;
        float v = 0.0;
        for (uint l = 0; l < TPR; ++l) v += partial[i][rr * TPR + l];
        if (p.has_bias != 0) v += bias[row];
        const uint yo = (b0 + i) * p.rows + row;
        y[yo] = p.accumulate != 0 ? y[yo] + v : v;
    }
}

#version 450
// y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b] for one weight format (WTYPE,
// weights.glsl), one token per workgroup row of the grid (generation; batches go through
// matmul.comp): a workgroup of 64 threads takes R rows; each thread loads a unit of the
// activations once (a whole block where weights.glsl has FAST_UNITS, with 16-byte weight loads;
// else an 8-element part) and meets it with the R rows' weights, so the activations are read
// once per R rows; subgroup sums, then shared memory, add the threads' partial sums.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

layout(constant_id = 0) const uint R = 4;  // rows per workgroup
shared float partial[R][64];  // [row][subgroup]

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint r0 = (gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x) * R;  // row groups beyond 65535 use z
    const uint xr = gl_WorkGroupID.y * p.cols;  // this token's activations
    float acc[R];
    for (uint rr = 0; rr < R; ++rr) acc[rr] = 0.0;
#ifdef FAST_UNITS
    for (uint u = t; u < p.cols / UE; u += 64) {
        vec4 xv[UE / 4];
        [[unroll]] for (uint ch = 0; ch < UE / 16; ++ch) {
            const uint xo = (xr + unit_x(u, ch)) / 4;
            [[unroll]] for (uint v = 0; v < 4; ++v) xv[4 * ch + v] = x4[xo + v];
        }
        [[unroll]] for (uint rr = 0; rr < R; ++rr) {
            // Rows past the matrix read its last row (their sums are never written), so that no
            // branch keeps the rows' loads from all going out at once.
            float c[UE];
            unit_weights(min(r0 + rr, p.rows - 1), u, c);
            float s = 0.0;
            [[unroll]] for (uint v = 0; v < UE / 4; ++v) s += dot(vec4(c[4 * v], c[4 * v + 1], c[4 * v + 2], c[4 * v + 3]), xv[v]);
            acc[rr] += s;
        }
    }
#else
    for (uint q = t; q < p.cols / 8; q += 64) {
        const uint xb = (xr + q * 8) / 4;
        const vec4 xa = x4[xb], xc = x4[xb + 1];
        const float xs = dot(xa + xc, vec4(1.0));
        [[unroll]] for (uint rr = 0; rr < R; ++rr) {
            if (r0 + rr >= p.rows) break;
            float c[8], d, m;
            part_codes(r0 + rr, q / 4, q % 4, c, d, m);
            acc[rr] += d * (dot(vec4(c[0], c[1], c[2], c[3]), xa) + dot(vec4(c[4], c[5], c[6], c[7]), xc)) + m * xs;
        }
    }
#endif
    // Sums within each subgroup, then across the workgroup's subgroups.
    for (uint rr = 0; rr < R; ++rr) {
        const float v = subgroupAdd(acc[rr]);
        if (subgroupElect()) partial[rr][gl_SubgroupID] = v;
    }
    barrier();
    const uint r = r0 + t;
    if (t < R && r < p.rows) {
        float v = 0.0;
        for (uint k = 0; k < gl_NumSubgroups; ++k) v += partial[t][k];
        if (p.has_bias != 0) v += bias[r];
        const uint yo = gl_WorkGroupID.y * p.rows + r;
        y[yo] = p.accumulate != 0 ? y[yo] + v : v;
    }
}

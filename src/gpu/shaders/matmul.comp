#version 450
// Prompts: Y[b][r] = (accumulate ? Y[b][r] : 0) + bias[r] + W[r] . X[b] as a tiled matrix product.
// A workgroup of 256 threads owns 128 rows x 64 tokens; per 32-column step it decodes the weight
// tile (two 8-element parts per thread, weights.glsl) and loads the activation tile into shared
// memory, then every thread accumulates an 8-row x 4-token block of outputs from them.
#include "common.glsl"

layout(local_size_x = 256) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

const uint BM = 128, BN = 64, BK = 32;
shared vec4 ws[BK][BM / 4];  // [k][row / 4]: four rows' weights per vec4
shared vec4 xs[BK][BN / 4];  // [k][token / 4]

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint r0 = gl_WorkGroupID.x * BM, b0 = gl_WorkGroupID.y * BN;
    const uint tr = t / 16, tb = t % 16;  // this thread's rows 4 tr .. +3 and 64 + 4 tr .. +3, tokens 4 tb .. +3
    // Loader roles: weight rows lr and lr + 64, part lp of the 32-column step; activation token lb,
    // 8 columns from lc.
    const uint lr = t / 4, lp = t % 4;
    const uint lb = t / 4, lc = 8 * (t % 4);
    vec4 acc[2][4];  // [row half][token j] x four rows
    for (uint h = 0; h < 2; ++h)
        for (uint j = 0; j < 4; ++j) acc[h][j] = vec4(0.0);
    for (uint k0 = 0; k0 < p.cols; k0 += BK) {
        float c[2][8], d[2], m[2];
        for (uint h = 0; h < 2; ++h) {
            d[h] = 0.0;
            m[h] = 0.0;
            for (uint i = 0; i < 8; ++i) c[h][i] = 0.0;
            if (r0 + lr + 64 * h < p.rows) part_codes(r0 + lr + 64 * h, k0 / 32, lp, c[h], d[h], m[h]);
        }
        vec4 xa = vec4(0.0), xb = vec4(0.0);
        if (b0 + lb < p.B) {
            const uint xo = ((b0 + lb) * p.cols + k0 + lc) / 4;
            xa = x4[xo];
            xb = x4[xo + 1];
        }
        barrier();  // the previous step's tiles are read
        for (uint h = 0; h < 2; ++h)
            for (uint i = 0; i < 8; ++i) ws[8 * lp + i][(lr + 64 * h) / 4][lr % 4] = d[h] * c[h][i] + m[h];
        const float xv[8] = float[8](xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
        for (uint i = 0; i < 8; ++i) xs[lc + i][lb / 4][lb % 4] = xv[i];
        barrier();
        [[unroll]] for (uint k = 0; k < BK; ++k) {
            const vec4 a0 = ws[k][tr], a1 = ws[k][16 + tr], b = xs[k][tb];
            acc[0][0] += a0 * b.x;
            acc[0][1] += a0 * b.y;
            acc[0][2] += a0 * b.z;
            acc[0][3] += a0 * b.w;
            acc[1][0] += a1 * b.x;
            acc[1][1] += a1 * b.y;
            acc[1][2] += a1 * b.z;
            acc[1][3] += a1 * b.w;
        }
    }
    for (uint j = 0; j < 4; ++j) {
        const uint b = b0 + 4 * tb + j;
        if (b >= p.B) break;
        for (uint h = 0; h < 2; ++h)
            for (uint i = 0; i < 4; ++i) {
                const uint r = r0 + 64 * h + 4 * tr + i;
                if (r >= p.rows) break;
                float v = acc[h][j][i];
                if (p.has_bias != 0) v += bias[r];
                const uint yo = b * p.rows + r;
                y[yo] = p.accumulate != 0 ? y[yo] + v : v;
            }
    }
}

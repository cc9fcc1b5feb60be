#version 450
// y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b] for one weight format (WTYPE):
// one workgroup per (row, token); its 64 threads take 32-element blocks of the row in turn and
// add their partial sums in shared memory.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias;
} p;
#if WTYPE == 0
layout(std430, binding = 0) readonly buffer W { float w[]; };
#elif WTYPE == 1
layout(std430, binding = 0) readonly buffer W { uint16_t w[]; };
#else
layout(std430, binding = 0) readonly buffer W { uint8_t w[]; };
#endif
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

shared float partial[64];

// The dot product of block ib (32 elements) of row r with the activations at xo.
float block_dot(uint r, uint ib, uint xo) {
    float s = 0.0;
#if WTYPE == 0
    const uint o = r * p.cols + ib * 32;
    for (uint j = 0; j < 32; ++j) s += w[o + j] * x[xo + j];
#elif WTYPE == 1
    const uint o = r * p.cols + ib * 32;
    for (uint j = 0; j < 32; j += 2) {
        const vec2 v = unpackHalf2x16(uint(w[o + j]) | (uint(w[o + j + 1]) << 16));
        s += v.x * x[xo + j] + v.y * x[xo + j + 1];
    }
#elif WTYPE == 2  // Q8_0: f16 scale, 32 int8 codes (34 bytes)
    const uint o = (r * (p.cols / 32) + ib) * 34;
    const float d = half_at(uint(w[o]), uint(w[o + 1]));
    for (uint j = 0; j < 32; ++j) s += float(int8_t(w[o + 2 + j])) * x[xo + j];
    s *= d;
#elif WTYPE == 3  // Q4_0: f16 scale, 16 bytes of nibbles: j in the low, j + 16 in the high (18 bytes)
    const uint o = (r * (p.cols / 32) + ib) * 18;
    const float d = half_at(uint(w[o]), uint(w[o + 1]));
    for (uint j = 0; j < 16; ++j) {
        const uint q = uint(w[o + 2 + j]);
        s += float(int(q & 15u) - 8) * x[xo + j] + float(int(q >> 4) - 8) * x[xo + j + 16];
    }
    s *= d;
#endif
    return s;
}

void main() {
    const uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;  // rows beyond 65535 use z
    const uint b = gl_WorkGroupID.y;
    const uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    if (r < p.rows)
        for (uint ib = t; ib < p.cols / 32; ib += 64) s += block_dot(r, ib, b * p.cols + ib * 32);
    partial[t] = s;
    barrier();
    for (uint k = 32; k > 0; k >>= 1) {
        if (t < k) partial[t] += partial[t + k];
        barrier();
    }
    if (t == 0 && r < p.rows) {
        float v = partial[0];
        if (p.has_bias != 0) v += bias[r];
        const uint yo = b * p.rows + r;
        y[yo] = p.accumulate != 0 ? y[yo] + v : v;
    }
}

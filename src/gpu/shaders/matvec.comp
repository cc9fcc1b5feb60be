#version 450
// y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b] for one weight format (WTYPE, the
// stored ggml/qforge block layout, byte for byte): one workgroup per (row, token); its 64 threads
// take 32-element units of the row in turn (a block, or a sub-block of a 256-element super-block)
// and add their partial sums in shared memory.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias;
} p;
#if WTYPE == 0
layout(std430, binding = 0) readonly buffer W { float w[]; };
#elif WTYPE == 1 || WTYPE == 14
layout(std430, binding = 0) readonly buffer W { uint16_t w[]; };
#else
layout(std430, binding = 0) readonly buffer W { uint8_t w[]; };
uint u8(uint o) { return uint(w[o]); }
int i8(uint o) { return int(int8_t(w[o])); }
float f16(uint o) { return half_at(uint(w[o]), uint(w[o + 1])); }
#endif
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

const int kIq4nl[16] = int[16](-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);

// Bytes per block and elements per block.
#if WTYPE == 2
const uint BB = 34, BE = 32;
#elif WTYPE == 3 || WTYPE == 12
const uint BB = 18, BE = 32;
#elif WTYPE == 4
const uint BB = 20, BE = 32;
#elif WTYPE == 5
const uint BB = 22, BE = 32;
#elif WTYPE == 6
const uint BB = 24, BE = 32;
#elif WTYPE == 7
const uint BB = 84, BE = 256;
#elif WTYPE == 8
const uint BB = 110, BE = 256;
#elif WTYPE == 9
const uint BB = 144, BE = 256;
#elif WTYPE == 10
const uint BB = 176, BE = 256;
#elif WTYPE == 11
const uint BB = 210, BE = 256;
#elif WTYPE == 13
const uint BB = 136, BE = 256;
#elif WTYPE == 15
const uint BB = 12, BE = 32;
#elif WTYPE == 16
const uint BB = 16, BE = 32;
#elif WTYPE == 17
const uint BB = 28, BE = 32;
#elif WTYPE == 18
const uint BB = 36, BE = 32;
#endif

#if WTYPE == 9 || WTYPE == 10
// The 6-bit scale and minimum of sub-block j of a Q4_K/Q5_K super-block (scales at o).
void k4_scale_min(uint o, uint j, out float sc, out float mn) {
    if (j < 4) {
        sc = float(u8(o + j) & 63u);
        mn = float(u8(o + j + 4) & 63u);
    } else {
        sc = float((u8(o + j + 4) & 15u) | ((u8(o + j - 4) >> 6) << 4));
        mn = float((u8(o + j + 4) >> 4) | ((u8(o + j) >> 6) << 4));
    }
}
#endif

// The dot product of 32-element unit u of row r with the activations at xo.
float unit_dot(uint r, uint u, uint xo) {
    float s = 0.0;
#if WTYPE == 0
    const uint o = r * p.cols + u * 32;
    for (uint j = 0; j < 32; ++j) s += w[o + j] * x[xo + j];
#elif WTYPE == 1
    const uint o = r * p.cols + u * 32;
    for (uint j = 0; j < 32; j += 2) {
        const vec2 v = unpackHalf2x16(uint(w[o + j]) | (uint(w[o + j + 1]) << 16));
        s += v.x * x[xo + j] + v.y * x[xo + j + 1];
    }
#elif WTYPE == 14  // BF16
    const uint o = r * p.cols + u * 32;
    for (uint j = 0; j < 32; ++j) s += uintBitsToFloat(uint(w[o + j]) << 16) * x[xo + j];
#else
    const uint units = BE / 32;
    const uint o = (r * (p.cols / BE) + u / units) * BB;  // the block holding unit u
    const uint k = u % units;                              // the unit within it
#if WTYPE == 2  // Q8_0
    for (uint j = 0; j < 32; ++j) s += float(i8(o + 2 + j)) * x[xo + j];
    s *= f16(o);
#elif WTYPE == 3 || WTYPE == 12  // Q4_0, IQ4_NL: j in the low nibble, j + 16 in the high
    for (uint j = 0; j < 16; ++j) {
        const uint q = u8(o + 2 + j);
#if WTYPE == 3
        s += float(int(q & 15u) - 8) * x[xo + j] + float(int(q >> 4) - 8) * x[xo + j + 16];
#else
        s += float(kIq4nl[q & 15u]) * x[xo + j] + float(kIq4nl[q >> 4]) * x[xo + j + 16];
#endif
    }
    s *= f16(o);
#elif WTYPE == 4 || WTYPE == 6  // Q4_1, Q5_1: d * q + m
    float sx = 0.0;
    const uint qo = WTYPE == 4 ? o + 4 : o + 8;
    uint qh = 0;
    if (WTYPE == 6) qh = u8(o + 4) | (u8(o + 5) << 8) | (u8(o + 6) << 16) | (u8(o + 7) << 24);
    for (uint j = 0; j < 16; ++j) {
        const uint q = u8(qo + j);
        const float lo = float((q & 15u) | (((qh >> j) & 1u) << 4)), hi = float((q >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        s += lo * x[xo + j] + hi * x[xo + j + 16];
        sx += x[xo + j] + x[xo + j + 16];
    }
    s = f16(o) * s + f16(o + 2) * sx;
#elif WTYPE == 5  // Q5_0
    const uint qh = u8(o + 2) | (u8(o + 3) << 8) | (u8(o + 4) << 16) | (u8(o + 5) << 24);
    for (uint j = 0; j < 16; ++j) {
        const uint q = u8(o + 6 + j);
        const int lo = int((q & 15u) | (((qh >> j) & 1u) << 4)) - 16, hi = int((q >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
        s += float(lo) * x[xo + j] + float(hi) * x[xo + j + 16];
    }
    s *= f16(o);
#elif WTYPE == 7  // Q2_K: scales[16], qs[64], d, dmin; unit k = 4 * half + j
    const uint half_ = k / 4, jj = k % 4;
    const float d = f16(o + 80), dmin = f16(o + 82);
    for (uint l = 0; l < 32; ++l) {
        const uint g = u8(o + 8 * half_ + 2 * jj + l / 16);
        const float q = float((u8(o + 16 + 32 * half_ + l) >> (2 * jj)) & 3u);
        s += (d * float(g & 15u) * q - dmin * float(g >> 4)) * x[xo + l];
    }
#elif WTYPE == 8  // Q3_K: hmask[32], qs[64], scales[12], d
    const uint half_ = k / 4, jj = k % 4;
    const float d = f16(o + 108);
    for (uint l = 0; l < 32; ++l) {
        const uint g = 8 * half_ + 2 * jj + l / 16;
        const uint lo = g < 8 ? (u8(o + 96 + g) & 15u) : (u8(o + 96 + g - 8) >> 4);
        const int sc = int(lo | (((u8(o + 96 + 8 + g % 4) >> (2 * (g / 4))) & 3u) << 4)) - 32;
        const int q = int((u8(o + 32 + 32 * half_ + l) >> (2 * jj)) & 3u) + 4 * int((u8(o + l) >> (4 * half_ + jj)) & 1u) - 4;
        s += d * float(sc * q) * x[xo + l];
    }
#elif WTYPE == 9 || WTYPE == 10  // Q4_K, Q5_K: d, dmin, scales[12], (qh[32],) qs[128]
    float sc, mn;
    k4_scale_min(o + 4, k, sc, mn);
    const float d = f16(o) * sc, m = f16(o + 2) * mn;
    const uint qo = (WTYPE == 9 ? o + 16 : o + 48) + 32 * (k / 2);
    float sx = 0.0;
    for (uint l = 0; l < 32; ++l) {
        uint q = (u8(qo + l) >> (4 * (k % 2))) & 15u;
#if WTYPE == 10
        q |= ((u8(o + 16 + l) >> k) & 1u) << 4;
#endif
        s += float(q) * x[xo + l];
        sx += x[xo + l];
    }
    s = d * s - m * sx;
#elif WTYPE == 11  // Q6_K: ql[128], qh[64], scales[16], d; unit k = 4 * half + kk
    const uint half_ = k / 4, kk = k % 4;
    const float d = f16(o + 208);
    for (uint l = 0; l < 32; ++l) {
        const uint lo = (u8(o + 64 * half_ + l + 32 * (kk & 1u)) >> (4 * (kk >> 1))) & 15u;
        const uint hi = (u8(o + 128 + 32 * half_ + l) >> (2 * kk)) & 3u;
        const int sc = i8(o + 192 + 8 * half_ + l / 16 + 2 * kk);
        s += d * float(sc * (int(lo | (hi << 4)) - 32)) * x[xo + l];
    }
#elif WTYPE == 13  // IQ4_XS: d, scales_h (u16), scales_l[4], qs[128]
    const uint sh = u8(o + 2) | (u8(o + 3) << 8);
    const int ls = int(((u8(o + 4 + k / 2) >> (4 * (k % 2))) & 15u) | (((sh >> (2 * k)) & 3u) << 4)) - 32;
    for (uint j = 0; j < 16; ++j) {
        const uint q = u8(o + 8 + 16 * k + j);
        s += float(kIq4nl[q & 15u]) * x[xo + j] + float(kIq4nl[q >> 4]) * x[xo + j + 16];
    }
    s *= f16(o) * float(ls);
#elif WTYPE >= 15  // MLX affine blocks of 32 (quant/affine_blocks.hpp): d * q + m
    float sx = 0.0;
    for (uint j = 0; j < 32; ++j) {
#if WTYPE == 15
        const uint q = (u8(o + 4 + j % 8) >> (2 * (j / 8))) & 3u;
#elif WTYPE == 16
        const uint q = ((u8(o + 4 + j % 8) >> (2 * (j / 8))) & 3u) | (((u8(o + 12 + j / 8) >> (j % 8)) & 1u) << 2);
#elif WTYPE == 17
        const uint q = ((u8(o + 4 + j % 16) >> (4 * (j / 16))) & 15u) | (((u8(o + 20 + j % 8) >> (2 * (j / 8))) & 3u) << 4);
#else
        const uint q = u8(o + 4 + j);
#endif
        s += float(q) * x[xo + j];
        sx += x[xo + j];
    }
    s = f16(o) * s + f16(o + 2) * sx;
#endif
#endif
    return s;
}

shared float partial[64];

void main() {
    const uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;  // rows beyond 65535 use z
    const uint b = gl_WorkGroupID.y;
    const uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    if (r < p.rows)
        for (uint u = t; u < p.cols / 32; u += 64) s += unit_dot(r, u, b * p.cols + u * 32);
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

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
#if WTYPE == 0
layout(std430, binding = 0) readonly buffer W { vec4 w[]; };
#elif WTYPE == 1 || WTYPE == 14
layout(std430, binding = 0) readonly buffer W { uvec4 w[]; };  // eight halves per load
#else
layout(std430, binding = 0) readonly buffer W { uint8_t w[]; };
uint u8(uint o) { return uint(w[o]); }
int i8(uint o) { return int(int8_t(w[o])); }
float f16(uint o) { return half_at(uint(w[o]), uint(w[o + 1])); }
#endif
layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
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

// The weights of elements 8 part .. 8 part + 7 of the 32-element unit u of row r as
// w[i] = d * c[i] + m. Neighbouring threads take neighbouring parts, so a warp's weight and
// activation reads are contiguous.
void part_codes(uint r, uint u, uint part, out float c[8], out float d, out float m) {
    const uint e0 = 8 * part;
    d = 1.0;
    m = 0.0;
#if WTYPE == 0
    const uint o = (r * p.cols + u * 32 + e0) / 4;
    const vec4 a = w[o], b = w[o + 1];
    c = float[8](a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
#elif WTYPE == 1
    const uvec4 v = w[(r * p.cols + u * 32 + e0) / 8];
    for (uint i = 0; i < 4; ++i) {
        const vec2 h = unpackHalf2x16(v[i]);
        c[2 * i] = h.x;
        c[2 * i + 1] = h.y;
    }
#elif WTYPE == 14  // BF16
    const uvec4 v = w[(r * p.cols + u * 32 + e0) / 8];
    for (uint i = 0; i < 4; ++i) {
        c[2 * i] = uintBitsToFloat(v[i] << 16);
        c[2 * i + 1] = uintBitsToFloat(v[i] & 0xFFFF0000u);
    }
#else
    const uint units = BE / 32;
    const uint o = (r * (p.cols / BE) + u / units) * BB;  // the block holding unit u
    const uint k = u % units;                              // the unit within it
#if WTYPE == 2  // Q8_0
    for (uint i = 0; i < 8; ++i) c[i] = float(i8(o + 2 + e0 + i));
    d = f16(o);
#elif WTYPE == 3 || WTYPE == 12  // Q4_0, IQ4_NL: element e < 16 in the low nibble of byte e, e + 16 in the high
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i, q = (u8(o + 2 + e % 16) >> (4 * (e / 16))) & 15u;
#if WTYPE == 3
        c[i] = float(int(q) - 8);
#else
        c[i] = float(kIq4nl[q]);
#endif
    }
    d = f16(o);
#elif WTYPE == 4 || WTYPE == 6  // Q4_1, Q5_1
    const uint qo = WTYPE == 4 ? o + 4 : o + 8;
    uint qh = 0;
    if (WTYPE == 6) qh = u8(o + 4) | (u8(o + 5) << 8) | (u8(o + 6) << 16) | (u8(o + 7) << 24);
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        c[i] = float(((u8(qo + e % 16) >> (4 * (e / 16))) & 15u) | (((qh >> e) & 1u) << 4));
    }
    d = f16(o);
    m = f16(o + 2);
#elif WTYPE == 5  // Q5_0
    const uint qh = u8(o + 2) | (u8(o + 3) << 8) | (u8(o + 4) << 16) | (u8(o + 5) << 24);
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        c[i] = float(int(((u8(o + 6 + e % 16) >> (4 * (e / 16))) & 15u) | (((qh >> e) & 1u) << 4)) - 16);
    }
    d = f16(o);
#elif WTYPE == 7  // Q2_K: scales[16], qs[64], d, dmin; unit k = 4 * half + j; one 16-group per part
    const uint half_ = k / 4, jj = k % 4;
    const uint g = u8(o + 8 * half_ + 2 * jj + e0 / 16);
    for (uint i = 0; i < 8; ++i) c[i] = float((u8(o + 16 + 32 * half_ + e0 + i) >> (2 * jj)) & 3u);
    d = f16(o + 80) * float(g & 15u);
    m = -f16(o + 82) * float(g >> 4);
#elif WTYPE == 8  // Q3_K: hmask[32], qs[64], scales[12], d
    const uint half_ = k / 4, jj = k % 4;
    const uint g = 8 * half_ + 2 * jj + e0 / 16;
    const uint lo = g < 8 ? (u8(o + 96 + g) & 15u) : (u8(o + 96 + g - 8) >> 4);
    const int sc = int(lo | (((u8(o + 96 + 8 + g % 4) >> (2 * (g / 4))) & 3u) << 4)) - 32;
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        c[i] = float(int((u8(o + 32 + 32 * half_ + e) >> (2 * jj)) & 3u) + 4 * int((u8(o + e) >> (4 * half_ + jj)) & 1u) - 4);
    }
    d = f16(o + 108) * float(sc);
#elif WTYPE == 9 || WTYPE == 10  // Q4_K, Q5_K: d, dmin, scales[12], (qh[32],) qs[128]
    float sc, mn;
    k4_scale_min(o + 4, k, sc, mn);
    const uint qo = (WTYPE == 9 ? o + 16 : o + 48) + 32 * (k / 2);
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        uint q = (u8(qo + e) >> (4 * (k % 2))) & 15u;
#if WTYPE == 10
        q |= ((u8(o + 16 + e) >> k) & 1u) << 4;
#endif
        c[i] = float(q);
    }
    d = f16(o) * sc;
    m = -f16(o + 2) * mn;
#elif WTYPE == 11  // Q6_K: ql[128], qh[64], scales[16], d; unit k = 4 * half + kk
    const uint half_ = k / 4, kk = k % 4;
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        const uint lo = (u8(o + 64 * half_ + e + 32 * (kk & 1u)) >> (4 * (kk >> 1))) & 15u;
        const uint hi = (u8(o + 128 + 32 * half_ + e) >> (2 * kk)) & 3u;
        c[i] = float(int(lo | (hi << 4)) - 32);
    }
    d = f16(o + 208) * float(i8(o + 192 + 8 * half_ + e0 / 16 + 2 * kk));
#elif WTYPE == 13  // IQ4_XS: d, scales_h (u16), scales_l[4], qs[128]
    const uint sh = u8(o + 2) | (u8(o + 3) << 8);
    const int ls = int(((u8(o + 4 + k / 2) >> (4 * (k % 2))) & 15u) | (((sh >> (2 * k)) & 3u) << 4)) - 32;
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        c[i] = float(kIq4nl[(u8(o + 8 + 16 * k + e % 16) >> (4 * (e / 16))) & 15u]);
    }
    d = f16(o) * float(ls);
#elif WTYPE >= 15  // MLX affine blocks of 32 (quant/affine_blocks.hpp)
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
#if WTYPE == 15
        const uint q = (u8(o + 4 + e % 8) >> (2 * (e / 8))) & 3u;
#elif WTYPE == 16
        const uint q = ((u8(o + 4 + e % 8) >> (2 * (e / 8))) & 3u) | (((u8(o + 12 + e / 8) >> (e % 8)) & 1u) << 2);
#elif WTYPE == 17
        const uint q = ((u8(o + 4 + e % 16) >> (4 * (e / 16))) & 15u) | (((u8(o + 20 + e % 8) >> (2 * (e / 8))) & 3u) << 4);
#else
        const uint q = u8(o + 4 + e);
#endif
        c[i] = float(q);
    }
    d = f16(o);
    m = f16(o + 2);
#endif
#endif
}

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

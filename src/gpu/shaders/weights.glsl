// The weight formats as stored (WTYPE: ggml's block layouts byte for byte, and qforge's MLX
// blocks), decoded eight elements at a time; shared by matvec.comp and matmul.comp, which declare
// the push constants `p` (with p.rows, p.cols) before including this.
//
// Q8_0, Q4_0, IQ4_NL and Q6_K go up split (gpu_forward.cpp, device_layout): every block's codes
// first (32, 16, 16 and 192 bytes a block, so 16-byte aligned), then the scales (Q6_K: its 16 int8
// scales a block), then the f16 d of every block; the other formats as stored.
#if WTYPE == 0
layout(std430, binding = 0) readonly buffer W { vec4 w[]; };
#elif WTYPE == 1 || WTYPE == 14
layout(std430, binding = 0) readonly buffer W { uvec4 w[]; };  // eight halves per load
#else
layout(std430, binding = 0) readonly buffer W { uint8_t w[]; };
layout(std430, binding = 0) readonly buffer W4 { uvec4 w4[]; };      // the same bytes, 16 at a time
layout(std430, binding = 0) readonly buffer W16 { uint16_t w16[]; };  // and 2 at a time
uint u8(uint o) { return uint(w[o]); }
int i8(uint o) { return int(int8_t(w[o])); }
float f16(uint o) { return half_at(uint(w[o]), uint(w[o + 1])); }
#endif

uint byte_of(uvec4 v, uint i) { return (v[i / 4] >> (8 * (i % 4))) & 255u; }  // byte i of 16

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
// The 6-bit scale and minimum of sub-block j of a Q4_K/Q5_K super-block whose first 16 bytes
// (d, dmin, the 12 scale bytes; blocks are 144 and 176 bytes, 16-byte aligned) are h.
void k4_scale_min(uvec4 h, uint j, out float sc, out float mn) {
    if (j < 4) {
        sc = float(byte_of(h, 4 + j) & 63u);
        mn = float(byte_of(h, 8 + j) & 63u);
    } else {
        sc = float((byte_of(h, 8 + j) & 15u) | ((byte_of(h, j) >> 6) << 4));
        mn = float((byte_of(h, 8 + j) >> 4) | ((byte_of(h, 4 + j) >> 6) << 4));
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
    const uint blk = r * (p.cols / BE) + u / units, nblk = p.rows * (p.cols / BE);  // split layouts
#if WTYPE == 2  // Q8_0
    for (uint i = 0; i < 8; ++i) c[i] = float(i8(32 * blk + e0 + i));
    d = f16(32 * nblk + 2 * blk);
#elif WTYPE == 3 || WTYPE == 12  // Q4_0, IQ4_NL: element e < 16 in the low nibble of byte e, e + 16 in the high
    d = f16(16 * nblk + 2 * blk);
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i, q = (u8(16 * blk + e % 16) >> (4 * (e / 16))) & 15u;
#if WTYPE == 3
        c[i] = float(int(q) - 8);
#else
        c[i] = float(kIq4nl[q]);
#endif
    }
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
    const uvec4 h = w4[o / 16];
    float sc, mn;
    k4_scale_min(h, k, sc, mn);
    const uint qo = (WTYPE == 9 ? o + 16 : o + 48) + 32 * (k / 2);
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        uint q = (u8(qo + e) >> (4 * (k % 2))) & 15u;
#if WTYPE == 10
        q |= ((u8(o + 16 + e) >> k) & 1u) << 4;
#endif
        c[i] = float(q);
    }
    const vec2 dm = unpackHalf2x16(h.x);
    d = dm.x * sc;
    m = -dm.y * mn;
#elif WTYPE == 11  // Q6_K: ql[128], qh[64], scales[16], d; unit k = 4 * half + kk
    const uint half_ = k / 4, kk = k % 4;
    for (uint i = 0; i < 8; ++i) {
        const uint e = e0 + i;
        const uint lo = (u8(192 * blk + 64 * half_ + e + 32 * (kk & 1u)) >> (4 * (kk >> 1))) & 15u;
        const uint hi = (u8(192 * blk + 128 + 32 * half_ + e) >> (2 * kk)) & 3u;
        c[i] = float(int(lo | (hi << 4)) - 32);
    }
    d = f16(208 * nblk + 2 * blk) * float(i8(192 * nblk + 16 * blk + 8 * half_ + e0 / 16 + 2 * kk));
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


#if WTYPE == 1 || WTYPE == 2 || WTYPE == 3 || WTYPE == 9 || WTYPE == 11 || WTYPE == 12
// Generation's path: one thread decodes a whole unit of UE weights (w = d * q + m; F16: w) with
// 16-byte loads, all issued before any is used; unit_x gives where its 16-element chunk ch lies
// in the row.
#define FAST_UNITS 1
#if WTYPE == 9 || WTYPE == 11
const uint UE = 64;
#else
const uint UE = 32;
#endif
uint unit_x(uint u, uint ch) {
#if WTYPE == 11  // unit = super-block u / 4, half (u / 2) % 2, sixteen-column slice u % 2
    return 256 * (u / 4) + 128 * ((u / 2) % 2) + 32 * ch + 16 * (u % 2);
#else
    return UE * u + 16 * ch;
#endif
}

#if WTYPE == 1
// The 32 halves of row r, columns 32 u .. 32 u + 31, as stored (eight a word).
void f16_unit_words(uint r, uint u, out uvec4 v[4]) {
    const uint o = (r * p.cols + 32 * u) / 8;
    [[unroll]] for (uint q = 0; q < 4; ++q) v[q] = w[o + q];
}
#endif

void unit_weights(uint r, uint u, out float c[UE]) {
#if WTYPE == 1
    uvec4 v[4];
    f16_unit_words(r, u, v);
    [[unroll]] for (uint q = 0; q < 4; ++q)
        [[unroll]] for (uint i = 0; i < 4; ++i) {
            const vec2 h = unpackHalf2x16(v[q][i]);
            c[8 * q + 2 * i] = h.x;
            c[8 * q + 2 * i + 1] = h.y;
        }
#elif WTYPE == 2 || WTYPE == 3 || WTYPE == 12
    const uint blk = r * (p.cols / 32) + u, nblk = p.rows * (p.cols / 32);
#if WTYPE == 2
    const float d = unpackHalf2x16(uint(w16[16 * nblk + blk])).x;
    const uvec4 q0 = w4[2 * blk], q1 = w4[2 * blk + 1];
    [[unroll]] for (uint i = 0; i < 16; ++i) {
        c[i] = d * float(int(int8_t(uint8_t(byte_of(q0, i)))));
        c[16 + i] = d * float(int(int8_t(uint8_t(byte_of(q1, i)))));
    }
#else
    const float d = unpackHalf2x16(uint(w16[8 * nblk + blk])).x;
    const uvec4 q = w4[blk];
    [[unroll]] for (uint i = 0; i < 16; ++i) {
        const uint b = byte_of(q, i);
#if WTYPE == 3
        c[i] = d * float(int(b & 15u) - 8);
        c[16 + i] = d * float(int(b >> 4) - 8);
#else
        c[i] = d * float(kIq4nl[b & 15u]);
        c[16 + i] = d * float(kIq4nl[b >> 4]);
#endif
    }
#endif
#elif WTYPE == 9  // Q4_K as stored (144 bytes = 9 x 16): unit = sub-blocks 2j, 2j + 1 of super-block u / 4
    const uint base = 9 * (r * (p.cols / 256) + u / 4), j = u % 4;
    const uvec4 h = w4[base], q0 = w4[base + 1 + 2 * j], q1 = w4[base + 2 + 2 * j];
    const vec2 dm = unpackHalf2x16(h.x);
    float sc[2], mn[2];
    [[unroll]] for (uint s = 0; s < 2; ++s) {
        k4_scale_min(h, 2 * j + s, sc[s], mn[s]);
        sc[s] *= dm.x;
        mn[s] *= -dm.y;
    }
    [[unroll]] for (uint i = 0; i < 16; ++i) {
        const uint b0 = byte_of(q0, i), b1 = byte_of(q1, i);
        c[i] = sc[0] * float(b0 & 15u) + mn[0];
        c[16 + i] = sc[0] * float(b1 & 15u) + mn[0];
        c[32 + i] = sc[1] * float(b0 >> 4) + mn[1];
        c[48 + i] = sc[1] * float(b1 >> 4) + mn[1];
    }
#elif WTYPE == 11  // Q6_K split: chunk kk of the unit is q = ql nibble | qh bits << 4, minus 32
    const uint blk = r * (p.cols / 256) + u / 4, nblk = p.rows * (p.cols / 256);
    const uint hf = (u / 2) % 2, s = u % 2;
    const uvec4 la = w4[12 * blk + 4 * hf + s], lb = w4[12 * blk + 4 * hf + 2 + s], qh = w4[12 * blk + 8 + 2 * hf + s];
    const float d = unpackHalf2x16(uint(w16[104 * nblk + blk])).x;
    float sc[4];
    [[unroll]] for (uint kk = 0; kk < 4; ++kk) sc[kk] = d * float(int(int8_t(w[192 * nblk + 16 * blk + 8 * hf + 2 * kk + s])));
    [[unroll]] for (uint i = 0; i < 16; ++i) {
        const uint a = byte_of(la, i), b = byte_of(lb, i), hb = byte_of(qh, i);
        c[i] = sc[0] * float(int((a & 15u) | ((hb & 3u) << 4)) - 32);
        c[16 + i] = sc[1] * float(int((b & 15u) | (((hb >> 2) & 3u) << 4)) - 32);
        c[32 + i] = sc[2] * float(int((a >> 4) | (((hb >> 4) & 3u) << 4)) - 32);
        c[48 + i] = sc[3] * float(int((b >> 4) | (((hb >> 6) & 3u) << 4)) - 32);
    }
#endif
}
#endif

#if WTYPE == 2 || WTYPE == 3 || WTYPE == 12 || WTYPE == 9
// Prompts' path (matmul_cm.comp): the 32 weights of row r, columns 32 u .. 32 u + 31, with 16-byte
// loads (w = d * q + m).
#define UNIT32_WEIGHTS 1
#if WTYPE == 9
void unit32_weights(uint r, uint u, out float c[32]) {  // sub-block s = u % 8 of super-block u / 8
    const uint base = 9 * (r * (p.cols / 256) + u / 8), s = u % 8, sh = 4 * (s % 2);
    const uvec4 hd = w4[base], q0 = w4[base + 1 + 2 * (s / 2)], q1 = w4[base + 2 + 2 * (s / 2)];
    const vec2 dm = unpackHalf2x16(hd.x);
    float sc, mn;
    k4_scale_min(hd, s, sc, mn);
    sc *= dm.x;
    mn *= -dm.y;
    [[unroll]] for (uint i = 0; i < 16; ++i) {
        c[i] = sc * float((byte_of(q0, i) >> sh) & 15u) + mn;
        c[16 + i] = sc * float((byte_of(q1, i) >> sh) & 15u) + mn;
    }
}
#else
#define unit32_weights unit_weights  // a unit is 32 weights already
#endif
#endif

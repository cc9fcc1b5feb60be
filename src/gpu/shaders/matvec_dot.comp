#version 450
// Generation's matrix-vector product on integer dot products (devices with
// VK_KHR_shader_integer_dot_product): y[b][r] = (accumulate ? y[b][r] : 0) + bias[r] + W[r] . x[b]
// for Q8_0, Q4_0, Q4_K and Q6_K weights. As llama.cpp's CPU and CUDA paths do, the activations
// are quantized to 8 bits per block of 32 (d = max|x| / 127, q = round(x / d)); the weights' codes
// meet them four at a time (OpSDot on packed bytes) and the blocks' scales are applied in f32.
// Each workgroup quantizes the activations it needs on the fly (no extra step, no extra buffer; with
// GLU the activations are SwiGLU's silu(x) * up, made here rather than by a step before) into
// shared memory, once for its G groups of 64 threads, each group owning R rows (G R rows a
// workgroup: the activations are read and quantized once for all of them); a thread meets a unit
// of UE activations with R rows' codes, whose loads are all issued before any of them is used
// (rows past the end are clamped, not skipped), the first unit's before the activations are made.
// Rows longer than 32 MAXB: each thread quantizes its own units (G is then 1).
#include "common.glsl"
#extension GL_EXT_spirv_intrinsics : require

layout(local_size_x_id = 2) in;  // 64 G
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
    uint norm_parts;  // NORM: x's sum of squares comes in this many parts (see below)
    float eps;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };  // rows are multiples of 32 floats
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
layout(std430, binding = 4) readonly buffer Up { vec4 up4[]; };  // GLU: x is silu(x) * up (SwiGLU, fused)
// RMSNorm fused (NORM): the product's input is x * g / sqrt(sum(x^2) / cols + eps). The sum of
// squares comes in p.norm_parts parts, written by the product that made x (SUMSQ), one per
// workgroup, and is added here in a fixed order (deterministic); 8-bit codes do not depend on a
// block's common factor, so the workgroup quantizes x * g and applies the scale to its sums.
layout(std430, binding = 5) readonly buffer NormW { vec4 g4[]; };
layout(std430, binding = 6) readonly buffer PartsIn { float parts_in[]; };
layout(std430, binding = 7) writeonly buffer PartsOut { float parts_out[]; };

layout(constant_id = 0) const uint R = 8;  // rows per group of 64 threads
// What the pipeline fuses (bit 0: SwiGLU, 1: RMSNorm, 2: the sum of squares out), so that a
// product without them keeps none of their registers.
layout(constant_id = 1) const uint FUSED = 0;
layout(constant_id = 2) const uint WG = 64;  // threads: 64 G (the host keeps subgroups within a group)
layout(constant_id = 3) const uint PG = 64;  // room for the subgroups of a group of 64 threads (sizes down to 64 / PG)
const uint G = WG / 64;
const bool GLU = (FUSED & 1u) != 0, NORM = (FUSED & 2u) != 0, SUMSQ = (FUSED & 4u) != 0;
shared float partial[G * R][PG];  // [row][subgroup of its group]
shared float partial_ss[G * PG];  // [subgroup]: the sum of squares
shared float row_sq[G * R];
const uint MAXB = 512;            // activation blocks held in shared memory (rows up to 16384)
shared uvec4 xs_q[2 * MAXB];      // block i's codes: xs_q[2 i], xs_q[2 i + 1]
shared float xs_d[MAXB];
shared uint xs_s[MAXB];           // the two halves' code sums, int16 each

// OpSDot (SPV_KHR_integer_dot_product) on four signed bytes packed in each operand.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot(uint a, uint b, spirv_literal int packed_4x8);
int dot4(uint a, uint b) { return sdot(a, b, 0); }

// A unit (weights.glsl's UE: 32 weights, Q4_K and Q6_K 64) meets NB blocks of activations.
const uint NB = UE / 32;

// The first element of activation block i of unit u.
uint xblock(uint u, uint i) {
#if WTYPE == 11  // Q6_K unit: super-block u / 4, half (u / 2) % 2, blocks s and s + 2 of that half
    return 256 * (u / 4) + 128 * ((u / 2) % 2) + 32 * (u % 2) + 64 * i;
#else
    return UE * u + 32 * i;
#endif
}

// One block of 32 activations as 8-bit codes: q (8 words of 4 bytes), the scale d, and the codes'
// sums over each half (16 elements).
struct XBlock {
    uint q[8];
    float d;
    int s16[2];
};

XBlock quantize_block(uint xr, uint col) {
    const uint xo = xr + col;
    vec4 v[8];
    [[unroll]] for (uint i = 0; i < 8; ++i) v[i] = x4[xo / 4 + i];
    if (NORM)
        [[unroll]] for (uint i = 0; i < 8; ++i) v[i] *= g4[col / 4 + i];
    if (GLU)
        [[unroll]] for (uint i = 0; i < 8; ++i) v[i] = swiglu_of(v[i], up4[xo / 4 + i]);
    vec4 m = abs(v[0]);
    [[unroll]] for (uint i = 1; i < 8; ++i) m = max(m, abs(v[i]));
    const float amax = max(max(m.x, m.y), max(m.z, m.w));
    const float inv = amax > 0.0 ? 1.0 / amax : 0.0;
    XBlock b;
    b.d = amax / 127.0;
    [[unroll]] for (uint i = 0; i < 8; ++i) b.q[i] = packSnorm4x8(v[i] * inv);  // round(x / amax * 127)
    [[unroll]] for (uint h = 0; h < 2; ++h)
        b.s16[h] = dot4(b.q[4 * h], 0x01010101u) + dot4(b.q[4 * h + 1], 0x01010101u) + dot4(b.q[4 * h + 2], 0x01010101u) +
                   dot4(b.q[4 * h + 3], 0x01010101u);
    return b;
}

void store_block(uint i, XBlock b) {
    xs_q[2 * i] = uvec4(b.q[0], b.q[1], b.q[2], b.q[3]);
    xs_q[2 * i + 1] = uvec4(b.q[4], b.q[5], b.q[6], b.q[7]);
    xs_d[i] = b.d;
    xs_s[i] = (uint(b.s16[0]) & 0xFFFFu) | (uint(b.s16[1]) << 16);
}

XBlock shared_block(uint i) {
    XBlock b;
    const uvec4 a = xs_q[2 * i], c = xs_q[2 * i + 1];
    b.q = uint[8](a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w);
    b.d = xs_d[i];
    b.s16[0] = bitfieldExtract(int(xs_s[i]), 0, 16);
    b.s16[1] = bitfieldExtract(int(xs_s[i]), 16, 16);
    return b;
}

// Row r's codes of unit u, loaded raw (all rows' loads go out before any is decoded).
#if WTYPE == 2  // Q8_0 split: 32 code bytes a block, then the f16 scales
struct Raw {
    uvec4 a, b;
    float d;
};
Raw load_unit(uint r, uint u) {
    const uint blk = r * (p.cols / 32) + u, nblk = p.rows * (p.cols / 32);
    return Raw(w4[2 * blk], w4[2 * blk + 1], unpackHalf2x16(uint(w16[16 * nblk + blk])).x);
}
float unit_dot(Raw w, XBlock x[NB]) {
    int s = 0;
    [[unroll]] for (uint i = 0; i < 4; ++i) s += dot4(w.a[i], x[0].q[i]) + dot4(w.b[i], x[0].q[4 + i]);
    return w.d * x[0].d * float(s);
}
#elif WTYPE == 3  // Q4_0 split: 16 code bytes a block (element e < 16 low nibble of byte e, e + 16 high), then the scales
struct Raw {
    uvec4 q;
    float d;
};
Raw load_unit(uint r, uint u) {
    const uint blk = r * (p.cols / 32) + u, nblk = p.rows * (p.cols / 32);
    return Raw(w4[blk], unpackHalf2x16(uint(w16[8 * nblk + blk])).x);
}
float unit_dot(Raw w, XBlock x[NB]) {
    int s = 0;
    [[unroll]] for (uint i = 0; i < 4; ++i) s += dot4(w.q[i] & 0x0F0F0F0Fu, x[0].q[i]) + dot4((w.q[i] >> 4) & 0x0F0F0F0Fu, x[0].q[4 + i]);
    return w.d * x[0].d * float(s - 8 * (x[0].s16[0] + x[0].s16[1]));
}
#elif WTYPE == 9  // Q4_K as stored: d, dmin, 12 scale bytes, then 128 code bytes (sub-blocks 2j, 2j + 1 share 32)
struct Raw {
    uvec4 h, q0, q1;
    uint j;  // the unit within the super-block
};
Raw load_unit(uint r, uint u) {
    const uint base = 9 * (r * (p.cols / 256) + u / 4), j = u % 4;
    return Raw(w4[base], w4[base + 1 + 2 * j], w4[base + 2 + 2 * j], j);
}
float unit_dot(Raw w, XBlock x[NB]) {
    const vec2 dm = unpackHalf2x16(w.h.x);
    float acc = 0.0;
    [[unroll]] for (uint s = 0; s < 2; ++s) {
        float sc, mn;
        k4_scale_min(w.h, 2 * w.j + s, sc, mn);
        int dq = 0;
        [[unroll]] for (uint i = 0; i < 4; ++i)
            dq += dot4((w.q0[i] >> (4 * s)) & 0x0F0F0F0Fu, x[s].q[i]) + dot4((w.q1[i] >> (4 * s)) & 0x0F0F0F0Fu, x[s].q[4 + i]);
        acc += x[s].d * (dm.x * sc * float(dq) - dm.y * mn * float(x[s].s16[0] + x[s].s16[1]));
    }
    return acc;
}
#elif WTYPE == 11  // Q6_K split: ql[128], qh[64] a block, then 16 int8 scales a block, then the f16 d
struct Raw {
    uvec4 la, lb, ha, hb;  // ql of this unit's 32 columns (low nibbles: block s, high: block s + 2), qh
    float d;
    uint sc;  // the four int8 scales of the unit's 16-element groups (blocks s, s + 2; two halves each)
    uint s;
};
Raw load_unit(uint r, uint u) {
    const uint blk = r * (p.cols / 256) + u / 4, nblk = p.rows * (p.cols / 256);
    const uint hf = (u / 2) % 2, s = u % 2;
    const uint lo = 12 * blk + 4 * hf + 2 * s, hi = 12 * blk + 8 + 2 * hf;
    const uint so = 192 * nblk + 16 * blk + 8 * hf + 2 * s;  // scales of groups (block s: so, so + 1; block s + 2: so + 4, so + 5)
    const uint sc = uint(w16[so / 2]) | (uint(w16[so / 2 + 2]) << 16);
    return Raw(w4[lo], w4[lo + 1], w4[hi], w4[hi + 1], unpackHalf2x16(uint(w16[104 * nblk + blk])).x, sc, s);
}
float unit_dot(Raw w, XBlock x[NB]) {
    float acc = 0.0;
    [[unroll]] for (uint i = 0; i < 2; ++i) {  // block s (low nibbles, qh bits 2s..), block s + 2 (high nibbles, qh bits 2s + 4..)
        [[unroll]] for (uint h = 0; h < 2; ++h) {  // 16-element halves: la/ha, then lb/hb
            int dq = 0;
            [[unroll]] for (uint k = 0; k < 4; ++k) {
                const uint wi = 4 * h + k;  // word of the 32 codes
                const uint l = wi < 4 ? w.la[wi] : w.lb[wi - 4], hb = wi < 4 ? w.ha[wi] : w.hb[wi - 4];
                const uint q = ((l >> (4 * i)) & 0x0F0F0F0Fu) | (((hb >> (4 * i + 2 * w.s)) & 0x03030303u) << 4);
                dq += dot4(q, x[i].q[wi]);
            }
            const int sc = int(bitfieldExtract(int(w.sc), int(16 * i + 8 * h), 8));
            acc += x[i].d * float(sc) * float(dq - 32 * x[i].s16[h]);
        }
    }
    return w.d * acc;
}
#endif

void main() {
    const uint t = gl_LocalInvocationID.x, g = t / 64, lt = t % 64;  // lt: the thread within its group
    const uint grp = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;  // workgroups beyond 65535 use z
    const uint r0 = grp * G * R + g * R;                                           // this group's rows
    const uint xr = gl_WorkGroupID.y * p.cols;                                       // this token's activations
    float acc[R];
    [[unroll]] for (uint rr = 0; rr < R; ++rr) acc[rr] = 0.0;
    // The parts of the sum of squares, read first (four neighbours a thread, all loads out at once).
    float ss = 0.0;
    if (NORM) {
        const uint po = gl_WorkGroupID.y * p.norm_parts;
        for (uint k = 4 * t; k < p.norm_parts; k += 4 * WG) {
            float v[4];
            [[unroll]] for (uint i = 0; i < 4; ++i) v[i] = k + i < p.norm_parts ? parts_in[po + k + i] : 0.0;
            ss += (v[0] + v[1]) + (v[2] + v[3]);
        }
    }
    const uint nblk = p.cols / 32, nunit = p.cols / UE;
    const bool shared_x = nblk <= MAXB;
    Raw raw[R];
    if (lt < nunit)  // the first unit's weights on their way while the activations are made
        [[unroll]] for (uint rr = 0; rr < R; ++rr) raw[rr] = load_unit(min(r0 + rr, p.rows - 1), lt);
    if (shared_x) {
        for (uint i = t; i < nblk; i += WG) store_block(i, quantize_block(xr, 32 * i));
        barrier();
    }
    // (Loading the next unit's weights before using this one's doubles the registers: on an H200
    // that cost more than it saved, Q8_0 222 -> 131 t/s.)
    for (uint u = lt; u < nunit; u += 64) {
        if (u != lt)
            [[unroll]] for (uint rr = 0; rr < R; ++rr) raw[rr] = load_unit(min(r0 + rr, p.rows - 1), u);
        XBlock xb[NB];
        [[unroll]] for (uint i = 0; i < NB; ++i) xb[i] = shared_x ? shared_block(xblock(u, i) / 32) : quantize_block(xr, xblock(u, i));
        [[unroll]] for (uint rr = 0; rr < R; ++rr) acc[rr] += unit_dot(raw[rr], xb);
    }
    // Sums within each subgroup, then across the group's subgroups (and the workgroup's for the sum of squares).
    const uint sgs = gl_SubgroupSize;
    [[unroll]] for (uint rr = 0; rr < R; ++rr) {
        const float v = subgroupAdd(acc[rr]);
        if (subgroupElect()) partial[g * R + rr][lt / sgs] = v;
    }
    if (NORM) {
        const float v = subgroupAdd(ss);
        if (subgroupElect()) partial_ss[gl_SubgroupID] = v;
    }
    barrier();
    const uint r = grp * G * R + t;
    float out_sq = 0.0;
    if (t < G * R && r < p.rows) {
        float v = 0.0, total_ss = 0.0;
        for (uint k = 0; k < max(1u, 64 / gl_SubgroupSize); ++k) v += partial[t][k];  // the subgroups as the shader ran
        if (NORM) {
            for (uint k = 0; k < gl_NumSubgroups; ++k) total_ss += partial_ss[k];
            v *= 1.0 / sqrt(total_ss / float(p.cols) + p.eps);
        }
        if (p.has_bias != 0) v += bias[r];
        const uint yo = gl_WorkGroupID.y * p.rows + r;
        if (p.accumulate != 0) v += y[yo];
        y[yo] = v;
        out_sq = v * v;
    }
    if (SUMSQ) {
        if (t < G * R) row_sq[t] = out_sq;
        barrier();
        if (t == 0) {
            float s = 0.0;
            for (uint rr = 0; rr < G * R; ++rr) s += row_sq[rr];
            parts_out[gl_WorkGroupID.y * (gl_NumWorkGroups.x * gl_NumWorkGroups.z) + grp] = s;
        }
    }
}

#version 450
// Prompts on tensor cores (VK_NV_cooperative_matrix, 16 x 16 x 16 f16 products summed in f32):
// Y[b][r] = (accumulate ? Y[b][r] : 0) + bias[r] + W[r] . X[b]. A workgroup of 256 threads (8
// subgroups of 32) owns 128 rows x 128 tokens; per 64-column step every thread decodes 32 weights
// of one row (weights.glsl; unit32_weights where the format has it), rounds them to f16 and
// loads 32 activations of one token (already f16: to_f16.comp rounds them once for all the
// workgroups), and stores both in shared memory 16 bytes at a time; then each subgroup multiplies its 32 rows x 64 tokens (2 x 4 matrices of 16 x 16) while
// the next step's weights and activations are on their way.
// Weights and activations are rounded to f16 (as llama.cpp's GPU backends do), sums are f32.
#include "common.glsl"
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x = 256) in;
layout(push_constant) uniform Push {
    uint rows, cols, accumulate, has_bias, B;
} p;
#include "weights.glsl"

layout(std430, binding = 1) readonly buffer X { uvec4 xh[]; };  // f16, eight a word; rows are multiples of 32
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

const uint BM = 128, BN = 128, BK = 64;
const uint LDV = BK / 8 + 1;  // a tile row in 16-byte words (8 halves each), one of padding against bank conflicts
shared uvec4 ws[BM * LDV];      // weights: row m, halves 8 q .. 8 q + 7 at m * LDV + q
shared uvec4 xs[BN * LDV];      // activations: token n likewise
shared float stage[8 * 16 * 16];  // each subgroup's 16 x 16 outputs on their way out

uvec4 pack8(float v[8]) {
    return uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])), packHalf2x16(vec2(v[4], v[5])),
                 packHalf2x16(vec2(v[6], v[7])));
}

// The 32 weights of row r, columns 32 u .. 32 u + 31, as f16 (zero past the matrix).
void weights32(uint r, uint u, out uvec4 h[4]) {
    [[unroll]] for (uint q = 0; q < 4; ++q) h[q] = uvec4(0);
    if (r >= p.rows || 32 * u >= p.cols) return;
#if WTYPE == 1  // f16 already: copied as they are
    f16_unit_words(r, u, h);
#elif defined(UNIT32_WEIGHTS)
    float c[32];
    unit32_weights(r, u, c);
    [[unroll]] for (uint q = 0; q < 4; ++q) h[q] = pack8(float[8](c[8 * q], c[8 * q + 1], c[8 * q + 2], c[8 * q + 3], c[8 * q + 4], c[8 * q + 5], c[8 * q + 6], c[8 * q + 7]));
#else
    [[unroll]] for (uint q = 0; q < 4; ++q) {
        float c[8], d, m;
        part_codes(r, u, q, c, d, m);
        [[unroll]] for (uint i = 0; i < 8; ++i) c[i] = d * c[i] + m;
        h[q] = pack8(c);
    }
#endif
}

// The 32 activations of token b, columns 32 u .. 32 u + 31 (zero past the batch).
void acts32(uint b, uint u, out uvec4 h[4]) {
    [[unroll]] for (uint q = 0; q < 4; ++q) h[q] = uvec4(0);
    if (b >= p.B || 32 * u >= p.cols) return;
    const uint xo = (b * p.cols + 32 * u) / 8;
    [[unroll]] for (uint q = 0; q < 4; ++q) h[q] = xh[xo + q];
}

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define FRAG fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
// One 16 x 16 square of outputs (rows wm + 16 I, tokens wn + 16 J of the tile) out through this
// subgroup's staging square, where element (row i, token j) lies at 16 j + i.
#define STORE(C, I, J)                                                                   \
    coopMatStoreNV(C, stage, 256 * sg, 16, true);                                        \
    subgroupMemoryBarrierShared();                                                       \
    subgroupBarrier();                                                                   \
    for (uint e = lane; e < 256; e += 32) {                                              \
        const uint r = r0 + wm + 16 * I + e % 16, b = b0 + wn + 16 * J + e / 16;         \
        if (r < p.rows && b < p.B) {                                                     \
            float v = stage[256 * sg + e];                                               \
            if (p.has_bias != 0) v += bias[r];                                           \
            const uint yo = b * p.rows + r;                                              \
            y[yo] = p.accumulate != 0 ? y[yo] + v : v;                                   \
        }                                                                                \
    }                                                                                    \
    subgroupBarrier();

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint r0 = gl_WorkGroupID.x * BM, b0 = gl_WorkGroupID.y * BN;
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint wm = 32 * (sg % 4), wn = 64 * (sg / 4);  // this subgroup's rows and tokens within the tile
    const uint lr = t / 2, lh = t % 2;  // loader: row (and token) lr, columns 32 lh .. 32 lh + 31 of the step
    // The subgroup's 2 x 4 squares of sums, as separate variables: NVIDIA's driver keeps arrays
    // of cooperative matrices in memory (measured: 4x slower products).
    ACC c00 = ACC(0.0), c01 = ACC(0.0), c02 = ACC(0.0), c03 = ACC(0.0), c10 = ACC(0.0), c11 = ACC(0.0), c12 = ACC(0.0), c13 = ACC(0.0);
    uvec4 wv[4], xv[4];
    weights32(r0 + lr, lh, wv);
    acts32(b0 + lr, lh, xv);
    for (uint k0 = 0; k0 < p.cols; k0 += BK) {
        barrier();  // the previous step's tiles are read
        [[unroll]] for (uint q = 0; q < 4; ++q) {
            ws[lr * LDV + 4 * lh + q] = wv[q];
            xs[lr * LDV + 4 * lh + q] = xv[q];
        }
        barrier();
        if (k0 + BK < p.cols) {  // the next step, in flight during the products
            weights32(r0 + lr, (k0 + BK) / 32 + lh, wv);
            acts32(b0 + lr, (k0 + BK) / 32 + lh, xv);
        }
        [[unroll]] for (uint kk = 0; kk < BK / 8; kk += 2) {  // 16 columns at a time
            FRAG a0, a1, x0, x1, x2, x3;
            coopMatLoadNV(a0, ws, wm * LDV + kk, LDV, false);
            coopMatLoadNV(a1, ws, (wm + 16) * LDV + kk, LDV, false);
            coopMatLoadNV(x0, xs, wn * LDV + kk, LDV, true);
            coopMatLoadNV(x1, xs, (wn + 16) * LDV + kk, LDV, true);
            coopMatLoadNV(x2, xs, (wn + 32) * LDV + kk, LDV, true);
            coopMatLoadNV(x3, xs, (wn + 48) * LDV + kk, LDV, true);
            c00 = coopMatMulAddNV(a0, x0, c00);
            c01 = coopMatMulAddNV(a0, x1, c01);
            c02 = coopMatMulAddNV(a0, x2, c02);
            c03 = coopMatMulAddNV(a0, x3, c03);
            c10 = coopMatMulAddNV(a1, x0, c10);
            c11 = coopMatMulAddNV(a1, x1, c11);
            c12 = coopMatMulAddNV(a1, x2, c12);
            c13 = coopMatMulAddNV(a1, x3, c13);
        }
    }
    STORE(c00, 0, 0)
    STORE(c01, 0, 1)
    STORE(c02, 0, 2)
    STORE(c03, 0, 3)
    STORE(c10, 1, 0)
    STORE(c11, 1, 1)
    STORE(c12, 1, 2)
    STORE(c13, 1, 3)
}

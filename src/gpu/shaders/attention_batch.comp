#version 450
// Causal attention of a batch (prompts): a workgroup takes one head and QB = 16 consecutive tokens
// of the batch, so every tile of keys and values it brings into shared memory serves 16 queries
// (attention.comp, one query a workgroup, reads the cache once per token). Flash-attention style:
// positions in tiles of TP = 32; per tile the 16 x 32 scores, each row's running maximum and sum
// (online softmax), and the weighted values added to the 16 x head_dim outputs; f32 throughout.
// TP = 16 where the device has less shared memory (8 in tests). Scores: thread (g, j) takes
// position j and RT tokens, a row's maximum and sum by subgroup operations where a subgroup is
// exactly TP threads (else one thread a row); weighted values: thread t takes 4 tokens x 4 dims,
// two 16-byte loads for 16 products per position. Needs head_dim <= 128, a multiple of 8.
#include "common.glsl"

layout(local_size_x = 128) in;
layout(push_constant) uniform Push { uint n_head, n_head_kv, n_past, kv_dim, n_ctx; float scale; uint B, pad; } p;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };

layout(constant_id = 0) const uint HD = 128;  // head_dim
layout(constant_id = 1) const uint TP = 32;   // positions a tile: 32, 16 or 8
layout(constant_id = 2) const bool ROWS_IN_SUBGROUPS = true;  // subgroups of exactly TP threads
const uint QB = 16;
const uint G = 128 / TP, RT = QB / G;  // scores: G groups of TP threads, tokens RT g .. RT g + RT - 1
const uint DQ = HD / 4;                // weighted values: thread t < 4 DQ takes tokens 4 (t / DQ) .., dims 4 (t % DQ) ..
shared vec4 qs[QB * DQ];        // the queries, scaled: token i, dims 4 c .. 4 c + 3 at i * DQ + c
shared float ks[HD * TP];       // the tile's keys: dim d, position j at d * TP + j
shared vec4 vs[TP * DQ];        // the tile's values: position j, dims 4 c .. at j * DQ + c
shared float sc[ROWS_IN_SUBGROUPS ? 1 : QB * TP];  // scores (rows in subgroups: unused)
shared vec4 pt[TP * QB / 4];    // their exponentials: position j, tokens 4 r .. 4 r + 3 at j * QB / 4 + r
shared float row_m[QB], row_l[QB], row_c[QB];  // running maximum and sum, this tile's correction

// A score's weight against the row's new maximum (masked scores, -inf: 0).
float weight(float s, float m) { return s == -1.0 / 0.0 ? 0.0 : exp(s - m); }

// Row r after a tile: its new maximum and the sum of the tile's weights; the correction of what it
// had (0 on the first tile, where the old maximum is -inf).
void update_row(uint r, float m_old, float m_new, float sum) {
    const float corr = exp(m_old - m_new);
    row_c[r] = corr;
    row_l[r] = row_l[r] * corr + sum;
    row_m[r] = m_new;
}

void main() {
    const uint h = gl_WorkGroupID.x, b0 = gl_WorkGroupID.y * QB, t = gl_LocalInvocationID.x;
    const uint kvh = h / (p.n_head / p.n_head_kv);
    for (uint e = t; e < QB * DQ; e += 128) {
        const uint i = e / DQ, c = e % DQ, b = min(b0 + i, p.B - 1);
        const uint qo = (b * p.n_head + h) * HD + 4 * c;
        qs[e] = p.scale * vec4(q[qo], q[qo + 1], q[qo + 2], q[qo + 3]);
    }
    if (t < QB) {
        row_m[t] = -1.0 / 0.0;
        row_l[t] = 0.0;
    }
    // Positions up to the last token's: n_past + b + 1 for token b (tokens past the batch: only 0).
    const uint b_last = min(b0 + QB, p.B) - 1, n_kv = p.n_past + b_last + 1, n_written = p.n_past + p.B;
    vec4 acc[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    const uint rq = t / DQ, cq = t % DQ;
    const uint pj = t % TP, g = t / TP;  // scores: position pj of the tile, tokens RT g .. RT g + RT - 1
    for (uint p0 = 0; p0 < n_kv; p0 += TP) {
        barrier();  // the last tile is read (and, the first time, qs and the rows are written)
        for (uint e = t; e < HD * TP; e += 128) {
            const uint d = e / TP, j = e % TP, pos = p0 + j;
            ks[e] = pos < n_written ? kc[(kvh * HD + d) * p.n_ctx + pos] : 0.0;
        }
        for (uint e = t; e < TP * DQ; e += 128) {
            const uint j = e / DQ, c = e % DQ, pos = p0 + j, vo = pos * p.kv_dim + kvh * HD + 4 * c;
            vs[e] = pos < n_written ? vec4(vc[vo], vc[vo + 1], vc[vo + 2], vc[vo + 3]) : vec4(0.0);  // unwritten: 0 (weighed 0, never NaN)
        }
        barrier();
        {
            vec4 s[RT];
            [[unroll]] for (uint i = 0; i < RT; ++i) s[i] = vec4(0.0);
            [[unroll]] for (uint c = 0; c < HD / 4; ++c) {
                const vec4 kv = vec4(ks[(4 * c) * TP + pj], ks[(4 * c + 1) * TP + pj], ks[(4 * c + 2) * TP + pj], ks[(4 * c + 3) * TP + pj]);
                [[unroll]] for (uint i = 0; i < RT; ++i) s[i] += qs[(RT * g + i) * DQ + c] * kv;
            }
            const uint pos = p0 + pj;
            [[unroll]] for (uint i = 0; i < RT; ++i) {
                const uint b = b0 + RT * g + i;
                const bool valid = b < p.B ? pos <= p.n_past + b : pos == 0;
                s[i].x = valid ? dot(s[i], vec4(1.0)) : -1.0 / 0.0;
            }
            if (ROWS_IN_SUBGROUPS) {  // a row's TP scores are one subgroup's: its running maximum and sum here
                [[unroll]] for (uint i = 0; i < RT; ++i) {
                    const uint r = RT * g + i;
                    const float m_old = row_m[r], m_new = max(m_old, subgroupMax(s[i].x));
                    const float ex = weight(s[i].x, m_new);
                    pt[pj * (QB / 4) + r / 4][r % 4] = ex;
                    const float sum = subgroupAdd(ex);
                    if (pj == 0) update_row(r, m_old, m_new, sum);
                }
            } else {
                [[unroll]] for (uint i = 0; i < RT; ++i) sc[(RT * g + i) * TP + pj] = s[i].x;
            }
        }
        if (!ROWS_IN_SUBGROUPS) {  // smaller subgroups: one thread a row
            barrier();
            if (t < QB) {
                const float m_old = row_m[t];
                float m_new = m_old, sum = 0.0;
                for (uint j = 0; j < TP; ++j) m_new = max(m_new, sc[t * TP + j]);
                for (uint j = 0; j < TP; ++j) {
                    const float ex = weight(sc[t * TP + j], m_new);
                    pt[j * (QB / 4) + t / 4][t % 4] = ex;
                    sum += ex;
                }
                update_row(t, m_old, m_new, sum);
            }
        }
        barrier();
        if (t < 4 * DQ) {  // tokens 4 rq .. 4 rq + 3, dims 4 cq .. 4 cq + 3
            [[unroll]] for (uint i = 0; i < 4; ++i) acc[i] *= row_c[4 * rq + i];
            [[unroll]] for (uint j = 0; j < TP; ++j) {
                const vec4 v = vs[j * DQ + cq], e = pt[j * (QB / 4) + rq];
                [[unroll]] for (uint i = 0; i < 4; ++i) acc[i] += e[i] * v;
            }
        }
    }
    barrier();
    if (t < 4 * DQ)
        [[unroll]] for (uint i = 0; i < 4; ++i) {
            const uint b = b0 + 4 * rq + i, oo = (b * p.n_head + h) * HD + 4 * cq;
            if (b < p.B) {
                const vec4 v = acc[i] / row_l[4 * rq + i];
                o[oo] = v.x;
                o[oo + 1] = v.y;
                o[oo + 2] = v.z;
                o[oo + 3] = v.w;
            }
        }
}

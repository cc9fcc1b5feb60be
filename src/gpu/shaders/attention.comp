#version 450
// Causal attention for one (head, token) per workgroup over the KV cache, flash-attention style:
// positions in tiles of 64 (one score per thread, keys transposed [kv_dim][n_ctx] so a tile's
// reads are contiguous), a running maximum and sum (online softmax, subgroup reductions), and the
// weighted values accumulated per dimension; no scores buffer beyond one tile.
// Split (flash-decoding, chunk > 0): workgroup z takes positions [z * chunk, (z + 1) * chunk) and
// writes its unnormalised sums, maximum and sum of exponentials to `part` ([b][h][z][head_dim + 2])
// for attn_combine.comp; generation then has n_head x n_split workgroups instead of n_head.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n_head, n_head_kv, n_past, kv_dim, n_ctx; float scale; uint chunk, n_split; } p;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 4) writeonly buffer Part { float part[]; };

layout(constant_id = 0) const uint HD = 128;  // head_dim (at most 256)
const uint NJ = (HD + 63) / 64;               // dimensions a thread accumulates
shared float qs[HD];
shared float sc[64];
shared float red_max[64], red_sum[64];  // per subgroup

void main() {
    const uint h = gl_WorkGroupID.x, b = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    const uint kvh = h / (p.n_head / p.n_head_kv);
    const uint qo = (b * p.n_head + h) * HD;
    for (uint d = t; d < HD; d += 64) qs[d] = q[qo + d];
    barrier();
    const uint z = gl_WorkGroupID.z;
    const uint n_kv = p.chunk > 0 ? min(p.n_past + b + 1, (z + 1) * p.chunk) : p.n_past + b + 1;
    float m = -1.0 / 0.0, l = 0.0;
    float acc[NJ];  // dims t, t+64, …
    [[unroll]] for (uint j = 0; j < NJ; ++j) acc[j] = 0.0;
    for (uint p0 = z * p.chunk; p0 < n_kv; p0 += 64) {
        const uint pos = p0 + t;
        float s = -1.0 / 0.0;
        if (pos < n_kv) {
            const uint ko = kvh * HD * p.n_ctx + pos;
            // Every load of the score issued at once (HD is a constant of the pipeline, the loops
            // unrolled): a workgroup's time is the latency of its loads, not their bandwidth.
            vec4 s0 = vec4(0.0), s1 = vec4(0.0);
            [[unroll]] for (uint d = 0; d + 8 <= HD; d += 8) {
                s0 += vec4(qs[d], qs[d + 1], qs[d + 2], qs[d + 3]) *
                      vec4(kc[ko + d * p.n_ctx], kc[ko + (d + 1) * p.n_ctx], kc[ko + (d + 2) * p.n_ctx], kc[ko + (d + 3) * p.n_ctx]);
                s1 += vec4(qs[d + 4], qs[d + 5], qs[d + 6], qs[d + 7]) *
                      vec4(kc[ko + (d + 4) * p.n_ctx], kc[ko + (d + 5) * p.n_ctx], kc[ko + (d + 6) * p.n_ctx], kc[ko + (d + 7) * p.n_ctx]);
            }
            s = dot(s0 + s1, vec4(1.0));
            [[unroll]] for (uint d = HD / 8 * 8; d < HD; ++d) s += qs[d] * kc[ko + d * p.n_ctx];
            s *= p.scale;
        }
        const float smax = subgroupMax(s);
        if (subgroupElect()) red_max[gl_SubgroupID] = smax;
        barrier();
        float m_new = m;
        for (uint k = 0; k < gl_NumSubgroups; ++k) m_new = max(m_new, red_max[k]);
        const float e = pos < n_kv ? exp(s - m_new) : 0.0;
        sc[t] = e;
        const float esum = subgroupAdd(e);
        if (subgroupElect()) red_sum[gl_SubgroupID] = esum;
        barrier();
        float tsum = 0.0;
        for (uint k = 0; k < gl_NumSubgroups; ++k) tsum += red_sum[k];
        const float corr = exp(m - m_new);
        l = l * corr + tsum;
        m = m_new;
        // Every dimension of this thread (t, t+64, …) and all 64 positions of the tile, the loads
        // issued at once: positions past n_kv read position n_kv - 1 (written, finite) and weigh 0.
        vec4 a0[NJ], a1[NJ];
        [[unroll]] for (uint j = 0; j < NJ; ++j) a0[j] = a1[j] = vec4(0.0);
        [[unroll]] for (uint i = 0; i < 64; i += 8) {
            const vec4 e0 = vec4(sc[i], sc[i + 1], sc[i + 2], sc[i + 3]), e1 = vec4(sc[i + 4], sc[i + 5], sc[i + 6], sc[i + 7]);
            uint vo[8];
            [[unroll]] for (uint k = 0; k < 8; ++k) vo[k] = min(p0 + i + k, n_kv - 1) * p.kv_dim + kvh * HD;
            [[unroll]] for (uint j = 0; j < NJ; ++j) {
                const uint d = t + 64 * j;
                if (d < HD) {
                    a0[j] += e0 * vec4(vc[vo[0] + d], vc[vo[1] + d], vc[vo[2] + d], vc[vo[3] + d]);
                    a1[j] += e1 * vec4(vc[vo[4] + d], vc[vo[5] + d], vc[vo[6] + d], vc[vo[7] + d]);
                }
            }
        }
        [[unroll]] for (uint j = 0; j < NJ; ++j) acc[j] = acc[j] * corr + dot(a0[j] + a1[j], vec4(1.0));
        barrier();
    }
    if (p.chunk > 0) {  // an empty chunk leaves l = 0, which the combine skips
        const uint po = ((b * p.n_head + h) * p.n_split + z) * (HD + 2);
        for (uint j = 0; j < NJ; ++j) {
            const uint d = t + 64 * j;
            if (d < HD) part[po + d] = acc[j];
        }
        if (t == 0) {
            part[po + HD] = m;
            part[po + HD + 1] = l;
        }
        return;
    }
    for (uint j = 0; j < NJ; ++j) {
        const uint d = t + 64 * j;
        if (d < HD) o[qo + d] = acc[j] / l;
    }
}

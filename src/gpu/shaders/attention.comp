#version 450
// Causal attention for one (head, token) per workgroup over the KV cache, flash-attention style:
// positions in tiles of 64 (one score per thread, keys transposed [kv_dim][n_ctx] so a tile's
// reads are contiguous), a running maximum and sum (online softmax, subgroup reductions), and the
// weighted values accumulated per dimension; no scores buffer beyond one tile.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n_head, n_head_kv, head_dim, n_past, kv_dim, n_ctx; float scale; } p;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float kc[]; };
layout(std430, binding = 2) readonly buffer V { float vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };

shared float qs[256];
shared float sc[64];
shared float red_max[64], red_sum[64];  // per subgroup

void main() {
    const uint h = gl_WorkGroupID.x, b = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    const uint HD = p.head_dim, kvh = h / (p.n_head / p.n_head_kv);
    const uint qo = (b * p.n_head + h) * HD;
    for (uint d = t; d < HD; d += 64) qs[d] = q[qo + d];
    barrier();
    const uint n_kv = p.n_past + b + 1;
    float m = -1.0 / 0.0, l = 0.0;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);  // dims t, t+64, t+128, t+192
    for (uint p0 = 0; p0 < n_kv; p0 += 64) {
        const uint pos = p0 + t;
        float s = -1.0 / 0.0;
        if (pos < n_kv) {
            const uint ko = kvh * HD * p.n_ctx + pos;
            vec4 s4 = vec4(0.0);  // four independent sums: four loads in flight
            uint d = 0;
            for (; d + 4 <= HD; d += 4)
                s4 += vec4(qs[d], qs[d + 1], qs[d + 2], qs[d + 3]) *
                      vec4(kc[ko + d * p.n_ctx], kc[ko + (d + 1) * p.n_ctx], kc[ko + (d + 2) * p.n_ctx], kc[ko + (d + 3) * p.n_ctx]);
            s = s4.x + s4.y + s4.z + s4.w;
            for (; d < HD; ++d) s += qs[d] * kc[ko + d * p.n_ctx];
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
        const uint n_tile = min(64u, n_kv - p0);
        for (uint j = 0; j < 4; ++j) {
            const uint d = t + 64 * j;
            if (d >= HD) break;
            const uint vo = p0 * p.kv_dim + kvh * HD + d;
            vec4 a4 = vec4(0.0);  // four independent sums: four loads in flight
            uint i = 0;
            for (; i + 4 <= n_tile; i += 4)
                a4 += vec4(sc[i], sc[i + 1], sc[i + 2], sc[i + 3]) *
                      vec4(vc[vo + i * p.kv_dim], vc[vo + (i + 1) * p.kv_dim], vc[vo + (i + 2) * p.kv_dim], vc[vo + (i + 3) * p.kv_dim]);
            float a = a4.x + a4.y + a4.z + a4.w;
            for (; i < n_tile; ++i) a += sc[i] * vc[vo + i * p.kv_dim];
            acc[j] = acc[j] * corr + a;
        }
        barrier();
    }
    for (uint j = 0; j < 4; ++j) {
        const uint d = t + 64 * j;
        if (d < HD) o[qo + d] = acc[j] / l;
    }
}

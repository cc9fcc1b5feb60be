#version 450
// The split attention's parts (attention.comp with chunk > 0) into each (head, token)'s output:
// o = sum_z acc_z e^(m_z - M) / sum_z l_z e^(m_z - M), M the largest m_z of a non-empty part.
#include "common.glsl"

layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n_head, head_dim, n_split; } p;
layout(std430, binding = 0) readonly buffer Part { float part[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };

void main() {
    const uint h = gl_WorkGroupID.x, b = gl_WorkGroupID.y, t = gl_LocalInvocationID.x, HD = p.head_dim;
    const uint base = (b * p.n_head + h) * p.n_split * (HD + 2);
    float M = -1.0 / 0.0;
    for (uint z = 0; z < p.n_split; ++z)
        if (part[base + z * (HD + 2) + HD + 1] > 0.0) M = max(M, part[base + z * (HD + 2) + HD]);
    float l = 0.0;
    for (uint z = 0; z < p.n_split; ++z) {
        const uint po = base + z * (HD + 2);
        if (part[po + HD + 1] > 0.0) l += part[po + HD + 1] * exp(part[po + HD] - M);
    }
    for (uint d = t; d < HD; d += 64) {
        float a = 0.0;
        for (uint z = 0; z < p.n_split; ++z) {
            const uint po = base + z * (HD + 2);
            if (part[po + HD + 1] > 0.0) a += part[po + d] * exp(part[po + HD] - M);
        }
        o[(b * p.n_head + h) * HD + d] = a / l;
    }
}

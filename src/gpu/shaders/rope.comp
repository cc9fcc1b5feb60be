#version 450
// Rotary embedding of n_heads heads per token with the batch's cos/sin table (computed on the
// host, as the CPU path computes them): pairs (2i, 2i+1) for llama, (i, i + n_rot/2) for NEOX.
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n_heads, head_dim, n_rot, neox, B; } p;
layout(std430, binding = 0) buffer V { float v[]; };
layout(std430, binding = 1) readonly buffer CS { float cs[]; };  // [B][n_rot/2][cos, sin]

void main() {
    const uint half_rot = p.n_rot / 2;
    const uint id = gl_GlobalInvocationID.x;
    if (id >= p.B * p.n_heads * half_rot) return;
    const uint i = id % half_rot, h = (id / half_rot) % p.n_heads, b = id / (half_rot * p.n_heads);
    const uint base = (b * p.n_heads + h) * p.head_dim;
    const uint i0 = base + (p.neox != 0 ? i : 2 * i), i1 = base + (p.neox != 0 ? i + half_rot : 2 * i + 1);
    const float c = cs[(b * half_rot + i) * 2], s = cs[(b * half_rot + i) * 2 + 1];
    const float a = v[i0], e = v[i1];
    v[i0] = a * c - e * s;
    v[i1] = a * s + e * c;
}

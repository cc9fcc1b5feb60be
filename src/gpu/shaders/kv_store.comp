#version 450
// The batch's keys and values into the KV cache at positions n_past .. n_past + B - 1: values as
// rows [position][kv_dim], keys transposed [kv_dim][n_ctx] so that attention reads neighbouring
// positions from neighbouring addresses.
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint kv_dim, n_ctx, n_past, B; } p;
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer KT { float kt[]; };
layout(std430, binding = 3) writeonly buffer VC { float vc[]; };

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64;
    if (i >= p.B * p.kv_dim) return;
    const uint b = i / p.kv_dim, c = i % p.kv_dim;
    kt[c * p.n_ctx + p.n_past + b] = k[i];
    vc[(p.n_past + b) * p.kv_dim + c] = v[i];
}

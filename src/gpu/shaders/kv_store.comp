#version 450
// The batch's keys and values into the KV cache at positions n_past .. n_past + B - 1: values as
// rows [position][kv_dim], keys transposed [kv_dim][n_ctx] so that attention reads neighbouring
// positions from neighbouring addresses. Keys are rotated on the way (rope.comp's rotation, with
// the batch's cos/sin table; n_rot = 0: stored as they are), which saves a step per layer.
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint kv_dim, n_ctx, n_past, B, head_dim, n_rot, neox; } p;
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer KT { float kt[]; };
layout(std430, binding = 3) writeonly buffer VC { float vc[]; };
layout(std430, binding = 4) readonly buffer CS { float cs[]; };  // [B][n_rot/2][cos, sin]

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64;
    if (i >= p.B * p.kv_dim) return;
    const uint b = i / p.kv_dim, c = i % p.kv_dim, j = c % p.head_dim, half_rot = p.n_rot / 2;
    float kv = k[i];
    if (j < p.n_rot) {
        // This element's pair: (j, j + half_rot) for NEOX, (2m, 2m + 1) for llama; `first` is the
        // pair's first element, which becomes a c - e s; the second becomes a s + e c.
        const bool first = p.neox != 0 ? j < half_rot : (j & 1u) == 0;
        const uint m = p.neox != 0 ? j % half_rot : j / 2;
        const int step = p.neox != 0 ? int(half_rot) : 1;
        const float other = k[first ? i + step : i - step];
        const float cv = cs[(b * half_rot + m) * 2], sv = cs[(b * half_rot + m) * 2 + 1];
        kv = first ? kv * cv - other * sv : other * sv + kv * cv;
    }
    kt[c * p.n_ctx + p.n_past + b] = kv;
    vc[(p.n_past + b) * p.kv_dim + c] = v[i];
}

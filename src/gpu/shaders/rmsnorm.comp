#version 450
// y[b] = x[b] / sqrt(mean(x[b]^2) + eps) * w, one workgroup per token.
layout(local_size_x = 64) in;
layout(push_constant) uniform Push { uint n; float eps; uint x_row0; } p;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
shared float partial[64];

void main() {
    const uint b = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    const uint xo = (p.x_row0 + b) * p.n, yo = b * p.n;
    float s = 0.0;
    for (uint i = t; i < p.n; i += 64) s += x[xo + i] * x[xo + i];
    partial[t] = s;
    barrier();
    for (uint k = 32; k > 0; k >>= 1) {
        if (t < k) partial[t] += partial[t + k];
        barrier();
    }
    const float scale = 1.0 / sqrt(partial[0] / float(p.n) + p.eps);
    for (uint i = t; i < p.n; i += 64) y[yo + i] = x[xo + i] * scale * w[i];
}

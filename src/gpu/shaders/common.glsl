// Shared by every qforge compute shader.
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require

float half_at(uint lo, uint hi) { return unpackHalf2x16(lo | (hi << 8)).x; }

// SwiGLU: silu(g) * u, the same operations wherever a shader makes it (swiglu.comp, to_f16.comp,
// matvec_dot.comp's fused input).
float swiglu_of(float g, float u) { return g / (1.0 + exp(-g)) * u; }
vec4 swiglu_of(vec4 g, vec4 u) { return g / (1.0 + exp(-g)) * u; }

// Row quantizers and dequantizers, one pair per ggml format. The table in types.cpp points here.
#pragma once

#include <cstdint>

namespace qforge {

#define QFORGE_DECLARE_ROW_FNS(t)                                                   \
    void quantize_row_##t(const float* src, void* dst, int64_t n, const float* imatrix); \
    void dequantize_row_##t(const void* src, float* dst, int64_t n)

QFORGE_DECLARE_ROW_FNS(f32);
QFORGE_DECLARE_ROW_FNS(f16);
QFORGE_DECLARE_ROW_FNS(bf16);
QFORGE_DECLARE_ROW_FNS(q4_0);
QFORGE_DECLARE_ROW_FNS(q4_1);
QFORGE_DECLARE_ROW_FNS(q5_0);
QFORGE_DECLARE_ROW_FNS(q5_1);
QFORGE_DECLARE_ROW_FNS(q8_0);
QFORGE_DECLARE_ROW_FNS(q8_1);
QFORGE_DECLARE_ROW_FNS(q2_k);
QFORGE_DECLARE_ROW_FNS(q3_k);
QFORGE_DECLARE_ROW_FNS(q4_k);
QFORGE_DECLARE_ROW_FNS(q5_k);
QFORGE_DECLARE_ROW_FNS(q6_k);
QFORGE_DECLARE_ROW_FNS(q8_k);
QFORGE_DECLARE_ROW_FNS(iq4_nl);
QFORGE_DECLARE_ROW_FNS(iq4_xs);
QFORGE_DECLARE_ROW_FNS(mlx_a2);
QFORGE_DECLARE_ROW_FNS(mlx_a3);
QFORGE_DECLARE_ROW_FNS(mlx_a6);
QFORGE_DECLARE_ROW_FNS(mlx_a8);

#undef QFORGE_DECLARE_ROW_FNS

}  // namespace qforge

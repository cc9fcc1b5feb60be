// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: 32-element blocks with one (or two) f16 scales.
// The quantizers reproduce ggml's reference quantizers operation for operation; with an
// importance matrix they follow ggml's weighted search (make_qx_quants / make_qkx3_quants).
#include <algorithm>
#include <cfloat>

#include "qforge/half.hpp"
#include "quant/blocks.hpp"
#include "quant/kquant_search.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

namespace {

// Per-element weights for a block: imatrix * sqrt(sigma2 + x^2), sigma2 = mean x^2 over the row.
float row_sigma2(const float* x, int64_t n) {
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += x[j] * x[j];
    return sum / static_cast<float>(n);
}

void block_weights(const float* x, const float* qw, float sigma2, float* w) {
    for (int j = 0; j < 32; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

// Importance-weighted codes for each 32-block of a row, as ggml searches them: symmetric
// (make_qx_quants, codes 0 .. 2*nmax-1) for Q4_0/Q5_0, with a min (make_qkx3_quants) for Q4_1/Q5_1.
// emit(block, scale, min, codes); min is 0 for the symmetric formats.
template <class Emit>
void weighted_blocks(const float* x, int64_t n, const float* imatrix, int nmax, bool with_min, Emit emit) {
    const float sigma2 = row_sigma2(x, n);
    float w[32];
    int8_t Ls[32];
    uint8_t L[32], Laux[32];
    for (int64_t i = 0; i < n / 32; ++i) {
        block_weights(x + 32 * i, imatrix + 32 * i, sigma2, w);
        if (with_min) {
            float the_min;
            const float d = make_qkx3_quants(32, nmax, x + 32 * i, w, L, &the_min, Laux, -0.9f, 0.05f, 36, false);
            emit(i, d, -the_min, L);
        } else {
            const float d = make_qx_quants(32, nmax, x + 32 * i, Ls, 1, w);
            for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
            emit(i, d, 0.0f, L);
        }
    }
}

// Element j in the low nibble of byte j, element j+16 in its high nibble.
void pack_4bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | (L[j + 16] << 4));
}

void min_max(const float* x, int n, float* mn, float* mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; ++j) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}


}  // namespace

// ---- Q4_0 ------------------------------------------------------------------------------------

void quantize_row_q4_0(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ4_0*>(dst);
    const int64_t nb = n / 32;
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i, x += 32) {
            float amax;
            const float max = signed_absmax(x, 32, &amax);
            const float d = max / -8;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = fp32_to_fp16(d);
            for (int j = 0; j < 16; ++j) {
                const uint8_t a = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
                const uint8_t b = std::min(15, static_cast<int>(static_cast<int8_t>(x[16 + j] * id + 8.5f)));
                y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
            }
        }
        return;
    }
    weighted_blocks(x, n, imatrix, 8, false, [&](int64_t i, float d, float, const uint8_t* L) {
        y[i].d = fp32_to_fp16(d);
        pack_4bit(L, y[i].qs);
    });
}

void dequantize_row_q4_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// ---- Q4_1 ------------------------------------------------------------------------------------

void quantize_row_q4_1(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ4_1*>(dst);
    const int64_t nb = n / 32;
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i, x += 32) {
            float mn, mx;
            min_max(x, 32, &mn, &mx);
            const float d = (mx - mn) / 15;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = fp32_to_fp16(d);
            y[i].m = fp32_to_fp16(mn);
            for (int j = 0; j < 16; ++j) {
                const uint8_t a = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - mn) * id + 0.5f)));
                const uint8_t b = std::min(15, static_cast<int>(static_cast<int8_t>((x[16 + j] - mn) * id + 0.5f)));
                y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
            }
        }
        return;
    }
    weighted_blocks(x, n, imatrix, 15, true, [&](int64_t i, float d, float m, const uint8_t* L) {
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(m);
        pack_4bit(L, y[i].qs);
    });
}

void dequantize_row_q4_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; ++j) {
            y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
            y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

// ---- Q5_0 / Q5_1 -----------------------------------------------------------------------------

namespace {
// Low nibbles into qs, the fifth bits into the 32-bit qh (element j at bit j).
void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
        qh |= ((L[j] & 0x10u) >> 4) << j;
        qh |= ((L[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    std::memcpy(qh_bytes, &qh, 4);
}
uint32_t load_qh(const uint8_t* qh_bytes) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    return qh;
}
}  // namespace

void quantize_row_q5_0(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ5_0*>(dst);
    const int64_t nb = n / 32;
    uint8_t L[32];
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i, x += 32) {
            float amax;
            const float max = signed_absmax(x, 32, &amax);
            const float d = max / -16;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = fp32_to_fp16(d);
            for (int j = 0; j < 32; ++j)
                L[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f))));
            pack_5bit(L, y[i].qs, y[i].qh);
        }
        return;
    }
    weighted_blocks(x, n, imatrix, 16, false, [&](int64_t i, float d, float, const uint8_t* codes) {
        y[i].d = fp32_to_fp16(d);
        pack_5bit(codes, y[i].qs, y[i].qh);
    });
}

void dequantize_row_q5_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < 16; ++j) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            y[j] = static_cast<float>(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + 16] = static_cast<float>(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void quantize_row_q5_1(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ5_1*>(dst);
    const int64_t nb = n / 32;
    uint8_t L[32];
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i, x += 32) {
            float mn, mx;
            min_max(x, 32, &mn, &mx);
            const float d = (mx - mn) / 31;
            const float id = d ? 1.0f / d : 0.0f;
            y[i].d = fp32_to_fp16(d);
            y[i].m = fp32_to_fp16(mn);
            for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>((x[j] - mn) * id + 0.5f);
            pack_5bit(L, y[i].qs, y[i].qh);
        }
        return;
    }
    weighted_blocks(x, n, imatrix, 31, true, [&](int64_t i, float d, float m, const uint8_t* codes) {
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(m);
        pack_5bit(codes, y[i].qs, y[i].qh);
    });
}

void dequantize_row_q5_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < 16; ++j) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

// ---- Q8_0 / Q8_1 (the imatrix does not change them, as in ggml) ------------------------------

void quantize_row_q8_0(const float* x, void* dst, int64_t n, const float*) {
    auto* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    }
}

void dequantize_row_q8_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

void quantize_row_q8_1(const float* x, void* dst, int64_t n, const float*) {
    auto* y = static_cast<BlockQ8_1*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 16; ++j) {
            y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
            y[i].qs[16 + j] = static_cast<int8_t>(std::round(x[16 + j] * id));
            sum += y[i].qs[j] + y[i].qs[16 + j];
        }
        y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
}

void dequantize_row_q8_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

}  // namespace qforge

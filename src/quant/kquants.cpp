// K-quants (Q2_K … Q6_K, Q8_K): 256-element super-blocks with quantized sub-block scales.
// Without an imatrix each follows ggml's reference quantizer; with one, ggml's weighted variant.
#include <algorithm>

#include "qforge/half.hpp"
#include "quant/blocks.hpp"
#include "quant/kquant_search.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

namespace {

float sum_squares(const float* x, int n) {
    float s = 0;
    for (int j = 0; j < n; ++j) s += x[j] * x[j];
    return s;
}

// Q2_K/Q3_K pack four 2-bit codes from 32-apart positions into each byte.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// 6-bit scale and min of sub-block j in the 12-byte Q4_K/Q5_K scale array.
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

void set_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* scales) {
    if (j < 4) {
        scales[j] = ls;
        scales[j + 4] = lm;
    } else {
        scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        scales[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
}

// Final codes of a Q4_K/Q5_K super-block from its stored scales.
void requantize_k4(const float* x, const uint8_t* scales, uint16_t dh, uint16_t dminh, int nmax, uint8_t* L) {
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales, &sc, &m);
        const float d = fp16_to_fp32(dh) * static_cast<float>(sc);
        if (!d) continue;
        const float dm = fp16_to_fp32(dminh) * static_cast<float>(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        }
    }
}

// Q3_K scales: 16 six-bit values, low nibbles in bytes 0..7, top bits in bytes 8..11.
void set_q3_scale(int j, int l, uint8_t* scales) {
    if (j < 8) scales[j] = static_cast<uint8_t>(l & 0xF);
    else scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
    l >>= 4;
    scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
}
int get_q3_scale(int j, const uint8_t* scales) {
    int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// Final Q3_K codes and bit packing (shared by both quantizers).
void finish_q3_k(const float* x, BlockQ3_K& y, int8_t* L) {
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = fp16_to_fp32(y.d) * static_cast<float>(static_cast<int8_t>(get_q3_scale(j, y.scales)));
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = std::max(-4, std::min(3, nearest_int(x[16 * j + ii] / d)));
            L[16 * j + ii] = static_cast<int8_t>(l + 4);
        }
    }
    std::memset(y.hmask, 0, QK_K / 8);
    int m = 0;
    uint8_t hm = 1;
    for (int j = 0; j < QK_K; ++j) {
        if (L[j] > 3) {
            y.hmask[m] |= hm;
            L[j] = static_cast<int8_t>(L[j] - 4);
        }
        if (++m == QK_K / 8) {
            m = 0;
            hm = static_cast<uint8_t>(hm << 1);
        }
    }
    pack_2bit(reinterpret_cast<const uint8_t*>(L), y.qs);
}

void pack_q5_k(const uint8_t* L, BlockQ5_K& y) {
    uint8_t* qh = y.qh;
    uint8_t* ql = y.qs;
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
        m1 = static_cast<uint8_t>(m1 << 2);
        m2 = static_cast<uint8_t>(m2 << 2);
        ql += 32;
    }
}

}  // namespace

// ---- Q2_K ------------------------------------------------------------------------------------

void quantize_row_q2_k(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ2_K*>(dst);
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        if (!imatrix) {
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < QK_K / 16; ++j) {
                for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
                scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
                max_scale = std::max(max_scale, scales[j]);
                max_min = std::max(max_min, mins[j]);
            }
            if (max_scale > 0) {
                const float iscale = 15.f / max_scale;
                for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
                y[i].d = fp32_to_fp16(max_scale / 15.f);
            } else {
                for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
                y[i].d = fp32_to_fp16(0.f);
            }
            if (max_min > 0) {
                const float iscale = 15.f / max_min;
                for (int j = 0; j < QK_K / 16; ++j)
                    y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
                y[i].dmin = fp32_to_fp16(max_min / 15.f);
            } else {
                y[i].dmin = fp32_to_fp16(0.f);
            }
        } else {
            const float* qw_row = imatrix + QK_K * i;
            float sw[QK_K / 16] = {};
            uint8_t Ls[QK_K / 16], Lm[QK_K / 16];
            const float sigma2 = sum_squares(x, QK_K) / QK_K;
            for (int j = 0; j < QK_K / 16; ++j) {
                const float* qw = qw_row + 16 * j;
                for (int l = 0; l < 16; ++l) weights[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
                for (int l = 0; l < 16; ++l) sw[j] += weights[l];
                scales[j] = make_qkx3_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
            }
            const float dm = make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
            const float mm = make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
            y[i].d = fp32_to_fp16(dm);
            y[i].dmin = fp32_to_fp16(mm);
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
        }
        const float dd = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = dd * static_cast<float>(y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = dmin * static_cast<float>(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

void dequantize_row_q2_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ2_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t* q = x[i].qs;
        int is = 0;
        for (int nn = 0; nn < QK_K; nn += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; ++half) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
            q += 32;
        }
    }
}

// ---- Q3_K ------------------------------------------------------------------------------------

void quantize_row_q3_k(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ3_K*>(dst);
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        std::memset(y[i].scales, 0, 12);
        if (!imatrix) {
            float max_scale = 0, amax = 0;
            for (int j = 0; j < QK_K / 16; ++j) {
                scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
                const float scale = std::fabs(scales[j]);
                if (scale > amax) {
                    amax = scale;
                    max_scale = scales[j];
                }
            }
            if (max_scale) {
                const float iscale = -32.f / max_scale;
                for (int j = 0; j < QK_K / 16; ++j) {
                    int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
                    l = static_cast<int8_t>(std::max(-32, std::min(31, static_cast<int>(l))) + 32);
                    set_q3_scale(j, l, y[i].scales);
                }
                y[i].d = fp32_to_fp16(1 / iscale);
            } else {
                y[i].d = fp32_to_fp16(0.f);
            }
        } else {
            float weight[16], sw[QK_K / 16];
            int8_t Ls[QK_K / 16];
            const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
            for (int j = 0; j < QK_K / 16; ++j) {
                const float* qw = imatrix + QK_K * i + 16 * j;
                for (int l = 0; l < 16; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
                float sumw = 0;
                for (int l = 0; l < 16; ++l) sumw += weight[l];
                sw[j] = sumw;
                scales[j] = make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
            }
            const float d_block = make_qx_quants(QK_K / 16, 32, scales, Ls, 1, sw);
            for (int j = 0; j < QK_K / 16; ++j) set_q3_scale(j, Ls[j], y[i].scales);
            y[i].d = fp32_to_fp16(d_block);
        }
        finish_q3_k(x, y[i], L);
    }
}

void dequantize_row_q3_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ3_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d_all = fp16_to_fp32(x[i].d);
        const uint8_t* q = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int nn = 0; nn < QK_K; nn += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; ++half) {
                    const float dl = d_all * static_cast<float>(static_cast<int8_t>(get_q3_scale(is++, x[i].scales)));
                    for (int l = 0; l < 16; ++l) {
                        const int v = ((q[l + 16 * half] >> shift) & 3) - ((hm[l + 16 * half] & m) ? 0 : 4);
                        *y++ = dl * static_cast<float>(v);
                    }
                }
                m = static_cast<uint8_t>(m << 1);
            }
            q += 32;
        }
    }
}

// ---- Q4_K / Q5_K -----------------------------------------------------------------------------

namespace {

// Scales and mins of the eight 32-element sub-blocks of a Q4_K/Q5_K super-block.
void quantize_k4_scales(const float* x, int nmax, const float* qw, uint8_t* L, uint8_t* scales_out, uint16_t* d_out,
                        uint16_t* dmin_out) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    std::memset(scales_out, 0, 12);
    if (!qw) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            const float av_x = std::sqrt(sum_squares(x + 32 * j, 32) / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
            const bool q4 = nmax == 15;
            scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, q4 ? -1.f : -0.5f,
                                         0.1f, q4 ? 20 : 15, false);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QK_K / 32; ++j) {
            uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
            uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
            set_scale_min_k4(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), scales_out);
        }
        *d_out = fp32_to_fp16(max_scale / 63.f);
        *dmin_out = fp32_to_fp16(max_min / 63.f);
        return;
    }
    float sw[QK_K / 32];
    uint8_t Ls[QK_K / 32], Lm[QK_K / 32];
    const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < QK_K / 32; ++j) {
        for (int l = 0; l < 32; ++l) weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; ++l) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
    }
    const float d_block = make_qp_quants(QK_K / 32, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
    for (int j = 0; j < QK_K / 32; ++j) set_scale_min_k4(j, std::min<uint8_t>(63, Ls[j]), std::min<uint8_t>(63, Lm[j]), scales_out);
    *d_out = fp32_to_fp16(d_block);
    *dmin_out = fp32_to_fp16(m_block);
}

}  // namespace

void quantize_row_q4_k(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ4_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_k4_scales(x, 15, imatrix ? imatrix + QK_K * i : nullptr, L, y[i].scales, &y[i].d, &y[i].dmin);
        requantize_k4(x, y[i].scales, y[i].d, y[i].dmin, 15, L);
        uint8_t* q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
}

void dequantize_row_q4_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* q = x[i].qs;
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        int is = 0;
        for (int j = 0; j < QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

void quantize_row_q5_k(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ5_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_k4_scales(x, 31, imatrix ? imatrix + QK_K * i : nullptr, L, y[i].scales, &y[i].d, &y[i].dmin);
        requantize_k4(x, y[i].scales, y[i].d, y[i].dmin, 31, L);
        pack_q5_k(L, y[i]);
    }
}

void dequantize_row_q5_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* ql = x[i].qs;
        const uint8_t* qh = x[i].qh;
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K; j += 64, ql += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = static_cast<uint8_t>(u1 << 2);
            u2 = static_cast<uint8_t>(u2 << 2);
        }
    }
}

// ---- Q6_K ------------------------------------------------------------------------------------

void quantize_row_q6_k(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockQ6_K*>(dst);
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float* qw = imatrix ? imatrix + QK_K * i + 16 * ib : nullptr;
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw);
            scales[ib] = scale;
            if (std::fabs(scale) > max_abs_scale) {
                max_abs_scale = std::fabs(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < 1e-15f) {
            std::memset(&y[i], 0, sizeof(BlockQ6_K));
            y[i].d = fp32_to_fp16(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j]);
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d)));
                L[16 * j + ii] = static_cast<int8_t>(l + 32);
            }
        }
        uint8_t* ql = y[i].ql;
        uint8_t* qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
                ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
                qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                             ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void dequantize_row_q6_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ6_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int nn = 0; nn < QK_K; nn += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

// ---- Q8_K (activations) ----------------------------------------------------------------------

void quantize_row_q8_k(const float* x, void* dst, int64_t n, const float*) {
    auto* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax;
        const float max = signed_absmax(x, QK_K, &amax);
        if (!amax) {
            y[i].d = 0;
            std::memset(y[i].qs, 0, QK_K);
            std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

void dequantize_row_q8_k(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K)
        for (int j = 0; j < QK_K; ++j) y[j] = x[i].d * static_cast<float>(x[i].qs[j]);
}

}  // namespace qforge

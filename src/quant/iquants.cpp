// IQ4_NL (32-element blocks) and IQ4_XS (256-element super-blocks): codes index a fixed
// non-linear table of 16 levels. Both follow ggml's search (7 scale trials either side).
#include <algorithm>

#include "qforge/half.hpp"
#include "quant/blocks.hpp"
#include "quant/kquant_search.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

namespace {

constexpr int kNtry = 7;

// One super-block of super_block_size elements in sub-blocks of 32. For IQ4_NL both sizes are 32.
void quantize_iq4_superblock(int super_block_size, const float* x, uint16_t* dh, uint8_t* q4, uint16_t* scales_h,
                             uint8_t* scales_l, const float* quant_weights) {
    constexpr int block_size = 32;
    const int8_t* values = kIq4nlValues;
    float scales[QK_K / 32], weight[32];
    uint8_t L[QK_K];
    float sigma2 = 0;
    for (int j = 0; j < super_block_size; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / static_cast<float>(super_block_size);
    std::memset(q4, 0, static_cast<size_t>(super_block_size / 2));
    dh[0] = fp32_to_fp16(0.f);

    float max_scale = 0, amax_scale = 0;
    const int nsub = super_block_size / block_size;
    for (int ib = 0; ib < nsub; ++ib) {
        const float* xb = x + ib * block_size;
        uint8_t* Lb = L + ib * block_size;
        if (quant_weights) {
            const float* qw = quant_weights + ib * block_size;
            for (int j = 0; j < block_size; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
        }
        float amax;
        const float max = signed_absmax(xb, block_size, &amax);
        if (amax < 1e-15f) {
            scales[ib] = 0;
            std::memset(Lb, 0, block_size);
            continue;
        }
        float d = -max / static_cast<float>(values[0]);
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; ++j) {
            const int l = best_index_int8(16, values, id * xb[j]);
            Lb[j] = static_cast<uint8_t>(l);
            const float q = values[l];
            sumqx += weight[j] * q * xb[j];
            sumq2 += weight[j] * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -kNtry; itry <= kNtry; ++itry) {
            id = static_cast<float>(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; ++j) {
                const int l = best_index_int8(16, values, id * xb[j]);
                const float q = values[l];
                sumqx += weight[j] * q * xb[j];
                sumq2 += weight[j] * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (std::fabs(d) > amax_scale) {
            amax_scale = std::fabs(d);
            max_scale = d;
        }
    }

    if (nsub > 1) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        dh[0] = fp32_to_fp16(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nsub; ++ib) {
            int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
            const float dl = d * static_cast<float>(l);
            const float idl = dl ? 1 / dl : 0.f;
            uint8_t* Lb = L + ib * block_size;
            const float* xb = x + ib * block_size;
            for (int j = 0; j < block_size; ++j) Lb[j] = static_cast<uint8_t>(best_index_int8(16, values, idl * xb[j]));
            l += 32;
            const uint8_t l_l = static_cast<uint8_t>(l & 0xf), l_h = static_cast<uint8_t>(l >> 4);
            if (ib % 2 == 0) scales_l[ib / 2] = l_l;
            else scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
            *scales_h |= static_cast<uint16_t>(l_h << (2 * (ib % 8)));
        }
    } else {
        dh[0] = fp32_to_fp16(scales[0]);
        const float id = scales[0] ? 1 / scales[0] : 0;
        for (int j = 0; j < super_block_size; ++j) L[j] = static_cast<uint8_t>(best_index_int8(16, values, id * x[j]));
    }
    for (int i = 0; i < super_block_size / 32; ++i)
        for (int j = 0; j < 16; ++j) q4[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace

void quantize_row_iq4_nl(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ4_NL*>(dst);
    for (int64_t ib = 0; ib < n / 32; ++ib) {
        uint16_t unused_h = 0;
        quantize_iq4_superblock(32, x + 32 * ib, &y[ib].d, y[ib].qs, &unused_h, nullptr,
                                imatrix ? imatrix + 32 * ib : nullptr);
    }
}

void dequantize_row_iq4_nl(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ4_NL*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = d * static_cast<float>(kIq4nlValues[x[i].qs[j] & 0xf]);
            y[j + 16] = d * static_cast<float>(kIq4nlValues[x[i].qs[j] >> 4]);
        }
    }
}

void quantize_row_iq4_xs(const float* x, void* dst, int64_t n, const float* imatrix) {
    auto* y = static_cast<BlockIQ4_XS*>(dst);
    for (int64_t ib = 0; ib < n / QK_K; ++ib) {
        quantize_iq4_superblock(QK_K, x + QK_K * ib, &y[ib].d, y[ib].qs, &y[ib].scales_h, y[ib].scales_l,
                                imatrix ? imatrix + QK_K * ib : nullptr);
    }
}

void dequantize_row_iq4_xs(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIQ4_XS*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        const float d = fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib, qs += 16, y += 32) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * static_cast<float>(ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xf]);
                y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
            }
        }
    }
}

}  // namespace qforge

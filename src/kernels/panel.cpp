#include "kernels/panel.hpp"

#include <cstring>
#include <iterator>

#include "kernels/vec_dot.hpp"
#include "qforge/half.hpp"
#include "quant/affine_blocks.hpp"
#include "quant/blocks.hpp"

namespace qforge {

namespace {

// Walks eight-row groups and their blocks: fn(out block, row in group, that row's stored block).
template <class Block, class Fn>
void regroup(const uint8_t* src, int64_t rows, int64_t cols, int64_t block_elems, uint8_t* dst, size_t out_bytes, Fn fn) {
    const int64_t nb = cols / block_elems;
    const size_t rb = static_cast<size_t>(nb) * sizeof(Block);
    for (int64_t g = 0; g < rows / kPanelRows; ++g)
        for (int64_t b = 0; b < nb; ++b)
            for (int r = 0; r < kPanelRows; ++r)
                fn(dst + static_cast<size_t>(g * nb + b) * out_bytes, r,
                   reinterpret_cast<const Block*>(src + static_cast<size_t>(g * kPanelRows + r) * rb)[b]);
}

// The scalar form of a regrouped kernel: out[c * 8 + r] = sum over blocks b of
// block(p = that block of the group, r, t = token, b), each a float, in order.
template <class Fn>
void regrouped_scalar(const uint8_t* group, int64_t n_blocks, size_t block_bytes, int c0, int nc, float* out, Fn block) {
    for (int c = 0; c < nc; ++c)
        for (int r = 0; r < kPanelRows; ++r) {
            float acc = 0;
            for (int64_t b = 0; b < n_blocks; ++b) acc += block(group + static_cast<size_t>(b) * block_bytes, r, static_cast<size_t>(c0 + c), b);
            out[c * kPanelRows + r] = acc;
        }
}

uint16_t load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// The first (best) usable kernel set's entry, or nullptr.
template <class Fn>
Fn first_kernel(Fn KernelSet::*member) {
    const auto& sets = usable_kernel_sets();
    for (const auto& s : sets)
        if (s.*member) return s.*member;
    return nullptr;
}

// ---- one stored row -> int8 codes and per-group scale/min (w = scale * q + min) ----------------

template <class Block>
const Block* blocks(const uint8_t* row) {
    return reinterpret_cast<const Block*>(row);
}

// The 32 nibbles of a 32-element block: low nibbles are elements 0-15, high nibbles 16-31.
template <class F>
void nibbles32(const uint8_t* qs, int8_t* out, F code) {
    for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<int8_t>(code(qs[j] & 0x0F, j));
        out[j + 16] = static_cast<int8_t>(code(qs[j] >> 4, j + 16));
    }
}

void unpack_q4_0(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockQ4_0>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        nibbles32(x[b].qs, q + 32 * b, [](int v, int) { return v - 8; });
        s[b] = fp16_to_fp32(x[b].d);
    }
}

void unpack_q5_0(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockQ5_0>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        uint32_t qh;
        std::memcpy(&qh, x[b].qh, 4);
        nibbles32(x[b].qs, q + 32 * b, [qh](int v, int j) { return (v | static_cast<int>(((qh >> j) & 1u) << 4)) - 16; });
        s[b] = fp16_to_fp32(x[b].d);
    }
}

void unpack_q4_1(const uint8_t* row, int64_t K, int8_t* q, float* s, float* m) {
    const auto* x = blocks<BlockQ4_1>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        nibbles32(x[b].qs, q + 32 * b, [](int v, int) { return v; });
        s[b] = fp16_to_fp32(x[b].d);
        m[b] = fp16_to_fp32(x[b].m);
    }
}

void unpack_q5_1(const uint8_t* row, int64_t K, int8_t* q, float* s, float* m) {
    const auto* x = blocks<BlockQ5_1>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        uint32_t qh;
        std::memcpy(&qh, x[b].qh, 4);
        nibbles32(x[b].qs, q + 32 * b, [qh](int v, int j) { return v | static_cast<int>(((qh >> j) & 1u) << 4); });
        s[b] = fp16_to_fp32(x[b].d);
        m[b] = fp16_to_fp32(x[b].m);
    }
}

void unpack_q8_0(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockQ8_0>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        std::memcpy(q + 32 * b, x[b].qs, 32);
        s[b] = fp16_to_fp32(x[b].d);
    }
}

void unpack_iq4_nl(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockIQ4_NL>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        nibbles32(x[b].qs, q + 32 * b, [](int v, int) { return kIq4nlValues[v]; });
        s[b] = fp16_to_fp32(x[b].d);
    }
}

void unpack_iq4_xs(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockIQ4_XS>(row);
    for (int64_t i = 0; i < K / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
            nibbles32(x[i].qs + 16 * ib, q + QK_K * i + 32 * ib, [](int v, int) { return kIq4nlValues[v]; });
            s[8 * i + ib] = d * static_cast<float>(ls - 32);
        }
    }
}

// Q4_K / Q5_K: 64 elements per 32 bytes of qs, low nibbles first; groups of 32 with 6-bit
// scales and mins: w = d*sc*q - dmin*m.
template <class Block, bool kFive>
void unpack_q45_k(const uint8_t* row, int64_t K, int8_t* q, float* s, float* m) {
    const auto* x = blocks<Block>(row);
    for (int64_t i = 0; i < K / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        unpack_k4_scales(x[i].scales, sc, mn);
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        int8_t* o = q + QK_K * i;
        for (int j = 0; j < 4; ++j) {
            for (int l = 0; l < 32; ++l) {
                int lo = x[i].qs[32 * j + l] & 0x0F, hi = x[i].qs[32 * j + l] >> 4;
                if constexpr (kFive) {
                    lo |= ((x[i].qh[l] >> (2 * j)) & 1) << 4;
                    hi |= ((x[i].qh[l] >> (2 * j + 1)) & 1) << 4;
                }
                o[64 * j + l] = static_cast<int8_t>(lo);
                o[64 * j + 32 + l] = static_cast<int8_t>(hi);
            }
        }
        for (int j = 0; j < 8; ++j) {
            s[8 * i + j] = d * static_cast<float>(sc[j]);
            m[8 * i + j] = -(dmin * static_cast<float>(mn[j]));
        }
    }
}

void unpack_q6_k(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockQ6_K>(row);
    for (int64_t i = 0; i < K / QK_K; ++i) {
        int8_t* o = q + QK_K * i;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = x[i].ql + 64 * half;
            const uint8_t* qh = x[i].qh + 32 * half;
            for (int l = 0; l < 32; ++l) {
                o[128 * half + l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                o[128 * half + 32 + l] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[128 * half + 64 + l] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[128 * half + 96 + l] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        const float d = fp16_to_fp32(x[i].d);
        for (int g = 0; g < 16; ++g) s[16 * i + g] = d * static_cast<float>(x[i].scales[g]);
    }
}

void unpack_q2_k(const uint8_t* row, int64_t K, int8_t* q, float* s, float* m) {
    const auto* x = blocks<BlockQ2_K>(row);
    for (int64_t i = 0; i < K / QK_K; ++i) {
        int8_t* o = q + QK_K * i;
        for (int half = 0; half < 2; ++half)
            for (int j = 0; j < 4; ++j)
                for (int l = 0; l < 32; ++l) o[128 * half + 32 * j + l] = static_cast<int8_t>((x[i].qs[32 * half + l] >> (2 * j)) & 3);
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        for (int g = 0; g < 16; ++g) {
            s[16 * i + g] = d * static_cast<float>(x[i].scales[g] & 0xF);
            m[16 * i + g] = -(dmin * static_cast<float>(x[i].scales[g] >> 4));
        }
    }
}

void unpack_q3_k(const uint8_t* row, int64_t K, int8_t* q, float* s, float*) {
    const auto* x = blocks<BlockQ3_K>(row);
    for (int64_t i = 0; i < K / QK_K; ++i) {
        int8_t* o = q + QK_K * i;
        for (int half = 0; half < 2; ++half)
            for (int j = 0; j < 4; ++j)
                for (int l = 0; l < 32; ++l) {
                    const int q2 = (x[i].qs[32 * half + l] >> (2 * j)) & 3, hb = (x[i].hmask[l] >> (4 * half + j)) & 1;
                    o[128 * half + 32 * j + l] = static_cast<int8_t>(q2 + 4 * hb - 4);
                }
        const float d = fp16_to_fp32(x[i].d);
        for (int g = 0; g < 16; ++g) {
            const int lo = g < 8 ? x[i].scales[g] & 0xF : x[i].scales[g - 8] >> 4;
            const int sc = (lo | (((x[i].scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32;
            s[16 * i + g] = d * static_cast<float>(sc);
        }
    }
}

// MLX affine blocks: codes as they are with the bias as minimum; 8-bit codes less 128 (to fit
// int8), with 128 scales added to the minimum.
template <class Block, int kOffset>
void unpack_mlx(const uint8_t* row, int64_t K, int8_t* q, float* s, float* m) {
    const auto* x = blocks<Block>(row);
    for (int64_t b = 0; b < K / 32; ++b) {
        for (int j = 0; j < 32; ++j) q[32 * b + j] = static_cast<int8_t>(mlx_block_code(x[b], j) - kOffset);
        s[b] = fp16_to_fp32(x[b].d);
        m[b] = fp16_to_fp32(x[b].m) + static_cast<float>(kOffset) * s[b];
    }
}

const PanelFormat kFormats[] = {
    {GgmlType::Q4_0, 32, false, 8, unpack_q4_0},
    {GgmlType::Q5_0, 32, false, 16, unpack_q5_0},
    {GgmlType::Q4_1, 32, true, 15, unpack_q4_1},
    {GgmlType::Q5_1, 32, true, 31, unpack_q5_1},
    {GgmlType::Q8_0, 32, false, 127, unpack_q8_0},
    {GgmlType::IQ4_NL, 32, false, 127, unpack_iq4_nl},
    {GgmlType::IQ4_XS, 32, false, 127, unpack_iq4_xs},
    {GgmlType::Q4_K, 32, true, 15, unpack_q45_k<BlockQ4_K, false>},
    {GgmlType::Q5_K, 32, true, 31, unpack_q45_k<BlockQ5_K, true>},
    {GgmlType::Q6_K, 16, false, 32, unpack_q6_k},
    {GgmlType::Q2_K, 16, true, 3, unpack_q2_k},
    {GgmlType::Q3_K, 16, false, 4, unpack_q3_k},
    {GgmlType::MLX_A2, 32, true, 3, unpack_mlx<BlockMlxA2, 0>},
    {GgmlType::MLX_A3, 32, true, 7, unpack_mlx<BlockMlxA3, 0>},
    {GgmlType::MLX_A6, 32, true, 63, unpack_mlx<BlockMlxA6, 0>},
    {GgmlType::MLX_A8, 32, true, 128, unpack_mlx<BlockMlxA8, 128>},
};

}  // namespace

const PanelFormat* find_panel_format(GgmlType t) {
    for (const auto& f : kFormats)
        if (f.type == t) return &f;
    return nullptr;
}

void pack_panel(const PanelFormat& f, const uint8_t* rows, size_t row_bytes, int nrows, int64_t K, Panel& p) {
    const int64_t ng = K / f.G;
    p.K = K;
    p.G = f.G;
    p.codes.resize(static_cast<size_t>(K) * kPanelRows);
    p.scale.assign(static_cast<size_t>(ng) * kPanelRows, 0.f);
    p.min.assign(static_cast<size_t>(ng) * kPanelRows, 0.f);
    p.bias.assign(static_cast<size_t>(ng) * kPanelRows, 0);
    thread_local std::vector<int8_t> q;
    thread_local std::vector<float> s, m;
    q.resize(static_cast<size_t>(K));
    s.resize(static_cast<size_t>(ng));
    m.assign(static_cast<size_t>(ng), 0.f);
    for (int r = 0; r < kPanelRows; ++r) {
        if (r < nrows) {
            f.unpack(rows + static_cast<size_t>(r) * row_bytes, K, q.data(), s.data(), m.data());
        } else {
            std::fill(q.begin(), q.end(), int8_t{0});
            std::fill(s.begin(), s.end(), 0.f);
            std::fill(m.begin(), m.end(), 0.f);
        }
        int8_t* dst = p.codes.data() + 4 * r;
        for (int64_t k = 0; k < K / 4; ++k) std::memcpy(dst + 32 * k, q.data() + 4 * k, 4);
        for (int64_t g = 0; g < ng; ++g) {
            int sum = 0;
            for (int i = 0; i < f.G; ++i) sum += q[static_cast<size_t>(g * f.G + i)];
            const size_t at = static_cast<size_t>(g) * kPanelRows + static_cast<size_t>(r);
            p.bias[at] = -128 * sum;
            p.scale[at] = s[static_cast<size_t>(g)];
            p.min[at] = m[static_cast<size_t>(g)];
        }
    }
}

void resize_panel_acts(PanelActs& a, int64_t K, int G, int n) {
    a.K = K;
    a.G = G;
    a.n = n;
    a.yu.resize(static_cast<size_t>(K) * static_cast<size_t>(n));
    a.dy.resize(static_cast<size_t>(K / G) * static_cast<size_t>(n));
    a.sy.resize(a.dy.size());
}

void pack_panel_acts(GgmlType act_type, const void* q, int t, PanelActs& a) {
    const int64_t K = a.K, ng = K / a.G;
    uint8_t* yu = a.yu.data() + static_cast<size_t>(t) * static_cast<size_t>(K);
    float* dy = a.dy.data() + static_cast<size_t>(t) * static_cast<size_t>(ng);
    float* sy = a.sy.data() + static_cast<size_t>(t) * static_cast<size_t>(ng);
    auto codes_of = [&](const int8_t* src, int64_t at, int len) {
        int sum = 0;
        for (int i = 0; i < len; ++i) {
            yu[at + i] = static_cast<uint8_t>(src[i] + 128);
            sum += src[i];
        }
        return sum;
    };
    if (act_type == GgmlType::Q8_K) {
        const auto* y = static_cast<const BlockQ8_K*>(q);
        const int per = QK_K / a.G;
        for (int64_t g = 0; g < ng; ++g) {
            const BlockQ8_K& b = y[g / per];
            const int64_t off = (g % per) * a.G;
            codes_of(b.qs + off, g * a.G, a.G);
            const int sum = a.G == 16 ? b.bsums[off / 16] : b.bsums[off / 16] + b.bsums[off / 16 + 1];
            dy[g] = b.d;
            sy[g] = b.d * static_cast<float>(sum);
        }
    } else {  // q8_0 or q8_1: the same codes and scale per 32 elements
        const size_t bs = act_type == GgmlType::Q8_1 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
        const size_t qs_at = act_type == GgmlType::Q8_1 ? offsetof(BlockQ8_1, qs) : offsetof(BlockQ8_0, qs);
        for (int64_t g = 0; g < ng; ++g) {
            const uint8_t* b = static_cast<const uint8_t*>(q) + static_cast<size_t>(g) * bs;
            uint16_t d16;
            std::memcpy(&d16, b, 2);
            const int sum = codes_of(reinterpret_cast<const int8_t*>(b + qs_at), g * 32, 32);
            dy[g] = fp16_to_fp32(d16);
            sy[g] = dy[g] * static_cast<float>(sum);
        }
    }
}

void panel_gemm_scalar(const Panel& p, const PanelActs& a, int c0, int nc, float* out) {
    const int64_t ng = p.K / p.G;
    for (int c = 0; c < nc; ++c) {
        const size_t t = static_cast<size_t>(c0 + c);
        const uint8_t* yu = a.yu.data() + t * static_cast<size_t>(a.K);
        for (int r = 0; r < kPanelRows; ++r) {
            float acc = 0;
            for (int64_t g = 0; g < ng; ++g) {
                const size_t at = static_cast<size_t>(g) * kPanelRows + static_cast<size_t>(r);
                int32_t s = p.bias[at];
                for (int64_t e = g * p.G; e < (g + 1) * p.G; ++e)
                    s += yu[e] * p.codes[static_cast<size_t>(((e / 4) * kPanelRows + r) * 4 + e % 4)];
                const size_t ga = t * static_cast<size_t>(ng) + static_cast<size_t>(g);
                acc += p.scale[at] * a.dy[ga] * static_cast<float>(s) + p.min[at] * a.sy[ga];
            }
            out[c * kPanelRows + r] = acc;
        }
    }
}

PanelKernels find_panel_kernels(const PanelFormat& f) {
    const auto& sets = usable_kernel_sets();
    for (const auto& s : sets) {
        if (f.max_code > s.panel_max_code) continue;
        PanelKernels k;
        k.gemm = s.panel[f.G == 16 ? 0 : 1][f.has_min ? 1 : 0];
        for (const PanelPacker* p = s.packers_begin; p != s.packers_end; ++p)
            if (p->type == f.type) k.pack = p->pack;
        if (k.gemm) return k;
    }
    return {};
}

}  // namespace qforge

namespace qforge {

void repack_q4_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ4_0>(src, rows, cols, 32, dst, kQ4_0x8Block, [](uint8_t* o, int r, const BlockQ4_0& blk) {
        std::memcpy(o + 2 * r, &blk.d, 2);
        for (int j = 0; j < 4; ++j) std::memcpy(o + 16 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
    });
}

void resize_x8_acts(X8Acts& a, int64_t K, int n) {
    a.K = K;
    a.n = n;
    a.q.resize(static_cast<size_t>(K) * static_cast<size_t>(n));
    a.d.resize(static_cast<size_t>(K / 32) * static_cast<size_t>(n));
    a.s8.resize(a.d.size());
}

void pack_x8_acts(const void* q8_0_row, int t, X8Acts& a) {
    const auto* y = static_cast<const BlockQ8_0*>(q8_0_row);
    const int64_t nb = a.K / 32;
    for (int64_t b = 0; b < nb; ++b) {
        int sum = 0;
        for (int i = 0; i < 32; ++i) sum += y[b].qs[i];
        std::memcpy(a.q.data() + static_cast<size_t>(t) * static_cast<size_t>(a.K) + 32 * b, y[b].qs, 32);
        a.d[static_cast<size_t>(t * nb + b)] = fp16_to_fp32(y[b].d);
        a.s8[static_cast<size_t>(t * nb + b)] = 8 * sum;
    }
}

void q4_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out) {
    const int64_t nb = a.K / 32;
    regrouped_scalar(group, nb, kQ4_0x8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* yq = a.q.data() + t * static_cast<size_t>(a.K) + 32 * b;
        const size_t at = t * static_cast<size_t>(nb) + static_cast<size_t>(b);
        int32_t s = -a.s8[at];
        for (int j = 0; j < 4; ++j)
            for (int i = 0; i < 4; ++i) {
                const uint8_t byte = p[16 + 32 * j + 4 * r + i];
                s += (byte & 0x0F) * yq[4 * j + i] + (byte >> 4) * yq[16 + 4 * j + i];
            }
        return fp16_to_fp32(load_u16(p + 2 * r)) * a.d[at] * static_cast<float>(s);
    });
}

void repack_q8_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ8_0>(src, rows, cols, 32, dst, kQ8_0x8Block, [](uint8_t* o, int r, const BlockQ8_0& blk) {
        std::memcpy(o + 2 * r, &blk.d, 2);
        for (int k = 0; k < 8; ++k) std::memcpy(o + 16 + 32 * k + 4 * r, blk.qs + 4 * k, 4);
    });
}

void q8_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out) {
    const int64_t nb = a.K / 32;
    regrouped_scalar(group, nb, kQ8_0x8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* yq = a.q.data() + t * static_cast<size_t>(a.K) + 32 * b;
        int32_t s = 0;
        for (int k = 0; k < 8; ++k)
            for (int i = 0; i < 4; ++i) s += static_cast<int8_t>(p[16 + 32 * k + 4 * r + i]) * yq[4 * k + i];
        return fp16_to_fp32(load_u16(p + 2 * r)) * a.d[t * static_cast<size_t>(nb) + static_cast<size_t>(b)] * static_cast<float>(s);
    });
}

void repack_q5_0_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ5_0>(src, rows, cols, 32, dst, kQ5_0x8Block, [](uint8_t* o, int r, const BlockQ5_0& blk) {
        std::memcpy(o + 2 * r, &blk.d, 2);
        uint32_t qh;
        std::memcpy(&qh, blk.qh, 4);
        for (int i = 0; i < 4; ++i) {
            uint8_t v = 0;
            for (int k = 0; k < 8; ++k) v = static_cast<uint8_t>(v | (((qh >> (4 * k + i)) & 1u) << k));
            o[16 + 4 * r + i] = v;
        }
        for (int j = 0; j < 4; ++j) std::memcpy(o + 48 + 32 * j + 4 * r, blk.qs + 4 * j, 4);
    });
}

void q5_0_x8_gemm_scalar(const uint8_t* group, const X8Acts& a, int c0, int nc, float* out) {
    const int64_t nb = a.K / 32;
    regrouped_scalar(group, nb, kQ5_0x8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* yq = a.q.data() + t * static_cast<size_t>(a.K) + 32 * b;
        const size_t at = t * static_cast<size_t>(nb) + static_cast<size_t>(b);
        int32_t s = -2 * a.s8[at];  // codes 0..31 less 16
        for (int e = 0; e < 32; ++e) {
            const int k = e / 4, i = e % 4;  // word k of the nibble vectors: elements 4k..4k+3, high nibbles from 16 on
            const uint8_t byte = p[48 + 32 * (k % 4) + 4 * r + i];
            const int nib = k < 4 ? byte & 0x0F : byte >> 4;
            s += (nib | (((p[16 + 4 * r + i] >> k) & 1) << 4)) * yq[e];
        }
        return fp16_to_fp32(load_u16(p + 2 * r)) * a.d[at] * static_cast<float>(s);
    });
}

const X8Format* find_x8_format(GgmlType t) {
    static const X8Format formats[] = {{GgmlType::Q4_0, repack_q4_0_x8, first_kernel(&KernelSet::q4_0_x8)},
                                       {GgmlType::Q5_0, repack_q5_0_x8, first_kernel(&KernelSet::q5_0_x8)},
                                       {GgmlType::Q8_0, repack_q8_0_x8, first_kernel(&KernelSet::q8_0_x8)}};
    for (const X8Format& f : formats)
        if (f.type == t) return &f;
    return nullptr;
}

}  // namespace qforge

namespace qforge {

namespace {

// Q4_K's and Q5_K's shared part of the regrouped layout (the qs bytes have the same nibble order).
template <class Block>
void put_k4_part(uint8_t* o, int r, const Block& x, size_t qs_at) {
    std::memcpy(o + 2 * r, &x.d, 2);
    std::memcpy(o + 16 + 2 * r, &x.dmin, 2);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x.scales, sc, mn);
    for (int k = 0; k < 8; ++k) {
        o[32 + 8 * k + r] = sc[k];
        o[96 + 8 * k + r] = mn[k];
    }
    for (int j = 0; j < 4; ++j)
        for (int m = 0; m < 8; ++m) std::memcpy(o + qs_at + 32 * (8 * j + m) + 4 * r, x.qs + 32 * j + 4 * m, 4);
}

}  // namespace

void repack_q4_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ4_K>(src, rows, cols, QK_K, dst, kQ4_Kx8Block, [](uint8_t* o, int r, const BlockQ4_K& x) { put_k4_part(o, r, x, 160); });
}

void repack_q5_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ5_K>(src, rows, cols, QK_K, dst, kQ5_Kx8Block, [](uint8_t* o, int r, const BlockQ5_K& x) {
        put_k4_part(o, r, x, kQ5_Kx8Qs);
        for (int m = 0; m < 8; ++m) std::memcpy(o + kQ5_Kx8Qh + 32 * m + 4 * r, x.qh + 4 * m, 4);
    });
}

namespace {

int32_t pair16(int lo, int hi) {
    return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) | static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

}  // namespace

void resize_xk_acts(XKActs& a, int64_t K, int n) {
    a.K = K;
    a.n = n;
    a.q.resize(static_cast<size_t>(K) * static_cast<size_t>(n));
    a.d.resize(static_cast<size_t>(K / QK_K) * static_cast<size_t>(n));
    a.bs.resize(static_cast<size_t>(K / 64) * static_cast<size_t>(n));
    a.bs16.resize(static_cast<size_t>(K / 32) * static_cast<size_t>(n));
}

void pack_xk_acts(const void* q8_k_row, int t, XKActs& a) {
    const auto* y = static_cast<const BlockQ8_K*>(q8_k_row);
    const int64_t nsb = a.K / QK_K;
    for (int64_t b = 0; b < nsb; ++b) {
        std::memcpy(a.q.data() + static_cast<size_t>(t) * static_cast<size_t>(a.K) + QK_K * b, y[b].qs, QK_K);
        a.d[static_cast<size_t>(t * nsb + b)] = y[b].d;
        for (int q = 0; q < 4; ++q) {
            const int s0 = y[b].bsums[4 * q] + y[b].bsums[4 * q + 1], s1 = y[b].bsums[4 * q + 2] + y[b].bsums[4 * q + 3];
            a.bs[static_cast<size_t>((t * nsb + b) * 4 + q)] = pair16(s0, s1);
        }
        for (int q = 0; q < 8; ++q) a.bs16[static_cast<size_t>((t * nsb + b) * 8 + q)] = pair16(y[b].bsums[2 * q], y[b].bsums[2 * q + 1]);
    }
}

namespace {

// Q4_K and Q5_K regrouped (kFive: the fifth bit from the qh planes).
template <bool kFive>
void k45_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) {
    const int64_t nsb = a.K / QK_K;
    regrouped_scalar(group, nsb, kFive ? kQ5_Kx8Block : kQ4_Kx8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* y = a.q.data() + t * static_cast<size_t>(a.K) + QK_K * b;
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 4; ++j) {
            int32_t slo = 0, shi = 0, ylo = 0, yhi = 0;
            for (int m = 0; m < 8; ++m)
                for (int i = 0; i < 4; ++i) {
                    const uint8_t byte = p[(kFive ? kQ5_Kx8Qs : 160) + 32 * (8 * j + m) + 4 * r + i];
                    const int hbits = kFive ? p[kQ5_Kx8Qh + 32 * m + 4 * r + i] >> (2 * j) : 0;
                    slo += ((byte & 0x0F) | (hbits & 1) << 4) * y[64 * j + 4 * m + i];
                    shi += ((byte >> 4) | (hbits & 2) << 3) * y[64 * j + 32 + 4 * m + i];
                    ylo += y[64 * j + 4 * m + i];
                    yhi += y[64 * j + 32 + 4 * m + i];
                }
            isum += slo * p[32 + 8 * (2 * j) + r] + shi * p[32 + 8 * (2 * j + 1) + r];
            msum += ylo * p[96 + 8 * (2 * j) + r] + yhi * p[96 + 8 * (2 * j + 1) + r];
        }
        const float dy = a.d[t * static_cast<size_t>(nsb) + static_cast<size_t>(b)];
        return fp16_to_fp32(load_u16(p + 2 * r)) * dy * static_cast<float>(isum) - fp16_to_fp32(load_u16(p + 16 + 2 * r)) * dy * static_cast<float>(msum);
    });
}

}  // namespace

void q4_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) { k45_x8_gemm_scalar<false>(group, a, c0, nc, out); }
void q5_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) { k45_x8_gemm_scalar<true>(group, a, c0, nc, out); }

void repack_q6_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ6_K>(src, rows, cols, QK_K, dst, kQ6_Kx8Block, [](uint8_t* o, int r, const BlockQ6_K& x) {
        std::memcpy(o + 2 * r, &x.d, 2);
        for (int k = 0; k < 16; ++k) o[16 + 8 * k + r] = static_cast<uint8_t>(x.scales[k]);
        for (int h = 0; h < 2; ++h) {
            uint8_t* oh = o + 144 + 768 * h;
            for (int m = 0; m < 8; ++m)
                for (int i = 0; i < 4; ++i) {
                    const int l0 = x.ql[64 * h + 4 * m + i], l1 = x.ql[64 * h + 32 + 4 * m + i], hb = x.qh[32 * h + 4 * m + i];
                    const int c3 = (l1 >> 4) | ((hb >> 6) << 4);
                    const int codes[3] = {(l0 & 15) | ((hb & 3) << 4), (l1 & 15) | (((hb >> 2) & 3) << 4), (l0 >> 4) | (((hb >> 4) & 3) << 4)};
                    for (int k = 0; k < 3; ++k) oh[96 * m + 32 * k + 4 * r + i] = static_cast<uint8_t>(codes[k] | (((c3 >> (2 * k)) & 3) << 6));
                }
        }
    });
}

void q6_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) {
    const int64_t nsb = a.K / QK_K;
    regrouped_scalar(group, nsb, kQ6_Kx8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* y = a.q.data() + t * static_cast<size_t>(a.K) + QK_K * b;
        int32_t isum = 0;
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ph = p + 144 + 768 * h;
            int32_t gs[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // groups 8h + 0..7
            for (int m = 0; m < 8; ++m)
                for (int i = 0; i < 4; ++i) {
                    const int b0 = ph[96 * m + 4 * r + i], b1 = ph[96 * m + 32 + 4 * r + i], b2 = ph[96 * m + 64 + 4 * r + i];
                    const int e = 4 * m + i;  // 0..31
                    const int codes[4] = {b0 & 63, b1 & 63, b2 & 63, (b0 >> 6) | ((b1 >> 6) << 2) | ((b2 >> 6) << 4)};
                    for (int k = 0; k < 4; ++k) gs[2 * k + e / 16] += (codes[k] - 32) * y[128 * h + 32 * k + e];
                }
            for (int gi = 0; gi < 8; ++gi) isum += gs[gi] * static_cast<int8_t>(p[16 + 8 * (8 * h + gi) + r]);
        }
        return fp16_to_fp32(load_u16(p + 2 * r)) * a.d[t * static_cast<size_t>(nsb) + static_cast<size_t>(b)] * static_cast<float>(isum);
    });
}




void repack_q3_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ3_K>(src, rows, cols, QK_K, dst, kQ3_Kx8Block, [](uint8_t* o, int r, const BlockQ3_K& x) {
        std::memcpy(o + 2 * r, &x.d, 2);
        for (int g = 0; g < 16; ++g) {
            const int lo = g < 8 ? x.scales[g] & 0xF : x.scales[g - 8] >> 4;
            o[16 + 8 * g + r] = static_cast<uint8_t>(static_cast<int8_t>((lo | (((x.scales[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32));
        }
        for (int m = 0; m < 8; ++m) {
            std::memcpy(o + kQ3_Kx8Hmask + 32 * m + 4 * r, x.hmask + 4 * m, 4);
            for (int h = 0; h < 2; ++h) std::memcpy(o + kQ3_Kx8Qs + 256 * h + 32 * m + 4 * r, x.qs + 32 * h + 4 * m, 4);
        }
    });
}

void q3_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) {
    const int64_t nsb = a.K / QK_K;
    regrouped_scalar(group, nsb, kQ3_Kx8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* y = a.q.data() + t * static_cast<size_t>(a.K) + QK_K * b;
        int32_t gs[16] = {};
        for (int h = 0; h < 2; ++h)
            for (int m = 0; m < 8; ++m)
                for (int i = 0; i < 4; ++i) {
                    const int qb = p[kQ3_Kx8Qs + 256 * h + 32 * m + 4 * r + i], hb = p[kQ3_Kx8Hmask + 32 * m + 4 * r + i];
                    const int e = 4 * m + i;  // 0..31
                    for (int j = 0; j < 4; ++j)
                        gs[8 * h + 2 * j + e / 16] += (((qb >> (2 * j)) & 3) + 4 * ((hb >> (4 * h + j)) & 1) - 4) * y[128 * h + 32 * j + e];
                }
        int32_t isum = 0;
        for (int g = 0; g < 16; ++g) isum += gs[g] * static_cast<int8_t>(p[16 + 8 * g + r]);
        return fp16_to_fp32(load_u16(p + 2 * r)) * a.d[t * static_cast<size_t>(nsb) + static_cast<size_t>(b)] * static_cast<float>(isum);
    });
}

void repack_q2_k_x8(const uint8_t* src, int64_t rows, int64_t cols, uint8_t* dst) {
    regroup<BlockQ2_K>(src, rows, cols, QK_K, dst, kQ2_Kx8Block, [](uint8_t* o, int r, const BlockQ2_K& x) {
        std::memcpy(o + 2 * r, &x.d, 2);
        std::memcpy(o + 16 + 2 * r, &x.dmin, 2);
        for (int g = 0; g < 16; ++g) o[32 + 8 * g + r] = x.scales[g];
        for (int h = 0; h < 2; ++h)
            for (int m = 0; m < 8; ++m) std::memcpy(o + kQ2_Kx8Qs + 256 * h + 32 * m + 4 * r, x.qs + 32 * h + 4 * m, 4);
    });
}

void q2_k_x8_gemm_scalar(const uint8_t* group, const XKActs& a, int c0, int nc, float* out) {
    const int64_t nsb = a.K / QK_K;
    regrouped_scalar(group, nsb, kQ2_Kx8Block, c0, nc, out, [&](const uint8_t* p, int r, size_t t, int64_t b) {
        const int8_t* y = a.q.data() + t * static_cast<size_t>(a.K) + QK_K * b;
        int32_t gs[16] = {}, ys[16] = {};
        for (int h = 0; h < 2; ++h)
            for (int m = 0; m < 8; ++m)
                for (int i = 0; i < 4; ++i) {
                    const int qb = p[kQ2_Kx8Qs + 256 * h + 32 * m + 4 * r + i];
                    const int e = 4 * m + i;
                    for (int j = 0; j < 4; ++j) {
                        gs[8 * h + 2 * j + e / 16] += ((qb >> (2 * j)) & 3) * y[128 * h + 32 * j + e];
                        ys[8 * h + 2 * j + e / 16] += y[128 * h + 32 * j + e];
                    }
                }
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; ++g) {
            isum += gs[g] * (p[32 + 8 * g + r] & 0xF);
            msum += ys[g] * (p[32 + 8 * g + r] >> 4);
        }
        const float dy = a.d[t * static_cast<size_t>(nsb) + static_cast<size_t>(b)];
        return fp16_to_fp32(load_u16(p + 2 * r)) * dy * static_cast<float>(isum) - fp16_to_fp32(load_u16(p + 16 + 2 * r)) * dy * static_cast<float>(msum);
    });
}

const XKFormat* find_xk_format(GgmlType t) {
    static const XKFormat formats[] = {
        {GgmlType::Q2_K, kQ2_Kx8Block, repack_q2_k_x8, first_kernel(&KernelSet::q2_k_x8), first_kernel(&KernelSet::q2_k_x16)},
        {GgmlType::Q3_K, kQ3_Kx8Block, repack_q3_k_x8, first_kernel(&KernelSet::q3_k_x8), first_kernel(&KernelSet::q3_k_x16)},
        {GgmlType::Q4_K, kQ4_Kx8Block, repack_q4_k_x8, first_kernel(&KernelSet::q4_k_x8), first_kernel(&KernelSet::q4_k_x16)},
        {GgmlType::Q5_K, kQ5_Kx8Block, repack_q5_k_x8, first_kernel(&KernelSet::q5_k_x8), first_kernel(&KernelSet::q5_k_x16)},
        {GgmlType::Q6_K, kQ6_Kx8Block, repack_q6_k_x8, first_kernel(&KernelSet::q6_k_x8), first_kernel(&KernelSet::q6_k_x16)}};
    for (const XKFormat& f : formats)
        if (f.type == t) return &f;
    return nullptr;
}

}  // namespace qforge

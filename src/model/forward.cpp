// The transformer forward pass (llama family, qwen2), written for clarity: RMSNorm, rotary
// attention with grouped KV heads over a KV cache, SwiGLU feed-forward. Weights stay in their
// stored type: int8/f16 dot products on the stored blocks where a kernel exists (activations
// quantized on the fly, as ggml does), otherwise rows converted to f32 once per batch.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "gpu/gpu_forward.hpp"
#include "kernels/gemm.hpp"
#include "kernels/panel.hpp"
#include "kernels/vec_dot.hpp"
#include "qforge/error.hpp"
#include "qforge/half.hpp"
#include "qforge/model.hpp"
#include "qforge/quantize.hpp"
#include "quant/blocks.hpp"

namespace qforge {

namespace {

// Batches of at least this many tokens go through panels (kernels/panel.hpp); fewer use the
// row kernels, which need no unpacking.
constexpr int kPanelMinTokens = 4;

void load_vector(const WeightView& w, float* out) { dequantize(w.type, w.data, out, w.cols()); }

void rms_norm(const float* x, const float* w, int n, float eps, float* out) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

}  // namespace

std::vector<float> rope_inv_freq(const ModelHparams& hp) {
    std::vector<float> f(static_cast<size_t>(hp.n_rot / 2));
    for (int i = 0; i < hp.n_rot / 2; ++i) f[static_cast<size_t>(i)] = 1.0f / std::pow(hp.rope_base, static_cast<float>(2 * i) / static_cast<float>(hp.n_rot));
    return f;
}

void rope_cos_sin(const ModelHparams& hp, const std::vector<float>& inv_freq, int pos, float* cos_sin) {
    const float p = static_cast<float>(pos) * hp.rope_freq_scale;
    for (int i = 0; i < hp.n_rot / 2; ++i) {
        const float theta = p * inv_freq[static_cast<size_t>(i)];
        cos_sin[2 * i] = std::cos(theta);
        cos_sin[2 * i + 1] = std::sin(theta);
    }
}

struct AttnScratch {
    std::vector<float> scores, acc, qr, cos_sin;
    std::vector<uint8_t> qq;
};

struct Context::Impl {
    const Model& m;
    KvCacheType cache_type;
    ThreadPool pool;
    int n_ctx;
    int kv_dim;
    size_t kv_row_bytes;
    std::vector<std::vector<uint8_t>> k_cache, v_cache;  // per layer: n_ctx rows
    // Norm weights and biases as f32, converted once.
    std::vector<std::vector<float>> attn_norm, ffn_norm, bq, bk, bv;
    std::vector<float> out_norm;
    std::vector<float> inv_freq;
    std::vector<std::vector<float>> row_buf;  // per thread
    std::vector<std::vector<uint8_t>> act_q;  // per thread
    std::vector<AttnScratch> attn_scratch;    // per thread
    std::vector<Panel> panels;                // per thread
    PanelActs panel_acts;
    X8Acts x8_acts;
    XKActs xk_acts;
    std::vector<float> act;
    std::vector<uint8_t> act_bytes;
    std::vector<float> kf, vf, x, xn, q, k, v, att, tmp, gate, up;

    // The first n_cpu_layers layers run here (the rest on a GPU, which keeps their cache).
    Impl(const Model& model, int ctx, KvCacheType ct, int threads, int n_cpu_layers) : m(model), cache_type(ct), pool(threads), n_ctx(ctx) {
        const auto& hp = m.hparams();
        kv_dim = hp.n_head_kv * hp.head_dim;
        if (ct == KvCacheType::Q8_0 && kv_dim % 32 != 0) throw_usage("--cache-type q8_0 needs KV rows that are a multiple of 32");
        kv_row_bytes = ct == KvCacheType::F32 ? kv_dim * 4u : ct == KvCacheType::F16 ? kv_dim * 2u : kv_dim / 32u * 34u;
        k_cache.assign(static_cast<size_t>(n_cpu_layers), std::vector<uint8_t>(kv_row_bytes * static_cast<size_t>(ctx)));
        v_cache.assign(static_cast<size_t>(n_cpu_layers), std::vector<uint8_t>(kv_row_bytes * static_cast<size_t>(ctx)));
        auto vec = [](const WeightView& w) {
            std::vector<float> v(static_cast<size_t>(w.present() ? w.cols() : 0));
            if (w.present()) load_vector(w, v.data());
            return v;
        };
        for (const auto& L : m.layers) {
            attn_norm.push_back(vec(L.attn_norm));
            ffn_norm.push_back(vec(L.ffn_norm));
            bq.push_back(vec(L.bq));
            bk.push_back(vec(L.bk));
            bv.push_back(vec(L.bv));
        }
        out_norm = vec(m.output_norm);
        inv_freq = rope_inv_freq(hp);
        row_buf.resize(static_cast<size_t>(pool.size()));
        act_q.resize(static_cast<size_t>(pool.size()));
        attn_scratch.resize(static_cast<size_t>(pool.size()));
        panels.resize(static_cast<size_t>(pool.size()));
    }

    // The batch's B activation rows quantized to act_type (what ggml's dot products meet) into
    // act_bytes, each then handed to pack(row, token) for a kernel's own layout. Returns the row size.
    template <class Pack>
    size_t quantize_acts(GgmlType act_type, const float* x, int B, int64_t cols, Pack pack) {
        const size_t qrb = *row_bytes(type_traits(act_type), cols);
        const QuantizeRowFn aq = find_act_quantizer(act_type);
        act_bytes.resize(qrb * static_cast<size_t>(B));
        pool.parallel_for(B, [&](int64_t b0, int64_t b1, int) {
            for (int64_t bb = b0; bb < b1; ++bb) {
                uint8_t* qa = act_bytes.data() + qrb * static_cast<size_t>(bb);
                aq(x + static_cast<size_t>(bb) * cols, qa, cols, nullptr);
                pack(qa, static_cast<int>(bb));
            }
        });
        return qrb;
    }

    // One pass of ng (1 or 2) consecutive regrouped groups at `at` over tokens c0 .. c0 + nc - 1:
    // out[c][ng * kPanelRows]. Two groups and a full tile go to gemm16 at once (where there is one).
    template <class Acts, class Gemm>
    static void group_pass(const uint8_t* at, int ng, size_t group_bytes, const Acts& acts, int c0, int nc, Gemm gemm, XKGemm16Fn gemm16,
                           float* out) {
        if constexpr (std::is_same_v<Acts, XKActs>) {
            if (ng == 2 && nc == kGemmCols) return gemm16(at, group_bytes, acts, c0, out);
        }
        const int nr = ng * kPanelRows;
        for (int k = 0; k < ng; ++k) {
            float part[kPanelRows * kGemmCols];
            gemm(at + static_cast<size_t>(k) * group_bytes, acts, c0, nc, part);
            for (int c = 0; c < nc; ++c) std::copy(part + c * kPanelRows, part + (c + 1) * kPanelRows, out + c * nr + k * kPanelRows);
        }
    }

    // A matrix regrouped eight rows at a time (kernels/panel.hpp): the batch's activations quantized
    // to act_type and packed once, then every group of rows meets every token, kGemmCols at a time.
    // gemm16 (where the CPU has one) takes two groups at once for a full tile of tokens.
    template <class Acts, class Gemm>
    void regrouped(const WeightView& w, const float* x, int B, float* y, GgmlType act_type, Acts& acts,
                   void (*pack)(const void*, int, Acts&), void (*resize)(Acts&, int64_t, int), Gemm gemm, size_t group_bytes,
                   XKGemm16Fn gemm16 = nullptr) {
        const int64_t rows = w.rows(), cols = w.cols();
        resize(acts, cols, B);
        quantize_acts(act_type, x, B, cols, [&](const uint8_t* qa, int t) { pack(qa, t, acts); });
        const int64_t n_groups = rows / kPanelRows;
        // A group's first pass over the batch reads its weights from memory, the others from cache: the
        // next group's lines are prefetched a share per pass, so no pass waits for memory.
        const int n_passes = (B + kGemmCols - 1) / kGemmCols;
        const size_t share = n_passes > 1 ? (group_bytes / static_cast<size_t>(n_passes) + 63) / 64 * 64 : 0;
        pool.parallel_chunks(n_groups, std::max<int64_t>(2, n_groups / (8 * pool.size())), [&](int64_t g0, int64_t g1, int) {
            float out[2 * kPanelRows * kGemmCols];
            for (int64_t g = g0; g < g1;) {
                const int ng = gemm16 && g + 1 < g1 ? 2 : 1;  // groups this step
                const uint8_t* at = w.x8 + static_cast<size_t>(g) * group_bytes;
                for (int c0 = 0; c0 < B; c0 += kGemmCols) {
                    const int nc = std::min(kGemmCols, B - c0);
                    if (share && g + ng < g1) {
                        const uint8_t* next = at + static_cast<size_t>(ng) * group_bytes;
                        const size_t from = static_cast<size_t>(c0 / kGemmCols) * share * static_cast<size_t>(ng);
                        const size_t to = std::min(group_bytes * static_cast<size_t>(ng), from + share * static_cast<size_t>(ng));
                        for (size_t o = from; o < to; o += 64) __builtin_prefetch(next + o, 0, 3);
                    }
                    group_pass(at, ng, group_bytes, acts, c0, nc, gemm, gemm16, out);
                    const int nr = ng * kPanelRows;  // rows per token in out
                    for (int c = 0; c < nc; ++c) std::copy(out + c * nr, out + (c + 1) * nr, y + static_cast<size_t>(c0 + c) * rows + g * kPanelRows);
                }
                g += ng;
            }
        });
    }

    // Y[b][r] = W[r] . X[b] for B tokens: the fastest of the paths below that this weight format
    // and CPU have; the last resort converts rows to f32 in blocks and multiplies.
    void matmul(const WeightView& w, const float* x, int B, float* y) {
        const int64_t rows = w.rows(), cols = w.cols();
        const size_t rb = w.row_bytes();
        const GemmFn gemm = best_gemm_f32();
        // Activations go through the type ggml's dot products convert them to (q8_0, q8_K, f16 …),
        // so results carry the same rounding as llama.cpp's.
        // One deliberate exception: bf16 weights meet f32 activations (bf16 -> f32 is exact, so a bf16
        // model computes exactly like its f32 original; llama.cpp rounds the activations to bf16).
        const GgmlType vdt = w.type == GgmlType::BF16 ? GgmlType::F32 : type_traits(w.type).vec_dot_type;
        // Q4_0, Q5_0, Q8_0 and the K-quants regrouped at load: eight rows per vector for every batch size.
        if (w.x8) {
            if (const X8Format* f = find_x8_format(w.type)) {
                if (f->gemm) return regrouped(w, x, B, y, GgmlType::Q8_0, x8_acts, pack_x8_acts, resize_x8_acts, f->gemm, rb * kPanelRows);
            } else if (const XKFormat* f = find_xk_format(w.type); f && f->gemm) {
                return regrouped(w, x, B, y, GgmlType::Q8_K, xk_acts, pack_xk_acts, resize_xk_acts, f->gemm, static_cast<size_t>(cols / QK_K) * f->block_bytes,
                                 B >= kGemmCols ? f->gemm16 : nullptr);
            }
        }
        // F16: activations rounded to f16 (as ggml's F16 dot products do), then register tiles of
        // rows x tokens (generation too: each activation is converted once, not once a row).
        if (w.type == GgmlType::F16) {
            // Regrouped at load: groups of kF16X4Rows rows against the f16 activations as they are.
            if (const F16X4GemmFn fx4 = w.x8 ? find_f16_x4_gemm() : nullptr) {
                quantize_acts(GgmlType::F16, x, B, cols, [](const uint8_t*, int) {});
                const int64_t n_groups = rows / kF16X4Rows;
                const auto* g = reinterpret_cast<const uint16_t*>(w.x8);
                const auto* xh = reinterpret_cast<const uint16_t*>(act_bytes.data());
                pool.parallel_chunks(n_groups, std::max<int64_t>(1, n_groups / (8 * pool.size())), [&](int64_t g0, int64_t g1, int) {
                    fx4(g + static_cast<size_t>(g0 * kF16X4Rows) * static_cast<size_t>(cols), g1 - g0, xh, static_cast<size_t>(cols), B, cols,
                        y + g0 * kF16X4Rows, static_cast<size_t>(rows));
                });
                return;
            }
            if (const F16GemmFn fg = find_f16_gemm()) {  // rows as stored: the activations kept as f32
                act.resize(static_cast<size_t>(B) * static_cast<size_t>(cols));
                quantize_acts(GgmlType::F16, x, B, cols, [&](const uint8_t* qa, int t) {
                    dequantize(GgmlType::F16, qa, act.data() + static_cast<size_t>(t) * static_cast<size_t>(cols), cols);
                });
                constexpr int64_t kBlock = 16;
                const int64_t n_blocks = (rows + kBlock - 1) / kBlock;
                pool.parallel_chunks(n_blocks, std::max<int64_t>(1, n_blocks / (8 * pool.size())), [&](int64_t b0, int64_t b1, int) {
                    const int64_t r0 = b0 * kBlock, r1 = std::min(rows, b1 * kBlock);
                    fg(reinterpret_cast<const uint16_t*>(w.data) + static_cast<size_t>(r0) * static_cast<size_t>(cols), static_cast<size_t>(cols),
                       r1 - r0, act.data(), static_cast<size_t>(cols), B, cols, y + r0, static_cast<size_t>(rows));
                });
                return;
            }
        }
        // Prompts: panels of eight unpacked rows meet every token of the batch (kernels/panel.hpp).
        if (B >= kPanelMinTokens) {
            const PanelFormat* pf = find_panel_format(w.type);
            const PanelKernels pk = pf ? find_panel_kernels(*pf) : PanelKernels{};
            if (const PanelGemmFn pg = pk.gemm) {
                resize_panel_acts(panel_acts, cols, pf->G, B);
                quantize_acts(vdt, x, B, cols, [&](const uint8_t* qa, int t) { pack_panel_acts(vdt, qa, t, panel_acts); });
                const int64_t n_panels = (rows + kPanelRows - 1) / kPanelRows;
                pool.parallel_chunks(n_panels, std::max<int64_t>(1, n_panels / (8 * pool.size())), [&](int64_t p0, int64_t p1, int t) {
                    Panel& P = panels[static_cast<size_t>(t)];
                    float out[kPanelRows * 4];
                    for (int64_t pi = p0; pi < p1; ++pi) {
                        const int64_t r0 = pi * kPanelRows;
                        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, rows - r0));
                        const uint8_t* wr = w.data + static_cast<size_t>(r0) * rb;
                        if (pk.pack) pk.pack(wr, rb, nr, cols, P);
                        else pack_panel(*pf, wr, rb, nr, cols, P);
                        for (int c0 = 0; c0 < B; c0 += 4) {
                            const int nc = std::min(4, B - c0);
                            pg(P, panel_acts, c0, nc, out);
                            for (int c = 0; c < nc; ++c)
                                std::copy(out + c * kPanelRows, out + c * kPanelRows + nr, y + static_cast<size_t>(c0 + c) * rows + r0);
                        }
                    }
                });
                return;
            }
        }
        // Two weight rows at a time against every token (ARM i8mm, Q8_0 and Q4_0): each output the
        // one-row kernel's bits.
        if (B > 1) {
            if (const VecDot2Fn v2 = find_vec_dot_2(w.type)) {
                const VecDotFn v1 = find_vec_dot(w.type);
                const size_t qrb = quantize_acts(vdt, x, B, cols, [](const uint8_t*, int) {});
                const int64_t n_pairs = (rows + 1) / 2;
                pool.parallel_chunks(n_pairs, std::max<int64_t>(1, n_pairs / (8 * pool.size())), [&](int64_t p0, int64_t p1, int) {
                    for (int64_t p = p0; p < p1; ++p) {
                        const int64_t r = 2 * p;
                        const uint8_t* wr = w.data + static_cast<size_t>(r) * rb;
                        if (r + 1 < rows) {
                            v2(cols, wr, wr + rb, act_bytes.data(), qrb, B, y + r, static_cast<size_t>(rows));
                        } else {
                            for (int c = 0; c < B; ++c)
                                y[static_cast<size_t>(c) * rows + static_cast<size_t>(r)] = v1(cols, wr, act_bytes.data() + qrb * static_cast<size_t>(c));
                        }
                    }
                });
                return;
            }
        }
        // Integer dot products straight on the quantized rows: a weight row meets up to
        // kMaxDotCols tokens per call, or one token at a time where only a single-row kernel
        // exists (then only for generation).
        const VecDotNFn vdn = find_vec_dot_n(w.type);
        const VecDotFn vd = vdn ? nullptr : find_vec_dot(w.type);
        if (vdn || (vd && B <= 4)) {
            const size_t qrb = quantize_acts(vdt, x, B, cols, [](const uint8_t*, int) {});
            // Tiles of weight rows that stay in L1 while every group of tokens passes over them.
            const int64_t tile = std::clamp<int64_t>(static_cast<int64_t>(16384 / rb), 1, 16);
            const int64_t n_tiles = (rows + tile - 1) / tile;
            pool.parallel_chunks(n_tiles, std::max<int64_t>(1, n_tiles / (8 * pool.size())), [&](int64_t t0, int64_t t1, int) {
                for (int64_t rt = t0; rt < t1; ++rt) {
                    const int64_t r0 = rt * tile, r1 = std::min(rows, r0 + tile);
                    for (int bb = 0; bb < B; bb += kMaxDotCols) {
                        const int nc = std::min(kMaxDotCols, B - bb);
                        const uint8_t* a = act_bytes.data() + qrb * static_cast<size_t>(bb);
                        float* yb = y + static_cast<size_t>(bb) * rows;
                        for (int64_t r = r0; r < r1; ++r) {
                            const uint8_t* wr = w.data + static_cast<size_t>(r) * rb;
                            if (vdn) {
                                vdn(cols, wr, a, qrb, nc, yb + r, static_cast<size_t>(rows));
                            } else {
                                for (int c = 0; c < nc; ++c) yb[static_cast<size_t>(c) * rows + static_cast<size_t>(r)] = vd(cols, wr, a + qrb * static_cast<size_t>(c));
                            }
                        }
                    }
                }
            });
            return;
        }
        if (vdt != GgmlType::F32) {
            act.resize(static_cast<size_t>(B) * static_cast<size_t>(cols));
            const TypeTraits& vt = type_traits(vdt);
            pool.parallel_for(B, [&](int64_t b0, int64_t b1, int t) {
                auto& qbuf = act_q[static_cast<size_t>(t)];
                qbuf.resize(*row_bytes(vt, cols));
                for (int64_t bb = b0; bb < b1; ++bb) {
                    const float* src = x + static_cast<size_t>(bb) * cols;
                    vt.quantize(src, qbuf.data(), cols, nullptr);
                    vt.dequantize(qbuf.data(), act.data() + static_cast<size_t>(bb) * cols, cols);
                }
            });
            x = act.data();
        }
        constexpr int64_t kBlock = 16;
        const int64_t n_blocks = (rows + kBlock - 1) / kBlock;
        pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int t) {
            auto& buf = row_buf[static_cast<size_t>(t)];
            buf.resize(static_cast<size_t>(cols * kBlock));
            for (int64_t blk = b0; blk < b1; ++blk) {
                const int64_t r0 = blk * kBlock, nr = std::min(kBlock, rows - r0);
                const float* rows_f32;
                if (w.type == GgmlType::F32) {
                    rows_f32 = reinterpret_cast<const float*>(w.data + static_cast<size_t>(r0) * rb);
                } else {
                    dequantize(w.type, w.data + static_cast<size_t>(r0) * rb, buf.data(), nr * cols);
                    rows_f32 = buf.data();
                }
                gemm(rows_f32, static_cast<size_t>(cols), nr, x, static_cast<size_t>(cols), B, cols, y + r0, static_cast<size_t>(rows));
            }
        });
    }

    // Rotates n_heads heads by the angles of one position (rope_cos_sin).
    void rope(float* v, int n_heads, const float* cos_sin) {
        const auto& hp = m.hparams();
        for (int h = 0; h < n_heads; ++h) {
            float* x = v + static_cast<size_t>(h) * hp.head_dim;
            for (int i = 0; i < hp.n_rot / 2; ++i) {
                const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
                // llama GGUFs have Q/K rows permuted so that pairs are adjacent; qwen2 uses NEOX halves.
                const int i0 = hp.rope_neox ? i : 2 * i, i1 = hp.rope_neox ? i + hp.n_rot / 2 : 2 * i + 1;
                const float a = x[i0], b = x[i1];
                x[i0] = a * c - b * s;
                x[i1] = a * s + b * c;
            }
        }
    }

    void store_kv(std::vector<uint8_t>& cache, int pos, const float* src) {
        uint8_t* dst = cache.data() + static_cast<size_t>(pos) * kv_row_bytes;
        switch (cache_type) {
            case KvCacheType::F32: std::memcpy(dst, src, kv_row_bytes); break;
            case KvCacheType::F16:
                for (int i = 0; i < kv_dim; ++i) reinterpret_cast<uint16_t*>(dst)[i] = fp32_to_fp16(src[i]);
                break;
            case KvCacheType::Q8_0: type_traits(GgmlType::Q8_0).quantize(src, dst, kv_dim, nullptr); break;
        }
    }

    void load_kv(const std::vector<uint8_t>& cache, int pos, float* dst) const {
        const uint8_t* src = cache.data() + static_cast<size_t>(pos) * kv_row_bytes;
        switch (cache_type) {
            case KvCacheType::F32: std::memcpy(dst, src, kv_row_bytes); break;
            case KvCacheType::F16:
                for (int i = 0; i < kv_dim; ++i) dst[i] = fp16_to_fp32(reinterpret_cast<const uint16_t*>(src)[i]);
                break;
            case KvCacheType::Q8_0: dequantize(GgmlType::Q8_0, src, dst, kv_dim); break;
        }
    }
};

Context::Context(const Model& model, int n_ctx, KvCacheType cache_type, int n_threads, int n_gpu_layers, bool allow_software_gpu)
    : model_(model), n_ctx_(n_ctx) {
    if (n_ctx <= 0) throw_usage("context size must be positive");
    if (n_ctx > model.hparams().n_ctx_train)
        throw_usage("context size " + std::to_string(n_ctx) + " exceeds the model's " + std::to_string(model.hparams().n_ctx_train));
    if (n_gpu_layers > 0) gpu_ = GpuForward::create(model, n_ctx, n_gpu_layers, allow_software_gpu);
    impl_ = std::make_unique<Impl>(model, n_ctx, cache_type, n_threads, gpu_ ? gpu_->first_layer() : model.hparams().n_layer);
}

Context::~Context() = default;

std::string Context::gpu_description() const { return gpu_ ? gpu_->device_description() : ""; }

int resolve_gpu_layers(const DeviceOptions& d, const Model& model) {
    const int all = model.hparams().n_layer;
    const int n = d.n_gpu_layers < 0 ? all : std::min(d.n_gpu_layers, all);
    if (d.device == "cpu") return 0;
    if (d.device == "gpu") return n;
    if (d.device != "auto") throw_usage("--device must be cpu, gpu or auto, got '" + d.device + "'");
    return gpu_usable() ? n : 0;
}

void Context::eval(const std::vector<int32_t>& tokens, std::vector<float>& logits, bool all_logits, int batch) {
    const int n_vocab = model_.hparams().n_vocab;
    const int n = static_cast<int>(tokens.size());
    if (n == 0) return;
    if (n_past_ + n > n_ctx_)
        throw Error(ExitCode::usage, "context overflow: " + std::to_string(n_past_ + n) + " tokens do not fit in a context of " +
                                         std::to_string(n_ctx_) + " (use -c to enlarge it, up to the model's " +
                                         std::to_string(model_.hparams().n_ctx_train) + ")");
    for (int32_t t : tokens)
        if (t < 0 || t >= n_vocab) throw_usage("token id " + std::to_string(t) + " is out of range");
    logits.assign(static_cast<size_t>(all_logits ? n : 1) * n_vocab, 0.f);
    batch = std::max(1, batch);
    for (int i = 0; i < n; i += batch) {
        const int nb = std::min(batch, n - i);
        const bool last = i + nb == n;
        float* out = all_logits ? logits.data() + static_cast<size_t>(i) * n_vocab : (last ? logits.data() : nullptr);
        eval_batch(tokens.data() + i, nb, out, all_logits);
    }
}

void Context::eval_batch(const int32_t* tokens, int B, float* logits, bool all_logits) {
    Impl& I = *impl_;
    const auto& hp = model_.hparams();
    const int E = hp.n_embd, HD = hp.head_dim, NH = hp.n_head, NKV = hp.n_head_kv, F = hp.n_ff;
    const int Q = NH * HD, KV = NKV * HD;
    const size_t b = static_cast<size_t>(B);
    // Scratch buffers live in the context: resizing to a size seen before does not allocate.
    auto& kf = I.kf;
    auto& vf = I.vf;
    auto& x = I.x;
    auto& xn = I.xn;
    auto& q = I.q;
    auto& k = I.k;
    auto& v = I.v;
    auto& att = I.att;
    auto& tmp = I.tmp;
    auto& gate = I.gate;
    auto& up = I.up;
    x.resize(b * E);
    xn.resize(b * E);
    q.resize(b * Q);
    k.resize(b * KV);
    v.resize(b * KV);
    att.resize(b * Q);
    tmp.resize(b * E);
    gate.resize(b * F);
    up.resize(b * F);

    for (int t = 0; t < B; ++t) {
        const WeightView& emb = model_.tok_embd;
        dequantize(emb.type, emb.data + static_cast<size_t>(tokens[t]) * emb.row_bytes(), x.data() + static_cast<size_t>(t) * E, E);
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
    // fn(token, thread) for every token of the batch, spread over the pool (tokens are independent).
    auto per_token = [&](const auto& fn) {
        if (B == 1) return fn(0, 0);
        I.pool.parallel_for(B, [&](int64_t t0, int64_t t1, int th) {
            for (int64_t t = t0; t < t1; ++t) fn(static_cast<int>(t), th);
        });
    };
    auto norm_all = [&](const std::vector<float>& w) {
        per_token([&](int t, int) { rms_norm(&x[static_cast<size_t>(t) * E], w.data(), E, hp.rms_eps, &xn[static_cast<size_t>(t) * E]); });
    };
    auto add_residual = [&] {  // x += tmp
        per_token([&](int t, int) {
            float* xt = &x[static_cast<size_t>(t) * E];
            const float* at = &tmp[static_cast<size_t>(t) * E];
            for (int i = 0; i < E; ++i) xt[i] += at[i];
        });
    };
    const DotRowsFn dot_rows = best_dot_f32_rows();
    const AxpyRowsFn axpy_rows = best_axpy_f32_rows();
    const RoundF16Fn round_f16 = best_round_f16();
    const int n_cpu_layers = gpu_ ? gpu_->first_layer() : hp.n_layer;
    for (int l = 0; l < n_cpu_layers; ++l) {
        const LayerWeights& L = model_.layers[static_cast<size_t>(l)];
        const size_t ls = static_cast<size_t>(l);
        norm_all(I.attn_norm[ls]);
        if (observer_)
            for (const char* t : {"attn_q", "attn_k", "attn_v"}) observer_(l, t, xn.data(), B, E);
        I.matmul(L.wq, xn.data(), B, q.data());
        I.matmul(L.wk, xn.data(), B, k.data());
        I.matmul(L.wv, xn.data(), B, v.data());
        per_token([&](int t, int th) {
            float* qt = &q[static_cast<size_t>(t) * Q];
            float* kt = &k[static_cast<size_t>(t) * KV];
            float* vt = &v[static_cast<size_t>(t) * KV];
            if (!I.bq[ls].empty())
                for (int i = 0; i < Q; ++i) qt[i] += I.bq[ls][static_cast<size_t>(i)];
            if (!I.bk[ls].empty())
                for (int i = 0; i < KV; ++i) kt[i] += I.bk[ls][static_cast<size_t>(i)];
            if (!I.bv[ls].empty())
                for (int i = 0; i < KV; ++i) vt[i] += I.bv[ls][static_cast<size_t>(i)];
            auto& cs = I.attn_scratch[static_cast<size_t>(th)].cos_sin;
            cs.resize(static_cast<size_t>(hp.n_rot));
            rope_cos_sin(hp, I.inv_freq, n_past_ + t, cs.data());
            I.rope(qt, NH, cs.data());
            I.rope(kt, NKV, cs.data());
            I.store_kv(I.k_cache[ls], n_past_ + t, kt);
            I.store_kv(I.v_cache[ls], n_past_ + t, vt);
        });
        // The cache up to the last token of the batch, as f32, converted once for all heads.
        const int n_kv_all = n_past_ + B;
        kf.resize(static_cast<size_t>(n_kv_all) * KV);
        vf.resize(static_cast<size_t>(n_kv_all) * KV);
        I.pool.parallel_for(n_kv_all, [&](int64_t p0, int64_t p1, int) {
            for (int64_t p = p0; p < p1; ++p) {
                I.load_kv(I.k_cache[ls], static_cast<int>(p), &kf[static_cast<size_t>(p) * KV]);
                I.load_kv(I.v_cache[ls], static_cast<int>(p), &vf[static_cast<size_t>(p) * KV]);
            }
        });
        // Causal attention, one (token, head) pair per work item.
        const int group = NH / NKV;
        I.pool.parallel_for(static_cast<int64_t>(B) * NH, [&](int64_t w0, int64_t w1, int th) {
            AttnScratch& sc = I.attn_scratch[static_cast<size_t>(th)];
            sc.scores.resize(static_cast<size_t>(n_kv_all));
            sc.acc.resize(static_cast<size_t>(HD));
            sc.qr.resize(static_cast<size_t>(HD));
            sc.qq.resize(static_cast<size_t>(HD / 32 * 34));
            auto& scores = sc.scores;
            auto& acc = sc.acc;
            auto& qr = sc.qr;
            for (int64_t w = w0; w < w1; ++w) {
                const int t = static_cast<int>(w / NH), h = static_cast<int>(w % NH), kvh = h / group;
                const int n_kv = n_past_ + t + 1;
                const float* qh = &q[static_cast<size_t>(t) * Q + static_cast<size_t>(h) * HD];
                // As in llama.cpp, Q meets the cached K in the cache's type.
                if (I.cache_type == KvCacheType::F16) {
                    round_f16(qh, qr.data(), HD);
                    qh = qr.data();
                } else if (I.cache_type == KvCacheType::Q8_0 && HD % 32 == 0) {
                    type_traits(GgmlType::Q8_0).quantize(qh, sc.qq.data(), HD, nullptr);
                    dequantize(GgmlType::Q8_0, sc.qq.data(), qr.data(), HD);
                    qh = qr.data();
                }
                dot_rows(qh, &kf[static_cast<size_t>(kvh) * HD], static_cast<size_t>(KV), n_kv, HD, scores.data());
                float mx = -INFINITY;
                for (int p = 0; p < n_kv; ++p) {
                    const float s = scores[static_cast<size_t>(p)] * scale;
                    scores[static_cast<size_t>(p)] = s;
                    mx = std::max(mx, s);
                }
                float sum = 0;
                for (int p = 0; p < n_kv; ++p) {
                    scores[static_cast<size_t>(p)] = std::exp(scores[static_cast<size_t>(p)] - mx);
                    sum += scores[static_cast<size_t>(p)];
                }
                std::fill(acc.begin(), acc.end(), 0.f);
                for (int p = 0; p < n_kv; ++p) scores[static_cast<size_t>(p)] /= sum;
                if (I.cache_type == KvCacheType::F16) round_f16(scores.data(), scores.data(), n_kv);  // the weights meet V in f16
                axpy_rows(scores.data(), &vf[static_cast<size_t>(kvh) * HD], static_cast<size_t>(KV), n_kv, HD, acc.data());
                std::copy(acc.begin(), acc.end(), &att[static_cast<size_t>(t) * Q + static_cast<size_t>(h) * HD]);
            }
        });
        if (observer_) observer_(l, "attn_output", att.data(), B, Q);
        I.matmul(L.wo, att.data(), B, tmp.data());
        add_residual();
        // SwiGLU feed-forward.
        norm_all(I.ffn_norm[ls]);
        if (observer_)
            for (const char* t : {"ffn_gate", "ffn_up"}) observer_(l, t, xn.data(), B, E);
        I.matmul(L.w_gate, xn.data(), B, gate.data());
        I.matmul(L.w_up, xn.data(), B, up.data());
        per_token([&](int t, int) {
            float* gt = &gate[static_cast<size_t>(t) * F];
            const float* ut = &up[static_cast<size_t>(t) * F];
            for (int i = 0; i < F; ++i) gt[i] = gt[i] / (1.0f + std::exp(-gt[i])) * ut[i];
        });
        if (observer_) observer_(l, "ffn_down", gate.data(), B, F);
        I.matmul(L.w_down, gate.data(), B, tmp.data());
        add_residual();
    }
    if (gpu_) {  // the remaining layers and the output head
        gpu_->eval(x.data(), B, n_past_, logits, all_logits);
        n_past_ += B;
        return;
    }
    n_past_ += B;
    if (!logits) return;
    // Output head: every token's logits, or only the last one's.
    const int first = all_logits ? 0 : B - 1;
    const int nl = B - first;
    for (int t = first; t < B; ++t)
        rms_norm(&x[static_cast<size_t>(t) * E], I.out_norm.data(), E, hp.rms_eps, &xn[static_cast<size_t>(t - first) * E]);
    if (observer_) observer_(-1, "output", xn.data(), nl, E);
    I.matmul(model_.output, xn.data(), nl, logits);
}

// ---- sampling --------------------------------------------------------------------------------

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed == 0xFFFFFFFF ? std::random_device{}() : p.seed) {}

void Sampler::accept(int32_t token) {
    recent_.push_back(token);
    if (static_cast<int>(recent_.size()) > std::max(0, p_.repeat_last_n)) recent_.erase(recent_.begin());
}

int32_t Sampler::sample(const float* logits_in, int n_vocab) {
    std::vector<float> logits(logits_in, logits_in + n_vocab);
    if (p_.repeat_penalty != 1.0f) {
        for (int32_t t : recent_) {
            float& l = logits[static_cast<size_t>(t)];
            l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
        }
    }
    if (p_.temp <= 0) return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
    for (int i = 0; i < n_vocab; ++i) ids[static_cast<size_t>(i)] = i;
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] || (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b); });
    if (p_.top_k > 0 && p_.top_k < n_vocab) ids.resize(static_cast<size_t>(p_.top_k));
    // Softmax over the candidates (before temperature, as llama.cpp's top-p/min-p see them).
    auto probs_of = [&](float temp) {
        std::vector<double> pr(ids.size());
        const double mx = logits[static_cast<size_t>(ids[0])];
        double sum = 0;
        for (size_t i = 0; i < ids.size(); ++i) sum += pr[i] = std::exp((logits[static_cast<size_t>(ids[i])] - mx) / temp);
        for (auto& v : pr) v /= sum;
        return pr;
    };
    auto pr = probs_of(1.0f);
    if (p_.top_p < 1.0f) {
        double cum = 0;
        size_t keep = ids.size();
        for (size_t i = 0; i < pr.size(); ++i) {
            cum += pr[i];
            if (cum >= p_.top_p) {
                keep = i + 1;
                break;
            }
        }
        ids.resize(keep);
        pr.resize(keep);
    }
    if (p_.min_p > 0.0f) {
        const double thr = pr[0] * p_.min_p;
        size_t keep = 1;
        while (keep < pr.size() && pr[keep] >= thr) ++keep;
        ids.resize(keep);
    }
    pr = probs_of(p_.temp);
    std::discrete_distribution<size_t> dist(pr.begin(), pr.end());
    return ids[dist(rng_)];
}

}  // namespace qforge

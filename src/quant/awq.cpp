#include "qforge/awq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "kernels/gemm.hpp"
#include "qforge/error.hpp"
#include "qforge/quantize.hpp"
#include "qforge/thread_pool.hpp"

namespace qforge {

void AwqScales::apply(const std::string& name, float* v, int64_t rows, int64_t cols) const {
    if (const auto it = col_mul.find(name); it != col_mul.end()) {
        if (static_cast<int64_t>(it->second.size()) != cols) throw std::logic_error("awq: column scales of " + name);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) v[r * cols + c] *= it->second[static_cast<size_t>(c)];
    }
    if (const auto it = row_div.find(name); it != row_div.end()) {
        const bool vec = rows == 1;
        if (static_cast<int64_t>(it->second.size()) != (vec ? cols : rows)) throw std::logic_error("awq: row scales of " + name);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) v[r * cols + c] /= it->second[static_cast<size_t>(vec ? c : r)];
    }
}

void AwqScales::rescale(Imatrix& m) const {
    for (auto& [name, v] : m.entries)
        if (const auto it = col_mul.find(name); it != col_mul.end() && it->second.size() == v.size())
            for (size_t j = 0; j < v.size(); ++j) v[j] /= it->second[j] * it->second[j];
}

namespace {

std::vector<float> dequantized(const WeightView& w) {
    std::vector<float> v(static_cast<size_t>(w.rows() * w.cols()));
    dequantize(w.type, w.data, v.data(), w.rows() * w.cols());
    return v;
}

// One group: matrices reading the same input (scaled by s), the Hessian of that input.
struct Group {
    std::string what;
    std::vector<std::pair<std::string, const WeightView*>> mats;
    std::shared_ptr<std::vector<double>> H;
    int64_t n_rows;          // activation rows summed into H
    std::string prev;        // what produces the input (rows divided by the scales)
    std::vector<int> expand; // input channel -> scale index (o after v under GQA), or empty: identity
    int64_t n_scales;
};

class Searcher {
   public:
    Searcher(const FakeQuant& fq, const AwqOptions& opt) : fq_(fq), opt_(opt), gemm_(best_gemm_f32()) {
        threads_ = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }

    void run(const Group& g, AwqScales& out) {
        const int64_t K = g.mats.front().second->cols();
        const std::vector<double>& H = *g.H;
        // The error is measured on up to max_rows rows of each matrix, evenly spaced.
        struct Mat {
            std::string name;
            std::vector<float> w;
            int64_t rows;
        };
        std::vector<Mat> mats;
        for (const auto& [name, view] : g.mats) {
            const std::vector<float> all = dequantized(*view);
            const int64_t R = view->rows(), take = std::min<int64_t>(R, opt_.max_rows);
            Mat m{name, std::vector<float>(static_cast<size_t>(take * K)), take};
            for (int64_t i = 0; i < take; ++i) {
                const int64_t r = i * R / take;
                std::copy_n(all.begin() + r * K, K, m.w.begin() + i * K);
            }
            mats.push_back(std::move(m));
        }
        Hf_.assign(H.begin(), H.end());
        // The activations' RMS per scale channel.
        std::vector<double> stat(static_cast<size_t>(g.n_scales), 0.0), count(stat.size(), 0.0);
        for (int64_t j = 0; j < K; ++j) {
            const size_t c = static_cast<size_t>(g.expand.empty() ? j : g.expand[static_cast<size_t>(j)]);
            stat[c] += H[static_cast<size_t>(j * K + j)] / static_cast<double>(std::max<int64_t>(1, g.n_rows));
            count[c] += 1;
        }
        double smax = 0;
        for (size_t c = 0; c < stat.size(); ++c) stat[c] = std::sqrt(stat[c] / std::max(1.0, count[c])), smax = std::max(smax, stat[c]);
        for (auto& s : stat) s = std::max(s, smax * 1e-4 + 1e-12);
        // alpha = 0 is the plain quantization: a scaling is kept only when it lowers the error.
        std::vector<float> best_s(stat.size(), 1.f), s(stat.size()), col(static_cast<size_t>(K));
        double best = -1, plain = 0;
        float best_alpha = 0;
        for (int a = 0; a <= opt_.grid; ++a) {
            const double alpha = static_cast<double>(a) / opt_.grid;
            double lo = 1e300, hi = 0;
            for (size_t c = 0; c < s.size(); ++c) {
                s[c] = static_cast<float>(std::pow(stat[c], alpha));
                lo = std::min(lo, static_cast<double>(s[c])), hi = std::max(hi, static_cast<double>(s[c]));
            }
            const float norm = static_cast<float>(std::sqrt(lo * hi));
            for (auto& x : s) x /= norm;
            for (int64_t j = 0; j < K; ++j) col[static_cast<size_t>(j)] = s[static_cast<size_t>(g.expand.empty() ? j : g.expand[static_cast<size_t>(j)])];
            double err = 0;
            for (const Mat& m : mats) err += error(m.name, m.w, m.rows, K, col);
            if (a == 0) plain = err;
            if (best < 0 || err < best) best = err, best_s = s, best_alpha = static_cast<float>(alpha);
        }
        out.groups.push_back({g.what, best_alpha, plain, best});
        if (best_alpha == 0) return;
        for (int64_t j = 0; j < K; ++j) col[static_cast<size_t>(j)] = best_s[static_cast<size_t>(g.expand.empty() ? j : g.expand[static_cast<size_t>(j)])];
        for (const auto& [name, view] : g.mats) out.col_mul[name] = col;
        out.row_div[g.prev] = best_s;
        // The Hessian of the scaled input: H'_ij = H_ij / (s_i s_j).
        std::vector<double>& Hm = *g.H;
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) Hm[static_cast<size_t>(i * K + j)] /= static_cast<double>(col[static_cast<size_t>(i)]) * col[static_cast<size_t>(j)];
    }

   private:
    // sum over rows of d H d^T, d = (W S - Q(W S)) S^-1: the output error on the calibration inputs.
    double error(const std::string& name, const std::vector<float>& w, int64_t rows, int64_t K, const std::vector<float>& s) {
        ws_.resize(w.size());
        imp_.resize(static_cast<size_t>(K));
        for (int64_t j = 0; j < K; ++j) imp_[static_cast<size_t>(j)] = static_cast<float>(Hf_[static_cast<size_t>(j * K + j)] / (s[static_cast<size_t>(j)] * s[static_cast<size_t>(j)]));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < K; ++j) ws_[static_cast<size_t>(r * K + j)] = w[static_cast<size_t>(r * K + j)] * s[static_cast<size_t>(j)];
        q_.resize(w.size());
        pool().parallel_for(rows, [&](int64_t r0, int64_t r1, int) { fq_(name, ws_.data() + r0 * K, r1 - r0, K, imp_.data(), q_.data() + r0 * K); });
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < K; ++j) {
                const size_t i = static_cast<size_t>(r * K + j);
                ws_[i] = (ws_[i] - q_[i]) / s[static_cast<size_t>(j)];
            }
        p_.resize(w.size());
        pool().parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
            gemm_(Hf_.data(), static_cast<size_t>(K), K, ws_.data() + r0 * K, static_cast<size_t>(K), static_cast<int>(r1 - r0), K,
                  p_.data() + r0 * K, static_cast<size_t>(K));
        });
        double e = 0;
        for (size_t i = 0; i < ws_.size(); ++i) e += static_cast<double>(ws_[i]) * p_[i];
        return e;
    }
    ThreadPool& pool() {
        if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_);
        return *pool_;
    }

    const FakeQuant& fq_;
    AwqOptions opt_;
    GemmFn gemm_;
    int threads_;
    std::unique_ptr<ThreadPool> pool_;
    std::vector<float> Hf_, ws_, q_, p_, imp_;
};

}  // namespace

AwqScales awq_search(const Model& model, Hessians& hs, const FakeQuant& fq, const AwqOptions& opt) {
    const ModelHparams& hp = model.hparams();
    AwqScales out;
    Searcher searcher(fq, opt);
    auto hessian = [&](const std::string& name) -> std::pair<std::shared_ptr<std::vector<double>>, int64_t> {
        const auto it = hs.h.find(name);
        if (it == hs.h.end()) throw Error(ExitCode::bad_input, "awq: no calibration activations for " + name);
        return {it->second, hs.rows.at(name)};
    };
    for (int l = 0; l < hp.n_layer; ++l) {
        const LayerWeights& L = model.layers[static_cast<size_t>(l)];
        const std::string b = "blk." + std::to_string(l) + ".";
        if (L.bq.present() || L.bk.present() || L.bv.present()) continue;  // biases would need scaling too: left as they are
        {
            auto [H, n] = hessian(b + "attn_q.weight");
            searcher.run({b + "attn_q/k/v", {{b + "attn_q.weight", &L.wq}, {b + "attn_k.weight", &L.wk}, {b + "attn_v.weight", &L.wv}}, H, n,
                          b + "attn_norm.weight", {}, hp.n_embd},
                         out);
        }
        {
            auto [H, n] = hessian(b + "ffn_gate.weight");
            searcher.run({b + "ffn_gate/up", {{b + "ffn_gate.weight", &L.w_gate}, {b + "ffn_up.weight", &L.w_up}}, H, n, b + "ffn_norm.weight", {},
                          hp.n_embd},
                         out);
        }
        {
            // o's input channel j is v's row (kv head of j's head) * head_dim + j % head_dim.
            const int hd = hp.head_dim, group = hp.n_head / std::max(1, hp.n_head_kv);
            std::vector<int> expand(static_cast<size_t>(hp.n_head * hd));
            for (int j = 0; j < hp.n_head * hd; ++j) expand[static_cast<size_t>(j)] = (j / hd) / group * hd + j % hd;
            auto [H, n] = hessian(b + "attn_output.weight");
            searcher.run({b + "attn_output", {{b + "attn_output.weight", &L.wo}}, H, n, b + "attn_v.weight", std::move(expand),
                          static_cast<int64_t>(hp.n_head_kv) * hd},
                         out);
        }
        {
            auto [H, n] = hessian(b + "ffn_down.weight");
            searcher.run({b + "ffn_down", {{b + "ffn_down.weight", &L.w_down}}, H, n, b + "ffn_up.weight", {}, hp.n_ff}, out);
        }
    }
    return out;
}

void awq_apply_to_source(SourceModel& src, std::shared_ptr<const AwqScales> scales) {
    for (SourceTensor& t : src.tensors) {
        if (!scales->touches(t.name)) continue;
        const TypeTraits& tt = type_traits(t.type);
        if (!tt.dequantize) throw_usage(std::string("awq: cannot read tensors of type ") + tt.name);
        t.read = [read = std::move(t.read), from = t.type, n_in = t.n_bytes(), ne = t.ne, name = t.name, scales](uint8_t* dst) {
            std::vector<uint8_t> raw(n_in);
            read(raw.data());
            const int64_t cols = ne.empty() ? 1 : ne[0], n = static_cast<int64_t>(n_in / type_traits(from).type_size) * type_traits(from).block_size;
            std::vector<float> v(static_cast<size_t>(n));
            dequantize(from, raw.data(), v.data(), n);
            scales->apply(name, v.data(), n / cols, cols);
            std::memcpy(dst, v.data(), v.size() * sizeof(float));
        };
        t.type = GgmlType::F32;
    }
}

std::shared_ptr<AwqScales> awq_for_quantize(const Model& model, Hessians& hs, SourceModel& src, QuantizeOptions opt,
                                            const std::string& out_path, int threads) {
    opt.dry_run = true;
    opt.adjust = {};
    std::map<std::string, GgmlType> types;
    for (const auto& t : quantize_model(src, out_path, opt).tensors) types[t.name] = t.to;
    auto scales = std::make_shared<AwqScales>(awq_search(model, hs, ggml_fake_quant(std::move(types)), AwqOptions{20, 512, threads}));
    awq_apply_to_source(src, scales);
    return scales;
}

FakeQuant ggml_fake_quant(std::map<std::string, GgmlType> types) {
    return [types = std::move(types)](const std::string& name, const float* w, int64_t rows, int64_t cols, const float* importance, float* out) {
        const auto it = types.find(name);
        const GgmlType t = it == types.end() ? GgmlType::F32 : it->second;
        if (!type_traits(t).is_quantized) {
            std::copy_n(w, rows * cols, out);
            return;
        }
        std::vector<uint8_t> q(static_cast<size_t>(rows) * *row_bytes(type_traits(t), cols));
        quantize_rows(w, q.data(), rows, cols, t, importance, 1);
        dequantize(t, q.data(), out, rows * cols);
    };
}

}  // namespace qforge

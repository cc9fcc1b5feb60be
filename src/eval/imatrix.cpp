#include "qforge/imatrix.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "qforge/error.hpp"
#include "qforge/output_file.hpp"

namespace qforge {

ImatrixStats compute_imatrix(const Model& model, const std::vector<int32_t>& tokens, const ImatrixOptions& opt) {
    const int n_ctx = opt.n_ctx;
    if (n_ctx < 8) throw_usage("imatrix: the context must be at least 8 tokens");
    const int max_chunks = static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx));
    const int n_chunks = opt.n_chunks > 0 ? std::min(opt.n_chunks, max_chunks) : max_chunks;
    if (n_chunks < 1)
        throw_usage("the calibration text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " + std::to_string(n_ctx) +
                    " (use a longer text or a smaller -c)");
    const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Context ctx(model, n_ctx, KvCacheType::F16, threads);
    ImatrixStats st;
    st.chunks = n_chunks;
    char name[64];
    ctx.set_activation_observer([&](int layer, const char* tensor, const float* x, int rows, int cols) {
        if (layer < 0 && !opt.process_output) return;
        if (layer < 0) std::snprintf(name, sizeof(name), "%s.weight", tensor);
        else std::snprintf(name, sizeof(name), "blk.%d.%s.weight", layer, tensor);
        ImatrixStats::Entry& e = st.entries[name];
        if (e.sum_sq.empty()) e.sum_sq.assign(static_cast<size_t>(cols), 0.0f);
        if (e.sum_sq.size() != static_cast<size_t>(cols)) throw std::logic_error("imatrix: column count changed");
        for (int r = 0; r < rows; ++r) {
            const float* row = x + static_cast<size_t>(r) * static_cast<size_t>(cols);
            for (int c = 0; c < cols; ++c) e.sum_sq[static_cast<size_t>(c)] += row[c] * row[c];
        }
        e.rows += rows;
        ++e.ncall;
    });
    eval_calibration_chunks(ctx, tokens, n_ctx, n_chunks, opt.batch, opt.process_output, [&](int c) {
        if (opt.progress && c > 0) opt.progress(c, n_chunks);
    });
    if (opt.progress) opt.progress(n_chunks, n_chunks);
    return st;
}

void eval_calibration_chunks(Context& ctx, const std::vector<int32_t>& tokens, int n_ctx, int n_chunks, int batch, bool all_logits,
                             const std::function<void(int chunk)>& before) {
    const Tokenizer& tok = ctx.model().tokenizer();
    const int32_t bos = tok.bos();
    const bool add_bos = tok.add_bos() && bos >= 0;
    std::vector<float> logits;
    for (int c = 0; c < n_chunks; ++c) {
        std::vector<int32_t> chunk(tokens.begin() + static_cast<long>(c) * n_ctx, tokens.begin() + static_cast<long>(c + 1) * n_ctx);
        if (add_bos) chunk[0] = bos;
        ctx.reset();
        before(c);
        ctx.eval(chunk, logits, all_logits, batch);
    }
}

void save_imatrix(const ImatrixStats& stats, const std::string& path, const std::string& dataset) {
    OutputFile out(path);
    auto put_i32 = [&](int32_t v) { out.write(&v, 4); };
    put_i32(static_cast<int32_t>(stats.entries.size()));
    for (const auto& [name, e] : stats.entries) {
        put_i32(static_cast<int32_t>(name.size()));
        out.write(name.data(), name.size());
        put_i32(e.ncall);
        put_i32(static_cast<int32_t>(e.sum_sq.size()));
        std::vector<float> v(e.sum_sq.size());
        // In f32, as llama-imatrix writes it.
        for (size_t i = 0; i < v.size(); ++i) v[i] = e.sum_sq[i] / static_cast<float>(std::max<int64_t>(e.rows, 1)) * static_cast<float>(e.ncall);
        out.write(v.data(), v.size() * 4);
    }
    put_i32(stats.chunks);
    put_i32(static_cast<int32_t>(dataset.size()));
    out.write(dataset.data(), dataset.size());
    out.commit();
}

Imatrix imatrix_of(const ImatrixStats& stats, const std::string& dataset) {
    Imatrix m;
    m.dataset = dataset;
    m.chunks = stats.chunks;
    for (const auto& [name, e] : stats.entries) {
        std::vector<float> v(e.sum_sq.size());
        for (size_t i = 0; i < v.size(); ++i) v[i] = e.sum_sq[i] / static_cast<float>(std::max<int64_t>(e.rows, 1));
        m.entries[name] = std::move(v);
    }
    return m;
}

}  // namespace qforge

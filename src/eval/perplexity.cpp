#include "qforge/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "qforge/error.hpp"
#include "qforge/mapped_file.hpp"
#include "qforge/output_file.hpp"

namespace qforge {

namespace {

constexpr char kMagic[8] = {'Q', 'F', 'K', 'L', 'D', '0', '0', '1'};

// log-softmax of one row, in double as llama.cpp sums it.
void log_softmax(const float* logits, int n, std::vector<double>& out) {
    float mx = logits[0];
    for (int i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
    const double lse = std::log(sum);
    out.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i] - mx) - lse;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

}  // namespace

void KldBase::save(const std::string& path) const {
    OutputFile out(path);
    out.write(kMagic, 8);
    const int32_t hdr[4] = {n_ctx, n_vocab, n_chunks, static_cast<int32_t>(tokens.size())};
    out.write(hdr, sizeof hdr);
    out.write(tokens.data(), tokens.size() * 4);
    out.write(lo.data(), lo.size() * 4);
    out.write(scale.data(), scale.size() * 4);
    out.write(logits.data(), logits.size() * 2);
    out.commit();
}

KldBase KldBase::load(const std::string& path) {
    MappedFile f(path);
    if (f.size() < 24 || std::memcmp(f.data(), kMagic, 8) != 0) throw_bad_input(path, "not a qforge KL-divergence base file");
    int32_t hdr[4];
    std::memcpy(hdr, f.data() + 8, sizeof hdr);
    KldBase b;
    b.n_ctx = hdr[0];
    b.n_vocab = hdr[1];
    b.n_chunks = hdr[2];
    if (b.n_ctx < 4 || b.n_ctx > (1 << 20) || b.n_vocab < 1 || b.n_vocab > (1 << 24) || b.n_chunks < 1 || hdr[3] != b.n_chunks * b.n_ctx)
        throw_bad_input(path, "inconsistent KL-divergence base header");
    const uint64_t positions = static_cast<uint64_t>(b.n_chunks) * static_cast<uint64_t>(b.scored_per_chunk());
    const uint64_t need = 24 + static_cast<uint64_t>(hdr[3]) * 4 + positions * 8 + positions * static_cast<uint64_t>(b.n_vocab) * 2;
    if (f.size() != need) throw_bad_input(path, "KL-divergence base file has the wrong size (truncated?)");
    const uint8_t* p = f.data() + 24;
    b.tokens.resize(static_cast<size_t>(hdr[3]));
    std::memcpy(b.tokens.data(), p, b.tokens.size() * 4);
    p += b.tokens.size() * 4;
    b.lo.resize(positions);
    std::memcpy(b.lo.data(), p, positions * 4);
    p += positions * 4;
    b.scale.resize(positions);
    std::memcpy(b.scale.data(), p, positions * 4);
    p += positions * 4;
    b.logits.resize(positions * static_cast<uint64_t>(b.n_vocab));
    std::memcpy(b.logits.data(), p, b.logits.size() * 2);
    return b;
}

PerplexityResult perplexity(const Model& model, const std::vector<int32_t>& text_tokens, const PerplexityOptions& opt,
                            const KldBase* base, KldBase* save_base) {
    const auto start = std::chrono::steady_clock::now();
    const int n_ctx = base ? base->n_ctx : opt.n_ctx;
    const int n_vocab = model.hparams().n_vocab;
    if (n_ctx < 8) throw_usage("perplexity: the context must be at least 8 tokens");
    if (base && base->n_vocab != n_vocab)
        throw_usage("the KL-divergence base has " + std::to_string(base->n_vocab) + " logits per token, the model " + std::to_string(n_vocab));
    const std::vector<int32_t>& tokens = base ? base->tokens : text_tokens;
    const int max_chunks = static_cast<int>(tokens.size() / static_cast<size_t>(n_ctx));
    int n_chunks = base ? base->n_chunks : (opt.n_chunks > 0 ? std::min(opt.n_chunks, max_chunks) : max_chunks);
    if (n_chunks < 1)
        throw_usage("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " + std::to_string(n_ctx) +
                    " (use a longer text or a smaller -c)");
    const int first = n_ctx / 2;
    const int scored = n_ctx - 1 - first;
    if (save_base) {
        save_base->n_ctx = n_ctx;
        save_base->n_vocab = n_vocab;
        save_base->n_chunks = n_chunks;
        save_base->tokens.assign(tokens.begin(), tokens.begin() + static_cast<long>(n_chunks) * n_ctx);
        const size_t positions = static_cast<size_t>(n_chunks) * static_cast<size_t>(scored);
        save_base->logits.assign(positions * static_cast<size_t>(n_vocab), 0);
        save_base->lo.assign(positions, 0);
        save_base->scale.assign(positions, 0);
    }
    const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Context ctx(model, n_ctx, opt.cache_type, threads, opt.n_gpu_layers, opt.allow_software_gpu);
    const int32_t bos = model.tokenizer().bos();
    const bool add_bos = model.tokenizer().add_bos() && bos >= 0;
    double nll = 0, nll2 = 0, base_nll = 0;
    int64_t count = 0;
    std::vector<double> klds, dps;
    int64_t same_top = 0;
    std::vector<double> lp, lpb;
    std::vector<float> logits, brow;
    for (int c = 0; c < n_chunks; ++c) {
        std::vector<int32_t> chunk(tokens.begin() + static_cast<long>(c) * n_ctx, tokens.begin() + static_cast<long>(c + 1) * n_ctx);
        if (add_bos) chunk[0] = bos;
        ctx.reset();
        ctx.eval(chunk, logits, true, opt.batch);
        for (int i = 0; i < scored; ++i) {
            const int pos = first + i;
            const int32_t target = tokens[static_cast<size_t>(c) * n_ctx + static_cast<size_t>(pos) + 1];
            const float* row = logits.data() + static_cast<size_t>(pos) * n_vocab;
            log_softmax(row, n_vocab, lp);
            const double v = -lp[static_cast<size_t>(target)];
            nll += v;
            nll2 += v * v;
            ++count;
            const size_t slot = static_cast<size_t>(c) * static_cast<size_t>(scored) + static_cast<size_t>(i);
            if (save_base) {
                float lo = row[0], hi = row[0];
                for (int k = 1; k < n_vocab; ++k) {
                    lo = std::min(lo, row[k]);
                    hi = std::max(hi, row[k]);
                }
                const float sc = hi > lo ? (hi - lo) / 65535.0f : 1.0f;
                save_base->lo[slot] = lo;
                save_base->scale[slot] = sc;
                uint16_t* q = &save_base->logits[slot * static_cast<size_t>(n_vocab)];
                for (int k = 0; k < n_vocab; ++k) q[k] = static_cast<uint16_t>(std::lround((row[k] - lo) / sc));
            }
            if (base) {
                brow.resize(static_cast<size_t>(n_vocab));
                const uint16_t* q = &base->logits[slot * static_cast<size_t>(n_vocab)];
                for (int k = 0; k < n_vocab; ++k) brow[static_cast<size_t>(k)] = base->lo[slot] + base->scale[slot] * q[k];
                log_softmax(brow.data(), n_vocab, lpb);
                double kld = 0;
                size_t top_b = 0, top_m = 0;
                for (size_t k = 0; k < static_cast<size_t>(n_vocab); ++k) {
                    const double pb = std::exp(lpb[k]);
                    kld += pb * (lpb[k] - lp[k]);
                    if (lpb[k] > lpb[top_b]) top_b = k;
                    if (lp[k] > lp[top_m]) top_m = k;
                }
                klds.push_back(std::max(0.0, kld));
                same_top += top_b == top_m;
                dps.push_back(std::exp(lp[static_cast<size_t>(target)]) - std::exp(lpb[static_cast<size_t>(target)]));
                base_nll += -lpb[static_cast<size_t>(target)];
            }
        }
        if (opt.progress) opt.progress(c + 1, n_chunks);
    }
    PerplexityResult r;
    r.n_chunks = n_chunks;
    r.n_ctx = n_ctx;
    r.tokens_scored = count;
    const double mean = nll / static_cast<double>(count);
    r.ppl = std::exp(mean);
    double var = nll2 / static_cast<double>(count) - mean * mean;
    r.ppl_se = var > 0 && count > 1 ? std::sqrt(var / static_cast<double>(count - 1)) * r.ppl : 0.0;
    if (base) {
        KldStats k;
        double s = 0, s2 = 0;
        for (double v : klds) {
            s += v;
            s2 += v * v;
        }
        const double n = static_cast<double>(klds.size());
        k.mean = s / n;
        const double kv = s2 / n - k.mean * k.mean;
        k.mean_se = kv > 0 && n > 1 ? std::sqrt(kv / (n - 1)) : 0.0;
        k.median = percentile(klds, 0.5);
        k.p90 = percentile(klds, 0.9);
        k.p99 = percentile(klds, 0.99);
        k.p999 = percentile(klds, 0.999);
        k.max = *std::max_element(klds.begin(), klds.end());
        k.same_top_pct = 100.0 * static_cast<double>(same_top) / n;
        double dp = 0, dp2 = 0;
        for (double v : dps) {
            dp += v;
            dp2 += v * v;
        }
        k.dp_mean = dp / n;
        k.dp_rms = std::sqrt(dp2 / n);
        k.ppl_base = std::exp(base_nll / n);
        k.ppl_ratio = r.ppl / k.ppl_base;
        r.kld = k;
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace qforge

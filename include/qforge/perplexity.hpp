// Perplexity and KL divergence with llama.cpp's method (llama-perplexity): the text is tokenized
// once, cut into chunks of n_ctx tokens, each evaluated from an empty cache with BOS first, and
// only the second half of each chunk is scored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "qforge/model.hpp"

namespace qforge {

// The base model's token distributions for the scored positions, stored compactly (16 bits per
// logit, relative to each position's range), to compare other models against.
struct KldBase {
    int n_ctx = 0, n_vocab = 0, n_chunks = 0;
    std::vector<int32_t> tokens;    // n_chunks * n_ctx tokens evaluated
    std::vector<uint16_t> logits;   // per scored position: n_vocab values
    std::vector<float> lo, scale;   // per scored position
    void save(const std::string& path) const;
    static KldBase load(const std::string& path);
    int scored_per_chunk() const { return n_ctx - 1 - n_ctx / 2; }
};

struct KldStats {
    double mean = 0, mean_se = 0;
    double median = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
    double same_top_pct = 0;
    double dp_mean = 0, dp_rms = 0;  // change in the probability of the right token
    double ppl_base = 0, ppl_ratio = 0;
};

struct PerplexityResult {
    double ppl = 0, ppl_se = 0;
    int n_chunks = 0, n_ctx = 0;
    int64_t tokens_scored = 0;
    std::optional<KldStats> kld;
    double seconds = 0;
};

struct PerplexityOptions {
    int n_ctx = 512;
    int n_chunks = -1;  // all
    int batch = 512;
    int threads = 0;
    KvCacheType cache_type = KvCacheType::F16;
    int n_gpu_layers = 0;  // resolve_gpu_layers
    bool allow_software_gpu = false;
    std::function<void(int done, int total)> progress;
};

// tokens: the whole text tokenized with BOS (as llama-perplexity does). When `base` is given the
// chunks come from it and KL divergence is computed; `save_base` receives this model's logits.
PerplexityResult perplexity(const Model& model, const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                            const KldBase* base = nullptr, KldBase* save_base = nullptr);

}  // namespace qforge

// `qforge advise`: which formats fit a machine's memory, ranked by measured quality.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/report.hpp"

namespace qforge {

struct QualityEntry {
    std::string type;
    double bpw;  // bits per weight, output and embeddings included
    double kld;  // mean KL divergence against the unquantized model
};

struct QualityTable {
    std::vector<QualityEntry> entries;
    std::string note;  // where the numbers come from
};

// KL divergences qforge measured on tiny-llama-23m (TinyStories, ctx 512, 40 chunks; they match
// llama-perplexity's within 1%): used when no report of the user's own model exists.
QualityTable builtin_quality();
QualityTable quality_from_report(const Report& r);

struct ModelSpec {
    std::string name;
    double params;
    int n_layer;
    int kv_dim;  // K (= V) width per layer: KV heads x head size
};
// Representative shapes for 1B … 70B (Llama 3.2 1B/3B, Llama 3.1 8B, Qwen2.5 14B/32B, Llama 3.1 70B).
std::vector<ModelSpec> standard_models();
ModelSpec spec_for_params(double params);  // nearest standard shape, scaled to `params`

// Memory left for a model after the OS and other programs: max(1.5 GiB, 15%) is kept free.
uint64_t usable_memory(uint64_t ram_bytes);
// Memory to run `spec` at `type` with an f16 KV cache of n_ctx tokens.
uint64_t model_memory(const ModelSpec& spec, double bpw, int n_ctx);

struct Fit {
    QualityEntry format;
    uint64_t bytes;
};
// Formats that fit, best quality first.
std::vector<Fit> formats_that_fit(const ModelSpec& spec, const QualityTable& q, uint64_t ram_bytes, int n_ctx);
// The recommendation among `fits`: the smallest practically lossless format (mean KLD <= 0.002)
// when one fits, otherwise the one with the lowest KLD. nullptr when nothing fits.
const Fit* recommended(const std::vector<Fit>& fits);
constexpr double kLosslessKld = 0.002;

// Markdown: for each RAM size (rows) and model size (columns), the best format that fits.
std::string recommendations_markdown(const QualityTable& q, const std::vector<uint64_t>& ram_sizes, int n_ctx);

// "16G", "24GB", "1.5T", "8192M" -> bytes; throws a usage error otherwise.
uint64_t parse_size(const std::string& s);
// "7B", "1.1b", "70000M" -> parameters.
double parse_params(const std::string& s);

}  // namespace qforge

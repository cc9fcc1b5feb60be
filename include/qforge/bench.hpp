// Speed measurement as llama-bench does it: prompt processing (pp) and text generation (tg).
#pragma once

#include <string>
#include <vector>

#include "qforge/model.hpp"

namespace qforge {

struct BenchOptions {
    int n_prompt = 512;   // pp: tokens evaluated in one batch from an empty cache (0 = skip)
    int n_gen = 128;      // tg: tokens generated one at a time (0 = skip)
    int repetitions = 5;
    int threads = 0;
    KvCacheType cache_type = KvCacheType::F16;
    int n_gpu_layers = 0;  // resolve_gpu_layers
    bool allow_software_gpu = false;
};

struct BenchStat {
    double mean = 0, stddev = 0;  // tokens/s
};

struct BenchResult {
    std::string model;   // path
    std::string type;    // file type, e.g. "Q4_K_M"
    uint64_t size_bytes = 0;
    int64_t params = 0;
    int threads = 0;
    BenchStat pp, tg;
    int n_prompt = 0, n_gen = 0;
    uint64_t peak_rss_bytes = 0;
    std::string kernel;  // the CPU kernels, or the GPU
};

BenchResult bench_model(const Model& model, const BenchOptions& opt);
// A human name for the model's file type ("Q4_K_M", "F16", "mixed").
std::string model_type_name(const Model& model);

}  // namespace qforge

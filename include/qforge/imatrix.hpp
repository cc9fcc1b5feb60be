// Importance matrices as llama-imatrix computes them: per weight matrix and input column, the
// mean squared activation over a calibration text (chunks of n_ctx tokens from an empty cache,
// BOS first), saved in llama.cpp's legacy binary .dat format (read back by load_imatrix).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "qforge/model.hpp"
#include "qforge/quantize_model.hpp"

namespace qforge {

struct ImatrixOptions {
    int n_ctx = 512;
    int n_chunks = -1;  // all
    int batch = 512;
    int threads = 0;
    bool process_output = false;  // also output.weight (llama-imatrix --process-output)
    std::function<void(int done, int total)> progress;
};

struct ImatrixStats {
    struct Entry {
        std::vector<float> sum_sq;   // per input column, summed in f32 row by row as llama-imatrix does
        int64_t rows = 0;            // activation rows seen
        int ncall = 0;               // products seen
    };
    std::map<std::string, Entry> entries;  // by weight name, e.g. "blk.0.attn_q.weight"
    int chunks = 0;
};

// Evaluates n_chunks chunks of n_ctx tokens, each from an empty cache with BOS first (as
// llama-imatrix does), for an activation observer set on ctx; before(c) runs ahead of chunk c.
void eval_calibration_chunks(Context& ctx, const std::vector<int32_t>& tokens, int n_ctx, int n_chunks, int batch, bool all_logits,
                             const std::function<void(int chunk)>& before);

ImatrixStats compute_imatrix(const Model& model, const std::vector<int32_t>& tokens, const ImatrixOptions& opt);
// Writes the legacy .dat: per entry its name, call count and mean squares times the call count,
// then the chunk count and the dataset name (atomically).
void save_imatrix(const ImatrixStats& stats, const std::string& path, const std::string& dataset);
// The mean squares, as quantize takes them.
Imatrix imatrix_of(const ImatrixStats& stats, const std::string& dataset);

}  // namespace qforge

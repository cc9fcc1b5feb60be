// The error-driven mix (`qforge quantize --target-bpw B | --target-size SIZE`): each weight
// matrix's sensitivity is measured as the KL divergence of the model's output on calibration text
// when only that matrix is quantized, at each candidate type; then per-matrix types are chosen to
// minimize the summed divergence within a size budget.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "qforge/model.hpp"
#include "qforge/quantize_model.hpp"
#include "qforge/types.hpp"

namespace qforge {

struct MixSearchOptions {
    std::vector<int32_t> calib_tokens;  // the calibration text, tokenized with BOS
    int n_ctx = 256;                    // chunk length for the divergence
    int n_chunks = 4;
    int threads = 0;
    const Imatrix* imatrix = nullptr;   // used when quantizing each candidate (as quantize would)
    std::vector<GgmlType> candidates = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::IQ4_XS, GgmlType::Q4_K,
                                        GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0};
    uint64_t budget_bytes = 0;          // all tensor data, the unquantized (norm) vectors included
    // Where the measurements are kept: read when it holds this model's and options' measurements
    // (then nothing is evaluated again, so several budgets cost one search), written otherwise.
    std::string measurements_file;
    std::function<void(int done, int total)> progress;
};

struct MixChoice {
    std::string name;
    GgmlType type;
    uint64_t bytes;
    double kld;  // measured with only this matrix quantized to `type`
};

struct MixResult {
    std::vector<MixChoice> choices;  // one per weight matrix, in the model's order
    uint64_t matrix_bytes = 0;       // the chosen matrices
    uint64_t fixed_bytes = 0;        // everything kept as it is (norm vectors)
    double predicted_kld = 0;        // the sum of the choices' divergences
    int64_t n_params = 0;
    int evaluations = 0;
};

// `model` must hold high-precision weights (F32, F16 or BF16); its weight views are swapped one at
// a time during the search and restored. Throws Error(usage) when the budget is below the
// smallest candidate mix.
MixResult search_mix(Model& model, const MixSearchOptions& opt);

// The choices as --tensor-type patterns (^name$, dots escaped) and as a file of REGEX=TYPE lines;
// load_tensor_type_file reads such a file back.
std::vector<std::pair<std::string, GgmlType>> mix_tensor_types(const MixResult& r);
std::string mix_recipe_text(const MixResult& r);
std::vector<std::pair<std::string, GgmlType>> load_tensor_type_file(const std::string& path);

// --target-size: "14.5M", "2G", "900K" (powers of 1024) or a byte count.
uint64_t parse_target_size(const std::string& s);

}  // namespace qforge

// AWQ (Lin et al., 2023): activation-aware per-channel scaling. For a matrix whose input channel j
// carries large activations, multiplying column j by s_j and dividing the input by s_j (folded
// into what produces the input: the RMSNorm weights before q/k/v and gate/up, the rows of v
// before o, the rows of up before down) leaves the float model unchanged but puts more of the
// quantization grid on the columns that matter. s = (RMS activation)^alpha, alpha searched per
// group on the calibration Hessians for the smallest output error of the quantized matrices.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qforge/gptq.hpp"
#include "qforge/model.hpp"

namespace qforge {

// The scales chosen, by GGUF tensor name.
struct AwqScales {
    std::map<std::string, std::vector<float>> col_mul;  // W[:, j] *= s[j]
    std::map<std::string, std::vector<float>> row_div;  // W[i, :] /= s[i] (a vector: v[i] /= s[i])
    struct Group {
        std::string what;  // "blk.3.attn_q/k/v"
        float alpha;
        double err_plain, err_scaled;  // output error without / with the scales
    };
    std::vector<Group> groups;
    bool touches(const std::string& name) const { return col_mul.count(name) || row_div.count(name); }
    // Applies the scales of `name` to its f32 values (rows x cols; a vector has rows 1).
    void apply(const std::string& name, float* v, int64_t rows, int64_t cols) const;
    // An importance matrix of the unscaled inputs, for the scaled ones (divided by s^2).
    void rescale(Imatrix& m) const;
};

// w (rows x cols) quantized and dequantized as the output will store it, with this importance of
// the columns (cols values).
using FakeQuant = std::function<void(const std::string& name, const float* w, int64_t rows, int64_t cols, const float* importance, float* out)>;

struct AwqOptions {
    int grid = 20;        // alpha in {0, 1/grid, …, 1}
    int max_rows = 512;   // rows of each matrix the error is measured on (evenly spaced)
    int threads = 0;
};

// Searches the scales of every layer (q/k/v after attn_norm, gate/up after ffn_norm, o after v,
// down after up) on the model's weights and the calibration Hessians, and turns the Hessians
// into those of the scaled inputs (H' = S^-1 H S^-1), for GPTQ after it.
AwqScales awq_search(const Model& model, Hessians& hs, const FakeQuant& fq, const AwqOptions& opt);

// The source's tensors the scales touch, read as f32 with the scales applied.
void awq_apply_to_source(SourceModel& src, std::shared_ptr<const AwqScales> scales);

// AWQ for a GGUF quantization: the types quantize_model gives each tensor under opt (a dry run
// towards out_path), the scales searched for them, applied to src; returns the scales.
std::shared_ptr<AwqScales> awq_for_quantize(const Model& model, Hessians& hs, SourceModel& src, QuantizeOptions opt,
                                            const std::string& out_path, int threads);

// FakeQuant for ggml types: each tensor's type from `types` (by name; others stay as they are).
FakeQuant ggml_fake_quant(std::map<std::string, GgmlType> types);

}  // namespace qforge

// GPTQ (Frantar et al., 2022): quantization with second-order error feedback. For a weight matrix
// W (rows x K) whose inputs x have the Hessian H = sum x x^T over calibration text, columns are
// quantized left to right and each column's rounding error is spread over the columns not yet
// quantized through the Cholesky factor of H^-1, so the layer's output error on the calibration
// inputs, not the weights' own error, is what is minimised. qforge emits the block formats
// unchanged: each block's scales (and minimums) come from the format's own quantizer (weighted
// by diag(H), as an importance matrix) on the block's error-updated weights, then its columns
// are rounded on that grid one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qforge/mlx_model.hpp"
#include "qforge/model.hpp"
#include "qforge/quantize_model.hpp"
#include "qforge/types.hpp"

namespace qforge {

struct GptqOptions {
    double damp = 0.01;  // added to the diagonal, times its mean
    int threads = 0;
    // Activation order: columns quantized from the largest diag(H) down, every block's grid chosen
    // first from the weights as they are ("static groups", so any block format works).
    bool act_order = false;
};

// Whether GPTQ can emit this type (ggml's block formats with a code grid: Q2_K … Q8_0, IQ4_NL/XS).
bool gptq_supports(GgmlType t);

// Matrices GPTQ leaves to rounding: the output head (its Hessian's squared error on the logits
// is not what the next-token distribution needs: on tiny-llama-23m GPTQ there raised the KLD).
bool gptq_skips(const std::string& name);

// W (rows x K, row-major) is replaced by the values chosen with error feedback (each on its
// block's grid); H is K x K (row-major, sum of x x^T; not modified). out (rows x row bytes of t,
// optional) receives them as stored: each block's scales from the format's quantizer, its codes
// from GPTQ (quantizing W again would search the scales anew and lose some of the gain).
void gptq_matrix(float* W, int64_t rows, int64_t K, GgmlType t, const std::vector<double>& H, const GptqOptions& opt,
                 uint8_t* out = nullptr);
// MLX affine (p.bits, groups of p.group_size): each group's scale and bias from the weighted fit
// (mlx_affine_fit_group, weighted by diag H) of its error-updated weights, its codes by GPTQ. W is
// replaced by the values chosen.
MlxAffineTensor gptq_mlx_matrix(float* W, int64_t rows, int64_t K, const MlxAffineParams& p, const std::vector<double>& H,
                                const GptqOptions& opt);
// The codes of one block of t (kernels/panel.hpp's convention, w = scale * q + min) written into
// its bytes, the scales left as they are: the inverse of the panel unpacking.
void put_block_codes(GgmlType t, uint8_t* block, const int8_t* q);

// The inputs' Hessians of every layer matrix (named as in GGUF, "blk.0.attn_q.weight"), from
// n_chunks chunks of n_ctx tokens (BOS first) evaluated by the model; also the mean squares
// (diag(H) / tokens), which is the importance matrix of the same text.
// Matrices that read the same input (q/k/v, gate/up) share one.
struct Hessians {
    std::map<std::string, std::shared_ptr<std::vector<double>>> h;  // K x K
    std::map<std::string, int64_t> rows;                             // activation rows summed
    // The mean squares (diag(H) / rows), i.e. the importance matrix of the same text; the output
    // head's only with_output (llama-imatrix leaves it out too; on tiny-llama-23m's GGUF mixes
    // weighting it raised the KLD slightly, in MLX's affine fit it is weighted).
    Imatrix importance(const std::string& dataset, bool with_output = false) const;
    // A copy with its own matrices (shared between the same tensors as here).
    Hessians deep_copy() const;
};
// quantize's adjustment that runs GPTQ on every matrix with a Hessian and a supported target type
// (the others are rounded as usual).
QuantizeAdjust gptq_adjust(std::shared_ptr<const Hessians> hessians, const GptqOptions& opt);

Hessians collect_hessians(const Model& model, const std::vector<int32_t>& tokens, int n_ctx, int n_chunks, int threads,
                          const std::function<void(int done, int total)>& progress = {});

}  // namespace qforge

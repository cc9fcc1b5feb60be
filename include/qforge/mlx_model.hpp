// MLX model directories as mlx-lm writes and reads them: config.json with "quantization" and
// "quantization_config", model.safetensors (metadata format: mlx) with each quantized module's
// `P.weight` (uint32 codes), `P.scales` and `P.biases`, and the tokenizer files. And the exact
// bridges between MLX's affine format and ggml's block formats.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "qforge/mlx_quant.hpp"
#include "qforge/types.hpp"

namespace qforge {

// One matrix in MLX's affine format: rows x cols values, codes packed LSB-first in uint32 words
// (cols * bits / 32 per row), a scale and a bias per group in p.dtype.
struct MlxAffineTensor {
    MlxAffineParams p;
    int64_t rows = 0, cols = 0;
    std::vector<uint32_t> wq;
    std::vector<uint8_t> scales, biases;
};

// ggml rows -> MLX affine, groups of 32, without requantizing: Q4_0 (scale d, bias -8d), Q4_1
// (d, m), Q5_0 (d, -16d), Q5_1 (d, m), Q8_0 (d, -128d), and the 32-element sub-blocks of Q4_K and
// Q5_K (scale d*sc, bias -dmin*m: exact in f32). The codes, scales and biases carry the
// same values; with f32 scales MLX's dequantization gives ggml's weights exactly (equal values; a
// zero can differ in sign: ggml's (q - 8) * d is -0 for negative d, MLX's q*d - 8d is +0). f16/bf16
// scales round the products (and bf16 the scales too): `exact` says whether the dequantized
// weights still equal ggml's. nullopt for other types.
struct GgufToMlx {
    MlxAffineTensor t;
    bool exact = false;
    double max_abs_err = 0;  // of the dequantized weights against ggml's
};
std::optional<GgufToMlx> gguf_to_mlx(GgmlType type, const uint8_t* data, int64_t rows, int64_t cols, MlxDtype dtype);

// MLX affine 4- or 5-bit with groups a multiple of 32 -> Q4_1 / Q5_1 rows holding the same codes,
// scales and biases (each MLX group becomes group_size/32 ggml blocks). Needs scales and biases
// representable in f16 (always for f16; bf16 and f32 when in range and precision): otherwise
// nullopt, with the reason in *why.
std::optional<std::vector<uint8_t>> mlx_to_gguf(const MlxAffineTensor& t, GgmlType* type, std::string* why = nullptr);

// A zeroed tensor of this shape and format.
MlxAffineTensor mlx_affine_empty(const MlxAffineParams& p, int64_t rows, int64_t cols);

// The f32 weights MLX's dequantization gives (rounded through the scales' dtype as MLX does).
std::vector<float> mlx_dequantize_f32(const MlxAffineTensor& t);

struct MlxConvertOptions {
    int bits = 4;
    int group_size = 64;
    std::string mode = "affine";           // or mxfp4 (groups of 32, E8M0 scales) / nvfp4 (16, E4M3)
    bool quantize = true;                  // false: float weights only (mlx_lm.convert without -q)
    std::optional<MlxDtype> dtype;         // of float weights and scales; default: the source's
    std::vector<std::string> exclude;      // ECMAScript regexes on module paths kept in float
    // mlx-lm's mixed-precision recipes (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6): more bits for
    // lm_head and for v_proj/down_proj in the first and last eighth of the layers and every third
    // layer between, as mlx-lm (after llama.cpp's Q4_K_M) chooses them.
    std::string recipe;
    // Weight files of at most this size (mlx-lm: 5 GB): model-0000K-of-0000N.safetensors and an
    // index, as mlx-lm writes them; one model.safetensors (and its index) when it all fits.
    uint64_t max_shard_bytes = 5ull << 30;
    int threads = 0;
    // Calibrated quantization (convert --method): every tensor's f32 values, by GGUF name
    // ("blk.0.attn_norm.weight"), pass through `transform` first (AWQ's scales), and each affine
    // module is quantized by `calibrated` (GPTQ, weighted scales) unless it returns nullopt.
    std::function<void(const std::string& gguf_name, float* values, int64_t rows, int64_t cols)> transform;
    std::function<std::optional<MlxAffineTensor>(const std::string& gguf_name, std::vector<float>& values, int64_t rows, int64_t cols,
                                                 const MlxAffineParams& p)>
        calibrated;
};

struct MlxTensorReport {
    std::string name;   // the module or tensor, as mlx-lm names it
    std::string how;    // "quantized 4-bit g64", "float16", "exact from q4_0", …
    bool exact = true;  // no value changed beyond the requested quantization
    double max_abs_err = 0;
};

// Writes an mlx-lm model directory from a Hugging Face directory (llama family, qwen2).
std::vector<MlxTensorReport> convert_hf_to_mlx(const std::string& hf_dir, const std::string& out_dir, const MlxConvertOptions& opt);

// Writes an mlx-lm model directory from a GGUF (llama, qwen2): the
// matrices whose format has MLX's form (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K) keep their codes
// in groups of 32 (exact with --dtype f32), others are requantized with opt's bits and group
// size, float tensors copied; llama's Q/K rows back in Hugging Face order; tokenizer.json and
// tokenizer_config.json rebuilt from the vocabulary. Modules whose width differs from the most
// common one get their own "quantization" entry, as mlx-lm's mixed recipes record them.
std::vector<MlxTensorReport> convert_gguf_to_mlx(const std::string& gguf_path, const std::string& out_dir, const MlxConvertOptions& opt);

class GgufFile;
// Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json) for a GGUF's vocabulary:
// SentencePiece ("llama") as BPE with byte fallback, merges from the scores as transformers
// derives them; byte-level BPE ("gpt2") with its merges and the pre-tokenizer's split regex
// (gpt-2, llama-bpe, qwen2).
void write_hf_tokenizer_files(const GgufFile& f, const std::string& dir);

// GGUF tensor names <-> Hugging Face ones (llama family, qwen2); "" for none.
std::string hf_name(const std::string& gguf_name);
std::string gguf_name_of_hf(const std::string& hf_name);

// True when a directory holds an MLX-quantized model (config.json "quantization").
bool is_mlx_quantized_dir(const std::string& dir);

}  // namespace qforge

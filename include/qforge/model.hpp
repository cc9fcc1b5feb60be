// A loaded language model (llama family, qwen2) and its evaluation state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "qforge/gguf.hpp"
#include "qforge/thread_pool.hpp"
#include "qforge/tokenizer.hpp"
#include "qforge/types.hpp"

namespace qforge {

struct ModelHparams {
    std::string arch;
    int n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0, n_ctx_train = 0;
    int n_rot = 0;  // rotary dimensions
    float rms_eps = 1e-5f, rope_base = 10000.f, rope_freq_scale = 1.f;
    bool rope_neox = false;
};

// Rotary embedding, shared by the CPU and GPU passes: the frequencies as transformers computes
// them (f32), and the table of one position's angles, [n_rot/2] pairs of (cos, sin).
std::vector<float> rope_inv_freq(const ModelHparams& hp);
void rope_cos_sin(const ModelHparams& hp, const std::vector<float>& inv_freq, int pos, float* cos_sin);

// A weight matrix (or vector) in its stored type: rows of ne[0] elements.
struct WeightView {
    GgmlType type = GgmlType::F32;
    std::vector<int64_t> ne;
    const uint8_t* data = nullptr;
    // The same rows regrouped for this CPU's kernels (Q4_0 in groups of eight, kernels/panel.hpp),
    // or nullptr; owned by the model.
    const uint8_t* x8 = nullptr;
    bool present() const { return data != nullptr; }
    int64_t cols() const { return ne.empty() ? 0 : ne[0]; }
    int64_t rows() const { return ne.size() < 2 ? 1 : ne[1]; }
    size_t row_bytes() const;
};

struct LayerWeights {
    WeightView attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, w_gate, w_up, w_down;
};

class Model {
public:
    // A GGUF file or a Hugging Face model directory (converted in memory).
    static std::unique_ptr<Model> load(const std::string& path);
    ~Model();

    const ModelHparams& hparams() const { return hp_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const std::vector<GgufKV>& metadata() const { return metadata_; }
    const std::string& path() const { return path_; }
    std::string chat_template() const;
    uint64_t weight_bytes() const { return weight_bytes_; }
    int64_t n_params() const { return n_params_; }

    WeightView tok_embd, output_norm, output;
    std::vector<LayerWeights> layers;
    // Every weight matrix the forward pass reads, by its GGUF name (output.weight only when it is
    // not tied to token_embd.weight), as views callers may point elsewhere (the mix search does).
    std::vector<std::pair<std::string, WeightView*>> matrices();

private:
    Model() = default;
    void bind(const std::string& source);
    void repack_for_cpu();
    struct Storage;
    std::unique_ptr<Storage> storage_;
    ModelHparams hp_;
    std::unique_ptr<Tokenizer> tokenizer_;
    std::vector<GgufKV> metadata_;
    std::vector<std::pair<std::string, WeightView>> tensors_;
    std::string path_;
    uint64_t weight_bytes_ = 0;
    int64_t n_params_ = 0;
};

enum class KvCacheType { F32, F16, Q8_0 };
KvCacheType parse_cache_type(const std::string& s);  // "f32", "f16", "q8_0"

class GpuForward;

// Where a context runs, as the CLI's --device cpu|gpu|auto and -ngl N choose it.
struct DeviceOptions {
    std::string device = "auto";  // auto: a real GPU when one is usable, else the CPU
    int n_gpu_layers = -1;        // layers on the GPU (-1: all, and the output head)
};
// The n_gpu_layers for Context (0: CPU alone); throws Error(usage) for a bad --device, and
// Error(resource) when --device gpu finds no GPU.
int resolve_gpu_layers(const DeviceOptions& d, const Model& model);

// Evaluation state: the KV cache and scratch buffers for one sequence.
class Context {
public:
    // n_gpu_layers > 0: the last n_gpu_layers layers (all of them, and the output head, when it
    // is at least the layer count) run on the GPU through Vulkan, as llama.cpp's -ngl; throws
    // Error(resource) when no GPU is usable. allow_software_gpu admits devices such as lavapipe.
    Context(const Model& model, int n_ctx, KvCacheType cache_type, int n_threads, int n_gpu_layers = 0, bool allow_software_gpu = false);
    ~Context();
    // The GPU in use ("" on the CPU alone).
    std::string gpu_description() const;
    // Called with the input of every weight matrix of the layers run on the CPU, before the
    // product: layer (-1 for the output head), tensor ("attn_q", …, "ffn_down", "output"), the
    // batch's rows x cols activations (as llama-imatrix sees them).
    using ActivationObserver = std::function<void(int layer, const char* tensor, const float* x, int rows, int cols)>;
    void set_activation_observer(ActivationObserver f) { observer_ = std::move(f); }

    // Evaluate `tokens` after the n_past already in the cache. Fills logits for the last token
    // (n_vocab values) or, with all_logits, for every token (tokens.size() x n_vocab).
    void eval(const std::vector<int32_t>& tokens, std::vector<float>& logits, bool all_logits = false, int batch = 512);
    int n_past() const { return n_past_; }
    int n_ctx() const { return n_ctx_; }
    void reset() { n_past_ = 0; }
    // Forget everything after the first n tokens (to reuse a common prefix).
    void truncate(int n) { n_past_ = std::min(n_past_, std::max(0, n)); }
    const Model& model() const { return model_; }

private:
    void eval_batch(const int32_t* tokens, int n, float* logits, bool all_logits);
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::unique_ptr<GpuForward> gpu_;
    ActivationObserver observer_;
    const Model& model_;
    int n_ctx_;
    int n_past_ = 0;
};

struct SamplerParams {
    float temp = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    uint32_t seed = 0xFFFFFFFF;  // random when left at this value
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& p);
    int32_t sample(const float* logits, int n_vocab);
    void accept(int32_t token);

private:
    SamplerParams p_;
    std::mt19937 rng_;
    std::vector<int32_t> recent_;
};

// Peak resident memory of this process, in bytes.
uint64_t peak_rss_bytes();

}  // namespace qforge

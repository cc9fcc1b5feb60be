// The forward pass on a GPU through Vulkan compute (gpu/vk_runtime.hpp): the last n_gpu_layers
// layers and the output head, as llama.cpp's -ngl offloads them; weights uploaded once, one
// command buffer per batch of tokens, no host round trip inside it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/model.hpp"

namespace qforge {

class GpuForward {
public:
    // Throws Error(resource) with the reason when no GPU is usable (or qforge was built without
    // Vulkan). allow_cpu_devices: also software devices such as lavapipe (for tests).
    static std::unique_ptr<GpuForward> create(const Model& model, int n_ctx, int n_gpu_layers, bool allow_cpu_devices);
    ~GpuForward();
    int first_layer() const;              // layers [first_layer, n_layer) run here
    std::string device_description() const;  // "NVIDIA H100 80GB HBM3 (discrete, Vulkan)"
    // x: B rows of n_embd activations entering first_layer (positions n_past..n_past+B-1).
    // Writes the logits of every token (all_logits) or of the last one.
    void eval(const float* x, int B, int n_past, float* logits, bool all_logits);

private:
    GpuForward() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Whether a real GPU (not a software device) can be used, for --device auto.
bool gpu_usable();

// Single shaders on the GPU, for tests against the CPU reference (software devices such as
// lavapipe allowed); each throws Error(resource) without a device.
namespace gpu_ops {
std::string device();
// Whether batches of 2+ tokens of weights stored as t run on tensor cores (matmul_cm.comp: inputs
// rounded to f16).
bool coopmat(GgmlType t);
// Whether one token meets weights stored as t on integer dot products (matvec_dot.comp: the
// activations quantized to 8 bits per block of 32, d = max|x| / 127).
bool int_dot(GgmlType t);
// y[b][r] = W[r] . x[b] (+ bias[r]) (+ y0[b][r] when y0 is given); W stored as t. With glu_up
// (one token where int_dot(t), or a batch where coopmat(t)) the input is SwiGLU's silu(x) * glu_up,
// made by the product or as the input goes to f16.
std::vector<float> matvec(GgmlType t, std::span<const uint8_t> w, int64_t rows, int64_t cols, std::span<const float> x, int B,
                          std::span<const float> bias = {}, std::span<const float> y0 = {}, std::span<const float> glu_up = {});
// Rows of w.size(); with n_parts > 0 through rmsnorm_parts.comp, the rows' sums of squares
// given in that many parts (as the products of generation leave them).
std::vector<float> rmsnorm(std::span<const float> x, std::span<const float> w, float eps, int n_parts = 0);
std::vector<float> rope(std::span<const float> v, std::span<const float> cos_sin, int n_heads, int head_dim, int n_rot, bool neox, int B);
// Keys k ([B][n_heads * head_dim]) through kv_store's rotation into the cache, read back as [B][...].
std::vector<float> rope_stored_keys(std::span<const float> k, std::span<const float> cos_sin, int n_heads, int head_dim, int n_rot, bool neox,
                                    int B);
// batch_tile: attention_batch.comp's tile of positions forced (8 or 16; 0: as the forward pass
// chooses), where a batch runs it; a tile of the subgroup size runs its subgroup form.
std::vector<float> attention(std::span<const float> q, std::span<const float> k_cache, std::span<const float> v_cache, int n_head,
                             int n_head_kv, int head_dim, int n_past, int B, int batch_tile = 0);
std::vector<float> swiglu(std::span<const float> gate, std::span<const float> up);
}  // namespace gpu_ops

}  // namespace qforge

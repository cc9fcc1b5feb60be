// The forward pass on a GPU through Vulkan compute (gpu/vk_runtime.hpp): the last n_gpu_layers
// layers and the output head, as llama.cpp's -ngl offloads them; weights uploaded once, one
// command buffer per batch of tokens, no host round trip inside it.
#pragma once

#include <memory>
#include <string>

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

}  // namespace qforge

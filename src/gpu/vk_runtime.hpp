// A small Vulkan compute runtime: the loader opened at run time (qforge starts without one),
// one device and queue, buffers, compute pipelines from embedded SPIR-V with push descriptors,
// and a recorder that puts a whole forward pass into one command buffer.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qforge::gpu {

// The entry points qforge uses, loaded from libvulkan.so.1.
struct VkFns {
#define QF_VK_FN(name) PFN_##name name = nullptr;
#include "gpu/vk_functions.inc"
#undef QF_VK_FN
};

struct DeviceInfo {
    std::string name;
    std::string type;   // "discrete", "integrated", "cpu" (e.g. lavapipe), "virtual", "other"
    bool unified = false;  // device-local memory the host can map (Apple, integrated, lavapipe)
    // VK_NV_cooperative_matrix with 16 x 16 x 16 f16 products into f32 (tensor cores; NVIDIA),
    // used for prompts unless QFORGE_GPU_COOPMAT=0.
    bool coopmat = false;
    // VK_KHR_shader_integer_dot_product: generation's products of Q8_0, Q4_0, Q4_K and Q6_K weights
    // on 8-bit activations (matvec_dot.comp), unless QFORGE_GPU_INTDOT=0.
    bool int_dot = false;
    uint32_t subgroup_size = 0;
    uint32_t shared_memory = 16384;  // bytes of shared memory a workgroup may have
    uint32_t max_workgroup = 128;  // threads a workgroup may have (x dimension, and in all)
};

class VkRuntime;

// A storage buffer in device memory (host-visible where the device has such memory, so uploads
// need no copy on unified-memory GPUs).
class VkBuf {
public:
    VkBuf() = default;
    // readback: the host reads it (logits, downloads): host-cached memory, where the CPU reads fast
    // (not device memory through the PCIe BAR, which a discrete GPU may offer as host-visible).
    VkBuf(VkRuntime& rt, size_t bytes, bool host_visible, bool readback = false);
    VkBuf(const VkBuf&) = delete;
    VkBuf& operator=(const VkBuf&) = delete;
    VkBuf(VkBuf&& o) noexcept { *this = std::move(o); }
    VkBuf& operator=(VkBuf&& o) noexcept;
    ~VkBuf();
    VkBuffer buffer() const { return buf_; }
    size_t size() const { return size_; }
    void* mapped() const { return map_; }  // nullptr unless host-visible
    void upload(const void* src, size_t bytes, size_t offset = 0);
    void download(void* dst, size_t bytes, size_t offset = 0);

private:
    VkRuntime* rt_ = nullptr;
    VkBuffer buf_ = VK_NULL_HANDLE;
    VkDeviceMemory mem_ = VK_NULL_HANDLE;
    size_t size_ = 0;
    void* map_ = nullptr;
    bool coherent_ = false;
};

// A compute pipeline: one shader, n_buffers storage buffers (bindings 0..n-1), push constants.
struct VkKernel {
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    int n_buffers = 0;
    uint32_t push_bytes = 0;
};

class VkRuntime {
public:
    // The best device: discrete, then integrated, then anything else (lavapipe). Throws
    // Error(resource) with the reason when none is usable.
    static std::unique_ptr<VkRuntime> create();
    // That device's description without opening it, or nullopt when none is usable.
    static std::optional<DeviceInfo> best_device();
    ~VkRuntime();
    const VkFns& fn() const { return *fn_; }
    VkDevice device() const { return device_; }
    const DeviceInfo& info() const { return info_; }
    uint64_t max_buffer_range() const { return max_range_; }

    // spec: the shader's uint specialization constants 0, 1, … (part of what `name` names).
    const VkKernel& kernel(const std::string& name, std::span<const uint32_t> spirv, int n_buffers, uint32_t push_bytes,
                           std::span<const uint32_t> spec = {});

    // Record into the current command buffer (one of two), then submit and wait: begin, what the
    // commands do, end, submit, wait (submit_and_wait: the last three). swap makes the other
    // buffer current, so that one can be recorded while the other runs; a recording is kept until
    // that buffer's next begin.
    void begin();
    void dispatch(const VkKernel& k, std::span<const VkBuf* const> bufs, const void* push, uint32_t gx, uint32_t gy = 1, uint32_t gz = 1);
    void barrier();  // shader writes visible to later shader reads and transfers
    void copy(const VkBuf& src, size_t src_off, const VkBuf& dst, size_t dst_off, size_t bytes);
    void end();
    void submit();
    void wait();
    void submit_and_wait();
    void swap();
    // How many recordings were begun so far: a recording kept for later is still the current
    // buffer's last while this has not moved since.
    uint64_t recordings() const { return recordings_; }

    // With QFORGE_GPU_PROFILE=1: a GPU timestamp after the commands recorded so far, charged to
    // `label`; totals per label are printed to stderr when the runtime goes.
    bool profiling() const { return query_pool_ != VK_NULL_HANDLE; }
    void timestamp(const char* label);

    uint32_t memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags* got) const;

private:
    VkRuntime() = default;
    const VkFns* fn_ = nullptr;
    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice phys_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkCommandBuffer cmds_[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
    VkFence fences_[2] = {VK_NULL_HANDLE, VK_NULL_HANDLE};
    int cur_ = 0;           // the current command buffer
    bool pending_[2] = {false, false};  // submitted and not waited for
    uint64_t recordings_ = 0;
    VkPhysicalDeviceMemoryProperties mem_props_{};
    DeviceInfo info_;
    uint64_t max_range_ = 0;
    struct NamedKernel;
    std::vector<std::unique_ptr<NamedKernel>> kernels_;
    VkQueryPool query_pool_ = VK_NULL_HANDLE;
    void print_stats(const std::string& name, VkPipeline pipeline) const;
    bool stats_ = false;  // QFORGE_GPU_STATS=1: each pipeline's compiler statistics to stderr
    float timestamp_ns_ = 1.0f;
    std::vector<const char*> stamp_labels_;
    std::vector<std::pair<const char*, std::pair<double, int>>> profile_;  // label: (ms, count)
    // With profiling: host time recording (begin to submit) and waiting (submit to fence), per submit.
    std::chrono::steady_clock::time_point began_, submitted_;
    double record_ms_ = 0, wait_ms_ = 0;
    int submits_ = 0;
    void collect_timestamps();
};

}  // namespace qforge::gpu

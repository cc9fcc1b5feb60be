// Built without Vulkan (no headers or glslc at build time): no GPU.
#include "gpu/gpu_forward.hpp"
#include "qforge/error.hpp"

namespace qforge {

struct GpuForward::Impl {};
std::unique_ptr<GpuForward> GpuForward::create(const Model&, int, int, bool) {
    throw Error(ExitCode::resource, "[gpu] this qforge was built without Vulkan (install libvulkan-dev and glslc, then rebuild)");
}
GpuForward::~GpuForward() = default;
int GpuForward::first_layer() const { return 0; }
std::string GpuForward::device_description() const { return ""; }
void GpuForward::eval(const float*, int, int, float*, bool) {}
bool gpu_usable() { return false; }

namespace gpu_ops {
namespace {
[[noreturn]] void none() { throw Error(ExitCode::resource, "[gpu] this qforge was built without Vulkan"); }
}  // namespace
std::string device() { none(); }
bool coopmat(GgmlType) { return false; }
bool int_dot(GgmlType) { return false; }
std::vector<float> matvec(GgmlType, std::span<const uint8_t>, int64_t, int64_t, std::span<const float>, int, std::span<const float>,
                          std::span<const float>, std::span<const float>) { none(); }
std::vector<float> rmsnorm(std::span<const float>, std::span<const float>, float, int) { none(); }
std::vector<float> rope(std::span<const float>, std::span<const float>, int, int, int, bool, int) { none(); }
std::vector<float> attention(std::span<const float>, std::span<const float>, std::span<const float>, int, int, int, int, int) { none(); }
std::vector<float> swiglu(std::span<const float>, std::span<const float>) { none(); }
}  // namespace gpu_ops

}  // namespace qforge

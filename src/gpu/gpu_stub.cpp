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

}  // namespace qforge

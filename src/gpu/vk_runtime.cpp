#include "gpu/vk_runtime.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "qforge/error.hpp"

namespace qforge::gpu {

namespace {

// A Vulkan struct with its type set and every other member zero.
template <class T>
T vk_struct(VkStructureType type) {
    T s{};
    s.sType = type;
    return s;
}

constexpr uint32_t kMaxStamps = 4096;

[[noreturn]] void fail(const std::string& what) { throw Error(ExitCode::resource, "[vulkan] " + what); }

void check(VkResult r, const char* call) {
    if (r != VK_SUCCESS) fail(std::string(call) + " failed (VkResult " + std::to_string(static_cast<int>(r)) + ")");
}

struct Loader {
    void* lib = nullptr;
    PFN_vkGetInstanceProcAddr gipa = nullptr;
    std::string error;
};

const Loader& loader() {
    static const Loader l = [] {
        Loader r;
        for (const char* name : {"libvulkan.so.1", "libvulkan.so", "libvulkan.1.dylib", "libMoltenVK.dylib"}) {
            r.lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
            if (r.lib) break;
        }
        if (!r.lib) {
            r.error = "no Vulkan loader (libvulkan.so.1) on this system";
            return r;
        }
        r.gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(::dlsym(r.lib, "vkGetInstanceProcAddr"));
        if (!r.gipa) r.error = "the Vulkan loader has no vkGetInstanceProcAddr";
        return r;
    }();
    return l;
}

void load_functions(VkInstance instance, VkFns& f) {
    const auto gipa = loader().gipa;
#define QF_VK_FN(name) f.name = reinterpret_cast<PFN_##name>(gipa(instance, #name));
#include "gpu/vk_functions.inc"
#undef QF_VK_FN
}

const char* type_name(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
        default: return "other";
    }
}

int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
        default: return 4;
    }
}

VkInstance create_instance(const VkFns& fns) {
    auto app = vk_struct<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
    app.pApplicationName = "qforge";
    app.apiVersion = VK_API_VERSION_1_2;
    auto ici = vk_struct<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
    ici.pApplicationInfo = &app;
#if defined(__APPLE__)
    const char* inst_ext[] = {"VK_KHR_portability_enumeration"};
    ici.flags |= 0x00000001;  // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR (MoltenVK)
    ici.enabledExtensionCount = 1;
    ici.ppEnabledExtensionNames = inst_ext;
#endif
    VkInstance instance = VK_NULL_HANDLE;
    check(fns.vkCreateInstance(&ici, nullptr, &instance), "vkCreateInstance");
    return instance;
}

}  // namespace

struct VkRuntime::NamedKernel {
    std::string name;
    VkKernel k;
};

namespace {

// The process's one instance and its entry points, never destroyed: destroying the instance
// unloads the drivers, whose own allocations would then look leaked to leak checkers.
const VkFns& instance_fns(VkInstance* instance_out) {
    const Loader& l = loader();
    if (!l.error.empty()) fail(l.error);
    static VkFns fns;  // the loader's global entry points, then the instance's
    static VkInstance instance = VK_NULL_HANDLE;
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    if (!instance) {
        fns.vkCreateInstance = reinterpret_cast<PFN_vkCreateInstance>(l.gipa(VK_NULL_HANDLE, "vkCreateInstance"));
        if (!fns.vkCreateInstance) fail("the loader has no vkCreateInstance");
        instance = create_instance(fns);
        load_functions(instance, fns);
    }
    *instance_out = instance;
    return fns;
}

bool has_extension(const std::vector<VkExtensionProperties>& exts, const char* name) {
    return std::any_of(exts.begin(), exts.end(), [name](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

// Whether the device multiplies 16 x 16 x 16 f16 matrices into f32 per subgroup through
// VK_NV_cooperative_matrix (and QFORGE_GPU_COOPMAT is not 0).
bool has_coopmat_f16(const VkFns& f, VkPhysicalDevice d, const std::vector<VkExtensionProperties>& exts) {
    if (const char* e = std::getenv("QFORGE_GPU_COOPMAT"); e && std::string(e) == "0") return false;
    if (!has_extension(exts, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) || !f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) return false;
    auto cm = vk_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
    auto feats = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
    feats.pNext = &cm;
    f.vkGetPhysicalDeviceFeatures2(d, &feats);
    if (!cm.cooperativeMatrix) return false;
    uint32_t n = 0;
    if (f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(d, &n, nullptr) != VK_SUCCESS) return false;
    std::vector<VkCooperativeMatrixPropertiesNV> props(n, vk_struct<VkCooperativeMatrixPropertiesNV>(VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV));
    if (n && f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(d, &n, props.data()) != VK_SUCCESS) return false;
    return std::any_of(props.begin(), props.end(), [](const VkCooperativeMatrixPropertiesNV& q) {
        return q.MSize == 16 && q.NSize == 16 && q.KSize == 16 && q.AType == VK_COMPONENT_TYPE_FLOAT16_NV && q.BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
               q.CType == VK_COMPONENT_TYPE_FLOAT32_NV && q.DType == VK_COMPONENT_TYPE_FLOAT32_NV && q.scope == VK_SCOPE_SUBGROUP_NV;
    });
}

// Whether the device has VK_KHR_shader_integer_dot_product's feature (and QFORGE_GPU_INTDOT is not 0).
bool has_int_dot(const VkFns& f, VkPhysicalDevice d, const std::vector<VkExtensionProperties>& exts) {
    if (const char* e = std::getenv("QFORGE_GPU_INTDOT"); e && std::string(e) == "0") return false;
    if (!has_extension(exts, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME)) return false;
    auto dp = vk_struct<VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR);
    auto feats = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
    feats.pNext = &dp;
    f.vkGetPhysicalDeviceFeatures2(d, &feats);
    return dp.shaderIntegerDotProduct;
}

struct DeviceChoice {
    VkPhysicalDevice phys = VK_NULL_HANDLE;
    uint32_t queue_family = 0;
    DeviceInfo info;
    uint64_t max_range = 0;
    float timestamp_ns = 1.0f;
    bool stats = false;  // VK_KHR_pipeline_executable_properties (for QFORGE_GPU_STATS=1)
};

// The best usable device: discrete, then integrated, then anything else (lavapipe). Usable: Vulkan
// 1.2, a compute queue, push descriptors, 8/16-bit storage buffers, subgroup arithmetic.
DeviceChoice choose_device(const VkFns& f, VkInstance instance) {
    uint32_t n = 0;
    check(f.vkEnumeratePhysicalDevices(instance, &n, nullptr), "vkEnumeratePhysicalDevices");
    std::vector<VkPhysicalDevice> devs(n);
    if (n) check(f.vkEnumeratePhysicalDevices(instance, &n, devs.data()), "vkEnumeratePhysicalDevices");
    DeviceChoice best;
    std::string why = "no Vulkan device";
    int best_rank = 99;
    for (VkPhysicalDevice d : devs) {
        VkPhysicalDeviceProperties p;
        f.vkGetPhysicalDeviceProperties(d, &p);
        uint32_t ne = 0;
        f.vkEnumerateDeviceExtensionProperties(d, nullptr, &ne, nullptr);
        std::vector<VkExtensionProperties> exts(ne);
        f.vkEnumerateDeviceExtensionProperties(d, nullptr, &ne, exts.data());
        const bool push = has_extension(exts, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
        auto f11 = vk_struct<VkPhysicalDeviceVulkan11Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
        auto f12 = vk_struct<VkPhysicalDeviceVulkan12Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
        f11.pNext = &f12;
        auto feats = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
        feats.pNext = &f11;
        f.vkGetPhysicalDeviceFeatures2(d, &feats);
        uint32_t nq = 0;
        f.vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, nullptr);
        std::vector<VkQueueFamilyProperties> qs(nq);
        f.vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, qs.data());
        int qf = -1;
        for (uint32_t i = 0; i < nq && qf < 0; ++i)
            if (qs[i].queueFlags & VK_QUEUE_COMPUTE_BIT) qf = static_cast<int>(i);
        auto sg = vk_struct<VkPhysicalDeviceSubgroupProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
        auto p2 = vk_struct<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
        p2.pNext = &sg;
        f.vkGetPhysicalDeviceProperties2(d, &p2);
        const bool subgroups = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
        if (p.apiVersion < VK_API_VERSION_1_2 || qf < 0 || !push || !f11.storageBuffer16BitAccess || !f12.storageBuffer8BitAccess || !subgroups) {
            why = std::string(p.deviceName) + " lacks Vulkan 1.2, a compute queue, VK_KHR_push_descriptor, 8/16-bit storage buffers or subgroup arithmetic";
            continue;
        }
        if (type_rank(p.deviceType) >= best_rank) continue;
        best_rank = type_rank(p.deviceType);
        best = {d, static_cast<uint32_t>(qf), {p.deviceName, type_name(p.deviceType), false, false, false}, p.limits.maxStorageBufferRange,
                p.limits.timestampPeriod};
        // matmul_cm.comp: 8 subgroups of 32 threads, 44 KiB of shared memory.
        best.info.coopmat = f12.shaderFloat16 && sg.subgroupSize == 32 && p.limits.maxComputeSharedMemorySize >= 45056 && has_coopmat_f16(f, d, exts);
        best.info.int_dot = has_int_dot(f, d, exts);
        best.info.subgroup_size = sg.subgroupSize;
        best.info.shared_memory = p.limits.maxComputeSharedMemorySize;
        best.info.max_workgroup = std::min(p.limits.maxComputeWorkGroupInvocations, p.limits.maxComputeWorkGroupSize[0]);
        best.stats = has_extension(exts, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    }
    if (!best.phys) fail(why);
    return best;
}

}  // namespace

std::optional<DeviceInfo> VkRuntime::best_device() {
    try {
        VkInstance instance;
        const VkFns& f = instance_fns(&instance);
        return choose_device(f, instance).info;
    } catch (const Error&) {
        return std::nullopt;
    }
}

std::unique_ptr<VkRuntime> VkRuntime::create() {
    auto rt = std::unique_ptr<VkRuntime>(new VkRuntime());
    rt->fn_ = &instance_fns(&rt->instance_);
    const VkFns& f = *rt->fn_;
    const DeviceChoice c = choose_device(f, rt->instance_);
    rt->phys_ = c.phys;
    rt->queue_family_ = c.queue_family;
    rt->info_ = c.info;
    rt->max_range_ = c.max_range;
    rt->timestamp_ns_ = c.timestamp_ns;
    f.vkGetPhysicalDeviceMemoryProperties(rt->phys_, &rt->mem_props_);
    for (uint32_t i = 0; i < rt->mem_props_.memoryTypeCount; ++i) {
        const auto fl = rt->mem_props_.memoryTypes[i].propertyFlags;
        if ((fl & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (fl & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && rt->info_.type != "discrete")
            rt->info_.unified = true;
    }

    const float prio = 1.0f;
    auto qci = vk_struct<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
    qci.queueFamilyIndex = rt->queue_family_;
    qci.queueCount = 1;
    qci.pQueuePriorities = &prio;
    auto f11 = vk_struct<VkPhysicalDeviceVulkan11Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
    f11.storageBuffer16BitAccess = VK_TRUE;
    auto f12 = vk_struct<VkPhysicalDeviceVulkan12Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
    f12.storageBuffer8BitAccess = VK_TRUE;
    f11.pNext = &f12;
    auto cm = vk_struct<VkPhysicalDeviceCooperativeMatrixFeaturesNV>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV);
    auto dp = vk_struct<VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR);
    std::vector<const char*> dev_ext = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    void** chain = &f12.pNext;
    if (rt->info_.coopmat) {
        f12.shaderFloat16 = VK_TRUE;
        cm.cooperativeMatrix = VK_TRUE;
        *chain = &cm;
        chain = &cm.pNext;
        dev_ext.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    }
    if (rt->info_.int_dot) {
        dp.shaderIntegerDotProduct = VK_TRUE;
        *chain = &dp;
        dev_ext.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
        chain = &dp.pNext;
    }
    // QFORGE_GPU_STATS=1: the driver's statistics of every pipeline (registers, spills), where it
    // has VK_KHR_pipeline_executable_properties.
    auto pe = vk_struct<VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR>(
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR);
    if (const char* e = std::getenv("QFORGE_GPU_STATS"); e && std::string(e) == "1") {
        rt->stats_ = c.stats && f.vkGetPipelineExecutableStatisticsKHR && f.vkGetPipelineExecutablePropertiesKHR;
        if (rt->stats_) {
            pe.pipelineExecutableInfo = VK_TRUE;
            *chain = &pe;
            dev_ext.push_back(VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
        } else {
            std::fprintf(stderr, "[gpu] %s has no VK_KHR_pipeline_executable_properties\n", rt->info_.name.c_str());
        }
    }
    auto dci = vk_struct<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
    dci.pNext = &f11;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = static_cast<uint32_t>(dev_ext.size());
    dci.ppEnabledExtensionNames = dev_ext.data();
    check(f.vkCreateDevice(rt->phys_, &dci, nullptr, &rt->device_), "vkCreateDevice");
    f.vkGetDeviceQueue(rt->device_, rt->queue_family_, 0, &rt->queue_);
    auto pci = vk_struct<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = rt->queue_family_;
    check(f.vkCreateCommandPool(rt->device_, &pci, nullptr, &rt->pool_), "vkCreateCommandPool");
    auto cai = vk_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
    cai.commandPool = rt->pool_;
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 2;
    check(f.vkAllocateCommandBuffers(rt->device_, &cai, rt->cmds_), "vkAllocateCommandBuffers");
    auto fci = vk_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    for (VkFence& fence : rt->fences_) check(f.vkCreateFence(rt->device_, &fci, nullptr, &fence), "vkCreateFence");
    if (const char* e = std::getenv("QFORGE_GPU_PROFILE"); e && std::string(e) == "1") {
        auto qp = vk_struct<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
        qp.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qp.queryCount = kMaxStamps;
        check(f.vkCreateQueryPool(rt->device_, &qp, nullptr, &rt->query_pool_), "vkCreateQueryPool");
    }
    return rt;
}

void VkRuntime::print_stats(const std::string& name, VkPipeline pipeline) const {
    const VkFns& f = *fn_;
    auto pi = vk_struct<VkPipelineInfoKHR>(VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR);
    pi.pipeline = pipeline;
    uint32_t n = 0;
    if (f.vkGetPipelineExecutablePropertiesKHR(device_, &pi, &n, nullptr) != VK_SUCCESS) return;
    for (uint32_t e = 0; e < n; ++e) {
        auto ei = vk_struct<VkPipelineExecutableInfoKHR>(VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR);
        ei.pipeline = pipeline;
        ei.executableIndex = e;
        uint32_t m = 0;
        if (f.vkGetPipelineExecutableStatisticsKHR(device_, &ei, &m, nullptr) != VK_SUCCESS) continue;
        std::vector<VkPipelineExecutableStatisticKHR> st(m, vk_struct<VkPipelineExecutableStatisticKHR>(VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR));
        if (f.vkGetPipelineExecutableStatisticsKHR(device_, &ei, &m, st.data()) != VK_SUCCESS) continue;
        std::string line = "[gpu stats] " + name + ":";
        for (const auto& s : st) {
            line += std::string(" ") + s.name + "=";
            switch (s.format) {
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: line += s.value.b32 ? "true" : "false"; break;
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: line += std::to_string(s.value.i64); break;
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: line += std::to_string(s.value.u64); break;
                case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR: line += std::to_string(s.value.f64); break;
                default: line += "?";
            }
        }
        std::fprintf(stderr, "%s\n", line.c_str());
    }
}

VkRuntime::~VkRuntime() {
    if (query_pool_) {
        std::sort(profile_.begin(), profile_.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
        double total = 0;
        for (const auto& [l, v] : profile_) total += v.first;
        std::fprintf(stderr, "GPU profile (%s): %.1f ms in all\n", info_.name.c_str(), total);
        std::fprintf(stderr, "  host: %d submits, %.1f ms recording, %.1f ms waiting\n", submits_, record_ms_, wait_ms_);
        for (const auto& [l, v] : profile_) std::fprintf(stderr, "  %-14s %9.2f ms %5.1f%%  %d\n", l, v.first, 100.0 * v.first / std::max(total, 1e-9), v.second);
        fn_->vkDestroyQueryPool(device_, query_pool_, nullptr);
    }
    if (!device_) return;
    const VkFns& f = *fn_;
    for (auto& nk : kernels_) {
        f.vkDestroyPipeline(device_, nk->k.pipeline, nullptr);
        f.vkDestroyPipelineLayout(device_, nk->k.layout, nullptr);
        f.vkDestroyDescriptorSetLayout(device_, nk->k.set_layout, nullptr);
    }
    for (int i = 0; i < 2; ++i)
        if (pending_[i]) f.vkWaitForFences(device_, 1, &fences_[i], VK_TRUE, UINT64_MAX);
    for (VkFence fence : fences_) f.vkDestroyFence(device_, fence, nullptr);
    f.vkDestroyCommandPool(device_, pool_, nullptr);
    f.vkDestroyDevice(device_, nullptr);
}

uint32_t VkRuntime::memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags* got) const {
    for (uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i)
        if ((bits & (1u << i)) && (mem_props_.memoryTypes[i].propertyFlags & want) == want) {
            if (got) *got = mem_props_.memoryTypes[i].propertyFlags;
            return i;
        }
    return UINT32_MAX;
}

const VkKernel& VkRuntime::kernel(const std::string& name, std::span<const uint32_t> spirv, int n_buffers, uint32_t push_bytes,
                                  std::span<const uint32_t> spec) {
    for (const auto& nk : kernels_)
        if (nk->name == name) return nk->k;
    const VkFns& f = *fn_;
    auto nk = std::make_unique<NamedKernel>();
    nk->name = name;
    VkKernel& k = nk->k;
    k.n_buffers = n_buffers;
    k.push_bytes = push_bytes;
    std::vector<VkDescriptorSetLayoutBinding> binds(static_cast<size_t>(n_buffers));
    for (int i = 0; i < n_buffers; ++i) {
        binds[static_cast<size_t>(i)] = {static_cast<uint32_t>(i), VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
    }
    auto dl = vk_struct<VkDescriptorSetLayoutCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
    dl.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    dl.bindingCount = static_cast<uint32_t>(n_buffers);
    dl.pBindings = binds.data();
    check(f.vkCreateDescriptorSetLayout(device_, &dl, nullptr, &k.set_layout), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
    auto pl = vk_struct<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
    pl.setLayoutCount = 1;
    pl.pSetLayouts = &k.set_layout;
    pl.pushConstantRangeCount = push_bytes ? 1 : 0;
    pl.pPushConstantRanges = &pr;
    check(f.vkCreatePipelineLayout(device_, &pl, nullptr, &k.layout), "vkCreatePipelineLayout");
    auto sm = vk_struct<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
    sm.codeSize = spirv.size() * 4;
    sm.pCode = spirv.data();
    VkShaderModule mod;
    check(f.vkCreateShaderModule(device_, &sm, nullptr, &mod), "vkCreateShaderModule");
    auto cp = vk_struct<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
    std::vector<VkSpecializationMapEntry> entries;
    for (uint32_t i = 0; i < spec.size(); ++i) entries.push_back({i, 4 * i, 4});
    const VkSpecializationInfo si{static_cast<uint32_t>(entries.size()), entries.data(), spec.size() * 4, spec.data()};
    cp.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_COMPUTE_BIT, mod, "main",
                spec.empty() ? nullptr : &si};
    cp.layout = k.layout;
    if (stats_) cp.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    const VkResult r = f.vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &cp, nullptr, &k.pipeline);
    f.vkDestroyShaderModule(device_, mod, nullptr);
    check(r, ("vkCreateComputePipelines (" + name + ")").c_str());
    if (stats_) print_stats(name, k.pipeline);
    kernels_.push_back(std::move(nk));
    return kernels_.back()->k;
}

void VkRuntime::begin() {
    const VkFns& f = *fn_;
    if (pending_[cur_]) throw std::logic_error("[gpu] recording over a command buffer in flight");
    ++recordings_;
    check(f.vkResetCommandBuffer(cmds_[cur_], 0), "vkResetCommandBuffer");
    auto bi = vk_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(f.vkBeginCommandBuffer(cmds_[cur_], &bi), "vkBeginCommandBuffer");
    if (query_pool_) {
        began_ = std::chrono::steady_clock::now();
        f.vkCmdResetQueryPool(cmds_[cur_], query_pool_, 0, kMaxStamps);
        stamp_labels_.clear();
        timestamp("");
    }
}

void VkRuntime::swap() { cur_ ^= 1; }

void VkRuntime::timestamp(const char* label) {
    if (!query_pool_ || stamp_labels_.size() >= kMaxStamps) return;
    fn_->vkCmdWriteTimestamp(cmds_[cur_], VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pool_, static_cast<uint32_t>(stamp_labels_.size()));
    stamp_labels_.push_back(label);
}

void VkRuntime::collect_timestamps() {
    if (!query_pool_ || stamp_labels_.size() < 2) return;
    std::vector<uint64_t> t(stamp_labels_.size());
    if (fn_->vkGetQueryPoolResults(device_, query_pool_, 0, static_cast<uint32_t>(t.size()), t.size() * 8, t.data(), 8,
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return;
    for (size_t i = 1; i < t.size(); ++i) {
        const double ms = static_cast<double>(t[i] - t[i - 1]) * timestamp_ns_ * 1e-6;
        auto it = std::find_if(profile_.begin(), profile_.end(), [&](const auto& e) { return std::strcmp(e.first, stamp_labels_[i]) == 0; });
        if (it == profile_.end()) profile_.push_back({stamp_labels_[i], {ms, 1}});
        else it->second.first += ms, it->second.second += 1;
    }
}

void VkRuntime::dispatch(const VkKernel& k, std::span<const VkBuf* const> bufs, const void* push, uint32_t gx, uint32_t gy, uint32_t gz) {
    const VkFns& f = *fn_;
    VkDescriptorBufferInfo infos[16];
    VkWriteDescriptorSet writes[16];
    const size_t nb = std::min<size_t>(bufs.size(), 16);
    for (size_t i = 0; i < nb; ++i) {
        infos[i] = {bufs[i]->buffer(), 0, VK_WHOLE_SIZE};
        writes[i] = vk_struct<VkWriteDescriptorSet>(VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET);
        writes[i].dstBinding = static_cast<uint32_t>(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    f.vkCmdBindPipeline(cmds_[cur_], VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
    f.vkCmdPushDescriptorSetKHR(cmds_[cur_], VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, static_cast<uint32_t>(nb), writes);
    if (k.push_bytes) f.vkCmdPushConstants(cmds_[cur_], k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k.push_bytes, push);
    f.vkCmdDispatch(cmds_[cur_], gx, gy, gz);
}

void VkRuntime::barrier() {
    auto mb = vk_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    fn_->vkCmdPipelineBarrier(cmds_[cur_], VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

void VkRuntime::copy(const VkBuf& src, size_t src_off, const VkBuf& dst, size_t dst_off, size_t bytes) {
    VkBufferCopy c{src_off, dst_off, bytes};
    fn_->vkCmdCopyBuffer(cmds_[cur_], src.buffer(), dst.buffer(), 1, &c);
}

void VkRuntime::end() {
    const VkFns& f = *fn_;
    // Results visible to the host.
    auto mb = vk_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    f.vkCmdPipelineBarrier(cmds_[cur_], VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb,
                           0, nullptr, 0, nullptr);
    check(f.vkEndCommandBuffer(cmds_[cur_]), "vkEndCommandBuffer");
}

void VkRuntime::submit() {
    const VkFns& f = *fn_;
    auto si = vk_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmds_[cur_];
    check(f.vkResetFences(device_, 1, &fences_[cur_]), "vkResetFences");
    submitted_ = std::chrono::steady_clock::now();
    check(f.vkQueueSubmit(queue_, 1, &si, fences_[cur_]), "vkQueueSubmit");
    pending_[cur_] = true;
}

void VkRuntime::wait() {
    if (!pending_[cur_]) return;
    pending_[cur_] = false;
    check(fn_->vkWaitForFences(device_, 1, &fences_[cur_], VK_TRUE, UINT64_MAX), "vkWaitForFences");
    if (query_pool_) {
        const auto done = std::chrono::steady_clock::now();
        record_ms_ += std::chrono::duration<double, std::milli>(submitted_ - began_).count();
        wait_ms_ += std::chrono::duration<double, std::milli>(done - submitted_).count();
        ++submits_;
    }
    collect_timestamps();
}

void VkRuntime::submit_and_wait() {
    end();
    submit();
    wait();
}

VkBuf::VkBuf(VkRuntime& rt, size_t bytes, bool host_visible, bool readback) : rt_(&rt), size_(std::max<size_t>(bytes, 4)) {
    const VkFns& f = rt.fn();
    auto bci = vk_struct<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
    bci.size = size_;
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    check(f.vkCreateBuffer(rt.device(), &bci, nullptr, &buf_), "vkCreateBuffer");
    VkMemoryRequirements req;
    f.vkGetBufferMemoryRequirements(rt.device(), buf_, &req);
    VkMemoryPropertyFlags got = 0;
    uint32_t type = UINT32_MAX;
    if (readback) type = rt.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &got);
    if (type == UINT32_MAX && (host_visible || readback || rt.info().unified)) {
        // Host-visible device memory where it exists (unified memory), else host memory.
        type = rt.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, &got);
        if (type == UINT32_MAX && (host_visible || readback)) type = rt.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, &got);
    }
    if (type == UINT32_MAX) type = rt.memory_type(req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, &got);
    if (type == UINT32_MAX) type = rt.memory_type(req.memoryTypeBits, 0, &got);
    auto mai = vk_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    const VkResult r = f.vkAllocateMemory(rt.device(), &mai, nullptr, &mem_);
    if (r != VK_SUCCESS) {
        f.vkDestroyBuffer(rt.device(), buf_, nullptr);
        buf_ = VK_NULL_HANDLE;
        throw Error(ExitCode::resource, "[vulkan] out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB on " + rt.info().name);
    }
    check(f.vkBindBufferMemory(rt.device(), buf_, mem_, 0), "vkBindBufferMemory");
    if (got & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        check(f.vkMapMemory(rt.device(), mem_, 0, VK_WHOLE_SIZE, 0, &map_), "vkMapMemory");
        coherent_ = got & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    }
}

VkBuf& VkBuf::operator=(VkBuf&& o) noexcept {
    if (this != &o) {
        this->~VkBuf();
        rt_ = o.rt_;
        buf_ = o.buf_;
        mem_ = o.mem_;
        size_ = o.size_;
        map_ = o.map_;
        coherent_ = o.coherent_;
        o.buf_ = VK_NULL_HANDLE;
        o.mem_ = VK_NULL_HANDLE;
        o.map_ = nullptr;
    }
    return *this;
}

VkBuf::~VkBuf() {
    if (!rt_) return;
    const VkFns& f = rt_->fn();
    if (map_) f.vkUnmapMemory(rt_->device(), mem_);
    if (buf_) f.vkDestroyBuffer(rt_->device(), buf_, nullptr);
    if (mem_) f.vkFreeMemory(rt_->device(), mem_, nullptr);
    buf_ = VK_NULL_HANDLE;
    mem_ = VK_NULL_HANDLE;
    map_ = nullptr;
}

void VkBuf::upload(const void* src, size_t bytes, size_t offset) {
    if (map_) {
        std::memcpy(static_cast<uint8_t*>(map_) + offset, src, bytes);
        if (!coherent_) {
            VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, nullptr, mem_, 0, VK_WHOLE_SIZE};
            rt_->fn().vkFlushMappedMemoryRanges(rt_->device(), 1, &r);
        }
        return;
    }
    // Through a staging buffer, in pieces of at most 64 MiB.
    constexpr size_t kPiece = size_t{64} << 20;
    VkBuf staging(*rt_, std::min(bytes, kPiece), true);
    for (size_t done = 0; done < bytes; done += kPiece) {
        const size_t n = std::min(kPiece, bytes - done);
        staging.upload(static_cast<const uint8_t*>(src) + done, n);
        rt_->begin();
        rt_->copy(staging, 0, *this, offset + done, n);
        rt_->submit_and_wait();
    }
}

void VkBuf::download(void* dst, size_t bytes, size_t offset) {
    if (map_) {
        if (!coherent_) {
            VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, nullptr, mem_, 0, VK_WHOLE_SIZE};
            rt_->fn().vkInvalidateMappedMemoryRanges(rt_->device(), 1, &r);
        }
        std::memcpy(dst, static_cast<const uint8_t*>(map_) + offset, bytes);
        return;
    }
    VkBuf staging(*rt_, bytes, true, true);
    rt_->begin();
    rt_->copy(*this, offset, staging, 0, bytes);
    rt_->submit_and_wait();
    staging.download(dst, bytes);
}

}  // namespace qforge::gpu

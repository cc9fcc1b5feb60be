// --device and -ngl, shared by run, perplexity and bench.
#include <cstdio>

#include "cli/commands.hpp"

namespace qforge::cli {

void add_device_options(CLI::App* app, DeviceOptions& d) {
    app->add_option("--device", d.device, "cpu, gpu (Vulkan) or auto: a GPU when one is usable (default auto)")
        ->check(CLI::IsMember({"cpu", "gpu", "auto"}));
    app->add_option("--n-gpu-layers,--gpu-layers", d.n_gpu_layers, "Layers on the GPU, the last ones, as llama.cpp's -ngl (default: all)")
        ->check(CLI::Range(0, 1 << 20));
}

void gpu_notice(const Context& ctx, int n_gpu_layers) {
    if (ctx.gpu_description().empty()) return;
    const int n = ctx.model().hparams().n_layer;
    std::fprintf(stderr, "qforge: %d of %d layers%s on %s\n", std::min(n_gpu_layers, n), n, n_gpu_layers >= n ? " and the output head" : "",
                 ctx.gpu_description().c_str());
}

std::vector<std::string> translate_short_options(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    for (auto& a : args)
        if (a == "-ngl") a = "--n-gpu-layers";  // llama.cpp's spelling (CLI11 short options are one letter)
    return args;
}

}  // namespace qforge::cli

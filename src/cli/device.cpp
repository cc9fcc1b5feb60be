// --device and -ngl, shared by run, perplexity and bench.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.hpp"
#include "qforge/error.hpp"

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

std::string bundled_data_file(const std::string& rel, const std::string& option) {
    namespace fs = std::filesystem;
    std::vector<fs::path> roots;
    if (const char* env = std::getenv("QFORGE_DATA_DIR")) roots.emplace_back(fs::path(env).parent_path());
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        roots.push_back(exe.parent_path().parent_path());
        roots.push_back(exe.parent_path().parent_path() / "share" / "qforge");
    }
    roots.push_back(fs::current_path());
    for (const auto& r : roots)
        if (fs::exists(r / rel)) return (r / rel).string();
    throw_usage("cannot find the bundled text " + rel + "; give " + option);
}

std::string default_calibration_text() {
    const std::string path = bundled_data_file("data/calib/pride-and-prejudice-excerpt.txt", "--calib TEXT");
    std::fprintf(stderr, "calibration text: %s (bundled; --calib TEXT to choose another)\n", path.c_str());
    return path;
}

}  // namespace qforge::cli

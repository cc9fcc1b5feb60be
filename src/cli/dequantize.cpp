#include <cstdio>

#include "cli/commands.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/quantize.hpp"
#include "qforge/quantize_model.hpp"

namespace qforge::cli {

Command add_dequantize(CLI::App& root) {
    auto* app = root.add_subcommand("dequantize", "Convert every quantized tensor of a GGUF back to f32, f16 or bf16");
    struct Args {
        std::string in, out, type = "f32";
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    app->add_option("input", a->in, "Input GGUF")->required();
    app->add_option("output", a->out, "Output GGUF")->required();
    app->add_option("--type", a->type, "f32, f16 or bf16 (default f32)")->check(CLI::IsMember({"f32", "f16", "bf16", "F32", "F16", "BF16"}));
    app->add_option("-t,--threads", a->threads, "Threads");
    app->footer("Example: qforge dequantize model-Q4_K_M.gguf model-f32.gguf --type f32");
    return {app, [a]() {
                auto in = GgufFile::open(a->in);
                QuantizeOptions opt;
                opt.ftype = a->type;
                opt.allow_requantize = true;
                opt.pure = true;
                opt.sort_tensors = false;
                opt.threads = a->threads;
                // Quantized and float 2-D weights become the target type; 1-D tensors stay as they are.
                const auto report = quantize_model(source_from_gguf(*in), a->out, opt);
                std::printf("dequantized %zu tensors to %s: %.2f MiB -> %.2f MiB, wrote %s\n", report.tensors.size(),
                            a->type.c_str(), static_cast<double>(report.bytes_in) / 1048576.0,
                            static_cast<double>(report.bytes_out) / 1048576.0, a->out.c_str());
                return 0;
            }};
}

}  // namespace qforge::cli

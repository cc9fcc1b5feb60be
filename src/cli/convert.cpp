#include <cstdio>

#include "cli/commands.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"

namespace qforge::cli {

Command add_convert(CLI::App& root) {
    auto* app = root.add_subcommand("convert", "Convert a Hugging Face model directory to GGUF (as llama.cpp's converter does)");
    struct Args {
        std::string in, out, outtype = "f16", imatrix;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    app->add_option("model", a->in, "Hugging Face model directory (config.json, safetensors, tokenizer)")->required();
    app->add_option("-o,--outfile", a->out, "Output GGUF file")->required();
    app->add_option("--outtype", a->outtype,
                    "f32, f16, bf16, q8_0 (what the converter writes) or any quantize type or mix, e.g. q4_k_m (default f16)");
    app->add_option("--imatrix", a->imatrix, "Importance matrix for quantized outtypes");
    app->add_option("-t,--threads", a->threads, "Threads for quantized outtypes");
    app->footer("Example: qforge convert models/tiny-demo-8m -o tiny-demo-8m-f16.gguf --outtype f16");
    return {app, [a]() {
                auto model = open_hf_model(a->in);
                Imatrix imatrix;
                if (!a->imatrix.empty()) imatrix = load_imatrix(a->imatrix);
                const auto r = convert_hf_model(*model, a->out, a->outtype, a->threads, a->imatrix.empty() ? nullptr : &imatrix, a->imatrix);
                std::printf("converted %s (%s, %zu tensors) to %s: %.2f MiB in %.2f s\n", a->in.c_str(), model->hf_architecture.c_str(),
                            r.tensors.size(), a->out.c_str(), static_cast<double>(r.file_size) / 1048576.0, r.seconds);
                return 0;
            }};
}

}  // namespace qforge::cli

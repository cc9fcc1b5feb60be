#include <cstdio>

#include "cli/commands.hpp"
#include "qforge/error.hpp"
#include "qforge/progress.hpp"
#include "qforge/synth.hpp"

namespace qforge::cli {

Command add_synth(CLI::App& root) {
    auto* app = root.add_subcommand("synth", "Write a model of a real shape with random weights (for speed and memory tests)");
    struct Args {
        std::string arch = "llama", preset, type = "F16", vocab, out;
        SynthShape shape;
        uint64_t seed = 1;
        int threads = 0;
    };
    auto a = std::make_shared<Args>();
    app->add_option("--arch", a->arch, "llama or qwen2 (with explicit shape flags)")->check(CLI::IsMember({"llama", "qwen2"}));
    app->add_option("--preset", a->preset, "tinyllama-1.1b, llama2-7b, llama3-8b, qwen2-0.5b or qwen2-7b");
    app->add_option("--type", a->type, "Quantization type or mix (default F16)");
    app->add_option("--vocab", a->vocab, "Take the vocabulary from this GGUF (e.g. a vocab-only GGUF); default: generated");
    app->add_option("--layers", a->shape.n_layer, "Explicit shape: layers");
    app->add_option("--embd", a->shape.n_embd, "Explicit shape: embedding width");
    app->add_option("--ff", a->shape.n_ff, "Explicit shape: feed-forward width");
    app->add_option("--heads", a->shape.n_head, "Explicit shape: attention heads");
    app->add_option("--heads-kv", a->shape.n_head_kv, "Explicit shape: KV heads");
    app->add_option("--vocab-size", a->shape.n_vocab, "Explicit shape: vocabulary size (generated vocabulary)");
    app->add_option("--ctx", a->shape.n_ctx, "Context length (default 2048)");
    app->add_option("--seed", a->seed, "Random seed (default 1)");
    app->add_option("-t,--threads", a->threads, "Threads for quantizing");
    app->add_option("-o,--outfile", a->out, "Output GGUF")->required();
    app->footer("Example: qforge synth --preset tinyllama-1.1b --type Q4_K_M -o tinyllama-Q4_K_M.gguf");
    return {app, [a]() {
                SynthShape s = a->shape;
                if (!a->preset.empty()) {
                    const SynthShape p = synth_preset(a->preset);
                    s = p;
                    if (a->shape.n_vocab) s.n_vocab = a->shape.n_vocab;
                } else {
                    s.arch = a->arch;
                    if (!s.n_vocab) s.n_vocab = 32000;
                }
                SourceModel src = synth_model(s, a->vocab, a->seed);
                QuantizeOptions opt;
                opt.ftype = a->type;
                opt.threads = a->threads;
                const auto r = quantize_model(src, a->out, opt);
                std::printf("wrote %s: %s, %.2f GiB in %.1f s\n", a->out.c_str(), a->type.c_str(),
                            static_cast<double>(r.file_size) / (1ull << 30), r.seconds);
                return 0;
            }};
}

}  // namespace qforge::cli

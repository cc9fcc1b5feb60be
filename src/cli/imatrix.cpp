#include <cstdio>
#include <functional>
#include <memory>

#include "cli/commands.hpp"
#include "qforge/error.hpp"
#include "qforge/imatrix.hpp"
#include "qforge/mapped_file.hpp"
#include "qforge/progress.hpp"

namespace qforge::cli {

Command add_imatrix(CLI::App& root) {
    auto* app = root.add_subcommand("imatrix", "Importance matrix from a calibration text, as llama-imatrix computes it (for quantize --imatrix)");
    struct Args {
        std::string model, file, out = "imatrix.dat";
        int n_ctx = 512, chunks = -1, batch = 512, threads = 0;
        bool process_output = false;
    };
    auto a = std::make_shared<Args>();
    app->add_option("-m,--model", a->model, "GGUF file or Hugging Face directory (f32/f16/bf16 weights give llama.cpp's numbers)")->required();
    app->add_option("-f,--file", a->file, "Calibration text")->required();
    app->add_option("-o,--output", a->out, "Output .dat (default imatrix.dat)");
    app->add_option("-c,--ctx-size", a->n_ctx, "Tokens per chunk (default 512)")->check(CLI::Range(8, 1 << 20));
    app->add_option("--chunks", a->chunks, "At most this many chunks (default all)");
    app->add_option("-b,--batch-size", a->batch, "Tokens per forward batch (default 512)")->check(CLI::Range(1, 1 << 20));
    app->add_option("-t,--threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_flag("--process-output", a->process_output, "Also collect output.weight");
    app->footer("Example: qforge imatrix -m model-f16.gguf -f calib.txt -c 512 --chunks 100 -o imatrix.dat\n"
                "         qforge quantize --imatrix imatrix.dat model-f16.gguf model-Q4_K_M.gguf Q4_K_M");
    return {app, [a]() {
                auto model = Model::load(a->model);
                const auto tokens = model->tokenizer().tokenize_file(a->file);
                ImatrixOptions opt;
                opt.n_ctx = a->n_ctx;
                opt.n_chunks = a->chunks;
                opt.batch = a->batch;
                opt.threads = a->threads;
                opt.process_output = a->process_output;
                LazyProgress progress("imatrix");
                opt.progress = std::ref(progress);
                const auto stats = compute_imatrix(*model, tokens, opt);
                progress.finish();
                save_imatrix(stats, a->out, a->file);
                std::printf("wrote %s: %zu matrices, %d chunks of %d tokens from %s\n", a->out.c_str(), stats.entries.size(), stats.chunks,
                            a->n_ctx, a->file.c_str());
                return 0;
            }};
}

}  // namespace qforge::cli

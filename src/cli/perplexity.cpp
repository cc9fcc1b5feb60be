#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.hpp"
#include "qforge/error.hpp"
#include "qforge/mapped_file.hpp"
#include "qforge/perplexity.hpp"
#include "qforge/progress.hpp"

namespace qforge::cli {

Command add_perplexity(CLI::App& root) {
    auto* app = root.add_subcommand("perplexity", "Perplexity (and KL divergence against a base model) with llama.cpp's method");
    struct Args {
        std::string model, file, kld_base, kld, cache_type = "f16";
        int n_ctx = 512, chunks = -1, batch = 512, threads = 0;
        bool json = false;
        DeviceOptions device;
    };
    auto a = std::make_shared<Args>();
    app->add_option("-m,--model", a->model, "GGUF file or Hugging Face directory")->required();
    app->add_option("-f,--file", a->file, "Text to evaluate (not needed with --kld)");
    app->add_option("-c,--ctx-size", a->n_ctx, "Tokens per chunk (default 512)")->check(CLI::Range(8, 1 << 20));
    app->add_option("--chunks", a->chunks, "Evaluate at most this many chunks (default all)");
    app->add_option("-b,--batch-size", a->batch, "Tokens per forward batch (default 512)")->check(CLI::Range(1, 1 << 20));
    app->add_option("-t,--threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("--cache-type", a->cache_type, "KV cache type: f16 (default), q8_0 or f32");
    app->add_option("--kld-base", a->kld_base, "Save this model's logits for the text to FILE (the base for --kld)");
    app->add_option("--kld", a->kld, "Compare against the base saved in FILE: KL divergence, same top token, delta p");
    app->add_flag("--json", a->json, "Print one JSON object");
    add_device_options(app, a->device);
    app->footer("Example: qforge perplexity -m model-f16.gguf -f text.txt -c 512 --chunks 40 --kld-base base.kld\n"
                "         qforge perplexity -m model-Q4_K_M.gguf --kld base.kld");
    return {app, [a]() {
                if (a->file.empty() && a->kld.empty()) throw_usage("give -f TEXT (or --kld BASE)");
                PerplexityOptions opt;
                opt.n_ctx = a->n_ctx;
                opt.n_chunks = a->chunks;
                opt.batch = a->batch;
                opt.threads = a->threads;
                opt.cache_type = parse_cache_type(a->cache_type);
                KldBase base;
                if (!a->kld.empty()) base = KldBase::load(a->kld);
                auto model = Model::load(a->model);
                opt.n_gpu_layers = resolve_gpu_layers(a->device, *model);
                opt.allow_software_gpu = a->device.device == "gpu";
                std::vector<int32_t> tokens;
                if (a->kld.empty()) tokens = model->tokenizer().tokenize_file(a->file);
                LazyProgress progress("perplexity");
                opt.progress = std::ref(progress);
                KldBase saved;
                const auto r = perplexity(*model, tokens, opt, a->kld.empty() ? nullptr : &base, a->kld_base.empty() ? nullptr : &saved);
                progress.finish();
                if (!a->kld_base.empty()) saved.save(a->kld_base);
                if (a->json) {
                    nlohmann::json j = {{"ppl", r.ppl}, {"ppl_se", r.ppl_se}, {"n_chunks", r.n_chunks}, {"n_ctx", r.n_ctx},
                                        {"tokens_scored", r.tokens_scored}, {"seconds", r.seconds}};
                    if (r.kld) {
                        const auto& k = *r.kld;
                        j["kld_mean"] = k.mean;
                        j["kld_mean_se"] = k.mean_se;
                        j["kld_median"] = k.median;
                        j["kld_p90"] = k.p90;
                        j["kld_p99"] = k.p99;
                        j["kld_p999"] = k.p999;
                        j["kld_max"] = k.max;
                        j["same_top_pct"] = k.same_top_pct;
                        j["delta_p_mean"] = k.dp_mean;
                        j["delta_p_rms"] = k.dp_rms;
                        j["ppl_base"] = k.ppl_base;
                        j["ppl_ratio"] = k.ppl_ratio;
                    }
                    std::cout << j.dump(2) << "\n";
                } else {
                    std::printf("%d chunks of %d tokens, %lld tokens scored, %.1f s\n", r.n_chunks, r.n_ctx,
                                static_cast<long long>(r.tokens_scored), r.seconds);
                    std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_se);
                    if (r.kld) {
                        const auto& k = *r.kld;
                        std::printf("Mean KLD: %.6f +/- %.6f\nKLD median %.6f, 90%% %.6f, 99%% %.6f, 99.9%% %.6f, max %.6f\n", k.mean,
                                    k.mean_se, k.median, k.p90, k.p99, k.p999, k.max);
                        std::printf("Same top token: %.3f%%\nDelta p: mean %+.4f%%, RMS %.4f%%\nPPL ratio (model/base): %.5f (base PPL %.4f)\n",
                                    k.same_top_pct, 100 * k.dp_mean, 100 * k.dp_rms, k.ppl_ratio, k.ppl_base);
                    }
                }
                return 0;
            }};
}

}  // namespace qforge::cli

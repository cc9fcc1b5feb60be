#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "qforge/bench.hpp"
#include "qforge/error.hpp"

namespace qforge::cli {

Command add_bench(CLI::App& root) {
    auto* app = root.add_subcommand("bench", "Prompt-processing and generation speed of one or more models (like llama-bench)");
    struct Args {
        std::vector<std::string> models;
        int p = 512, n = 128, r = 5, t = 0;
        std::string output = "md", cache_type = "f16";
        DeviceOptions device;
    };
    auto a = std::make_shared<Args>();
    app->add_option("-m,--model", a->models, "Model(s): GGUF files or Hugging Face directories (repeatable)")->required();
    app->add_option("-p,--n-prompt", a->p, "Prompt tokens (default 512, 0 = skip)")->check(CLI::Range(0, 1 << 16));
    app->add_option("-n,--n-gen", a->n, "Generated tokens (default 128, 0 = skip)")->check(CLI::Range(0, 1 << 16));
    app->add_option("-r,--repetitions", a->r, "Repetitions after one warm-up (default 5)")->check(CLI::Range(1, 1000));
    app->add_option("-t,--threads", a->t, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("-o,--output", a->output, "md (default), json or csv")->check(CLI::IsMember({"md", "json", "csv"}));
    app->add_option("--cache-type", a->cache_type, "KV cache type (default f16)");
    add_device_options(app, a->device);
    app->footer("Example: qforge bench -m a-Q4_K_M.gguf -m a-Q8_0.gguf -p 256 -n 64 -r 3");
    return {app, [a]() {
                BenchOptions opt;
                opt.n_prompt = a->p;
                opt.n_gen = a->n;
                opt.repetitions = a->r;
                opt.threads = a->t;
                opt.cache_type = parse_cache_type(a->cache_type);
                std::vector<BenchResult> results;
                for (const auto& m : a->models) {
                    auto model = Model::load(m);
                    opt.n_gpu_layers = resolve_gpu_layers(a->device, *model);
                    opt.allow_software_gpu = a->device.device == "gpu";
                    results.push_back(bench_model(*model, opt));
                }
                if (a->output == "json") {
                    nlohmann::json j = nlohmann::json::array();
                    for (const auto& r : results)
                        j.push_back({{"model", r.model}, {"type", r.type}, {"size_bytes", r.size_bytes}, {"params", r.params},
                                     {"threads", r.threads}, {"kernel", r.kernel}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen},
                                     {"pp_tokens_per_s", r.pp.mean}, {"pp_stddev", r.pp.stddev}, {"tg_tokens_per_s", r.tg.mean},
                                     {"tg_stddev", r.tg.stddev}, {"peak_rss_bytes", r.peak_rss_bytes}});
                    std::cout << j.dump(2) << "\n";
                } else if (a->output == "csv") {
                    std::printf("model,type,size_bytes,params,threads,test,tokens_per_s,stddev,peak_rss_bytes\n");
                    for (const auto& r : results) {
                        if (r.n_prompt) std::printf("%s,%s,%llu,%lld,%d,pp%d,%.2f,%.2f,%llu\n", r.model.c_str(), r.type.c_str(), (unsigned long long)r.size_bytes, (long long)r.params, r.threads, r.n_prompt, r.pp.mean, r.pp.stddev, (unsigned long long)r.peak_rss_bytes);
                        if (r.n_gen) std::printf("%s,%s,%llu,%lld,%d,tg%d,%.2f,%.2f,%llu\n", r.model.c_str(), r.type.c_str(), (unsigned long long)r.size_bytes, (long long)r.params, r.threads, r.n_gen, r.tg.mean, r.tg.stddev, (unsigned long long)r.peak_rss_bytes);
                    }
                } else {
                    std::printf("| model | type | size | params | threads | test | t/s |\n|---|---|---:|---:|---:|---|---:|\n");
                    for (const auto& r : results) {
                        const double mib = static_cast<double>(r.size_bytes) / 1048576.0, mp = static_cast<double>(r.params) / 1e6;
                        if (r.n_prompt) std::printf("| %s | %s | %.2f MiB | %.2f M | %d | pp%d | %.2f ± %.2f |\n", r.model.c_str(), r.type.c_str(), mib, mp, r.threads, r.n_prompt, r.pp.mean, r.pp.stddev);
                        if (r.n_gen) std::printf("| %s | %s | %.2f MiB | %.2f M | %d | tg%d | %.2f ± %.2f |\n", r.model.c_str(), r.type.c_str(), mib, mp, r.threads, r.n_gen, r.tg.mean, r.tg.stddev);
                    }
                    if (!results.empty())
                        std::printf("\nkernel %s, peak memory %.1f MiB\n", results.back().kernel.c_str(), static_cast<double>(results.back().peak_rss_bytes) / 1048576.0);
                }
                return 0;
            }};
}

}  // namespace qforge::cli

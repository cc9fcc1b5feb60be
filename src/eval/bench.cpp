#include "qforge/bench.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "kernels/gemm.hpp"
#include "kernels/vec_dot.hpp"
#include "formats/json_file.hpp"
#include "qforge/quantize_model.hpp"

namespace qforge {

namespace {

BenchStat stats(const std::vector<double>& v) {
    BenchStat s;
    if (v.empty()) return s;
    for (double x : v) s.mean += x;
    s.mean /= static_cast<double>(v.size());
    if (v.size() > 1) {
        double ss = 0;
        for (double x : v) ss += (x - s.mean) * (x - s.mean);
        s.stddev = std::sqrt(ss / static_cast<double>(v.size() - 1));
    }
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::string model_type_name(const Model& model) {
    std::error_code ec;
    const bool dir = std::filesystem::is_directory(model.path(), ec);
    if (dir) {  // an MLX directory, named as the report names it: MLX-8bit-g64
        const auto cfg = read_json_file_if_exists(std::filesystem::path(model.path()) / "config.json");
        if (const auto q = cfg.find("quantization"); q != cfg.end() && q->is_object()) {
            const std::string mode = q->value("mode", std::string("affine"));
            if (mode != "affine") return "MLX-" + mode;
            return "MLX-" + std::to_string(q->value("bits", 0)) + "bit-g" + std::to_string(q->value("group_size", 0));
        }
    }
    for (const auto& kv : model.metadata()) {  // a Hugging Face directory's file type is a placeholder
        if (!dir && kv.key == "general.file_type" && kv.value.as_int()) {
            if (const Ftype* f = find_ftype_by_id(static_cast<uint32_t>(*kv.value.as_int()))) return f->name;
        }
    }
    // No file type: name it by the most common weight type.
    std::map<std::string, int> count;
    for (const auto& l : model.layers) ++count[type_traits(l.w_up.type).name];
    std::string best = "?";
    int n = 0;
    for (const auto& [k, c] : count)
        if (c > n) {
            best = k;
            n = c;
        }
    return best;
}

BenchResult bench_model(const Model& model, const BenchOptions& opt) {
    BenchResult r;
    r.model = model.path();
    r.type = model_type_name(model);
    r.size_bytes = model.weight_bytes();
    r.params = model.n_params();
    r.threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    r.n_prompt = opt.n_prompt;
    r.n_gen = opt.n_gen;
    r.kernel = std::string(vec_dot_isa()) + " int8, " + gemm_f32_name() + " f32";
    const int n_vocab = model.hparams().n_vocab;
    const int n_ctx = std::max(16, std::min(model.hparams().n_ctx_train, opt.n_prompt + opt.n_gen + 1));
    Context ctx(model, n_ctx, opt.cache_type, r.threads, opt.n_gpu_layers, opt.allow_software_gpu);
    if (!ctx.gpu_description().empty()) r.kernel = ctx.gpu_description() + ", " + std::to_string(opt.n_gpu_layers) + " layers";
    // Deterministic pseudo-random token ids (llama-bench uses random tokens too).
    std::vector<int32_t> prompt(static_cast<size_t>(opt.n_prompt));
    uint32_t seed = 12345;
    for (auto& t : prompt) {
        seed = seed * 1664525u + 1013904223u;
        t = static_cast<int32_t>(seed % static_cast<uint32_t>(n_vocab));
    }
    std::vector<float> logits;
    std::vector<double> pp, tg;
    for (int rep = -1; rep < opt.repetitions; ++rep) {  // rep -1 is the warm-up
        if (opt.n_prompt > 0) {
            ctx.reset();
            const auto t0 = std::chrono::steady_clock::now();
            ctx.eval(prompt, logits, false, opt.n_prompt);
            const double s = seconds_since(t0);
            if (rep >= 0) pp.push_back(opt.n_prompt / s);
        }
        if (opt.n_gen > 0) {
            ctx.reset();
            int32_t t = model.tokenizer().bos() >= 0 ? model.tokenizer().bos() : 0;
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < opt.n_gen; ++i) {
                ctx.eval({t}, logits);
                t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
            }
            const double s = seconds_since(t0);
            if (rep >= 0) tg.push_back(opt.n_gen / s);
        }
    }
    r.pp = stats(pp);
    r.tg = stats(tg);
    r.peak_rss_bytes = peak_rss_bytes();
    return r;
}

}  // namespace qforge

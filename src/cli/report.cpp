#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "formats/json_file.hpp"
#include "qforge/advise.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/output_file.hpp"
#include "qforge/progress.hpp"
#include "qforge/report.hpp"

namespace qforge::cli {

namespace fs = std::filesystem;

namespace {

// The evaluation text shipped with qforge (data/eval/), found next to the binary or the sources.

void write_text(const std::string& path, const std::string& s) {
    OutputFile f(path);
    f.write(s.data(), s.size());
    f.commit();
}

}  // namespace

Command add_report(CLI::App& root) {
    auto* app = root.add_subcommand("report", "Quantize to every format and measure size, memory, speed and quality (the main job)");
    auto o = std::make_shared<ReportOptions>();
    auto types = std::make_shared<std::string>();
    app->add_option("source", o->source, "Hugging Face directory or f32/f16/bf16 GGUF")->required();
    app->add_option("-o,--out-dir", o->out_dir, "Directory for the models and report.{html,md,json} (default qforge-report)");
    app->add_option("--types", *types, "Comma-separated types (default F16,Q8_0,Q6_K,Q5_K_M,Q5_0,Q4_K_M,Q4_0,Q3_K_M,Q2_K,MLX-8bit-g64,MLX-4bit-g64; MLX ones need a Hugging Face source)");
    app->add_option("--text", o->text, "Evaluation text (default: the bundled TinyStories excerpt)");
    app->add_option("--calib", o->calib, "Calibration text for calibrated types in --types: TYPE+imatrix, TYPE+gptq, TYPE+awq, TYPE+awq-gptq (e.g. Q4_K_M+gptq; default: the bundled excerpt)");
    app->add_option("--ctx", o->n_ctx, "Context: perplexity chunk size and the context memory is reported for (default 256)")->check(CLI::Range(16, 1 << 20));
    app->add_option("--chunks", o->n_chunks, "Chunks of text to evaluate (default 16)")->check(CLI::Range(1, 100000));
    app->add_option("-t,--threads", o->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("--bench-prompt", o->bench_prompt, "Prompt tokens for the speed test (default 128)")->check(CLI::Range(0, 1 << 16));
    app->add_option("--bench-gen", o->bench_gen, "Generated tokens for the speed test (default 32)")->check(CLI::Range(0, 1 << 16));
    app->footer("Example: qforge report models/tiny-demo-8m -o report-demo");
    return {app, [o, types]() {
                if (!types->empty()) {
                    o->types.clear();
                    std::stringstream ss(*types);
                    for (std::string t; std::getline(ss, t, ',');)
                        if (!t.empty()) o->types.push_back(t);
                }
                for (const auto& t : o->types) {
                    const size_t plus = t.find('+');
                    const std::string method = plus == std::string::npos ? "" : t.substr(plus + 1);
                    if (method.empty() ? !find_ftype(t) && !parse_mlx_report_type(t, nullptr, nullptr)
                                       : !find_ftype(t.substr(0, plus)) || (method != "imatrix" && method != "gptq" && method != "awq" && method != "awq-gptq"))
                        throw_usage("--types: unknown type '" + t + "' (GGUF types and mixes, TYPE+imatrix, TYPE+gptq, TYPE+awq, TYPE+awq-gptq, or MLX-<bits>bit-g<group>)");
                    if (!method.empty() && o->calib.empty()) o->calib = default_calibration_text();
                }
                if (o->text.empty()) o->text = bundled_data_file("data/eval/tinystories-valid-excerpt.txt", "--text FILE");
                Progress progress("report", static_cast<uint64_t>(report_steps(*o)));
                o->on_step = [&](const std::string&) { progress.add(1); };
                const Report r = make_report(*o);
                progress.finish();
                const std::string md = report_markdown(r);
                const std::string rec = report_recommendations_markdown(r);
                std::cout << md << "\n## Which format fits which machine (models of 1B-70B, 4096 tokens of context)\n\n" << rec;
                write_text((fs::path(o->out_dir) / "report.md").string(), md + "\n" + rec);
                write_text((fs::path(o->out_dir) / "report.json").string(), report_json(r).dump(2) + "\n");
                write_text((fs::path(o->out_dir) / "report.html").string(), report_html(r));
                std::cout << "\nwrote " << (fs::path(o->out_dir) / "report.html").string() << ", report.md, report.json and the models\n";
                return 0;
            }};
}

Command add_advise(CLI::App& root) {
    auto* app = root.add_subcommand("advise", "Which formats fit a machine's memory, ranked by measured quality");
    struct Args {
        std::string ram, model, params, report;
        int ctx = 4096;
    };
    auto a = std::make_shared<Args>();
    app->add_option("--ram", a->ram, "Memory, e.g. 16G (default: this machine's)");
    auto* m = app->add_option("--model", a->model, "A model (GGUF or Hugging Face directory) to size");
    auto* p = app->add_option("--params", a->params, "A parameter count, e.g. 7B");
    m->excludes(p);
    app->add_option("--ctx", a->ctx, "Context tokens for the KV cache (default 4096)")->check(CLI::Range(1, 1 << 24));
    app->add_option("--report", a->report, "A qforge report (directory or report.json) to rank by (default: ./qforge-report if present)");
    app->footer("Example: qforge advise --ram 16G --params 8B");
    return {app, [a]() {
                const uint64_t ram = a->ram.empty() ? machine_ram_bytes() : parse_size(a->ram);
                QualityTable q = builtin_quality();
                std::string rep = a->report;
                if (rep.empty() && fs::exists("qforge-report/report.json")) rep = "qforge-report/report.json";
                if (!rep.empty()) {
                    if (fs::is_directory(rep)) rep = (fs::path(rep) / "report.json").string();
                    q = quality_from_report(report_from_json(read_json_file(rep)));
                }
                std::vector<ModelSpec> specs;
                if (!a->params.empty()) {
                    specs.push_back(spec_for_params(parse_params(a->params)));
                } else if (!a->model.empty()) {
                    std::error_code ec;
                    std::vector<GgufKV> md;
                    int64_t n = 0;
                    std::unique_ptr<HfModel> hf;
                    std::unique_ptr<GgufFile> g;
                    if (fs::is_directory(a->model, ec)) {
                        hf = open_hf_model(a->model);
                        md = hf->source.metadata;
                        for (const auto& t : hf->source.tensors) n += t.n_elements();
                    } else {
                        g = GgufFile::open(a->model);
                        md = g->metadata();
                        for (const auto& t : g->tensors()) n += t.n_elements();
                    }
                    ModelSpec s = spec_for_params(static_cast<double>(n));
                    std::string arch;
                    for (const auto& kv : md)
                        if (kv.key == "general.architecture") arch = kv.value.str;
                    auto get = [&](const std::string& k, int64_t def) {
                        for (const auto& kv : md)
                            if (kv.key == arch + "." + k && kv.value.as_int()) return *kv.value.as_int();
                        return def;
                    };
                    const int64_t heads = get("attention.head_count", 1), emb = get("embedding_length", 0);
                    s.n_layer = static_cast<int>(get("block_count", s.n_layer));
                    s.kv_dim = static_cast<int>(get("attention.head_count_kv", heads) * get("attention.key_length", heads ? emb / heads : 0));
                    s.name = fs::path(a->model).filename().string();
                    specs.push_back(s);
                } else {
                    specs = standard_models();
                }
                std::printf("Memory: %.1f GiB (%.1f GiB usable after the OS), context %d tokens\nQuality: %s\n\n",
                            static_cast<double>(ram) / (1ull << 30), static_cast<double>(usable_memory(ram)) / (1ull << 30), a->ctx, q.note.c_str());
                for (const auto& s : specs) {
                    const auto fits = formats_that_fit(s, q, ram, a->ctx);
                    std::printf("%s (%.2f B parameters): ", s.name.c_str(), s.params / 1e9);
                    if (fits.empty()) {
                        std::printf("no format fits\n");
                        continue;
                    }
                    std::printf("recommended %s (smallest with mean KLD <= %g, else lowest KLD)\n", recommended(fits)->format.type.c_str(), kLosslessKld);
                    for (const auto& f : fits)
                        std::printf("  %-8s %7.2f GB  %6.3f bits/weight  mean KLD %.6f\n", f.format.type.c_str(), static_cast<double>(f.bytes) / 1e9,
                                    f.format.bpw, f.format.kld);
                }
                return 0;
            }};
}

}  // namespace qforge::cli

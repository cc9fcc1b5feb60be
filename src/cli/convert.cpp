#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/quantize.hpp"
#include "qforge/mlx_model.hpp"

namespace qforge::cli {

Command add_convert(CLI::App& root) {
    auto* app = root.add_subcommand("convert", "Convert a Hugging Face or MLX model directory to GGUF, or a Hugging Face directory to MLX");
    struct Args {
        std::string in, out, outtype, imatrix, to = "gguf", mode = "affine", recipe, dtype;
        int threads = 0, bits = 4, group_size = 64;
        std::vector<std::string> exclude;
        bool json = false, no_quantize = false;
        CalibrationArgs cal;
    };
    auto a = std::make_shared<Args>();
    app->add_option("model", a->in, "Hugging Face or MLX model directory; with --to mlx also a GGUF file")->required();
    app->add_option("-o,--outfile", a->out, "Output GGUF file, or the MLX directory with --to mlx")->required();
    app->add_option("--to", a->to, "gguf (default) or mlx (an mlx-lm model directory)")->check(CLI::IsMember({"gguf", "mlx"}));
    app->add_option("--outtype", a->outtype,
                    "GGUF: f32, f16, bf16, q8_0 (what the converter writes), auto (keep each matrix's type; the default for MLX "
                    "directories) or any quantize type or mix, e.g. q4_k_m (default f16)");
    app->add_option("--imatrix", a->imatrix, "Importance matrix for quantized outtypes");
    app->add_option("-t,--threads", a->threads, "Threads");
    app->add_option("--bits", a->bits, "MLX: bits per weight, 2, 3, 4, 5, 6 or 8 (default 4)");
    auto* gs = app->add_option("--group-size", a->group_size, "MLX: elements per scale, 32, 64 or 128 (default 64; mxfp4 32, nvfp4 16)");
    app->add_option("--mode", a->mode, "MLX: affine (default), mxfp4 or nvfp4")->check(CLI::IsMember({"affine", "mxfp4", "nvfp4"}));
    app->add_option("--recipe", a->recipe, "MLX: mixed-precision recipe (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)");
    app->add_option("--dtype", a->dtype, "MLX: f16, bf16 or f32 for float weights and scales (default: the source's)")
        ->check(CLI::IsMember({"f16", "bf16", "f32", "float16", "bfloat16", "float32"}));
    app->add_option("--exclude", a->exclude, "MLX: keep modules matching this regex in float (repeatable), e.g. lm_head");
    app->add_flag("--no-quantize", a->no_quantize, "MLX: float weights only");
    app->add_option("--method", a->cal.method,
                    "MLX affine from Hugging Face: rtn (MLX's rounding, default), weighted (scales fitted with the calibration's "
                    "importance), gptq, awq or awq-gptq (see quantize --method)")
        ->check(CLI::IsMember({"rtn", "weighted", "gptq", "awq", "awq-gptq"}));
    app->add_option("--calib", a->cal.calib, "Calibration text for --method (default: the bundled excerpt)");
    app->add_option("--calib-chunks", a->cal.calib_chunks, "Chunks of calibration text (default: all of it)")->check(CLI::Range(1, 100000));
    app->add_option("--calib-ctx", a->cal.calib_ctx, "Tokens per calibration chunk (default 512)")->check(CLI::Range(16, 65536));
    app->add_option("--damp", a->cal.damp, "GPTQ damping, times the Hessian's mean diagonal (default 0.01)")->check(CLI::Range(0.0, 10.0));
    app->add_flag("--act-order", a->cal.act_order, "GPTQ: columns in order of decreasing activation (group grids chosen first)");
    app->add_flag("--json", a->json, "Print the per-tensor report as JSON");
    app->footer(
        "Examples: qforge convert models/tiny-demo-8m -o tiny-demo-8m-f16.gguf --outtype f16\n"
        "          qforge convert models/tiny-demo-8m --to mlx -o tiny-demo-8m-mlx-4bit --bits 4 --group-size 64\n"
        "          qforge convert models/tiny-demo-8m --to mlx -o demo-mlx-4bit-gptq --method awq-gptq --calib text.txt\n"
        "          qforge convert tiny-demo-8m-mlx-4bit -o tiny-demo-8m-q4_1.gguf\n"
        "          qforge convert demo-Q4_0.gguf --to mlx -o demo-mlx --dtype f32   (the same codes, exact)");
    return {app, [a, gs]() {
                if (a->to == "mlx") {
                    if (!a->outtype.empty() || !a->imatrix.empty()) throw_usage("--outtype and --imatrix are for GGUF output");
                    if (a->mode != "affine" && gs->count() == 0) a->group_size = a->mode == "nvfp4" ? 16 : 32;
                    if (!a->recipe.empty() && !std::filesystem::is_directory(a->in)) throw_usage("--recipe: for Hugging Face sources");
                    MlxConvertOptions o;
                    o.bits = a->bits;
                    o.group_size = a->group_size;
                    o.quantize = !a->no_quantize;
                    o.exclude = a->exclude;
                    o.recipe = a->recipe;
                    o.mode = a->mode;
                    o.threads = a->threads;
                    if (!a->dtype.empty()) {
                        const std::string& d = a->dtype;
                        o.dtype = d == "f16" || d == "float16" ? MlxDtype::F16 : d == "bf16" || d == "bfloat16" ? MlxDtype::BF16 : MlxDtype::F32;
                    }
                    std::error_code ec;
                    if (a->cal.method != "rtn") {
                        if (!std::filesystem::is_directory(a->in, ec) || a->no_quantize || a->mode != "affine")
                            throw_usage("--method " + a->cal.method + ": for affine quantization of a Hugging Face directory");
                        a->cal.threads = a->threads;
                        setup_mlx_calibration(a->in, a->cal, o);
                    }
                    const auto report = std::filesystem::is_directory(a->in, ec) ? convert_hf_to_mlx(a->in, a->out, o) : convert_gguf_to_mlx(a->in, a->out, o);
                    if (a->json) {
                        nlohmann::json j = nlohmann::json::array();
                        for (const auto& r : report)
                            j.push_back({{"name", r.name}, {"how", r.how}, {"exact", r.exact}, {"max_abs_err", r.max_abs_err}});
                        std::printf("%s\n", j.dump(2).c_str());
                    } else {
                        for (const auto& r : report)
                            std::printf("%-48s %-32s %s\n", r.name.c_str(), r.how.c_str(),
                                        r.exact ? "exact" : ("max abs error " + std::to_string(r.max_abs_err)).c_str());
                        std::printf("wrote MLX model directory %s (%zu tensors)\n", a->out.c_str(), report.size());
                    }
                    return 0;
                }
                auto model = open_hf_model(a->in);
                Imatrix imatrix;
                if (!a->imatrix.empty()) imatrix = load_imatrix(a->imatrix);
                const bool mlx = is_mlx_quantized_dir(a->in);
                const std::string outtype = !a->outtype.empty() ? a->outtype : mlx ? "auto" : "f16";
                const auto r = convert_hf_model(*model, a->out, outtype, a->threads, a->imatrix.empty() ? nullptr : &imatrix, a->imatrix);
                // Per tensor: kept as read (exact), or the largest change converting it made.
                std::vector<double> err(r.tensors.size(), 0.0);
                if (mlx || a->json) {
                    const auto out = GgufFile::open(a->out);
                    for (size_t i = 0; i < r.tensors.size(); ++i) {
                        const auto& t = r.tensors[i];
                        if (t.from == t.to) continue;
                        const SourceTensor* src = nullptr;
                        for (const auto& s : model->source.tensors)
                            if (s.name == t.name) src = &s;
                        const GgufTensorInfo* o = out->find_tensor(t.name);
                        if (!src || !o) continue;
                        std::vector<uint8_t> raw(src->n_bytes());
                        src->read(raw.data());
                        const auto before = dequantize(src->type, raw, src->n_elements());
                        const auto after = dequantize(o->type, std::vector<uint8_t>(o->data, o->data + o->n_bytes), src->n_elements());
                        for (size_t k = 0; k < before.size(); ++k) err[i] = std::max(err[i], static_cast<double>(std::fabs(after[k] - before[k])));
                    }
                }
                if (a->json) {
                    nlohmann::json j = nlohmann::json::array();
                    for (size_t i = 0; i < r.tensors.size(); ++i) {
                        const auto& t = r.tensors[i];
                        j.push_back({{"name", t.name}, {"from", type_traits(t.from).name}, {"to", type_traits(t.to).name},
                                     {"exact", t.from == t.to || err[i] == 0}, {"max_abs_err", err[i]}});
                    }
                    std::printf("%s\n", j.dump(2).c_str());
                } else if (mlx) {
                    for (size_t i = 0; i < r.tensors.size(); ++i) {
                        const auto& t = r.tensors[i];
                        std::printf("%-32s %-11s -> %-6s %s\n", t.name.c_str(), type_traits(t.from).name, type_traits(t.to).name,
                                    t.from == t.to || err[i] == 0 ? "exact" : ("max abs error " + std::to_string(err[i])).c_str());
                    }
                }
                std::printf("converted %s (%s, %zu tensors) to %s: %.2f MiB in %.2f s\n", a->in.c_str(), model->hf_architecture.c_str(),
                            r.tensors.size(), a->out.c_str(), static_cast<double>(r.file_size) / 1048576.0, r.seconds);
                return 0;
            }};
}

}  // namespace qforge::cli

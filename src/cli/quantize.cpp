#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.hpp"
#include "qforge/awq.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/gptq.hpp"
#include "qforge/mix_search.hpp"
#include "qforge/model.hpp"
#include "qforge/output_file.hpp"
#include "qforge/progress.hpp"
#include "qforge/quantize_model.hpp"

namespace qforge::cli {

namespace {

GgmlType parse_type(const std::string& s, const char* option) {
    const TypeTraits* t = find_type_by_name(s);
    if (!t || t->internal) throw_usage(std::string(option) + ": unknown tensor type '" + s + "'");
    return t->type;
}

std::string type_list() {
    std::string s;
    for (const auto& f : all_ftypes()) s += std::string("  ") + f.name + std::string(8 - std::string(f.name).size(), ' ') + f.description + "\n";
    return s;
}

// The options `quantize` takes.
struct QuantizeArgs {
    std::string in, out, type, imatrix, output_type, embd_type, type_file, target_size, calib, save_recipe, measurements, mix_types;
    std::string method = "rtn";
    std::vector<std::string> tensor_types;
    double target_bpw = 0, damp = 0.01;
    int calib_chunks = 0, calib_ctx = 0;  // 0: the method's default
    int threads = 0;
    bool pure = false, leave_output = false, requant = false, dry_run = false, quiet = false, act_order = false;
};

// --target-bpw / --target-size: measures the matrices on the calibration text, prints the chosen
// types (and saves them with --save-recipe), and returns them as --tensor-type patterns.
std::vector<std::pair<std::string, GgmlType>> choose_mix(const QuantizeArgs& a, Model& model, const std::vector<int32_t>& tokens,
                                                         const Imatrix* imatrix) {
    MixSearchOptions mo;
    mo.calib_tokens = tokens;
    mo.n_ctx = a.calib_ctx > 0 ? a.calib_ctx : 256;
    mo.n_chunks = std::min<int>(a.calib_chunks > 0 ? a.calib_chunks : 4, static_cast<int>(mo.calib_tokens.size() / static_cast<size_t>(mo.n_ctx)));
    mo.threads = a.threads;
    mo.imatrix = imatrix;
    mo.measurements_file = a.measurements;
    if (!a.mix_types.empty()) {
        mo.candidates.clear();
        std::istringstream ts(a.mix_types);
        for (std::string t; std::getline(ts, t, ',');) mo.candidates.push_back(parse_type(t, "--mix-types"));
    }
    mo.budget_bytes = a.target_bpw > 0 ? static_cast<uint64_t>(a.target_bpw * static_cast<double>(model.n_params()) / 8.0) : parse_target_size(a.target_size);
    LazyProgress progress("measuring each tensor's types");
    mo.progress = std::ref(progress);
    const MixResult mix = search_mix(model, mo);
    progress.finish();
    std::printf("%-32s %-7s %10s %12s\n", "tensor", "type", "KiB", "KLD alone");
    for (const auto& c : mix.choices)
        std::printf("%-32s %-7s %10.1f %12.6f\n", c.name.c_str(), type_traits(c.type).name, static_cast<double>(c.bytes) / 1024.0, c.kld);
    const uint64_t tot = mix.matrix_bytes + mix.fixed_bytes;
    std::printf("mix: %.2f MiB of tensors (budget %.2f MiB), %.3f bits per weight, predicted KLD %.6f (sum over tensors), %d evaluations\n",
                static_cast<double>(tot) / 1048576.0, static_cast<double>(mo.budget_bytes) / 1048576.0,
                8.0 * static_cast<double>(tot) / static_cast<double>(mix.n_params), mix.predicted_kld, mix.evaluations);
    if (!a.save_recipe.empty()) {
        const std::string recipe = mix_recipe_text(mix);
        OutputFile f(a.save_recipe);
        f.write(recipe.data(), recipe.size());
        f.commit();
    }
    return mix_tensor_types(mix);
}

// --method gptq / awq / awq-gptq: the inputs' Hessians of every layer matrix on the calibration text.
std::shared_ptr<Hessians> calibrate(const QuantizeArgs& a, const Model& model, const std::vector<int32_t>& tokens) {
    const int n_ctx = a.calib_ctx > 0 ? a.calib_ctx : 512;
    LazyProgress progress(a.method + ": calibration");
    auto hs = std::make_shared<Hessians>(collect_hessians(model, tokens, n_ctx, a.calib_chunks, a.threads, std::ref(progress)));
    progress.finish();
    return hs;
}

// --method awq / awq-gptq: the scales searched for the types this quantization gives each tensor,
// applied to the source (and the importance matrix, when one was given).
void setup_awq(const QuantizeArgs& a, const Model& model, Hessians& hs, SourceModel& src, const QuantizeOptions& opt, Imatrix* imatrix) {
    const auto scales = awq_for_quantize(model, hs, src, opt, a.out, a.threads);
    print_awq_summary(*scales);
    if (imatrix && !imatrix->entries.empty()) scales->rescale(*imatrix);
}

}  // namespace

Command add_quantize(CLI::App& root) {
    auto* app = root.add_subcommand("quantize", "Quantize a GGUF model to one of llama.cpp's types (with its per-tensor mixes)");
    auto a = std::make_shared<QuantizeArgs>();
    app->add_option("input", a->in, "Input GGUF (F32, F16 or BF16; quantized with --allow-requantize)")->required();
    app->add_option("output", a->out, "Output GGUF")->required();
    app->add_option("type", a->type, "Quantization type, e.g. Q4_K_M (case-insensitive)")->required();
    app->add_option("threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("-t,--threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("--imatrix", a->imatrix, "Importance matrix (llama.cpp's .dat format)");
    app->add_option("--output-tensor-type", a->output_type, "Type for output.weight");
    app->add_option("--token-embedding-type", a->embd_type, "Type for token_embd.weight");
    app->add_option("--tensor-type", a->tensor_types, "REGEX=TYPE: type for matching tensors (repeatable)");
    app->add_option("--tensor-type-file", a->type_file, "File of REGEX=TYPE lines (a saved recipe)");
    auto* bpw = app->add_option("--target-bpw", a->target_bpw, "Choose per-tensor types for this many bits per weight (needs --calib)")
                    ->check(CLI::Range(1.0, 32.0));
    auto* size = app->add_option("--target-size", a->target_size, "Choose per-tensor types for this size of tensor data, e.g. 14.5M");
    bpw->excludes(size);
    app->add_option("--calib", a->calib, "Calibration text for --target-bpw/--target-size and --method gptq (never the evaluation text; default: the bundled excerpt)");
    app->add_option("--calib-chunks", a->calib_chunks, "Chunks of calibration text (default: 4 for the mix, all of it for GPTQ)")->check(CLI::Range(1, 100000));
    app->add_option("--calib-ctx", a->calib_ctx, "Tokens per calibration chunk (default: 256 for the mix, 512 for GPTQ)")->check(CLI::Range(16, 65536));
    app->add_option("--method", a->method, "rtn: round each block (with --imatrix, weighted); gptq: error feedback from the calibration "
                                           "inputs' Hessians; awq: activation-aware channel scales folded into the norms (and v, up); "
                                           "awq-gptq: both (calibrated methods use --calib)")->check(CLI::IsMember({"rtn", "gptq", "awq", "awq-gptq"}));
    app->add_option("--damp", a->damp, "GPTQ damping, times the Hessian's mean diagonal (default 0.01)")->check(CLI::Range(0.0, 10.0));
    app->add_flag("--act-order", a->act_order, "GPTQ: columns in order of decreasing activation (block grids chosen first)");
    app->add_option("--save-recipe", a->save_recipe, "Write the chosen per-tensor types as a --tensor-type-file");
    app->add_option("--mix-types", a->mix_types, "Candidate types of the mix, comma-separated (default Q2_K,Q3_K,IQ4_XS,Q4_K,Q5_K,Q6_K,Q8_0)");
    app->add_option("--mix-measurements", a->measurements, "Keep the per-tensor measurements in FILE and reuse them (other budgets cost no new search)");
    app->add_flag("--pure", a->pure, "Use the default type for every tensor (no mix)");
    app->add_flag("--leave-output-tensor", a->leave_output, "Keep output.weight unquantized");
    app->add_flag("--allow-requantize", a->requant, "Allow quantizing tensors that are already quantized");
    app->add_flag("--dry-run", a->dry_run, "Only print the chosen types and sizes");
    app->add_flag("-q,--quiet", a->quiet, "No per-tensor listing");
    app->footer("Types:\n" + type_list() + "\nExample: qforge quantize model-f32.gguf model-Q4_K_M.gguf Q4_K_M");
    return {app, [a]() {
                if (!find_ftype(a->type)) throw_usage("unknown quantization type '" + a->type + "'; one of:\n" + type_list());
                QuantizeOptions opt;
                opt.ftype = a->type;
                opt.threads = a->threads;
                opt.pure = a->pure;
                opt.leave_output_tensor = a->leave_output;
                opt.allow_requantize = a->requant;
                opt.dry_run = a->dry_run;
                if (!a->output_type.empty()) opt.output_tensor_type = parse_type(a->output_type, "--output-tensor-type");
                if (!a->embd_type.empty()) opt.token_embedding_type = parse_type(a->embd_type, "--token-embedding-type");
                for (const auto& tt : a->tensor_types) {
                    const auto eq = tt.rfind('=');
                    if (eq == std::string::npos || eq == 0 || eq + 1 == tt.size())
                        throw_usage("--tensor-type: expected REGEX=TYPE, got '" + tt + "'");
                    opt.tensor_types.emplace_back(tt.substr(0, eq), parse_type(tt.substr(eq + 1), "--tensor-type"));
                }
                if (!a->type_file.empty())
                    for (auto& tt : load_tensor_type_file(a->type_file)) opt.tensor_types.push_back(std::move(tt));
                Imatrix imatrix;
                if (!a->imatrix.empty()) {
                    imatrix = load_imatrix(a->imatrix);
                    opt.imatrix = &imatrix;
                    opt.imatrix_file = a->imatrix;
                }
                // The error-driven mix (the user's own patterns win) and the calibrated methods: one model and
                // calibration text for all.
                const bool mix = a->target_bpw > 0 || !a->target_size.empty();
                const bool awq = a->method.starts_with("awq") && !a->dry_run, gptq = a->method.ends_with("gptq") && !a->dry_run;
                std::unique_ptr<Model> model;
                std::shared_ptr<Hessians> hs;
                if (mix || gptq || awq) {
                    if (a->calib.empty()) a->calib = default_calibration_text();
                    model = Model::load(a->in);
                    const auto tokens = model->tokenizer().tokenize_file(a->calib);
                    if (mix)
                        for (auto& tt : choose_mix(*a, *model, tokens, opt.imatrix)) opt.tensor_types.push_back(std::move(tt));
                    if (gptq || awq) hs = calibrate(*a, *model, tokens);
                }
                auto in = GgufFile::open(a->in);
                SourceModel src = source_from_gguf(*in);
                if (awq) setup_awq(*a, *model, *hs, src, opt, opt.imatrix ? &imatrix : nullptr);
                if (hs && !opt.imatrix) {  // without --imatrix: the calibration's own (of the scaled inputs under AWQ)
                    imatrix = hs->importance(a->calib);
                    opt.imatrix = &imatrix;
                    opt.imatrix_file = a->method + " calibration";
                }
                if (gptq) opt.adjust = gptq_adjust(hs, GptqOptions{a->damp, a->threads, a->act_order});
                const auto report = quantize_model(src, a->out, opt);
                if (!a->quiet) {
                    for (const auto& t : report.tensors) {
                        std::string shape;
                        for (size_t i = 0; i < t.ne.size(); ++i) shape += (i ? " x " : "") + std::to_string(t.ne[i]);
                        std::printf("%-40s %-16s %-7s -> %-7s %10.2f KiB\n", t.name.c_str(), shape.c_str(),
                                    type_traits(t.from).name, type_traits(t.to).name, static_cast<double>(t.bytes_out) / 1024.0);
                    }
                }
                std::printf("%s: %s, %.2f MiB -> %.2f MiB (file %.2f MiB)%s in %.2f s\n", a->dry_run ? "dry run" : "quantized",
                            a->type.c_str(), static_cast<double>(report.bytes_in) / 1048576.0,
                            static_cast<double>(report.bytes_out) / 1048576.0, static_cast<double>(report.file_size) / 1048576.0,
                            a->dry_run ? "" : (", wrote " + a->out).c_str(), report.seconds);
                return 0;
            }};
}

}  // namespace qforge::cli

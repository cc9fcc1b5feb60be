#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
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

}  // namespace

Command add_quantize(CLI::App& root) {
    auto* app = root.add_subcommand("quantize", "Quantize a GGUF model to one of llama.cpp's types (with its per-tensor mixes)");
    struct Args {
        std::string in, out, type, imatrix, output_type, embd_type;
        std::vector<std::string> tensor_types;
        int threads = 0;
        bool pure = false, leave_output = false, requant = false, dry_run = false, quiet = false;
    };
    auto a = std::make_shared<Args>();
    app->add_option("input", a->in, "Input GGUF (F32, F16 or BF16; quantized with --allow-requantize)")->required();
    app->add_option("output", a->out, "Output GGUF")->required();
    app->add_option("type", a->type, "Quantization type, e.g. Q4_K_M (case-insensitive)")->required();
    app->add_option("threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("-t,--threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("--imatrix", a->imatrix, "Importance matrix (llama.cpp's .dat format)");
    app->add_option("--output-tensor-type", a->output_type, "Type for output.weight");
    app->add_option("--token-embedding-type", a->embd_type, "Type for token_embd.weight");
    app->add_option("--tensor-type", a->tensor_types, "REGEX=TYPE: type for matching tensors (repeatable)");
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
                Imatrix imatrix;
                if (!a->imatrix.empty()) {
                    imatrix = load_imatrix(a->imatrix);
                    opt.imatrix = &imatrix;
                    opt.imatrix_file = a->imatrix;
                }
                auto in = GgufFile::open(a->in);
                const auto report = quantize_model(source_from_gguf(*in), a->out, opt);
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

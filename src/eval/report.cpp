#include "qforge/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "qforge/bench.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/mapped_file.hpp"
#include "qforge/awq.hpp"
#include "qforge/mlx_model.hpp"
#include "qforge/perplexity.hpp"
#include "qforge/gptq.hpp"
#include "qforge/quantize_model.hpp"

namespace qforge {

namespace fs = std::filesystem;

uint64_t machine_ram_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

std::string machine_description() {
    std::string cpu = "unknown CPU";
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("model name", 0) == 0) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    }
    std::ostringstream os;
    os.precision(3);
    os << cpu << ", " << std::thread::hardware_concurrency() << " cores, " << static_cast<double>(machine_ram_bytes()) / (1ull << 30) << " GiB RAM";
    return os.str();
}

uint64_t estimate_run_memory(const ModelHparams& hp, uint64_t weight_bytes, int n_ctx, int batch) {
    const uint64_t kv_dim = static_cast<uint64_t>(hp.n_head_kv) * hp.head_dim;
    const uint64_t kv = 2ull * hp.n_layer * static_cast<uint64_t>(n_ctx) * kv_dim * 2;  // f16 K and V
    const uint64_t b = static_cast<uint64_t>(std::min(batch, n_ctx));
    const uint64_t act = b * (3ull * hp.n_embd + 2ull * hp.n_head * hp.head_dim + 2 * kv_dim + 2ull * hp.n_ff) * 4;
    const uint64_t attn = 2ull * static_cast<uint64_t>(n_ctx) * kv_dim * 4;  // the cache as f32 while attending
    const uint64_t logits = static_cast<uint64_t>(hp.n_vocab) * 4 * b;
    return weight_bytes + kv + act + attn + logits;
}

int report_steps(const ReportOptions& opt) {
    int n = 2;
    const bool hf_source = fs::is_directory(opt.source);
    for (const auto& t : opt.types)
        if (hf_source || !parse_mlx_report_type(t, nullptr, nullptr)) n += 3;
    if (std::any_of(opt.types.begin(), opt.types.end(), [](const std::string& t) { return t.find('+') != std::string::npos; })) ++n;  // calibration
    return n;
}

bool parse_mlx_report_type(const std::string& type, int* bits, int* group_size) {
    static const std::regex re("mlx-([2-8])bit(?:-g(32|64|128))?", std::regex::icase);
    std::smatch m;
    if (!std::regex_match(type, m, re)) return false;
    const int b = std::stoi(m[1].str());
    if (b == 7) return false;
    if (bits) *bits = b;
    if (group_size) *group_size = m[2].matched ? std::stoi(m[2].str()) : 64;
    return true;
}

namespace {

void mark_pareto(std::vector<ReportRow>& rows) {
    for (auto& r : rows) {
        r.pareto_quality = r.pareto_speed = true;
        for (const auto& o : rows) {
            if (&o == &r) continue;
            if (o.file_bytes <= r.file_bytes && o.kld <= r.kld && (o.file_bytes < r.file_bytes || o.kld < r.kld)) r.pareto_quality = false;
            if (o.file_bytes <= r.file_bytes && o.tg_tps >= r.tg_tps && (o.file_bytes < r.file_bytes || o.tg_tps > r.tg_tps)) r.pareto_speed = false;
        }
    }
}

}  // namespace

Report make_report(const ReportOptions& opt) {
    auto step = [&](const std::string& s) {
        if (opt.on_step) opt.on_step(s);
    };
    std::error_code ec;
    fs::create_directories(opt.out_dir, ec);
    if (ec) throw_resource(opt.out_dir, "cannot create the report directory: " + ec.message());
    const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Report rep;
    rep.source = opt.source;
    rep.machine = machine_description();
    rep.ram_bytes = machine_ram_bytes();
    rep.text = opt.text;
    rep.threads = threads;
    rep.n_ctx = opt.n_ctx;

    // The base: f32 for a Hugging Face source (exact for bf16 weights), else the float GGUF itself.
    std::unique_ptr<HfModel> hf;
    std::unique_ptr<GgufFile> gguf;
    SourceModel source;
    std::string base_path, base_type;
    if (fs::is_directory(opt.source, ec)) {
        hf = open_hf_model(opt.source);
        base_path = (fs::path(opt.out_dir) / "model-F32.gguf").string();
        convert_hf_model(*hf, base_path, "f32", threads);
        source = hf->source;
        base_type = "F32";
    } else {
        gguf = GgufFile::open(opt.source);
        for (const auto& t : gguf->tensors())
            if (type_traits(t.type).is_quantized)
                throw_usage(opt.source + ": the report's source must be an f32, f16 or bf16 model (tensor '" + t.name + "' is " +
                            type_traits(t.type).name + ")");
        source = source_from_gguf(*gguf);
        base_path = opt.source;
        base_type = "source";
    }
    step("base model");
    auto base_model = Model::load(base_path);
    rep.params = base_model->n_params();
    const auto tokens = base_model->tokenizer().tokenize_file(opt.text);
    PerplexityOptions popt;
    popt.n_ctx = opt.n_ctx;
    popt.n_chunks = opt.n_chunks;
    popt.threads = threads;
    KldBase base;
    BenchOptions bopt;
    bopt.n_prompt = opt.bench_prompt;
    bopt.n_gen = opt.bench_gen;
    bopt.repetitions = opt.bench_reps;
    bopt.threads = threads;

    auto measure = [&](const Model& m, const std::string& type, const std::string& file, bool is_base) {
        ReportRow row;
        row.type = type;
        row.file = fs::path(file).filename().string();
        row.is_base = is_base;
        row.file_bytes = 0;
        if (fs::is_directory(file)) {  // an MLX directory: its weight files
            for (const auto& e : fs::directory_iterator(file))
                if (e.path().extension() == ".safetensors") row.file_bytes += fs::file_size(e.path());
        } else {
            row.file_bytes = fs::file_size(file);
        }
        row.weight_bytes = m.weight_bytes();
        // Bits per weight as stored: an MLX directory's files (its weights run in blocks of 32 with
        // f16 scales, which the memory column shows).
        row.bpw = 8.0 * static_cast<double>(fs::is_directory(file) ? row.file_bytes : m.weight_bytes()) / static_cast<double>(m.n_params());
        row.memory_bytes = estimate_run_memory(m.hparams(), m.weight_bytes(), opt.n_ctx);
        const auto pr = is_base ? perplexity(m, tokens, popt, nullptr, &base) : perplexity(m, {}, popt, &base);
        rep.n_chunks = pr.n_chunks;
        row.ppl = pr.ppl;
        row.ppl_se = pr.ppl_se;
        if (pr.kld) {
            row.kld = pr.kld->mean;
            row.kld_p99 = pr.kld->p99;
            row.same_top = pr.kld->same_top_pct;
        }
        step(type + ": quality");
        const auto b = bench_model(m, bopt);
        row.pp_tps = b.pp.mean;
        row.pp_sd = b.pp.stddev;
        row.tg_tps = b.tg.mean;
        row.tg_sd = b.tg.stddev;
        step(type + ": speed");
        return row;
    };
    rep.rows.push_back(measure(*base_model, base_type == "F32" ? "F32" : "source", base_path, true));
    std::shared_ptr<Hessians> hessians;  // calibrated types: made once, on the first
    Imatrix importance;
    for (const auto& type : opt.types) {
        if (int bits, gs; parse_mlx_report_type(type, &bits, &gs)) {
            if (!hf) continue;  // MLX directories are written from Hugging Face sources
            const std::string name = "MLX-" + std::to_string(bits) + "bit-g" + std::to_string(gs);
            const std::string dir = (fs::path(opt.out_dir) / ("model-" + name)).string();
            fs::remove_all(dir, ec);
            MlxConvertOptions mo;
            mo.bits = bits;
            mo.group_size = gs;
            mo.threads = threads;
            convert_hf_to_mlx(opt.source, dir, mo);
            step(name + ": quantized");
            auto m = Model::load(dir);
            rep.rows.push_back(measure(*m, name, dir, false));
            continue;
        }
        const size_t plus = type.find('+');
        const std::string method = plus == std::string::npos ? "" : type.substr(plus + 1);
        const Ftype* ft = find_ftype(type.substr(0, plus));
        if (!ft || (method != "" && method != "imatrix" && method != "gptq" && method != "awq" && method != "awq-gptq"))
            throw_usage("--types: unknown type '" + type + "'");
        const std::string name = std::string(ft->name) + (method.empty() ? "" : "+" + method);
        const std::string path = (fs::path(opt.out_dir) / ("model-" + name + ".gguf")).string();
        QuantizeOptions q;
        q.ftype = ft->name;
        q.threads = threads;
        if (!method.empty()) {
            if (!hessians) {
                if (opt.calib.empty()) throw_usage("--types " + type + ": calibrated types need --calib TEXT");
                hessians = std::make_shared<Hessians>(collect_hessians(*base_model, base_model->tokenizer().tokenize_file(opt.calib), 256, 0, threads));
                importance = hessians->importance(opt.calib);
                step("calibration");
            }
            q.imatrix = &importance;
            q.imatrix_file = opt.calib;
            if (method == "gptq") q.adjust = gptq_adjust(hessians, GptqOptions{0.01, threads});
        }
        if (method.starts_with("awq")) {
            // AWQ turns its Hessians into those of the scaled inputs: on a copy, the others' stay.
            auto hs = std::make_shared<Hessians>(hessians->deep_copy());
            SourceModel scaled = source;
            awq_for_quantize(*base_model, *hs, scaled, q, path, threads);
            Imatrix awq_importance = hs->importance(opt.calib);
            q.imatrix = &awq_importance;
            if (method == "awq-gptq") q.adjust = gptq_adjust(hs, GptqOptions{0.01, threads});
            quantize_model(scaled, path, q);
        } else {
            quantize_model(source, path, q);
        }
        step(name + ": quantized");
        auto m = Model::load(path);
        rep.rows.push_back(measure(*m, name, path, false));
    }
    mark_pareto(rep.rows);
    return rep;
}

nlohmann::json report_json(const Report& r) {
    nlohmann::json j = {{"source", r.source}, {"machine", r.machine}, {"ram_bytes", r.ram_bytes}, {"text", r.text},
                        {"threads", r.threads}, {"n_ctx", r.n_ctx}, {"n_chunks", r.n_chunks}, {"params", r.params}};
    for (const auto& x : r.rows)
        j["rows"].push_back({{"type", x.type}, {"file", x.file}, {"is_base", x.is_base}, {"file_bytes", x.file_bytes},
                             {"weight_bytes", x.weight_bytes}, {"memory_bytes", x.memory_bytes}, {"bpw", x.bpw}, {"ppl", x.ppl},
                             {"ppl_se", x.ppl_se}, {"kld", x.kld}, {"kld_p99", x.kld_p99}, {"same_top_pct", x.same_top},
                             {"pp_tps", x.pp_tps}, {"pp_sd", x.pp_sd}, {"tg_tps", x.tg_tps}, {"tg_sd", x.tg_sd},
                             {"pareto_quality", x.pareto_quality}, {"pareto_speed", x.pareto_speed}});
    return j;
}

Report report_from_json(const nlohmann::json& j) {
    Report r;
    try {
        r.source = j.at("source");
        r.machine = j.at("machine");
        r.ram_bytes = j.value("ram_bytes", uint64_t{0});
        r.text = j.value("text", "");
        r.threads = j.value("threads", 0);
        r.n_ctx = j.value("n_ctx", 0);
        r.n_chunks = j.value("n_chunks", 0);
        r.params = j.value("params", int64_t{0});
        for (const auto& x : j.at("rows")) {
            ReportRow w;
            w.type = x.at("type");
            w.file = x.value("file", "");
            w.is_base = x.value("is_base", false);
            w.file_bytes = x.at("file_bytes");
            w.weight_bytes = x.value("weight_bytes", w.file_bytes);
            w.memory_bytes = x.value("memory_bytes", w.file_bytes);
            w.bpw = x.at("bpw");
            w.ppl = x.value("ppl", 0.0);
            w.ppl_se = x.value("ppl_se", 0.0);
            w.kld = x.at("kld");
            w.kld_p99 = x.value("kld_p99", 0.0);
            w.same_top = x.value("same_top_pct", 100.0);
            w.pp_tps = x.value("pp_tps", 0.0);
            w.tg_tps = x.value("tg_tps", 0.0);
            w.pareto_quality = x.value("pareto_quality", false);
            w.pareto_speed = x.value("pareto_speed", false);
            r.rows.push_back(w);
        }
    } catch (const nlohmann::json::exception& e) {
        throw_bad_input("report.json", std::string("not a qforge report: ") + e.what());
    }
    return r;
}

}  // namespace qforge

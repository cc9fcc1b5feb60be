// `qforge report` (the main job): quantize a model to every format of interest and measure what
// each costs and gives on this machine — size, memory, speed, perplexity and KL divergence —
// then write markdown tables and a self-contained HTML report with charts.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qforge/model.hpp"

namespace qforge {

struct ReportOptions {
    std::string source;    // HF directory or f32/f16/bf16 GGUF
    std::string out_dir = "qforge-report";
    // GGUF types and mixes, and MLX affine formats as MLX-<bits>bit-g<group> (written as mlx-lm
    // directories; only from a Hugging Face source, skipped for a GGUF source).
    std::vector<std::string> types = {"F16",    "Q8_0", "Q6_K",   "Q5_K_M", "Q5_0",         "Q4_K_M",
                                      "Q4_0",   "Q3_K_M", "Q2_K", "MLX-8bit-g64", "MLX-4bit-g64"};
    // A type may carry a calibrated method: "Q4_K_M+imatrix" (the calibration text's importance
    // matrix) or "Q4_K_M+gptq" (GPTQ); they need `calib`.
    std::string calib;     // calibration text (never the evaluation text)
    std::string text;      // evaluation text file
    int n_ctx = 256;       // perplexity chunk size and the context memory is reported for
    int n_chunks = 16;
    int threads = 0;
    int bench_prompt = 128, bench_gen = 32, bench_reps = 2;
    std::function<void(const std::string& step)> on_step;  // progress: called once per step
};

struct ReportRow {
    std::string type, file;
    bool is_base = false;
    uint64_t file_bytes = 0, weight_bytes = 0, memory_bytes = 0;
    double bpw = 0;
    double ppl = 0, ppl_se = 0, kld = 0, kld_p99 = 0, same_top = 100;
    double pp_tps = 0, tg_tps = 0, pp_sd = 0, tg_sd = 0;
    bool pareto_quality = false, pareto_speed = false;
};

struct Report {
    std::string source, machine, text;
    int threads = 0, n_ctx = 0, n_chunks = 0;
    int64_t params = 0;
    uint64_t ram_bytes = 0;
    std::vector<ReportRow> rows;
};

int report_steps(const ReportOptions& opt);  // how many times on_step will be called
// An MLX report type ("MLX-4bit-g64", case-insensitive): its bits and group size.
bool parse_mlx_report_type(const std::string& type, int* bits, int* group_size);
Report make_report(const ReportOptions& opt);
std::string report_markdown(const Report& r);
std::string report_html(const Report& r);
nlohmann::json report_json(const Report& r);
// Best format per RAM size (8 … 192 GB) and model size, from the report's measurements.
std::string report_recommendations_markdown(const Report& r);
Report report_from_json(const nlohmann::json& j);

// Memory to run a model: weights + f16 KV cache for n_ctx + compute buffers.
uint64_t estimate_run_memory(const ModelHparams& hp, uint64_t weight_bytes, int n_ctx, int batch = 512);

// This machine, in words ("AMD EPYC, 2 cores, 23.4 GiB").
std::string machine_description();
uint64_t machine_ram_bytes();

}  // namespace qforge

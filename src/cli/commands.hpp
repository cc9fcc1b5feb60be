// Each subcommand registers its options on the app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "qforge/model.hpp"

namespace qforge {
struct AwqScales;
struct MlxConvertOptions;
}

namespace qforge::cli {

using Runner = std::function<int()>;

struct Command {
    CLI::App* app;
    Runner run;
};

Command add_inspect(CLI::App& root);
Command add_quantize(CLI::App& root);
Command add_dequantize(CLI::App& root);
Command add_convert(CLI::App& root);
Command add_run(CLI::App& root);
Command add_tokenize(CLI::App& root);
Command add_perplexity(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_report(CLI::App& root);
Command add_advise(CLI::App& root);
Command add_synth(CLI::App& root);
Command add_serve(CLI::App& root);
Command add_imatrix(CLI::App& root);

// --device cpu|gpu|auto and --n-gpu-layers (-ngl) on a command.
void add_device_options(CLI::App* app, DeviceOptions& d);
// One line on stderr saying which GPU runs which layers (nothing on the CPU alone).
void gpu_notice(const Context& ctx, int n_gpu_layers);
// A file bundled with qforge (rel: "data/…"), found at the root of the binary's build or install
// tree, beside $QFORGE_DATA_DIR, or in the current directory; a usage error naming `option` if not.
std::string bundled_data_file(const std::string& rel, const std::string& option);
// One line: how many of AWQ's groups it scaled and by how much that lowered their error.
void print_awq_summary(const AwqScales& s);
// --method and the calibration options of convert --to mlx.
struct CalibrationArgs {
    std::string method = "rtn", calib;
    int calib_chunks = 0, calib_ctx = 0, threads = 0;
    double damp = 0.01;
    bool act_order = false;
};
// Calibrated MLX quantization (method weighted, gptq, awq, awq-gptq) of a Hugging Face directory:
// the Hessians of its inputs on the calibration text, AWQ's scales, and the per-module quantizer.
void setup_mlx_calibration(const std::string& hf_dir, const CalibrationArgs& a, MlxConvertOptions& o);
// The bundled calibration text (Pride and Prejudice excerpt), announced on stderr.
std::string default_calibration_text();
// argv with llama.cpp's multi-letter short options (-ngl) spelled as long ones.
std::vector<std::string> translate_short_options(int argc, char** argv);

}  // namespace qforge::cli

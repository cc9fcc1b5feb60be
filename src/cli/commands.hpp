// Each subcommand registers its options on the app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

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

}  // namespace qforge::cli

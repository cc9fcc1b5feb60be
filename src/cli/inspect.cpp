#include <iostream>

#include "cli/commands.hpp"
#include "qforge/inspect.hpp"

namespace qforge::cli {

Command add_inspect(CLI::App& root) {
    auto* app = root.add_subcommand("inspect", "Show format, hyper-parameters, metadata and tensors of a model");
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto all = std::make_shared<bool>(false);
    app->add_option("path", *path, "GGUF file, safetensors file, or Hugging Face / MLX model directory")->required();
    app->add_flag("--json", *json, "Print JSON instead of text");
    app->add_flag("--all", *all, "List every tensor (text output lists the first 40)");
    app->footer("Example: qforge inspect models/tiny-demo-8m");
    return {app, [=]() {
                const auto info = inspect_path(*path);
                if (*json) std::cout << info.dump(2) << "\n";
                else std::cout << render_inspect_text(info, *all ? 0 : 40);
                return 0;
            }};
}

}  // namespace qforge::cli

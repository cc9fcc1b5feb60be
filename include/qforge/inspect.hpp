// `qforge inspect`: what a model file or directory holds, from headers only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qforge {

// Returns an ordered JSON description: format, architecture, hyper-parameters, parameter count,
// size and bits per weight, metadata and the tensor table. Throws qforge::Error on bad input.
nlohmann::ordered_json inspect_path(const std::string& path);

// Human-readable rendering of inspect_path()'s result.
std::string render_inspect_text(const nlohmann::ordered_json& info, size_t max_tensors = 0);

}  // namespace qforge

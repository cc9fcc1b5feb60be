// Compare a GGUF file with a reference manifest (see ../shared/data/reference/README.md).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qforge/gguf.hpp"

namespace qforge::test {

// Every difference, one line each (empty when the file matches). ignore_keys are skipped.
std::vector<std::string> compare_with_manifest(const GgufFile& f, const nlohmann::ordered_json& manifest,
                                               const std::vector<std::string>& ignore_keys = {});
nlohmann::ordered_json load_manifest(const std::string& path);

}  // namespace qforge::test

// Reading and writing small JSON files (configs, tokenizer files) with errors that name the file.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qforge/error.hpp"
#include "qforge/output_file.hpp"

namespace qforge {

// Json: nlohmann::json, or nlohmann::ordered_json to keep the file's key order.
template <class Json = nlohmann::json>
Json read_json_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    if (!in) throw_bad_input(p.string(), "cannot open");
    try {
        return Json::parse(in);
    } catch (const nlohmann::json::exception&) {
        throw_bad_input(p.string(), "invalid JSON");
    }
}

// An empty object when the file does not exist.
inline nlohmann::json read_json_file_if_exists(const std::filesystem::path& p) {
    return std::filesystem::exists(p) ? read_json_file(p) : nlohmann::json::object();
}

// Written atomically, indented by `indent`, with a final newline (as Python's json.dump + "\n").
template <class Json>
void write_json_file(const std::filesystem::path& p, const Json& j, int indent) {
    const std::string text = j.dump(indent) + "\n";
    OutputFile f(p.string());
    f.write(text.data(), text.size());
    f.commit();
}

}  // namespace qforge

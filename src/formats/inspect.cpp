#include "qforge/inspect.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "formats/json_file.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/safetensors.hpp"

namespace qforge {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string shape_string(const std::vector<int64_t>& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) out += (i ? " x " : "") + std::to_string(s[i]);
    return out.empty() ? "scalar" : out;
}

ojson metadata_json(const GgufValue& v) {
    if (v.type == GgufValueType::STRING) return v.str;
    if (v.type == GgufValueType::BOOL) return v.bits != 0;
    if (v.is_float()) return *v.as_double();
    if (v.type == GgufValueType::UINT64) return v.bits;
    if (v.type != GgufValueType::ARRAY) return *v.as_int();
    const auto& a = *v.array;
    ojson j;
    j["type"] = std::string("ARRAY[") + gguf_type_name(a.elem_type) + "]";
    j["length"] = a.count;
    ojson first = ojson::array();
    for (size_t i = 0; i < a.count && i < 8; ++i) {
        if (a.elem_type == GgufValueType::STRING) first.push_back(a.strings[i]);
        else if (a.elem_type == GgufValueType::ARRAY) first.push_back(metadata_json(a.arrays[i]));
        else {
            GgufValue e;
            e.type = a.elem_type;
            const size_t es = gguf_scalar_size(a.elem_type);
            std::memcpy(&e.bits, &a.raw[i * es], es);
            first.push_back(metadata_json(e));
        }
    }
    j["first"] = first;
    return j;
}

ojson inspect_gguf(const std::string& path) {
    auto f = GgufFile::open(path);
    ojson j;
    j["path"] = path;
    j["format"] = "gguf";
    j["gguf_version"] = f->version();
    const std::string arch = f->get_string("general.architecture").value_or("");
    j["architecture"] = arch;
    if (auto n = f->get_string("general.name")) j["name"] = *n;
    if (auto ft = f->get_int("general.file_type")) j["file_type"] = *ft;
    ojson hp = ojson::object();
    for (const auto& kv : f->metadata()) {
        if (!arch.empty() && kv.key.rfind(arch + ".", 0) == 0 && kv.value.type != GgufValueType::ARRAY)
            hp[kv.key.substr(arch.size() + 1)] = metadata_json(kv.value);
    }
    j["hyperparameters"] = hp;
    int64_t params = 0;
    uint64_t tensor_bytes = 0;
    ojson tensors = ojson::array();
    for (const auto& t : f->tensors()) {
        params += t.n_elements();
        tensor_bytes += t.n_bytes;
        tensors.push_back({{"name", t.name}, {"type", type_traits(t.type).name}, {"shape", t.ne}, {"bytes", t.n_bytes}});
    }
    j["parameters"] = params;
    j["file_size"] = f->file_size();
    j["tensor_bytes"] = tensor_bytes;
    j["bits_per_weight"] = params ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(params) : 0.0;
    j["alignment"] = f->alignment();
    j["tensor_count"] = f->tensors().size();
    ojson md = ojson::object();
    for (const auto& kv : f->metadata()) md[kv.key] = metadata_json(kv.value);
    j["metadata"] = md;
    j["tensors"] = tensors;
    return j;
}

ojson tensors_json(const std::vector<const StTensor*>& ts, int64_t& params, uint64_t& bytes, int64_t quant_bits) {
    ojson tensors = ojson::array();
    // MLX packs quantized weights into uint32 words; count their logical elements.
    std::set<std::string> scaled;
    for (const auto* t : ts) {
        const auto& n = t->name;
        if (n.size() > 7 && n.compare(n.size() - 7, 7, ".scales") == 0) scaled.insert(n.substr(0, n.size() - 7));
    }
    for (const auto* t : ts) {
        int64_t n_el = t->n_elements();
        const auto& n = t->name;
        const bool packed = quant_bits > 0 && t->dtype == StDtype::U32 && n.size() > 7 &&
                            n.compare(n.size() - 7, 7, ".weight") == 0 && scaled.count(n.substr(0, n.size() - 7));
        if (packed) n_el = n_el * 32 / quant_bits;
        const bool aux = quant_bits > 0 && (n.ends_with(".scales") || n.ends_with(".biases")) &&
                         scaled.count(n.substr(0, n.size() - 7));
        if (!aux) params += n_el;
        bytes += t->n_bytes();
        tensors.push_back({{"name", t->name}, {"type", st_dtype_name(t->dtype)}, {"shape", t->shape}, {"bytes", t->n_bytes()}});
    }
    return tensors;
}

ojson inspect_safetensors_file(const std::string& path) {
    auto f = SafetensorsFile::open(path);
    ojson j;
    j["path"] = path;
    j["format"] = "safetensors";
    std::vector<const StTensor*> ts;
    for (const auto& t : f->tensors()) ts.push_back(&t);
    int64_t params = 0;
    uint64_t bytes = 0;
    ojson md = ojson::object();
    for (const auto& [k, v] : f->metadata()) md[k] = v;
    auto tensors = tensors_json(ts, params, bytes, 0);
    j["parameters"] = params;
    j["file_size"] = f->file_size();
    j["tensor_bytes"] = bytes;
    j["bits_per_weight"] = params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0;
    j["tensor_count"] = ts.size();
    j["metadata"] = md;
    j["tensors"] = tensors;
    return j;
}

// What `qforge convert` would write (default outtype f16): GGUF metadata and tensors.
ojson convert_preview(const std::string& path) {
    ojson p;
    std::unique_ptr<HfModel> m;
    try {
        m = open_hf_model(path);
    } catch (const Error& e) {
        p["error"] = e.what();
        return p;
    }
    p["architecture"] = m->gguf_architecture;
    p["outtype"] = "f16";
    ojson md = ojson::object();
    for (const auto& kv : m->source.metadata) md[kv.key] = kv.key == "general.file_type" ? ojson(1) : metadata_json(kv.value);
    p["metadata"] = md;
    ojson ts = ojson::array();
    for (const auto& t : m->source.tensors) {
        const GgmlType to = converter_tensor_type(t, GgmlType::F16);
        ts.push_back({{"name", t.name}, {"type", type_traits(to).name}, {"shape", t.ne},
                      {"bytes", *row_bytes(type_traits(to), t.ne[0]) * static_cast<uint64_t>(t.n_elements() / t.ne[0])}});
    }
    p["tensors"] = ts;
    return p;
}

ojson inspect_model_dir(const std::string& path) {
    const fs::path dir(path);
    if (!fs::exists(dir / "config.json")) throw_bad_input(path, "directory has no config.json (not a Hugging Face or MLX model)");
    const ojson cfg = read_json_file<ojson>(dir / "config.json");
    if (!cfg.is_object()) throw_bad_input((dir / "config.json").string(), "not a JSON object");
    const bool mlx = cfg.contains("quantization") && cfg["quantization"].is_object();
    int64_t bits = 0;
    if (mlx && cfg["quantization"].contains("bits") && cfg["quantization"]["bits"].is_number_integer())
        bits = cfg["quantization"]["bits"].get<int64_t>();
    auto model = SafetensorsModel::open(path);
    ojson j;
    j["path"] = path;
    j["format"] = mlx ? "mlx" : "huggingface";
    std::string arch;
    if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
        cfg["architectures"][0].is_string())
        arch = cfg["architectures"][0].get<std::string>();
    j["architecture"] = arch;
    if (cfg.contains("model_type") && cfg["model_type"].is_string()) j["model_type"] = cfg["model_type"];
    ojson hp = ojson::object();
    for (const char* k : {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                          "intermediate_size", "vocab_size", "max_position_embeddings", "rms_norm_eps",
                          "rope_theta", "tie_word_embeddings", "torch_dtype", "dtype"}) {
        if (cfg.contains(k)) hp[k] = cfg[k];
    }
    if (!hp.contains("rope_theta") && cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object() &&
        cfg["rope_parameters"].contains("rope_theta"))
        hp["rope_theta"] = cfg["rope_parameters"]["rope_theta"];
    if (mlx) hp["quantization"] = cfg["quantization"];
    j["hyperparameters"] = hp;
    int64_t params = 0;
    uint64_t bytes = 0;
    auto tensors = tensors_json(model.tensors(), params, bytes, bits);
    j["parameters"] = params;
    j["file_size"] = model.total_bytes();
    j["tensor_bytes"] = bytes;
    j["bits_per_weight"] = params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0;
    j["shards"] = model.files().size();
    j["tensor_count"] = model.tensors().size();
    ojson files = ojson::array();
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    j["files"] = files;
    j["tensors"] = tensors;
    if (!mlx) j["convert_preview"] = convert_preview(path);
    return j;
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        ++u;
    }
    std::ostringstream os;
    os << std::fixed << std::setprecision(u ? 2 : 0) << b << " " << units[u];
    return os.str();
}

std::string human_count(double n) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2);
    if (n >= 1e9) os << n / 1e9 << " B";
    else if (n >= 1e6) os << n / 1e6 << " M";
    else if (n >= 1e3) os << n / 1e3 << " K";
    else os << std::setprecision(0) << n;
    return os.str();
}

std::string value_text(const ojson& v) {
    if (v.is_string()) {
        std::string s = v.get<std::string>();
        for (auto& c : s)
            if (c == '\n') c = ' ';
        if (s.size() > 70) s = s.substr(0, 70) + "...";
        return "\"" + s + "\"";
    }
    if (v.is_object() && v.contains("length") && v.contains("type")) {
        std::string s = v["type"].get<std::string>() + " x " + std::to_string(v["length"].get<uint64_t>()) + " [";
        size_t i = 0;
        for (const auto& e : v["first"]) {
            std::string es = e.dump();
            if (es.size() > 20) es = es.substr(0, 20) + "...";
            s += (i++ ? ", " : "") + es;
        }
        return s + (v["length"].get<uint64_t>() > v["first"].size() ? ", ...]" : "]");
    }
    if (v.is_number_float()) {
        std::ostringstream os;
        os << std::setprecision(7) << v.get<double>();
        return os.str();
    }
    return v.dump();
}

}  // namespace

ojson inspect_path(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw_bad_input(path, "no such file or directory");
    if (fs::is_directory(path, ec)) return inspect_model_dir(path);
    // Sniff the format from the first bytes rather than trusting the extension.
    MappedFile head(path);
    if (head.size() >= 4 && std::memcmp(head.data(), "GGUF", 4) == 0) return inspect_gguf(path);
    if (head.size() >= 9 && head.data()[8] == '{') return inspect_safetensors_file(path);
    throw_bad_input(path, "unknown format (expected a GGUF file, a safetensors file or a model directory)");
}

std::string render_inspect_text(const ojson& j, size_t max_tensors) {
    std::ostringstream os;
    os << j["path"].get<std::string>() << "\n";
    os << "  format         " << j["format"].get<std::string>();
    if (j.contains("gguf_version")) os << " v" << j["gguf_version"].get<int>();
    os << "\n";
    if (j.contains("architecture")) os << "  architecture   " << j["architecture"].get<std::string>() << "\n";
    if (j.contains("name")) os << "  name           " << j["name"].get<std::string>() << "\n";
    const double params = j["parameters"].get<double>();
    os << "  parameters     " << human_count(params) << " (" << j["parameters"].get<int64_t>() << ")\n";
    os << "  file size      " << human_bytes(j["file_size"].get<double>()) << "\n";
    os << "  bits/weight    " << std::fixed << std::setprecision(2) << j["bits_per_weight"].get<double>() << "\n";
    os << "  tensors        " << j["tensor_count"].get<uint64_t>() << "\n";
    if (j.contains("hyperparameters") && !j["hyperparameters"].empty()) {
        os << "\nhyper-parameters\n";
        for (auto it = j["hyperparameters"].begin(); it != j["hyperparameters"].end(); ++it)
            os << "  " << std::left << std::setw(40) << it.key() << " " << value_text(it.value()) << "\n";
    }
    if (j.contains("metadata") && !j["metadata"].empty()) {
        os << "\nmetadata\n";
        for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it)
            os << "  " << std::left << std::setw(40) << it.key() << " " << value_text(it.value()) << "\n";
    }
    if (j.contains("convert_preview")) {
        const auto& p = j["convert_preview"];
        if (p.contains("error")) {
            os << "\nqforge convert: not convertible (" << p["error"].get<std::string>() << ")\n";
        } else {
            os << "\nqforge convert would write (GGUF, --outtype f16): architecture " << p["architecture"].get<std::string>()
               << ", " << p["metadata"].size() << " metadata keys, " << p["tensors"].size() << " tensors\n";
            size_t k = 0;
            for (const auto& t : p["tensors"]) {
                if (max_tensors && k++ == 6) {
                    os << "  ...\n";
                    break;
                }
                os << "  " << std::left << std::setw(48) << t["name"].get<std::string>() << std::setw(8) << t["type"].get<std::string>()
                   << shape_string(t["shape"].get<std::vector<int64_t>>()) << "\n";
            }
        }
    }
    os << "\ntensors\n";
    os << "  " << std::left << std::setw(48) << "name" << std::setw(8) << "type" << std::setw(22) << "shape"
       << std::right << std::setw(12) << "bytes" << "\n";
    size_t i = 0;
    const auto& ts = j["tensors"];
    for (const auto& t : ts) {
        if (max_tensors && i == max_tensors) {
            os << "  ... " << (ts.size() - i) << " more (use --all)\n";
            break;
        }
        ++i;
        std::vector<int64_t> shape = t["shape"].get<std::vector<int64_t>>();
        os << "  " << std::left << std::setw(48) << t["name"].get<std::string>() << std::setw(8)
           << t["type"].get<std::string>() << std::setw(22) << shape_string(shape) << std::right << std::setw(12)
           << t["bytes"].get<uint64_t>() << "\n";
    }
    return os.str();
}

}  // namespace qforge

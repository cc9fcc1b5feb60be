#include "manifest.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "test_util.hpp"

namespace qforge::test {

nlohmann::ordered_json load_manifest(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::ordered_json::parse(in);
}

std::vector<std::string> compare_with_manifest(const GgufFile& f, const nlohmann::ordered_json& m,
                                               const std::vector<std::string>& ignore) {
    std::vector<std::string> d;
    auto skip = [&](const std::string& k) { return std::find(ignore.begin(), ignore.end(), k) != ignore.end(); };
    if (f.version() != m["gguf_version"].get<uint32_t>()) d.push_back("gguf version differs");
    if (f.alignment() != m["alignment"].get<uint64_t>()) d.push_back("alignment differs");
    // Metadata, in order.
    std::vector<std::string> keys_m, keys_f;
    for (auto it = m["metadata"].begin(); it != m["metadata"].end(); ++it) keys_m.push_back(it.key());
    for (const auto& kv : f.metadata()) keys_f.push_back(kv.key);
    if (keys_m != keys_f) {
        std::string s = "metadata keys/order differ: ours [";
        for (const auto& k : keys_f) s += k + " ";
        d.push_back(s + "]");
    }
    for (const auto& kv : f.metadata()) {
        if (!m["metadata"].contains(kv.key) || skip(kv.key)) continue;
        const auto& e = m["metadata"][kv.key];
        const std::string type = e["type"];
        if (type != gguf_type_name(kv.value.type)) {
            d.push_back(kv.key + ": type " + gguf_type_name(kv.value.type) + " vs " + type);
            continue;
        }
        if (type == "ARRAY") {
            const auto& a = *kv.value.array;
            if (e["elem_type"] != gguf_type_name(a.elem_type) || e["length"].get<uint64_t>() != a.count) {
                d.push_back(kv.key + ": array type or length differs");
                continue;
            }
            std::vector<uint8_t> buf;
            gguf_serialize_value(kv.value, buf);
            const std::string sha = sha256_hex(buf.data() + 12, buf.size() - 12);
            if (sha != e["sha256"].get<std::string>()) d.push_back(kv.key + ": array contents differ");
        } else if (type == "STRING") {
            if (kv.value.str != e["value"].get<std::string>()) d.push_back(kv.key + ": '" + kv.value.str + "' vs " + e["value"].dump());
        } else if (type == "FLOAT32" || type == "FLOAT64") {
            if (*kv.value.as_double() != e["value"].get<double>()) d.push_back(kv.key + ": value differs");
        } else if (type == "BOOL") {
            if ((kv.value.bits != 0) != e["value"].get<bool>()) d.push_back(kv.key + ": value differs");
        } else if (*kv.value.as_int() != e["value"].get<int64_t>()) {
            d.push_back(kv.key + ": " + std::to_string(*kv.value.as_int()) + " vs " + e["value"].dump());
        }
    }
    // Tensors, in order.
    const auto& mt = m["tensors"];
    if (mt.size() != f.tensors().size()) d.push_back("tensor count differs");
    for (size_t i = 0; i < std::min(mt.size(), f.tensors().size()); ++i) {
        const auto& t = f.tensors()[i];
        const auto& e = mt[i];
        if (t.name != e["name"].get<std::string>()) {
            d.push_back("tensor #" + std::to_string(i) + ": " + t.name + " vs " + e["name"].get<std::string>());
            continue;
        }
        if (static_cast<uint32_t>(t.type) != e["type_id"].get<uint32_t>()) d.push_back(t.name + ": type differs");
        if (t.ne != e["ne"].get<std::vector<int64_t>>()) d.push_back(t.name + ": shape differs");
        if (t.offset != e["offset"].get<uint64_t>()) d.push_back(t.name + ": offset differs");
        if (sha256_hex(t.data, t.n_bytes) != e["sha256"].get<std::string>()) d.push_back(t.name + ": data differs");
    }
    return d;
}

}  // namespace qforge::test

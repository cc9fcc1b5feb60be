// Per-tensor bit-exactness against the GGUF files llama.cpp's llama-quantize wrote (their
// manifests list every tensor's type and sha256): each tensor of the converter's bf16 output is
// quantized to the type the manifest names, and the bytes must hash the same.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "qforge/gguf.hpp"
#include "qforge/quantize.hpp"
#include "qforge/quantize_model.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;

struct Mismatch {
    int total = 0;
    int bad = 0;
    std::string first;
};

Mismatch check_manifest(const GgufFile& src, const nlohmann::json& manifest) {
    Mismatch m;
    for (const auto& t : manifest["tensors"]) {
        const std::string name = t["name"];
        const TypeTraits* tt = find_type(t["type_id"].get<uint32_t>());
        const GgufTensorInfo* in = src.find_tensor(name);
        if (!tt || !in) {
            ++m.bad;
            if (m.first.empty()) m.first = name + " (missing)";
            continue;
        }
        ++m.total;
        const auto f32 = dequantize(in->type, in->bytes(), in->n_elements());
        const int64_t ncols = in->ne[0];
        const auto q = quantize_tensor(f32.data(), in->n_elements() / ncols, ncols, tt->type);
        if (test::sha256_hex(q.data(), q.size()) != t["sha256"].get<std::string>()) {
            ++m.bad;
            if (m.first.empty()) m.first = name + " as " + tt->name;
        }
    }
    return m;
}

TEST(QuantGolden, EveryTensorOfTinyDemoMatchesLlamaCpp) {
    QFORGE_REQUIRE_SHARED(data);
    const std::string dir = data + "/reference/tiny-demo-8m";
    auto src = GgufFile::open(dir + "/tiny-demo-8m-bf16.gguf");
    int manifests = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string fname = e.path().filename().string();
        if (e.path().extension() != ".json" || fname.find("tiny-demo-8m-") != 0) continue;
        if (fname == "tiny-demo-8m-bf16.json" || fname == "tiny-demo-8m-f16.json" || fname == "tiny-demo-8m-f32.json")
            continue;  // converter outputs: the convert tests check them
        std::ifstream in(e.path());
        const auto manifest = nlohmann::json::parse(in);
        const Mismatch m = check_manifest(*src, manifest);
        EXPECT_EQ(m.bad, 0) << fname << ": " << m.bad << " of " << m.total << " tensors differ, first " << m.first;
        EXPECT_GE(m.total, 75) << fname;
        ++manifests;
    }
    EXPECT_EQ(manifests, 18);
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

std::string ftype_of_manifest(const std::string& fname, const std::string& model) {
    // "<model>-Q4_K_M.json" -> "Q4_K_M"; "<model>-F16-from-f32.json" -> "F16"
    std::string t = fname.substr(model.size() + 1, fname.size() - model.size() - 1 - 5);
    const auto from = t.find("-from-f32");
    if (from != std::string::npos) t = t.substr(0, from);
    return t;
}

// The whole file: metadata order, tensor order, alignment and data, against llama-quantize's.
TEST(QuantGolden, QuantizeCommandReproducesLlamaQuantizeFiles) {
    QFORGE_REQUIRE_SHARED(data);
    const std::string dir = data + "/reference/tiny-demo-8m";
    auto src_file = GgufFile::open(dir + "/tiny-demo-8m-bf16.gguf");
    const SourceModel src = source_from_gguf(*src_file);
    test::TempDir tmp;
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string fname = e.path().filename().string();
        if (e.path().extension() != ".json" || fname.find("tiny-demo-8m-") != 0) continue;
        if (fname == "tiny-demo-8m-bf16.json" || fname == "tiny-demo-8m-f16.json" || fname == "tiny-demo-8m-f32.json")
            continue;
        std::ifstream in(e.path());
        const auto manifest = nlohmann::json::parse(in);
        QuantizeOptions opt;
        opt.ftype = ftype_of_manifest(fname, "tiny-demo-8m");
        opt.threads = 2;
        const std::string out = tmp.path("out.gguf");
        quantize_model(src, out, opt);
        const auto bytes = test::read_file(out);
        EXPECT_EQ(test::sha256_hex(bytes.data(), bytes.size()), manifest["file_sha256"].get<std::string>()) << fname;
        ++n;
    }
    EXPECT_EQ(n, 18);
}

}  // namespace
}  // namespace qforge

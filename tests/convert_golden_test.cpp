// qforge convert against llama.cpp's convert_hf_to_gguf.py outputs (manifests in ../shared).
#include <gtest/gtest.h>

#include "manifest.hpp"
#include "qforge/convert.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

void check_convert(const std::string& model, const std::string& outtype) {
    QFORGE_REQUIRE_SHARED(data);
    test::TempDir tmp;
    auto hf = open_hf_model(data + "/models/" + model);
    const std::string out = tmp.path("out.gguf");
    convert_hf_model(*hf, out, outtype, 2);
    auto f = GgufFile::open(out);
    const auto manifest = test::load_manifest(data + "/reference/" + model + "/" + model + "-" + outtype + ".json");
    const auto diffs = test::compare_with_manifest(*f, manifest);
    for (size_t i = 0; i < diffs.size() && i < 10; ++i) ADD_FAILURE() << model << " " << outtype << ": " << diffs[i];
    const auto bytes = test::read_file(out);
    EXPECT_EQ(test::sha256_hex(bytes.data(), bytes.size()), manifest["file_sha256"].get<std::string>());
}

TEST(ConvertGolden, TinyLlamaF32) { check_convert("tiny-llama-23m", "f32"); }
TEST(ConvertGolden, TinyLlamaBF16) { check_convert("tiny-llama-23m", "bf16"); }
TEST(ConvertGolden, TinyLlamaF16) { check_convert("tiny-llama-23m", "f16"); }
TEST(ConvertGolden, TinyDemoF32) { check_convert("tiny-demo-8m", "f32"); }
TEST(ConvertGolden, TinyDemoBF16) { check_convert("tiny-demo-8m", "bf16"); }
TEST(ConvertGolden, TinyDemoF16) { check_convert("tiny-demo-8m", "f16"); }

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// Converted from the HF directory, then quantized: every type, with and without the imatrix.
TEST(ConvertGolden, TinyLlamaConvertedThenQuantizedMatchesEveryManifest) {
    QFORGE_REQUIRE_SHARED(data);
    const std::string ref = data + "/reference/tiny-llama-23m";
    auto hf = open_hf_model(data + "/models/tiny-llama-23m");
    const Imatrix imatrix = load_imatrix(ref + "/imatrix-A.dat");
    EXPECT_EQ(imatrix.entries.size(), 42u);
    EXPECT_EQ(imatrix.chunks, 100);
    EXPECT_EQ(imatrix.dataset, "calib-all.txt");
    test::TempDir tmp;
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(ref)) {
        std::string fname = e.path().filename().string();
        const std::string prefix = "tiny-llama-23m-";
        if (e.path().extension() != ".json" || fname.rfind(prefix, 0) != 0) continue;
        std::string type = fname.substr(prefix.size(), fname.size() - prefix.size() - 5);
        if (type == "f32" || type == "f16" || type == "bf16") continue;
        const bool imat = type.rfind("imat-", 0) == 0;
        if (imat) type = type.substr(5);
        if (const auto p = type.find("-from-f32"); p != std::string::npos) type = type.substr(0, p);
        SCOPED_TRACE(fname);
        const std::string out = tmp.path("q.gguf");
        // The manifests store the path llama-quantize was given; pass the same string.
        QuantizeOptions opt;
        opt.ftype = type;
        opt.threads = 2;
        opt.imatrix = imat ? &imatrix : nullptr;
        opt.imatrix_file = "imatrix-A.dat";
        if (type == "Q8_0" || type == "F16" || type == "BF16") {
            quantize_model(hf->source, out, opt);  // convert --outtype would act as the converter for these
        } else {
            convert_hf_model(*hf, out, type, 2, opt.imatrix, opt.imatrix_file);
        }
        auto f = GgufFile::open(out);
        const auto manifest = test::load_manifest(e.path().string());
        const auto diffs = test::compare_with_manifest(*f, manifest);
        for (size_t i = 0; i < diffs.size() && i < 5; ++i) ADD_FAILURE() << diffs[i];
        const auto bytes = test::read_file(out);
        EXPECT_EQ(test::sha256_hex(bytes.data(), bytes.size()), manifest["file_sha256"].get<std::string>());
        ++n;
    }
    EXPECT_EQ(n, 23);
}

}  // namespace
}  // namespace qforge

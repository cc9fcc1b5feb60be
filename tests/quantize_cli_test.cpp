// qforge quantize / dequantize from the command line: options, errors, atomic output.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "qforge/convert.hpp"
#include "qforge/gguf.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::run_qforge;

struct QuantizeCli : ::testing::Test {
    test::TempDir tmp;
    std::string f32;
    void SetUp() override {
        f32 = tmp.path("demo-f32.gguf");
        convert_hf_model(*open_hf_model(std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m"), f32, "f32", 2);
    }
};

TEST_F(QuantizeCli, QuantizeWithOptions) {
    const std::string out = tmp.path("q.gguf");
    auto r = run_qforge({"quantize", f32, out, "q4_k_m", "2", "--output-tensor-type", "q8_0", "--tensor-type",
                         "ffn_down=q5_k", "--token-embedding-type", "Q4_0"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto f = GgufFile::open(out);
    EXPECT_EQ(f->find_tensor("output.weight")->type, GgmlType::Q8_0);
    EXPECT_EQ(f->find_tensor("token_embd.weight")->type, GgmlType::Q4_0);
    EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->type, GgmlType::Q5_K);
    EXPECT_EQ(f->find_tensor("blk.0.attn_v.weight")->type, GgmlType::Q6_K);
    EXPECT_EQ(f->get_int("general.file_type").value(), 15);
    r = run_qforge({"quantize", f32, tmp.path("p.gguf"), "Q4_K_M", "--pure", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(GgufFile::open(tmp.path("p.gguf"))->find_tensor("blk.0.attn_v.weight")->type, GgmlType::Q4_K);
    r = run_qforge({"quantize", f32, tmp.path("l.gguf"), "q2_k", "--leave-output-tensor", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(GgufFile::open(tmp.path("l.gguf"))->find_tensor("output.weight")->type, GgmlType::F32);
}

TEST_F(QuantizeCli, TargetSizeMix) {
    const std::string calib = std::string(QFORGE_SOURCE_DIR) + "/data/calib/pride-and-prejudice-excerpt.txt";
    const std::string out = tmp.path("mix.gguf"), recipe = tmp.path("mix.txt"), meas = tmp.path("mix.meas");
    // Between all-Q2_K and all-Q8_0 (4.8 MiB of weights in f32 here): some of each.
    const std::vector<std::string> base = {"quantize", f32, out, "Q4_K_M", "--calib", calib, "--calib-chunks", "1", "--calib-ctx", "64",
                                           "--mix-types", "Q2_K,Q8_0", "--mix-measurements", meas, "--save-recipe", recipe, "-t", "2"};
    auto args = base;
    args.insert(args.end(), {"--target-bpw", "5"});
    auto r = run_qforge(args);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("predicted KLD"), std::string::npos) << r.out;
    auto f = GgufFile::open(out);
    int q2 = 0, q8 = 0;
    uint64_t bytes = 0;
    for (const auto& t : f->tensors()) {
        q2 += t.type == GgmlType::Q2_K;
        q8 += t.type == GgmlType::Q8_0;
        bytes += t.n_bytes;
    }
    EXPECT_GT(q2, 0);
    EXPECT_GT(q8, 0);
    int64_t params = 0;
    for (const auto& t : f->tensors()) params += t.n_elements();
    EXPECT_LE(8.0 * static_cast<double>(bytes) / static_cast<double>(params), 5.0);
    // The saved recipe gives the same file through --tensor-type-file.
    r = run_qforge({"quantize", f32, tmp.path("again.gguf"), "Q4_K_M", "--tensor-type-file", recipe, "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto g = GgufFile::open(tmp.path("again.gguf"));
    for (const auto& t : f->tensors()) EXPECT_EQ(g->find_tensor(t.name)->type, t.type) << t.name;
    // Without --calib: the bundled excerpt, said on stderr.
    r = run_qforge({"quantize", f32, tmp.path("b.gguf"), "Q4_K_M", "--target-bpw", "5", "--calib-chunks", "1", "--calib-ctx", "64", "--mix-types",
                    "Q2_K,Q8_0", "-t", "2", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("calibration text: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pride-and-prejudice-excerpt.txt (bundled"), std::string::npos) << r.err;
    // Errors: both targets, a budget below all-Q2_K.
    args = base;
    args.insert(args.end(), {"--target-bpw", "4", "--target-size", "1M"});
    EXPECT_EQ(run_qforge(args).status, 1);
    args = base;
    args.insert(args.end(), {"--target-size", "100K"});
    r = run_qforge(args);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("below the smallest mix"), std::string::npos) << r.err;
}

// GPTQ: the same file types as rounding (only the values differ), the calibration's importance
// recorded, and clear errors.
TEST_F(QuantizeCli, Gptq) {
    const std::string calib = std::string(QFORGE_SOURCE_DIR) + "/data/calib/pride-and-prejudice-excerpt.txt";
    auto r = run_qforge({"quantize", f32, tmp.path("g.gguf"), "Q4_K_M", "--method", "gptq", "--calib", calib, "--calib-chunks", "4",
                         "--calib-ctx", "128", "-t", "2", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_qforge({"quantize", f32, tmp.path("r.gguf"), "Q4_K_M", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto g = GgufFile::open(tmp.path("g.gguf")), p = GgufFile::open(tmp.path("r.gguf"));
    int differ = 0;
    for (const auto& t : p->tensors()) {
        const auto* gt = g->find_tensor(t.name);
        ASSERT_NE(gt, nullptr) << t.name;
        EXPECT_EQ(gt->type, t.type) << t.name;
        if (t.name.find("blk.") == 0 && t.ne.size() == 2) differ += std::memcmp(gt->data, t.data, t.n_bytes) != 0;
    }
    EXPECT_GT(differ, 0);
    EXPECT_EQ(g->get_string("quantize.imatrix.file").value_or(""), "gptq calibration");
    // Without --calib: the bundled excerpt.
    r = run_qforge({"quantize", f32, tmp.path("b.gguf"), "Q4_K_M", "--method", "gptq", "--calib-chunks", "2", "--calib-ctx", "64", "-t", "2", "-q"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("(bundled"), std::string::npos) << r.err;
    r = run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q4_K_M", "--method", "gptq", "--calib", tmp.path("none.txt")});
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q4_K_M", "--method", "awq2"}).status, 1);
    EXPECT_FALSE(fs::exists(tmp.path("x.gguf")));
}

TEST_F(QuantizeCli, DryRunWritesNothing) {
    auto r = run_qforge({"quantize", f32, tmp.path("d.gguf"), "Q3_K_M", "--dry-run"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("dry run"), std::string::npos);
    EXPECT_NE(r.out.find("blk.0.attn_v.weight"), std::string::npos);
    EXPECT_FALSE(fs::exists(tmp.path("d.gguf")));
}

TEST_F(QuantizeCli, Errors) {
    auto r = run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q7_X"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown quantization type 'Q7_X'"), std::string::npos);
    r = run_qforge({"quantize", tmp.path("none.gguf"), tmp.path("x.gguf"), "Q4_0"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("none.gguf"), std::string::npos);
    r = run_qforge({"quantize", f32, f32, "Q4_0"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("refusing to overwrite the input"), std::string::npos);
    ASSERT_EQ(run_qforge({"quantize", f32, tmp.path("q4.gguf"), "Q4_0", "-q"}).status, 0);
    r = run_qforge({"quantize", tmp.path("q4.gguf"), tmp.path("q2.gguf"), "Q2_K"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--allow-requantize"), std::string::npos);
    EXPECT_EQ(run_qforge({"quantize", tmp.path("q4.gguf"), tmp.path("q2.gguf"), "Q2_K", "--allow-requantize", "-q"}).status, 0);
    r = run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q4_0", "--tensor-type", "nonsense"});
    EXPECT_EQ(r.status, 1);
    r = run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q4_0", "--imatrix", tmp.path("missing.dat")});
    EXPECT_EQ(r.status, 2);
    test::write_file(tmp.path("bad.dat"), {5, 0, 0, 0, 1});
    r = run_qforge({"quantize", f32, tmp.path("x.gguf"), "Q4_0", "--imatrix", tmp.path("bad.dat")});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("bad.dat"), std::string::npos);
    EXPECT_FALSE(fs::exists(tmp.path("x.gguf")));
}

TEST_F(QuantizeCli, DequantizeBackToFloat) {
    ASSERT_EQ(run_qforge({"quantize", f32, tmp.path("q8.gguf"), "Q8_0", "-q"}).status, 0);
    auto r = run_qforge({"dequantize", tmp.path("q8.gguf"), tmp.path("back.gguf"), "--type", "f16"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto f = GgufFile::open(tmp.path("back.gguf"));
    EXPECT_EQ(f->find_tensor("output.weight")->type, GgmlType::F16);
    EXPECT_EQ(f->find_tensor("output_norm.weight")->type, GgmlType::F32);
    EXPECT_EQ(f->get_int("general.file_type").value(), 1);
}

}  // namespace
}  // namespace qforge

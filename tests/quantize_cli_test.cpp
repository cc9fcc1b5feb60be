// qforge quantize / dequantize from the command line: options, errors, atomic output.
#include <gtest/gtest.h>

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

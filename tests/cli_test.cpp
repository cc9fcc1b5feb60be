#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace qforge {
namespace {

using test::run_qforge;

const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

TEST(Cli, VersionAndHelp) {
    auto r = run_qforge({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("qforge 0."), std::string::npos);
    r = run_qforge({"help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("inspect"), std::string::npos);
    r = run_qforge({"help", "inspect"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--json"), std::string::npos);
    r = run_qforge({"inspect", "--help"});
    EXPECT_EQ(r.status, 0);
}

TEST(Cli, UsageErrorsExitOne) {
    auto r = run_qforge({"inspect"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("path is required"), std::string::npos);
    r = run_qforge({"inspect", "x", "--bogus"});
    EXPECT_EQ(r.status, 1);
    r = run_qforge({"frobnicate"});
    EXPECT_EQ(r.status, 1);
}

TEST(Cli, InspectDemoModel) {
    auto r = run_qforge({"inspect", kDemo});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("huggingface"), std::string::npos);
    EXPECT_NE(r.out.find("8.39 M"), std::string::npos);
    r = run_qforge({"inspect", "--json", kDemo});
    ASSERT_EQ(r.status, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["parameters"].get<int64_t>(), 8392960);
    EXPECT_EQ(j["architecture"], "LlamaForCausalLM");
    EXPECT_EQ(j["hyperparameters"]["num_hidden_layers"], 8);
    EXPECT_EQ(j["tensors"].size(), 75u);
    // What convert would produce.
    EXPECT_EQ(j["convert_preview"]["architecture"], "llama");
    EXPECT_EQ(j["convert_preview"]["tensors"].size(), 75u);
    EXPECT_EQ(j["convert_preview"]["tensors"][0]["name"], "token_embd.weight");
    EXPECT_EQ(j["convert_preview"]["metadata"]["tokenizer.ggml.model"], "llama");
}

TEST(Cli, BadInputFilesExitTwoWithOneLine) {
    test::TempDir tmp;
    auto r = run_qforge({"inspect", tmp.path("missing.gguf")});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("missing.gguf: no such file"), std::string::npos);
    const std::string bad = tmp.path("bad.gguf");
    test::write_file(bad, {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
    r = run_qforge({"inspect", bad});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("bad.gguf: truncated file"), std::string::npos) << r.err;
    test::write_file(tmp.path("junk.bin"), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    r = run_qforge({"inspect", tmp.path("junk.bin")});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown format"), std::string::npos);
}

TEST(CliGolden, InspectGgufFromLlamaCpp) {
    QFORGE_REQUIRE_SHARED(data);
    auto r = run_qforge({"inspect", "--json", data + "/reference/tiny-demo-8m/tiny-demo-8m-Q4_K_M.gguf"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], "gguf");
    EXPECT_EQ(j["architecture"], "llama");
    EXPECT_EQ(j["metadata"]["general.file_type"], 15);
    EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["length"], 4096);
    EXPECT_EQ(j["tensors"][0]["name"], "output.weight");
    EXPECT_EQ(j["tensors"][0]["type"], "q6_K");
    r = run_qforge({"inspect", data + "/mlx-vectors/affine_b4_g64_float16.safetensors"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("mlx_version"), std::string::npos);
}

}  // namespace
}  // namespace qforge

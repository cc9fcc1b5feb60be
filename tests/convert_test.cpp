// qforge convert: error cases and behaviour that needs no reference data.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;
const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

// A copy of the demo model whose config.json is edited by `edit`.
std::string demo_copy(const test::TempDir& tmp, const std::function<void(nlohmann::json&)>& edit) {
    const fs::path dir = tmp.dir / "tiny-demo-8m";
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(kDemo)) fs::copy_file(e.path(), dir / e.path().filename());
    std::ifstream in(dir / "config.json");
    auto cfg = nlohmann::json::parse(in);
    in.close();
    edit(cfg);
    std::ofstream(dir / "config.json") << cfg.dump(2);
    return dir.string();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::bad_input);
        return e.what();
    }
    return "no error";
}

TEST(Convert, DemoModelToF16AndQ8) {
    test::TempDir tmp;
    auto m = open_hf_model(kDemo);
    EXPECT_EQ(m->gguf_architecture, "llama");
    convert_hf_model(*m, tmp.path("d.gguf"), "f16", 1);
    auto f = GgufFile::open(tmp.path("d.gguf"));
    EXPECT_EQ(f->get_string("general.name").value(), "Tiny Demo 8m");
    EXPECT_EQ(f->get_int("general.file_type").value(), 1);
    EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, GgmlType::F16);
    EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->type, GgmlType::F32);
    convert_hf_model(*m, tmp.path("q.gguf"), "Q8_0", 1);
    EXPECT_EQ(GgufFile::open(tmp.path("q.gguf"))->find_tensor("output.weight")->type, GgmlType::Q8_0);
    convert_hf_model(*m, tmp.path("k.gguf"), "q4_k_m", 2);
    EXPECT_EQ(GgufFile::open(tmp.path("k.gguf"))->find_tensor("output.weight")->type, GgmlType::Q6_K);
}

TEST(Convert, NewerConfigLayoutGivesTheSameFile) {
    test::TempDir tmp;
    const std::string dir = demo_copy(tmp, [](nlohmann::json& c) {
        c.erase("rope_theta");
        c.erase("torch_dtype");
    });
    convert_hf_model(*open_hf_model(dir), tmp.path("new.gguf"), "f16", 1);
    convert_hf_model(*open_hf_model(kDemo), tmp.path("old.gguf"), "f16", 1);
    EXPECT_EQ(test::read_file(tmp.path("new.gguf")), test::read_file(tmp.path("old.gguf")));
}

TEST(Convert, UnsupportedArchitecture) {
    test::TempDir tmp;
    const std::string dir = demo_copy(tmp, [](nlohmann::json& c) { c["architectures"] = {"GPT2LMHeadModel"}; });
    EXPECT_NE(error_of([&] { open_hf_model(dir); }).find("unsupported architecture 'GPT2LMHeadModel'"), std::string::npos);
}

TEST(Convert, InconsistentShapes) {
    test::TempDir tmp;
    const std::string dir = demo_copy(tmp, [](nlohmann::json& c) { c["intermediate_size"] = 1024; });
    EXPECT_NE(error_of([&] { open_hf_model(dir); }).find("does not match config.json"), std::string::npos);
    test::TempDir tmp2;
    const std::string dir2 = demo_copy(tmp2, [](nlohmann::json& c) { c["num_hidden_layers"] = 9; });
    EXPECT_NE(error_of([&] { open_hf_model(dir2); }).find("missing tensor"), std::string::npos);
}

TEST(Convert, MissingFiles) {
    test::TempDir tmp;
    EXPECT_NE(error_of([&] { open_hf_model(tmp.dir.string()); }).find("no config.json"), std::string::npos);
    EXPECT_NE(error_of([&] { open_hf_model(tmp.path("nope")); }).find("not a directory"), std::string::npos);
    const std::string dir = demo_copy(tmp, [](nlohmann::json&) {});
    fs::remove(fs::path(dir) / "model-00002-of-00002.safetensors");
    EXPECT_NE(error_of([&] { open_hf_model(dir); }).find("model-00002-of-00002.safetensors"), std::string::npos);
    test::TempDir tmp2;
    const std::string dir2 = demo_copy(tmp2, [](nlohmann::json&) {});
    fs::remove(fs::path(dir2) / "tokenizer.model");
    fs::remove(fs::path(dir2) / "tokenizer.json");
    EXPECT_NE(error_of([&] { open_hf_model(dir2); }).find("no tokenizer.model or tokenizer.json"), std::string::npos);
}

TEST(Convert, CliReportsErrorsOnOneLine) {
    test::TempDir tmp;
    auto r = test::run_qforge({"convert", tmp.dir.string(), "-o", tmp.path("x.gguf")});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
    r = test::run_qforge({"convert", kDemo, "-o", tmp.path("x.gguf"), "--outtype", "q9_9"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown type 'q9_9'"), std::string::npos);
    EXPECT_FALSE(fs::exists(tmp.path("x.gguf")));
    r = test::run_qforge({"convert", kDemo, "-o", tmp.path("x.gguf"), "--outtype", "bf16"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::exists(tmp.path("x.gguf")));
}

}  // namespace
}  // namespace qforge

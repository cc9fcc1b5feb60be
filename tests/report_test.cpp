// qforge report / advise / bench, and the HTML report rendered in a real browser.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qforge/advise.hpp"
#include "qforge/error.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using test::run_qforge;
const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

std::string find_chromium() {
    for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
        if (fs::exists(p)) return p;
    return "";
}

TEST(Report, DemoModelTablesJsonAndHtmlInABrowser) {
    test::TempDir tmp;
    const std::string dir = tmp.path("rep");
    auto r = run_qforge({"report", kDemo, "-o", dir, "--types", "Q8_0,Q4_K_M,Q2_K,MLX-4bit-g64", "--ctx", "64", "--chunks", "3", "--bench-prompt",
                         "32", "--bench-gen", "8", "-t", "2"});
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* s : {"## Memory", "## Speed", "## Quality", "| Q4_K_M |", "| MLX-4bit-g64 |", "Which format fits which machine", "| 192 GB |"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s;
    std::ifstream in(dir + "/report.json");
    const auto j = nlohmann::json::parse(in);
    ASSERT_EQ(j["rows"].size(), 5u);  // the f32 base, three GGUF types and an MLX directory
    EXPECT_TRUE(j["rows"][0]["is_base"].get<bool>());
    for (const auto& row : j["rows"]) {
        EXPECT_GT(row["ppl"].get<double>(), 1.0);
        EXPECT_GT(row["tg_tps"].get<double>(), 0.0);
        EXPECT_GT(row["memory_bytes"].get<double>(), row["file_bytes"].get<double>() * 0.9);
    }
    // Lower bits, more divergence.
    EXPECT_LT(j["rows"][1]["kld"].get<double>(), j["rows"][3]["kld"].get<double>());
    EXPECT_TRUE(fs::exists(dir + "/model-Q4_K_M.gguf"));
    EXPECT_TRUE(fs::exists(dir + "/model-MLX-4bit-g64/model.safetensors"));
    // MLX 4-bit g64 (4.5 bits per weight with bf16 scales) sits between Q4_K_M and Q2_K in size,
    // and it is a real quantization: between them in divergence too.
    EXPECT_LT(j["rows"][4]["file_bytes"].get<double>(), j["rows"][1]["file_bytes"].get<double>());
    EXPECT_GT(j["rows"][4]["kld"].get<double>(), j["rows"][1]["kld"].get<double>());

    const std::string chromium = find_chromium();
    if (chromium.empty()) GTEST_SKIP() << "chromium not installed; browser check skipped";
    const std::string html = dir + "/report.html";
    const std::string png = tmp.path("report.png");
    const std::string cmd = chromium + " --headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0 " +
                            "--window-size=1000,2600 --screenshot=" + png + " file://" + html + " >" + tmp.path("c.out") + " 2>" +
                            tmp.path("c.err");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ASSERT_TRUE(fs::exists(png));
    EXPECT_GT(fs::file_size(png), 20000u);
    const auto log = test::read_file(tmp.path("c.err"));
    const std::string logs(log.begin(), log.end());
    EXPECT_EQ(logs.find("CONSOLE"), std::string::npos) << logs;
    EXPECT_EQ(logs.find("Failed to load"), std::string::npos) << logs;
    // The rendered DOM has the three charts with their points.
    const std::string dom_cmd = chromium + " --headless --no-sandbox --disable-gpu --dump-dom file://" + html + " >" +
                                tmp.path("dom.html") + " 2>/dev/null";
    ASSERT_EQ(std::system(dom_cmd.c_str()), 0);
    const auto dom_bytes = test::read_file(tmp.path("dom.html"));
    const std::string dom(dom_bytes.begin(), dom_bytes.end());
    for (const char* id : {"id=\"chart-kld\"", "id=\"chart-ppl\"", "id=\"chart-speed\"", "class=\"front\"", "<circle"})
        EXPECT_NE(dom.find(id), std::string::npos) << id;
}

// Calibrated rows: the calibration text's importance matrix and GPTQ beside plain rounding.
TEST(Report, CalibratedRows) {
    test::TempDir tmp;
    const std::string dir = tmp.path("rep");
    const std::string calib = std::string(QFORGE_SOURCE_DIR) + "/data/calib/pride-and-prejudice-excerpt.txt";
    auto r = run_qforge({"report", kDemo, "-o", dir, "--types", "Q3_K_M,Q3_K_M+imatrix,Q3_K_M+gptq,Q3_K_M+awq", "--calib", calib, "--ctx", "256", "--chunks",
                         "16", "--bench-prompt", "16", "--bench-gen", "4", "-t", "2"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("| Q3_K_M+gptq |"), std::string::npos) << r.out;
    std::ifstream in(dir + "/report.json");
    const auto j = nlohmann::json::parse(in);
    ASSERT_EQ(j["rows"].size(), 5u);
    EXPECT_EQ(j["rows"][4]["type"], "Q3_K_M+awq");
    EXPECT_EQ(j["rows"][1]["weight_bytes"], j["rows"][4]["weight_bytes"]);
    std::printf("Q3_K_M KLD: rounding %.4f, +imatrix %.4f, +gptq %.4f, +awq %.4f\n", j["rows"][1]["kld"].get<double>(), j["rows"][2]["kld"].get<double>(),
                j["rows"][3]["kld"].get<double>(), j["rows"][4]["kld"].get<double>());
    EXPECT_EQ(j["rows"][3]["type"], "Q3_K_M+gptq");
    // The same weights' size; less divergence than plain rounding (here 0.0946 against 0.1013, the
    // importance matrix alone 0.0971).
    EXPECT_EQ(j["rows"][1]["weight_bytes"], j["rows"][3]["weight_bytes"]);
    EXPECT_LT(j["rows"][3]["kld"].get<double>(), j["rows"][1]["kld"].get<double>());
    EXPECT_LT(j["rows"][2]["kld"].get<double>(), j["rows"][1]["kld"].get<double>());
    EXPECT_TRUE(fs::exists(dir + "/model-Q3_K_M+gptq.gguf"));
    EXPECT_EQ(run_qforge({"report", kDemo, "-o", tmp.path("x"), "--types", "Q4_K_M+spqr", "--calib", calib}).status, 1);
}

TEST(Report, Errors) {
    test::TempDir tmp;
    auto r = run_qforge({"report", kDemo, "-o", tmp.path("x"), "--types", "Q4_K_M,Q9_9"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown type 'Q9_9'"), std::string::npos);
    r = run_qforge({"report", tmp.path("missing")});
    EXPECT_EQ(r.status, 2);
}

TEST(Advise, FitsAndRecommendations) {
    const auto q = builtin_quality();
    const auto s8 = spec_for_params(8e9);
    auto fits = formats_that_fit(s8, q, 16ull << 30, 4096);
    ASSERT_FALSE(fits.empty());
    for (const auto& f : fits) EXPECT_LE(f.bytes, usable_memory(16ull << 30));
    EXPECT_EQ(recommended(fits)->format.type, "Q6_K");
    EXPECT_TRUE(formats_that_fit(spec_for_params(70e9), q, 8ull << 30, 4096).empty());
    EXPECT_EQ(parse_size("16G"), 16ull << 30);
    EXPECT_EQ(parse_size("512M"), 512ull << 20);
    EXPECT_DOUBLE_EQ(parse_params("7B"), 7e9);
    EXPECT_THROW(parse_size("lots"), Error);
    auto r = run_qforge({"advise", "--ram", "24G", "--params", "14B"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("recommended"), std::string::npos);
    r = run_qforge({"advise", "--ram", "8G", "--model", kDemo});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("recommended Q6_K"), std::string::npos) << r.out;
    EXPECT_EQ(run_qforge({"advise", "--ram", "x"}).status, 1);
}

TEST(BenchCli, MarkdownJsonCsv) {
    auto r = run_qforge({"bench", "-m", kDemo, "-p", "16", "-n", "4", "-r", "2", "-t", "2"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("| pp16 |"), std::string::npos);
    EXPECT_NE(r.out.find("| tg4 |"), std::string::npos);
    r = run_qforge({"bench", "-m", kDemo, "-p", "16", "-n", "4", "-r", "2", "-o", "json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j[0]["pp_tokens_per_s"].get<double>(), 0);
    EXPECT_EQ(j[0]["params"].get<int64_t>(), 8392960);
    r = run_qforge({"bench", "-m", kDemo, "-p", "16", "-n", "0", "-r", "1", "-o", "csv"});
    EXPECT_NE(r.out.find("pp16"), std::string::npos);
}

}  // namespace
}  // namespace qforge

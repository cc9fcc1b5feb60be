// qforge run / tokenize from the command line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace qforge {
namespace {

using test::run_qforge;
const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

TEST(RunCli, GreedyJsonIsDeterministicAcrossThreads) {
    auto r1 = run_qforge({"run", "-m", kDemo, "-p", "Once upon a time, there was a little", "-n", "24", "--temp", "0", "--json", "-t", "1"});
    ASSERT_EQ(r1.status, 0) << r1.err;
    auto r2 = run_qforge({"run", "-m", kDemo, "-p", "Once upon a time, there was a little", "-n", "24", "--temp", "0", "--json", "-t", "2"});
    ASSERT_EQ(r2.status, 0) << r2.err;
    const auto j1 = nlohmann::json::parse(r1.out), j2 = nlohmann::json::parse(r2.out);
    EXPECT_EQ(j1["tokens"], j2["tokens"]);
    EXPECT_EQ(j1["prompt_ids"], (std::vector<int>{1, 1278, 538, 261, 553, 3913, 458, 317, 261, 549}));
    EXPECT_EQ(j1["tokens"].size(), 24u);
    EXPECT_GT(j1["timings"]["generation_tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(j1["timings"]["peak_rss_bytes"].get<double>(), 0.0);
}

TEST(RunCli, StreamsTextAndTimings) {
    auto r = run_qforge({"run", "-m", kDemo, "-p", "The cat", "-n", "8", "--seed", "7", "--temp", "0.7", "--top-k", "20",
                         "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.1", "--cache-type", "q8_0"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("The cat", 0), 0u);
    EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
    EXPECT_NE(r.err.find("peak memory"), std::string::npos);
    // Same seed, same text.
    auto r2 = run_qforge({"run", "-m", kDemo, "-p", "The cat", "-n", "8", "--seed", "7", "--temp", "0.7", "--top-k", "20",
                          "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.1", "--cache-type", "q8_0"});
    EXPECT_EQ(r.out, r2.out);
}

TEST(RunCli, Errors) {
    auto r = run_qforge({"run", "-m", kDemo, "-p", std::string("bad \xff utf8"), "-n", "4"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("not valid UTF-8"), std::string::npos);
    r = run_qforge({"run", "-m", kDemo, "-p", "Hello", "-n", "100", "-c", "32"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("context overflow"), std::string::npos);
    r = run_qforge({"run", "-m", kDemo, "-p", "Hello", "--cache-type", "q4"});
    EXPECT_EQ(r.status, 1);
    r = run_qforge({"run", "-m", "/nonexistent/model.gguf", "-p", "Hello"});
    EXPECT_EQ(r.status, 2);
    r = run_qforge({"run", "-m", kDemo, "--chat"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("no chat template"), std::string::npos);
}

TEST(TokenizeCli, IdsAndPieces) {
    auto r = run_qforge({"tokenize", "-m", kDemo, "-p", "Hello world", "--ids"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "1 426 289 3898 1041\n");
    r = run_qforge({"tokenize", "-m", kDemo, "-p", "Hello world", "--ids", "--no-bos"});
    EXPECT_EQ(r.out, "426 289 3898 1041\n");
    r = run_qforge({"tokenize", "-m", kDemo, "-p", "Hello"});
    EXPECT_NE(r.out.find("-> ' He'"), std::string::npos);
}

// llama-tokenize's ids for the first 2000 characters of both evaluation texts.
TEST(TokenizeCliGolden, MatchesLlamaTokenize) {
    QFORGE_REQUIRE_SHARED(data);
    std::ifstream in(data + "/reference/tiny-llama-23m/tokens.json");
    const auto j = nlohmann::json::parse(in);
    test::TempDir tmp;
    for (const auto& [name, entry] : j["texts"].items()) {
        const std::string path = name == "wiki.test.raw" ? data + "/eval/wikitext-2-raw/wiki.test.raw"
                                                         : data + "/eval/tinystories/tinystories_valid_head.txt";
        const auto bytes = test::read_file(path);
        // First 2000 Unicode characters.
        size_t end = 0;
        for (int chars = 0; end < bytes.size() && chars < 2000; ++chars) {
            ++end;
            while (end < bytes.size() && (bytes[end] & 0xC0) == 0x80) ++end;
        }
        test::write_file(tmp.path("t.txt"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(end)));
        for (bool bos : {true, false}) {
            std::vector<std::string> args = {"tokenize", "-m", data + "/models/tiny-llama-23m", "-f", tmp.path("t.txt"), "--ids"};
            if (!bos) args.push_back("--no-bos");
            auto r = run_qforge(args);
            ASSERT_EQ(r.status, 0) << r.err;
            std::string expect;
            for (const auto& id : entry[bos ? "ids" : "ids_no_bos"]) expect += (expect.empty() ? "" : " ") + std::to_string(id.get<int>());
            EXPECT_EQ(r.out, expect + "\n") << name << (bos ? " with BOS" : " without BOS");
        }
    }
}

}  // namespace
}  // namespace qforge

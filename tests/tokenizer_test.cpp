// Tokenizers against llama.cpp's test vectors (../shared/data/vocab) and edge cases.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "formats/hf_vocab.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/mlx_model.hpp"
#include "qforge/tokenizer.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

std::vector<std::string> read_inputs(const std::string& path) {
    const auto bytes = test::read_file(path);
    const std::string raw(bytes.begin(), bytes.end());
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < raw.size()) {
        const size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            out.push_back(raw.substr(pos));
            break;
        }
        out.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    return out;
}

std::vector<std::vector<int32_t>> read_outputs(const std::string& path) {
    const auto bytes = test::read_file(path);
    std::istringstream in(std::string(bytes.begin(), bytes.end()));
    std::vector<std::vector<int32_t>> out;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::vector<int32_t> ids;
        int32_t id;
        while (ls >> id) ids.push_back(id);
        out.push_back(ids);
    }
    return out;
}

class VocabTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabTest, EveryVectorMatches) {
    QFORGE_REQUIRE_SHARED(data);
    const std::string base = data + "/vocab/ggml-vocab-" + GetParam() + ".gguf";
    auto f = GgufFile::open(base);
    auto tok = Tokenizer::from_metadata(f->metadata(), base);
    const auto inputs = read_inputs(base + ".inp");
    const auto outputs = read_outputs(base + ".out");
    ASSERT_EQ(inputs.size(), outputs.size());
    int bad = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const auto ids = tok->tokenize(inputs[i], false, false);
        if (ids != outputs[i]) {
            if (++bad <= 5) {
                std::string got;
                for (auto id : ids) got += " " + std::to_string(id);
                ADD_FAILURE() << GetParam() << " test " << i << " '" << inputs[i] << "': got" << got;
            }
        }
        // Decoding gives the text back (the tokenizers here are lossless on these inputs).
        if (ids == outputs[i] && tok->model() == "gpt2") {
            EXPECT_EQ(tok->detokenize(ids), inputs[i]) << i;
        }
    }
    EXPECT_EQ(bad, 0);
}

// A GGUF vocabulary (SentencePiece or byte-level BPE) written as Hugging Face tokenizer files (what `convert X.gguf --to mlx`
// writes) and read back as the converter reads such files: every test vector still matches.
class HfVocabFromGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(HfVocabFromGguf, EveryVectorMatches) {
    QFORGE_REQUIRE_SHARED(data);
    const std::string base = data + "/vocab/ggml-vocab-" + GetParam() + ".gguf";
    test::TempDir tmp;
    write_hf_tokenizer_files(*GgufFile::open(base), tmp.dir.string());
    std::vector<GgufKV> kv;
    append_hf_vocab(tmp.dir, 0, GetParam() == "qwen2" ? "qwen2" : "llama", kv);
    auto tok = Tokenizer::from_metadata(kv, base);
    const auto inputs = read_inputs(base + ".inp");
    const auto outputs = read_outputs(base + ".out");
    int bad = 0;
    for (size_t i = 0; i < inputs.size(); ++i)
        if (tok->tokenize(inputs[i], false, false) != outputs[i] && ++bad <= 5) ADD_FAILURE() << GetParam() << " test " << i << " '" << inputs[i] << "'";
    EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, HfVocabFromGguf, ::testing::Values("llama-spm", "phi-3", "gpt-2", "llama-bpe", "qwen2"),
                         [](const auto& info) {
                             std::string n = info.param;
                             for (auto& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabTest, ::testing::Values("llama-spm", "phi-3", "gpt-2", "llama-bpe", "qwen2"),
                         [](const auto& info) {
                             std::string n = info.param;
                             for (auto& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

TEST(Tokenizer, SpecialTokensAndBos) {
    QFORGE_REQUIRE_SHARED(data);
    auto f = GgufFile::open(data + "/vocab/ggml-vocab-llama-bpe.gguf");
    auto tok = Tokenizer::from_metadata(f->metadata(), "x");
    const auto with = tok->tokenize("<|start_header_id|>hi", true, true);
    ASSERT_GE(with.size(), 3u);
    EXPECT_EQ(with[0], tok->bos());
    EXPECT_EQ(with[1], tok->find_token("<|start_header_id|>"));
    const auto without = tok->tokenize("<|start_header_id|>hi", false, false);
    EXPECT_GT(without.size(), 3u);  // parsed as plain text
    EXPECT_TRUE(tok->is_eog(tok->find_token("<|eot_id|>")));
}

TEST(Tokenizer, StreamingHoldsBackPartialUtf8) {
    Utf8Stream s;
    EXPECT_EQ(s.push("a\xe2\x96"), "a");
    EXPECT_EQ(s.push("\x81z"), "\xe2\x96\x81z");
    EXPECT_EQ(s.push("\xf0\x9f"), "");
    EXPECT_EQ(s.push("\xa6\x99"), "\xf0\x9f\xa6\x99");
    EXPECT_EQ(s.push("\xff"), "\xff");
    EXPECT_EQ(s.flush(), "");
}

TEST(Tokenizer, UnknownPreIsAClearError) {
    std::vector<GgufKV> kv = {{"tokenizer.ggml.model", GgufValue::string("gpt2")},
                              {"tokenizer.ggml.pre", GgufValue::string("no-such-pre")},
                              {"tokenizer.ggml.tokens", GgufValue::string_array({"a", "b"})},
                              {"tokenizer.ggml.merges", GgufValue::string_array({"a b"})}};
    try {
        Tokenizer::from_metadata(kv, "m.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown pre-tokenizer 'no-such-pre'"), std::string::npos);
    }
}

}  // namespace
}  // namespace qforge

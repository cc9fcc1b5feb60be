// Qwen2 from a Hugging Face directory: a tiny checkpoint written here (random bf16 weights,
// byte-level BPE tokenizer), converted and run. Checks what differs from llama: q/k/v biases,
// no Q/K row permutation (NEOX rope), tied embeddings, the gpt2 tokenizer with the qwen2 pre-tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "qforge/convert.hpp"
#include "qforge/half.hpp"
#include "qforge/model.hpp"
#include "qforge/safetensors.hpp"
#include "tokenizer/pretokenize.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string write_tiny_qwen2(const test::TempDir& tmp) {
    const fs::path dir = tmp.dir / "tiny-qwen2-1m";
    fs::create_directories(dir);
    const int E = 64, L = 2, H = 4, KVH = 2, F = 128, D = E / H;
    // Vocabulary: the 256 byte symbols, a few merges, and one special token.
    json vocab = json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(static_cast<uint8_t>(b))] = id++;
    const std::vector<std::pair<std::string, std::string>> merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}};
    json jm = json::array();
    for (const auto& [a, b] : merges) {
        vocab[a + b] = id++;
        jm.push_back(a + " " + b);
    }
    const int n_vocab = id + 1;  // + <|endoftext|>
    json tok = {{"version", "1.0"},
                {"added_tokens", json::array({{{"id", id}, {"content", "<|endoftext|>"}, {"special", true}}})},
                {"pre_tokenizer",
                 {{"type", "Sequence"},
                  {"pretokenizers",
                   json::array({{{"type", "Split"},
                                 {"pattern",
                                  {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                                 {"behavior", "Isolated"}},
                                {{"type", "ByteLevel"}}})}}},
                {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", jm}}}};
    std::ofstream(dir / "tokenizer.json") << tok.dump();
    std::ofstream(dir / "tokenizer_config.json") << json({{"eos_token", "<|endoftext|>"}, {"add_bos_token", false}}).dump();
    std::ofstream(dir / "config.json") << json({{"architectures", {"Qwen2ForCausalLM"}}, {"hidden_size", E}, {"num_hidden_layers", L},
                                                {"num_attention_heads", H}, {"num_key_value_heads", KVH}, {"intermediate_size", F},
                                                {"vocab_size", n_vocab}, {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-6},
                                                {"rope_theta", 1000000.0}, {"tie_word_embeddings", true}, {"torch_dtype", "bfloat16"},
                                                {"eos_token_id", id}})
                                               .dump();
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {{"model.embed_tokens.weight", {n_vocab, E}}, {"model.norm.weight", {E}}};
    for (int l = 0; l < L; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        shapes.push_back({p + "input_layernorm.weight", {E}});
        shapes.push_back({p + "post_attention_layernorm.weight", {E}});
        shapes.push_back({p + "self_attn.q_proj.weight", {H * D, E}});
        shapes.push_back({p + "self_attn.q_proj.bias", {H * D}});
        shapes.push_back({p + "self_attn.k_proj.weight", {KVH * D, E}});
        shapes.push_back({p + "self_attn.k_proj.bias", {KVH * D}});
        shapes.push_back({p + "self_attn.v_proj.weight", {KVH * D, E}});
        shapes.push_back({p + "self_attn.v_proj.bias", {KVH * D}});
        shapes.push_back({p + "self_attn.o_proj.weight", {E, H * D}});
        shapes.push_back({p + "mlp.gate_proj.weight", {F, E}});
        shapes.push_back({p + "mlp.up_proj.weight", {F, E}});
        shapes.push_back({p + "mlp.down_proj.weight", {E, F}});
    }
    std::sort(shapes.begin(), shapes.end());
    SafetensorsWriter w((dir / "model.safetensors").string());
    w.set_metadata({{"format", "pt"}});
    for (const auto& [n, s] : shapes) w.add_tensor(n, StDtype::BF16, s);
    w.write_header();
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.f, 0.1f);
    for (const auto& [n, s] : shapes) {
        int64_t k = 1;
        for (auto d : s) k *= d;
        std::vector<uint16_t> v(static_cast<size_t>(k));
        const bool norm = n.find("norm") != std::string::npos;
        for (auto& e : v) e = fp32_to_bf16(norm ? 1.0f + nd(rng) : nd(rng));
        w.write_tensor_data(v.data(), v.size() * 2);
    }
    w.finish();
    return dir.string();
}

TEST(Qwen2, ConvertsAndRuns) {
    test::TempDir tmp;
    const std::string dir = write_tiny_qwen2(tmp);
    auto hf = open_hf_model(dir);
    EXPECT_EQ(hf->gguf_architecture, "qwen2");
    convert_hf_model(*hf, tmp.path("q.gguf"), "f32", 1);
    auto f = GgufFile::open(tmp.path("q.gguf"));
    EXPECT_EQ(f->get_string("general.architecture").value(), "qwen2");
    EXPECT_EQ(f->get_string("tokenizer.ggml.model").value(), "gpt2");
    EXPECT_EQ(f->get_string("tokenizer.ggml.pre").value(), "qwen2");
    EXPECT_EQ(f->find("tokenizer.ggml.merges")->array->count, 5u);
    EXPECT_FALSE(f->find("qwen2.rope.dimension_count"));  // the converter writes none for qwen2
    EXPECT_FLOAT_EQ(static_cast<float>(f->get_double("qwen2.rope.freq_base").value()), 1e6f);
    EXPECT_EQ(f->find_tensor("output.weight"), nullptr);  // tied
    ASSERT_NE(f->find_tensor("blk.1.attn_k.bias"), nullptr);
    // No row permutation for qwen2: attn_k equals k_proj (bf16 -> f32).
    const StTensor* k = hf->weights.find("model.layers.1.self_attn.k_proj.weight");
    const auto* kg = reinterpret_cast<const float*>(f->find_tensor("blk.1.attn_k.weight")->data);
    for (int64_t i = 0; i < k->n_elements(); ++i)
        ASSERT_EQ(kg[i], bf16_to_fp32(reinterpret_cast<const uint16_t*>(k->data)[i])) << i;
    // The byte-level BPE tokenizer applies the merges: "hello world" -> hello, Ġw, o, r, l, d.
    auto model = Model::load(tmp.path("q.gguf"));
    const auto ids = model->tokenizer().tokenize("hello world", false);
    ASSERT_EQ(ids.size(), 6u);
    EXPECT_EQ(model->tokenizer().token_text(ids[0]), "hello");
    EXPECT_EQ(model->tokenizer().detokenize(ids), "hello world");
    EXPECT_TRUE(model->hparams().rope_neox);
    // The HF directory and its GGUF give the same logits.
    auto direct = Model::load(dir);
    Context c1(*model, 32, KvCacheType::F32, 1), c2(*direct, 32, KvCacheType::F32, 2);
    std::vector<float> l1, l2;
    c1.eval(ids, l1, true);
    c2.eval(ids, l2, true);
    ASSERT_EQ(l1.size(), l2.size());
    for (size_t i = 0; i < l1.size(); ++i) {
        ASSERT_TRUE(std::isfinite(l1[i]));
        ASSERT_NEAR(l1[i], l2[i], 1e-4f);
    }
}

}  // namespace
}  // namespace qforge

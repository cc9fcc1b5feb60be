#include "qforge/synth.hpp"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "qforge/error.hpp"

namespace qforge {

SynthShape synth_preset(const std::string& name) {
    SynthShape s;
    if (name == "tinyllama-1.1b") {
        s = {"llama", 22, 2048, 5632, 32, 4, 32000, 2048, 10000.f, false};
    } else if (name == "llama2-7b") {
        s = {"llama", 32, 4096, 11008, 32, 32, 32000, 4096, 10000.f, false};
    } else if (name == "llama3-8b") {
        s = {"llama", 32, 4096, 14336, 32, 8, 128256, 8192, 500000.f, false};
    } else if (name == "qwen2-0.5b") {
        s = {"qwen2", 24, 896, 4864, 14, 2, 151936, 32768, 1000000.f, true};
    } else if (name == "qwen2-7b") {
        s = {"qwen2", 28, 3584, 18944, 28, 4, 152064, 32768, 1000000.f, false};
    } else {
        throw_usage("--preset: unknown preset '" + name + "' (tinyllama-1.1b, llama2-7b, llama3-8b, qwen2-0.5b, qwen2-7b)");
    }
    return s;
}

namespace {

// splitmix64: a fast, seedable generator; the same seed gives the same model.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
    // Approximately normal: the sum of four uniforms, scaled to unit variance.
    float normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }
};

void fill_weights(float* dst, int64_t rows, int64_t cols, uint64_t seed) {
    Rng rng{seed};
    for (int64_t r = 0; r < rows; ++r) {
        float* row = dst + r * cols;
        for (int64_t c = 0; c < cols; ++c) row[c] = 0.02f * rng.normal();
        for (int k = 0; k < 3; ++k) {  // a few outliers per row
            const int64_t c = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(cols));
            row[c] = (rng.uniform() < 0.5f ? -1.f : 1.f) * (0.15f + 0.35f * rng.uniform());
        }
    }
}

std::vector<GgufKV> synthetic_vocab(int n_vocab) {
    if (n_vocab < 300) throw_usage("synth: the vocabulary needs at least 300 tokens");
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        scores.push_back(0);
        types.push_back(6);
    }
    static const char* kLetters = "etaoinshrdlucmfwypvbgkqjxz";
    for (int i = static_cast<int>(tokens.size()); i < n_vocab; ++i) {
        std::string piece = "\xe2\x96\x81";
        for (int v = i; v > 0; v /= 26) piece += kLetters[v % 26];
        tokens.push_back(piece);
        scores.push_back(-static_cast<float>(i));
        types.push_back(1);
    }
    return {{"tokenizer.ggml.model", GgufValue::string("llama")},
            {"tokenizer.ggml.pre", GgufValue::string("default")},
            {"tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens))},
            {"tokenizer.ggml.scores", GgufValue::numeric_array<float>(GgufValueType::FLOAT32, scores)},
            {"tokenizer.ggml.token_type", GgufValue::numeric_array<int32_t>(GgufValueType::INT32, types)},
            {"tokenizer.ggml.bos_token_id", GgufValue::u32(1)},
            {"tokenizer.ggml.eos_token_id", GgufValue::u32(2)},
            {"tokenizer.ggml.unknown_token_id", GgufValue::u32(0)},
            {"tokenizer.ggml.add_bos_token", GgufValue::boolean(true)},
            {"tokenizer.ggml.add_eos_token", GgufValue::boolean(false)}};
}

}  // namespace

SourceModel synth_model(SynthShape s, const std::string& vocab_gguf, uint64_t seed) {
    std::vector<GgufKV> vocab;
    if (!vocab_gguf.empty()) {
        auto f = GgufFile::open(vocab_gguf);
        for (const auto& kv : f->metadata())
            if (kv.key.rfind("tokenizer.", 0) == 0) vocab.push_back(kv);
        for (const auto& kv : vocab)
            if (kv.key == "tokenizer.ggml.tokens" && kv.value.array) s.n_vocab = static_cast<int>(kv.value.array->count);
        if (vocab.empty()) throw_bad_input(vocab_gguf, "has no tokenizer.* metadata");
    } else {
        vocab = synthetic_vocab(s.n_vocab);
    }
    if (s.n_layer <= 0 || s.n_embd <= 0 || s.n_ff <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_embd % s.n_head ||
        s.n_head % s.n_head_kv || s.n_vocab <= 0)
        throw_usage("synth: inconsistent shape (layers, embedding, heads)");
    SourceModel m;
    m.path = "synth";
    const std::string a = s.arch + ".";
    const int head_dim = s.n_embd / s.n_head;
    m.metadata = {{"general.architecture", GgufValue::string(s.arch)},
                  {"general.type", GgufValue::string("model")},
                  {"general.name", GgufValue::string("qforge synth")},
                  {a + "block_count", GgufValue::u32(static_cast<uint32_t>(s.n_layer))},
                  {a + "context_length", GgufValue::u32(static_cast<uint32_t>(s.n_ctx))},
                  {a + "embedding_length", GgufValue::u32(static_cast<uint32_t>(s.n_embd))},
                  {a + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(s.n_ff))},
                  {a + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(s.n_head))},
                  {a + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(s.n_head_kv))},
                  {a + "rope.freq_base", GgufValue::f32(s.rope_base)},
                  {a + "attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f)},
                  {"general.file_type", GgufValue::u32(0)}};
    if (s.arch == "llama") {
        m.metadata.push_back({a + "vocab_size", GgufValue::u32(static_cast<uint32_t>(s.n_vocab))});
        m.metadata.push_back({a + "rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(head_dim))});
    }
    m.metadata.insert(m.metadata.end(), vocab.begin(), vocab.end());
    m.metadata.push_back({"general.quantization_version", GgufValue::u32(2)});

    uint64_t index = 0;
    auto add = [&](const std::string& name, std::vector<int64_t> ne, bool ones) {
        const uint64_t tseed = seed * 1000003ull + (index++);
        SourceTensor t{name, ne, GgmlType::F32, nullptr, std::nullopt};
        const int64_t cols = ne[0], rows = ne.size() > 1 ? ne[1] : 1;
        t.read = [cols, rows, tseed, ones](uint8_t* dst) {
            auto* f = reinterpret_cast<float*>(dst);
            if (ones) std::fill(f, f + cols * rows, 1.0f);
            else fill_weights(f, rows, cols, tseed);
        };
        m.tensors.push_back(std::move(t));
    };
    const int64_t E = s.n_embd, Q = int64_t{s.n_head} * head_dim, KV = int64_t{s.n_head_kv} * head_dim;
    add("token_embd.weight", {E, s.n_vocab}, false);
    for (int l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", {E}, true);
        add(p + "attn_q.weight", {E, Q}, false);
        add(p + "attn_k.weight", {E, KV}, false);
        add(p + "attn_v.weight", {E, KV}, false);
        if (s.arch == "qwen2") {
            add(p + "attn_q.bias", {Q}, false);
            add(p + "attn_k.bias", {KV}, false);
            add(p + "attn_v.bias", {KV}, false);
        }
        add(p + "attn_output.weight", {Q, E}, false);
        add(p + "ffn_norm.weight", {E}, true);
        add(p + "ffn_gate.weight", {E, s.n_ff}, false);
        add(p + "ffn_up.weight", {E, s.n_ff}, false);
        add(p + "ffn_down.weight", {s.n_ff, E}, false);
    }
    add("output_norm.weight", {E}, true);
    if (!s.tied) add("output.weight", {E, s.n_vocab}, false);
    return m;
}

}  // namespace qforge

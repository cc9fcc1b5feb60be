// The forward pass against Hugging Face transformers (fp32) reference outputs, and the model
// loader's error handling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/model.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

// A float32 .npy array (C order).
std::vector<float> load_npy(const std::string& path, std::vector<int64_t>& shape) {
    const auto b = test::read_file(path);
    uint16_t hlen;
    std::memcpy(&hlen, b.data() + 8, 2);
    const std::string header(b.begin() + 10, b.begin() + 10 + hlen);
    const auto p = header.find("'shape': (");
    shape.clear();
    std::string dims = header.substr(p + 10, header.find(')', p) - p - 10);
    for (size_t s = 0; s < dims.size();) {
        const size_t e = dims.find(',', s);
        const std::string d = dims.substr(s, e == std::string::npos ? std::string::npos : e - s);
        if (d.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(d));
        if (e == std::string::npos) break;
        s = e + 1;
    }
    std::vector<float> v((b.size() - 10 - hlen) / 4);
    std::memcpy(v.data(), b.data() + 10 + hlen, v.size() * 4);
    return v;
}

std::vector<int32_t> greedy(Context& ctx, std::vector<int32_t> prompt, int n) {
    std::vector<float> logits;
    ctx.eval(prompt, logits);
    std::vector<int32_t> out;
    const int nv = ctx.model().hparams().n_vocab;
    for (int i = 0; i < n; ++i) {
        const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + nv) - logits.begin());
        out.push_back(t);
        ctx.eval({t}, logits);
    }
    return out;
}

void check_reference(const std::string& name) {
    QFORGE_REQUIRE_SHARED(data);
    std::ifstream in(data + "/models/" + name + ".ref/reference.json");
    const auto ref = nlohmann::json::parse(in);
    auto model = Model::load(data + "/models/" + name);  // HF directory, converted in memory
    const auto ids = model->tokenizer().tokenize(ref["prompt"].get<std::string>(), true);
    ASSERT_EQ(ids, ref["ids"].get<std::vector<int32_t>>());
    std::vector<int64_t> shape;
    const auto ref_logits = load_npy(data + "/models/" + name + ".ref/ref_logits.npy", shape);
    ASSERT_EQ(shape, (std::vector<int64_t>{static_cast<int64_t>(ids.size()), 4096}));
    Context ctx(*model, 256, KvCacheType::F32, 2);
    std::vector<float> logits;
    ctx.eval(ids, logits, true);
    float max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        max_ref = std::max(max_ref, std::fabs(ref_logits[i]));
        max_diff = std::max(max_diff, std::fabs(logits[i] - ref_logits[i]));
    }
    EXPECT_LT(max_diff, 1e-3f * max_ref) << "max |diff| " << max_diff << " vs largest logit " << max_ref;
    // Greedy continuation, and the same tokens with one thread.
    const auto expect = ref["greedy_ids"].get<std::vector<int32_t>>();
    const int n_gen = static_cast<int>(expect.size() - ids.size());
    Context c2(*model, 256, KvCacheType::F32, 2);
    const auto gen = greedy(c2, ids, n_gen);
    EXPECT_EQ(gen, std::vector<int32_t>(expect.begin() + static_cast<long>(ids.size()), expect.end()));
    Context c1(*model, 256, KvCacheType::F32, 1);
    EXPECT_EQ(greedy(c1, ids, 16), std::vector<int32_t>(gen.begin(), gen.begin() + 16));
    // Default f16 KV cache and half-precision weights: still the reference for 20+ tokens.
    test::TempDir tmp;
    auto hf = open_hf_model(data + "/models/" + name);
    for (const char* t : {"f16", "bf16"}) {
        convert_hf_model(*hf, tmp.path("m.gguf"), t, 2);
        auto m16 = Model::load(tmp.path("m.gguf"));
        Context c(*m16, 256, KvCacheType::F16, 2);
        const auto g = greedy(c, ids, 20);
        EXPECT_EQ(g, std::vector<int32_t>(gen.begin(), gen.begin() + 20)) << t;
    }
}

TEST(ModelGolden, TinyLlamaMatchesTransformers) { check_reference("tiny-llama-23m"); }
TEST(ModelGolden, TinyDemoMatchesTransformers) { check_reference("tiny-demo-8m"); }

TEST(ModelGolden, LlamaCppQuantizedFilesGenerate) {
    QFORGE_REQUIRE_SHARED(data);
    for (const char* f : {"Q8_0", "Q4_K_M", "Q4_0", "Q2_K"}) {
        auto model = Model::load(data + "/reference/tiny-demo-8m/tiny-demo-8m-" + std::string(f) + ".gguf");
        Context ctx(*model, 128, KvCacheType::F16, 2);
        const auto ids = model->tokenizer().tokenize("Once upon a time, there was a little", true);
        const auto gen = greedy(ctx, ids, 24);
        const std::string text = model->tokenizer().detokenize(gen);
        // Coherent English: mostly letters and spaces, several words.
        int letters = 0;
        for (char c : text) letters += std::isalpha(static_cast<unsigned char>(c)) || c == ' ';
        EXPECT_GT(letters, static_cast<int>(text.size() * 8 / 10)) << f << ": " << text;
        EXPECT_GT(std::count(text.begin(), text.end(), ' '), 5) << f << ": " << text;
    }
}

// llama-cli's greedy continuations of llama.cpp's own quantized files (greedy_check.json), all four,
// followed token by token (teacher forcing): at every one of the ~40 steps llama.cpp's token must be
// our top choice or a near-tie with it, and at most two steps may be such ties. Free-running greedy
// text cannot be compared for equality between engines whose float summation orders differ: one
// near-tie flips and the texts part for good. Our regrouped kernels (Q4_0, Q8_0, K-quants) sum each
// block's products exactly in integers and round once a block, where llama.cpp's AVX2 row kernels
// accumulate eight float lanes. Measured here (2026-11-28): with the row kernels (QFORGE_REPACK=0)
// every step of all four files is llama.cpp's top choice; with the regrouped ones Q4_0 also has no
// tie, Q8_0, Q4_K_M and Q2_K one each, of 0.009, 0.051 and < 0.001 logits. The f16 KV cache's
// rounding alone moves this model's top-two margin by ~0.04 (F16 against F32 cache), so a tie is a
// gap below 0.1 logits.
TEST(ModelGolden, LlamaCppGreedyContinuations) {
    QFORGE_REQUIRE_SHARED(data);
    constexpr float kNearTie = 0.1f;
    std::ifstream in(data + "/reference/tiny-demo-8m/greedy_check.json");
    const auto ref = nlohmann::json::parse(in);
    const std::string prompt = "Once upon a time, there was a little";
    int checked = 0;
    for (const auto& r : ref["results_quantized"]) {
        const std::string file = r["gguf"];
        SCOPED_TRACE(file);
        auto model = Model::load(data + "/reference/tiny-demo-8m/" + file);
        const Tokenizer& tok = model->tokenizer();
        // llama.cpp's tokens: the continuation as the tokenizer splits it after the prompt.
        const auto ids = tok.tokenize(prompt, true);
        const auto all = tok.tokenize(prompt + r["continuation"].get<std::string>(), true);
        ASSERT_TRUE(std::equal(ids.begin(), ids.end(), all.begin()));
        Context ctx(*model, 128, KvCacheType::F16, 2);
        std::vector<float> logits;
        ctx.eval(ids, logits);
        const int nv = model->hparams().n_vocab;
        int ties = 0;
        for (size_t i = ids.size(); i < all.size(); ++i) {
            const int32_t top = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + nv) - logits.begin()), next = all[i];
            if (top != next) {
                EXPECT_LT(logits[static_cast<size_t>(top)] - logits[static_cast<size_t>(next)], kNearTie)
                    << "step " << i - ids.size() << ": ours \"" << tok.token_to_piece(top) << "\", llama.cpp's \"" << tok.token_to_piece(next) << "\"";
                ++ties;
            }
            ctx.eval({next}, logits);
        }
        EXPECT_GE(all.size() - ids.size(), 35u);
        EXPECT_LE(ties, 2);
        ++checked;
    }
    EXPECT_EQ(checked, 4);
}

std::string load_error(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

TEST(Model, ErrorsAreClear) {
    test::TempDir tmp;
    const std::string demo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";
    convert_hf_model(*open_hf_model(demo), tmp.path("d.gguf"), "f16", 2);
    auto src = GgufFile::open(tmp.path("d.gguf"));
    // Rewrite the file with one change to metadata or tensors.
    auto rewrite = [&](const std::string& out, const std::string& drop_tensor, const std::string& arch, bool bad_shape) {
        GgufWriter w(out);
        for (const auto& kv : src->metadata())
            w.add_kv(kv.key, kv.key == "general.architecture" ? GgufValue::string(arch) : kv.value);
        for (const auto& t : src->tensors()) {
            if (t.name == drop_tensor) continue;
            auto ne = t.ne;
            if (bad_shape && t.name == "blk.1.attn_k.weight") std::swap(ne[0], ne[1]);
            w.add_tensor(t.name, t.type, ne);
        }
        w.write_header();
        for (const auto& t : src->tensors())
            if (t.name != drop_tensor) w.write_tensor_data(t.data, t.n_bytes);
        w.finish();
    };
    rewrite(tmp.path("a.gguf"), "blk.3.ffn_up.weight", "llama", false);
    EXPECT_NE(load_error([&] { Model::load(tmp.path("a.gguf")); }).find("missing tensor 'blk.3.ffn_up.weight'"), std::string::npos);
    rewrite(tmp.path("b.gguf"), "", "llama", true);
    EXPECT_NE(load_error([&] { Model::load(tmp.path("b.gguf")); }).find("tensor 'blk.1.attn_k.weight' has shape"), std::string::npos);
    rewrite(tmp.path("c.gguf"), "", "mamba", false);
    EXPECT_NE(load_error([&] { Model::load(tmp.path("c.gguf")); }).find("unsupported architecture 'mamba'"), std::string::npos);
    auto model = Model::load(tmp.path("d.gguf"));
    Context ctx(*model, 16, KvCacheType::F16, 1);
    std::vector<float> logits;
    std::vector<int32_t> many(20, 5);
    EXPECT_NE(load_error([&] { ctx.eval(many, logits); }).find("context overflow"), std::string::npos);
    EXPECT_NE(load_error([&] { Context(*model, 100000, KvCacheType::F16, 1); }).find("exceeds the model's 2048"), std::string::npos);
    // q8_0 cache works too.
    Context q8(*model, 64, KvCacheType::Q8_0, 2);
    q8.eval(model->tokenizer().tokenize("Once upon a time", true), logits);
    EXPECT_TRUE(std::isfinite(logits[0]));
}

}  // namespace
}  // namespace qforge

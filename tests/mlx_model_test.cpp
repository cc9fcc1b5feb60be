// MLX model directories: the exact bridges between MLX's affine format and ggml's blocks, the
// mlx-lm directory writer (field by field), and reading such a directory everywhere a model is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/half.hpp"
#include "qforge/mlx_model.hpp"
#include "qforge/model.hpp"
#include "qforge/perplexity.hpp"
#include "qforge/quantize.hpp"
#include "qforge/safetensors.hpp"
#include "quant/affine_blocks.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::vector<float> random_weights(int64_t n, uint32_t seed, float offset = 0.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 0.02f);
    std::vector<float> w(static_cast<size_t>(n));
    for (auto& v : w) v = nd(rng) + offset;
    w[5] = 0.4f;  // an outlier
    return w;
}

// GGUF Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K -> MLX: with f32 scales, MLX's dequantization gives ggml's weights
// exactly (equal values); Q4_1/Q5_1 come back to the same bytes.
TEST(MlxBridge, GgufToMlxIsExactWithF32Scales) {
    const int64_t rows = 4, cols = 256;
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K}) {
        const auto w = random_weights(rows * cols, 7, t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || t == GgmlType::Q8_0 ? 0.f : 0.01f);
        const auto q = quantize_tensor(w.data(), rows, cols, t);
        const auto m = gguf_to_mlx(t, q.data(), rows, cols, MlxDtype::F32);
        ASSERT_TRUE(m) << type_traits(t).name;
        EXPECT_TRUE(m->exact) << type_traits(t).name << " max error " << m->max_abs_err;
        const auto ref = dequantize(t, q, rows * cols);
        const auto got = mlx_dequantize_f32(m->t);
        for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got[i], ref[i]) << type_traits(t).name << " at " << i;  // (+0 == -0)
        if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1) {
            GgmlType back;
            const auto bytes = mlx_to_gguf(m->t, &back);
            ASSERT_TRUE(bytes);
            EXPECT_EQ(back, t);
            EXPECT_EQ(*bytes, q) << type_traits(t).name << " did not come back byte for byte";
        }
        // f16 scales keep the codes and scales, but MLX rounds q*scale to f16: said, not hidden.
        const auto h = gguf_to_mlx(t, q.data(), rows, cols, MlxDtype::F16);
        ASSERT_TRUE(h);
        EXPECT_LT(h->max_abs_err, 1e-3) << type_traits(t).name;
    }
    EXPECT_FALSE(gguf_to_mlx(GgmlType::Q6_K, nullptr, 1, 256, MlxDtype::F32));
}

// MLX's own 4-bit g64 output (f16 scales) -> Q4_1: the same codes, scales and biases; ggml computes
// q*d + m in f32 where MLX rounds through f16, so the weights agree within one f16 rounding.
TEST(MlxBridge, MlxVectorsToQ4_1) {
    QFORGE_REQUIRE_SHARED(data);
    for (const char* file : {"affine_b4_g64_float16", "affine_b4_g32_float16", "affine_b5_g128_float16"}) {
        const auto st = SafetensorsFile::open(data + "/mlx-vectors/" + file + ".safetensors");
        const StTensor* wq = st->find("wq");
        const StTensor* sc = st->find("scales");
        const StTensor* bi = st->find("biases");
        const StTensor* deq = st->find("deq");
        ASSERT_TRUE(wq && sc && bi && deq);
        MlxAffineTensor t;
        t.rows = wq->shape[0];
        t.cols = deq->shape[1];
        t.p.bits = static_cast<int>(wq->shape[1] * 32 / t.cols);
        t.p.group_size = static_cast<int>(t.cols / sc->shape[1]);
        t.p.dtype = MlxDtype::F16;
        t.wq.resize(static_cast<size_t>(wq->n_elements()));
        std::memcpy(t.wq.data(), wq->data, t.wq.size() * 4);
        t.scales.assign(sc->data, sc->data + sc->n_bytes());
        t.biases.assign(bi->data, bi->data + bi->n_bytes());
        GgmlType type;
        const auto rows = mlx_to_gguf(t, &type);
        ASSERT_TRUE(rows) << file;
        EXPECT_EQ(type, t.p.bits == 4 ? GgmlType::Q4_1 : GgmlType::Q5_1);
        // Back to MLX: the same codes, scales and biases, bit for bit (groups of 32 merge again).
        const auto again = gguf_to_mlx(type, rows->data(), t.rows, t.cols, MlxDtype::F16);
        ASSERT_TRUE(again);
        for (int64_t r = 0; r < t.rows; ++r)
            for (int64_t c = 0; c < t.cols; ++c) {
                const int64_t words = t.cols * t.p.bits / 32;
                ASSERT_EQ(mlx_get_code(again->t.wq.data() + r * words, c, t.p.bits), mlx_get_code(t.wq.data() + r * words, c, t.p.bits));
                const size_t g = static_cast<size_t>(r * (t.cols / t.p.group_size) + c / t.p.group_size), g32 = static_cast<size_t>(r * (t.cols / 32) + c / 32);
                ASSERT_EQ(mlx_load(MlxDtype::F16, again->t.scales.data(), g32), mlx_load(MlxDtype::F16, t.scales.data(), g));
                ASSERT_EQ(mlx_load(MlxDtype::F16, again->t.biases.data(), g32), mlx_load(MlxDtype::F16, t.biases.data(), g));
            }
        EXPECT_EQ(mlx_dequantize_f32(again->t), mlx_dequantize_f32(t)) << file << ": MLX's dequantization changed";
        // ggml: q*d + m in f32; MLX: q*d rounded to f16, then + m rounded to f16. They differ by at
        // most those two roundings: half an f16 ulp of |q*d| and of the result each.
        const auto ours = dequantize(type, *rows, t.rows * t.cols);
        const int64_t words = t.cols * t.p.bits / 32;
        for (int64_t r = 0; r < t.rows; ++r)
            for (int64_t c = 0; c < t.cols; ++c) {
                const size_t i = static_cast<size_t>(r * t.cols + c), g = static_cast<size_t>(r * (t.cols / t.p.group_size) + c / t.p.group_size);
                const float mlx = mlx_load(MlxDtype::F16, deq->data, i);
                const float qd = static_cast<float>(mlx_get_code(t.wq.data() + r * words, c, t.p.bits)) * mlx_load(MlxDtype::F16, t.scales.data(), g);
                EXPECT_LE(std::fabs(ours[i] - mlx), (std::fabs(qd) + std::fabs(mlx)) * 0x1p-11f) << file << " at " << i;
            }
    }
    // f32 scales that f16 cannot hold are refused with a reason.
    const auto st = SafetensorsFile::open(data + "/mlx-vectors/affine_b4_g64_float32.safetensors");
    MlxAffineTensor t;
    const StTensor* wq = st->find("wq");
    t.rows = wq->shape[0];
    t.cols = 512;
    t.p = {4, 64, MlxDtype::F32};
    t.wq.resize(static_cast<size_t>(wq->n_elements()));
    std::memcpy(t.wq.data(), wq->data, t.wq.size() * 4);
    t.scales.assign(st->find("scales")->data, st->find("scales")->data + st->find("scales")->n_bytes());
    t.biases.assign(st->find("biases")->data, st->find("biases")->data + st->find("biases")->n_bytes());
    std::string why;
    EXPECT_FALSE(mlx_to_gguf(t, nullptr, &why));
    EXPECT_NE(why.find("f16"), std::string::npos) << why;
}

std::string demo_dir() { return std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m"; }

// The bundled demo model as an MLX 4-bit g64 directory.
std::vector<MlxTensorReport> write_demo_mlx(const std::string& out) {
    MlxConvertOptions o;
    o.bits = 4;
    o.group_size = 64;
    return convert_hf_to_mlx(demo_dir(), out, o);
}

// The directory follows mlx-lm's layout field by field.
TEST(MlxDir, WriterFollowsMlxLmLayout) {
    test::TempDir tmp;
    const std::string out = tmp.path("mlx4");
    const auto report = write_demo_mlx(out);
    ASSERT_FALSE(report.empty());
    const auto cfg = nlohmann::json::parse(std::ifstream(out + "/config.json"));
    const auto src = nlohmann::json::parse(std::ifstream(demo_dir() + "/config.json"));
    for (const char* key : {"quantization", "quantization_config"}) {
        ASSERT_TRUE(cfg.contains(key)) << key;
        EXPECT_EQ(cfg[key]["group_size"], 64);
        EXPECT_EQ(cfg[key]["bits"], 4);
        EXPECT_EQ(cfg[key]["mode"], "affine");
    }
    for (const auto& [k, v] : src.items()) EXPECT_EQ(cfg[k], v) << "config key " << k << " changed";
    for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
        if (fs::exists(demo_dir() + "/" + f)) {
            EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
        }
    const auto st = SafetensorsFile::open(out + "/model.safetensors");
    bool has_format = false;
    for (const auto& [k, v] : st->metadata()) has_format |= k == "format" && v == "mlx";
    EXPECT_TRUE(has_format);
    const int64_t hidden = src["hidden_size"], ff = src["intermediate_size"], vocab = src["vocab_size"];
    auto expect = [&](const std::string& name, StDtype dt, std::vector<int64_t> shape) {
        const StTensor* t = st->find(name);
        ASSERT_NE(t, nullptr) << name;
        EXPECT_EQ(t->dtype, dt) << name;
        EXPECT_EQ(t->shape, shape) << name;
    };
    expect("model.layers.0.self_attn.q_proj.weight", StDtype::U32, {hidden, hidden / 8});
    expect("model.layers.0.self_attn.q_proj.scales", StDtype::BF16, {hidden, hidden / 64});
    expect("model.layers.0.self_attn.q_proj.biases", StDtype::BF16, {hidden, hidden / 64});
    expect("model.layers.0.mlp.down_proj.weight", StDtype::U32, {hidden, ff / 8});
    expect("model.embed_tokens.weight", StDtype::U32, {vocab, hidden / 8});
    expect("model.embed_tokens.scales", StDtype::BF16, {vocab, hidden / 64});
    expect("model.layers.0.input_layernorm.weight", StDtype::BF16, {hidden});
    expect("model.norm.weight", StDtype::BF16, {hidden});
    // Keys sorted, as MLX saves them.
    std::vector<std::string> names;
    for (const auto& t : st->tensors()) names.push_back(t.name);
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    // A second write to the same place is refused; --exclude keeps a module in float.
    EXPECT_THROW(write_demo_mlx(out), Error);
    MlxConvertOptions o;
    o.exclude = {"embed_tokens"};
    convert_hf_to_mlx(demo_dir(), tmp.path("mlx4x"), o);
    const auto st2 = SafetensorsFile::open(tmp.path("mlx4x") + "/model.safetensors");
    ASSERT_NE(st2->find("model.embed_tokens.weight"), nullptr);
    EXPECT_EQ(st2->find("model.embed_tokens.weight")->dtype, StDtype::BF16);
    EXPECT_EQ(st2->find("model.embed_tokens.scales"), nullptr);
}

// An MLX directory written by qforge has the perplexity of the same (dequantized) weights, read
// as ggml blocks with the same codes; and the CLI converts it to GGUF exactly.
TEST(MlxDir, ReadsAsAModelWithThePerplexityOfItsWeights) {
    test::TempDir tmp;
    const std::string out = tmp.path("mlx");
    write_demo_mlx(out);
    ASSERT_TRUE(is_mlx_quantized_dir(out));
    EXPECT_FALSE(is_mlx_quantized_dir(demo_dir()));

    // The reference: an f32 Hugging Face directory holding MLX's dequantized weights.
    const std::string ref = tmp.path("ref");
    fs::create_directories(ref);
    for (const auto& e : fs::directory_iterator(out))
        if (!e.path().filename().string().starts_with("model.safetensors")) fs::copy_file(e.path(), ref + "/" + e.path().filename().string());
    {
        auto cfg = nlohmann::json::parse(std::ifstream(ref + "/config.json"));
        cfg.erase("quantization");
        cfg.erase("quantization_config");
        std::ofstream(ref + "/config.json") << cfg.dump(2);
        const auto st = SafetensorsFile::open(out + "/model.safetensors");
        SafetensorsWriter w(ref + "/model.safetensors");
        std::vector<std::pair<std::string, std::vector<float>>> tensors;
        for (const auto& t : st->tensors()) {
            if (t.name.ends_with(".scales") || t.name.ends_with(".biases")) continue;
            std::vector<float> v;
            std::vector<int64_t> shape = t.shape;
            if (t.dtype == StDtype::U32) {
                const std::string mod = t.name.substr(0, t.name.size() - 7);
                MlxAffineTensor q;
                q.p = {4, 64, MlxDtype::BF16};
                q.rows = t.shape[0];
                q.cols = t.shape[1] * 8;
                q.wq.resize(static_cast<size_t>(t.n_elements()));
                std::memcpy(q.wq.data(), t.data, q.wq.size() * 4);
                const StTensor* sc = st->find(mod + ".scales");
                const StTensor* bi = st->find(mod + ".biases");
                q.scales.assign(sc->data, sc->data + sc->n_bytes());
                q.biases.assign(bi->data, bi->data + bi->n_bytes());
                v = mlx_dequantize_f32(q);
                shape = {q.rows, q.cols};
            } else {
                v.resize(static_cast<size_t>(t.n_elements()));
                for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_fp32(reinterpret_cast<const uint16_t*>(t.data)[i]);
            }
            w.add_tensor(t.name, StDtype::F32, shape);
            tensors.emplace_back(t.name, std::move(v));
        }
        w.write_header();
        for (const auto& [n, v] : tensors) w.write_tensor_data(v.data(), v.size() * 4);
        w.finish();
    }
    const auto mlx_model = Model::load(out);
    const auto ref_model = Model::load(ref);
    const std::string text = [] {
        std::ifstream f(std::string(QFORGE_SOURCE_DIR) + "/data/eval/tinystories-valid-excerpt.txt");
        return std::string(std::istreambuf_iterator<char>(f), {});
    }();
    const auto tokens = mlx_model->tokenizer().tokenize(text, true);
    PerplexityOptions po;
    po.n_ctx = 128;
    po.n_chunks = 8;
    po.threads = 2;
    const double p_mlx = perplexity(*mlx_model, tokens, po).ppl, p_ref = perplexity(*ref_model, tokens, po).ppl;
    EXPECT_NEAR(p_mlx, p_ref, p_ref * 0.005) << "MLX directory " << p_mlx << " vs its weights in f32 " << p_ref;

    // CLI: to GGUF, every matrix kept as the same codes (Q4_1), marked exact.
    const auto r = test::run_qforge({"convert", out, "-o", tmp.path("m.gguf"), "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out.substr(0, r.out.rfind(']') + 1));
    int q41 = 0;
    for (const auto& t : j)
        if (t["to"] == "q4_1") {
            ++q41;
            EXPECT_TRUE(t["exact"].get<bool>());
        }
    EXPECT_GT(q41, 0);
    const auto bad = test::run_qforge({"convert", demo_dir(), "--to", "mlx", "-o", tmp.path("x"), "--mode", "mxfp4", "--group-size", "64"});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("groups of 32"), std::string::npos) << bad.err;
    EXPECT_FALSE(fs::exists(tmp.path("x")));
}

// Other widths become the nearest ggml type when converted (8-bit: Q8_0), with the error said.
TEST(MlxDir, EightBitConvertsToQ8_0WithItsError) {
    test::TempDir tmp;
    MlxConvertOptions o;
    o.bits = 8;
    o.group_size = 64;
    convert_hf_to_mlx(demo_dir(), tmp.path("mlx8"), o);
    const auto r = test::run_qforge({"convert", tmp.path("mlx8"), "-o", tmp.path("m8.gguf"), "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out.substr(0, r.out.rfind(']') + 1));
    int q8 = 0;
    for (const auto& t : j)
        if (t["to"] == "q8_0") {
            ++q8;
            EXPECT_EQ(t["from"], "mlx_affine8");  // read as its own codes
            EXPECT_GT(t["max_abs_err"].get<double>(), 0.0);
            EXPECT_LT(t["max_abs_err"].get<double>(), 0.05);
        }
    EXPECT_GT(q8, 0);
    const auto run = test::run_qforge({"run", "-m", tmp.path("m8.gguf"), "-p", "Once upon a time", "-n", "8", "--temp", "0"});
    EXPECT_EQ(run.status, 0) << run.err;
}

std::string eval_text() {
    std::ifstream f(std::string(QFORGE_SOURCE_DIR) + "/data/eval/tinystories-valid-excerpt.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// 2-, 3-, 6- and 8-bit directories run on their own codes (qforge's MLX blocks, no requantizing):
// every weight is MLX's scale * code + bias, the model takes the memory of its codes, and its
// perplexity is that of the same weights in f32.
TEST(MlxDir, OtherWidthsRunOnTheirOwnCodes) {
    test::TempDir tmp;
    struct Case {
        int bits, group;
        const char* recipe;
    };
    for (const Case c : {Case{8, 64, ""}, Case{2, 128, ""}, Case{4, 32, "mixed_3_6"}}) {
        const std::string dir = tmp.path("m" + std::to_string(c.bits) + c.recipe);
        MlxConvertOptions o;
        o.bits = c.bits;
        o.group_size = c.group;
        o.recipe = c.recipe;
        convert_hf_to_mlx(demo_dir(), dir, o);
        const auto m = Model::load(dir);
        const auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
        const auto st = SafetensorsFile::open(dir + "/model.safetensors");
        for (int l : {0, 1}) {
            const std::string mod = "model.layers." + std::to_string(l) + ".mlp.down_proj";
            const int bits = cfg["quantization"].contains(mod) ? cfg["quantization"][mod]["bits"].get<int>() : c.bits;
            const WeightView& w = m->layers[static_cast<size_t>(l)].w_down;
            ASSERT_EQ(w.type, *mlx_block_type(bits)) << mod << " " << type_traits(w.type).name;
            const StTensor* wq = st->find(mod + ".weight");
            const StTensor* sc = st->find(mod + ".scales");
            const StTensor* bi = st->find(mod + ".biases");
            const int64_t rows = w.rows(), cols = w.cols(), words = cols * bits / 32, groups = cols / c.group;
            const auto got = dequantize(w.type, std::vector<uint8_t>(w.data, w.data + w.row_bytes() * static_cast<size_t>(rows)), rows * cols);
            int64_t differ = 0;
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t k = 0; k < cols; ++k) {
                    const auto* codes = reinterpret_cast<const uint32_t*>(wq->data) + r * words;
                    const size_t g = static_cast<size_t>(r * groups + k / c.group);
                    const float want = mlx_load(MlxDtype::BF16, sc->data, g) * static_cast<float>(mlx_get_code(codes, k, bits)) +
                                       mlx_load(MlxDtype::BF16, bi->data, g);
                    differ += got[static_cast<size_t>(r * cols + k)] != want;
                }
            EXPECT_EQ(differ, 0) << mod;
        }
        if (c.bits == 8) {  // bench names it as the report does
            const auto b = test::run_qforge({"bench", "-m", dir, "-p", "8", "-n", "2", "-r", "1", "-o", "json"});
            ASSERT_EQ(b.status, 0) << b.err;
            EXPECT_EQ(nlohmann::json::parse(b.out)[0]["type"], "MLX-8bit-g64");
        }
        // The same weights in f32 (what convert --outtype f32 writes): the same perplexity.
        const auto r = test::run_qforge({"convert", dir, "-o", tmp.path("f32.gguf"), "--outtype", "f32"});
        ASSERT_EQ(r.status, 0) << r.err;
        const auto ref = Model::load(tmp.path("f32.gguf"));
        EXPECT_LT(m->weight_bytes() * 3, ref->weight_bytes()) << c.bits;
        const auto tokens = m->tokenizer().tokenize(eval_text(), true);
        PerplexityOptions po;
        po.n_ctx = 128;
        po.n_chunks = 4;
        po.threads = 2;
        const double p = perplexity(*m, tokens, po).ppl, p_ref = perplexity(*ref, tokens, po).ppl;
        EXPECT_NEAR(p, p_ref, p_ref * 0.005) << c.bits << "-bit " << c.recipe << ": " << p << " vs f32 " << p_ref;
    }
}

// mlx-lm's recipes: v_proj and down_proj get the high width in the first and last eighth of the
// layers and every third layer between, lm_head always; every module is recorded in config.json.
TEST(MlxDir, RecipeChoosesWidthsAsMlxLm) {
    test::TempDir tmp;
    MlxConvertOptions o;
    o.recipe = "mixed_3_6";
    convert_hf_to_mlx(demo_dir(), tmp.path("r"), o);
    const auto cfg = nlohmann::json::parse(std::ifstream(tmp.path("r") + "/config.json"));
    const auto& q = cfg["quantization"];
    EXPECT_EQ(q["bits"], 4);  // the global entry keeps --bits, as mlx-lm's does
    for (int l = 0; l < 8; ++l) {  // 8 layers: 0, 7 (first/last eighth), 3, 6 (every third) get more
        const bool more = l == 0 || l == 7 || l == 3 || l == 6;
        const std::string p = "model.layers." + std::to_string(l) + ".";
        EXPECT_EQ(q[p + "self_attn.v_proj"]["bits"], more ? 6 : 3) << l;
        EXPECT_EQ(q[p + "mlp.down_proj"]["bits"], more ? 6 : 3) << l;
        EXPECT_EQ(q[p + "self_attn.q_proj"]["bits"], 3) << l;
    }
    EXPECT_EQ(q["lm_head"]["bits"], 6);
    EXPECT_EQ(q["model.embed_tokens"]["bits"], 3);
    const auto st = SafetensorsFile::open(tmp.path("r") + "/model.safetensors");
    EXPECT_EQ(st->find("model.layers.0.mlp.down_proj.weight")->shape[1] * 32, st->find("model.layers.0.mlp.down_proj.scales")->shape[1] * 64 * 6);
    // A model directory with recipe widths reads and runs.
    const auto m = Model::load(tmp.path("r"));
    EXPECT_GT(m->n_params(), 0);
    o.recipe = "mixed_9_9";
    EXPECT_THROW(convert_hf_to_mlx(demo_dir(), tmp.path("bad"), o), Error);
    EXPECT_FALSE(fs::exists(tmp.path("bad")));
}

// mxfp4 / nvfp4 directories: uint32 codes and uint8 scales, no biases, mode in config.json; read
// back, MLX's dequantized weights (exact in f32), and the model runs.
TEST(MlxDir, Fp4Modes) {
    test::TempDir tmp;
    for (const auto& [mode, gs] : {std::pair<std::string, int>{"mxfp4", 32}, {"nvfp4", 16}}) {
        MlxConvertOptions o;
        o.mode = mode;
        o.group_size = gs;
        const std::string dir = tmp.path(mode);
        convert_hf_to_mlx(demo_dir(), dir, o);
        const auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
        EXPECT_EQ(cfg["quantization"]["mode"], mode);
        EXPECT_EQ(cfg["quantization"]["group_size"], gs);
        const auto st = SafetensorsFile::open(dir + "/model.safetensors");
        const StTensor* sc = st->find("model.layers.0.mlp.up_proj.scales");
        ASSERT_NE(sc, nullptr);
        EXPECT_EQ(sc->dtype, StDtype::U8);
        EXPECT_EQ(st->find("model.layers.0.mlp.up_proj.biases"), nullptr);
        const StTensor* wq = st->find("model.layers.0.mlp.up_proj.weight");
        const auto back = open_hf_model(dir);
        for (const auto& t : back->source.tensors)
            if (t.name == "blk.0.ffn_up.weight") {
                std::vector<uint8_t> raw(t.n_bytes());
                t.read(raw.data());
                std::vector<float> ref(static_cast<size_t>(t.n_elements()));
                mlx_fp4_dequantize(reinterpret_cast<const uint32_t*>(wq->data), sc->data, wq->shape[0], wq->shape[1] * 8,
                                   mode == "mxfp4" ? MlxFp4Mode::MXFP4 : MlxFp4Mode::NVFP4, MlxDtype::F32, ref.data());
                EXPECT_EQ(dequantize(t.type, raw, t.n_elements()), ref) << mode;
            }
        const auto m = Model::load(dir);
        EXPECT_GT(m->n_params(), 0);
    }
    MlxConvertOptions bad;
    bad.mode = "mxfp4";
    bad.group_size = 64;
    EXPECT_THROW(convert_hf_to_mlx(demo_dir(), tmp.path("bad"), bad), Error);
}

// Shards as mlx-lm names them, with the index; the sharded directory reads like the single file.
TEST(MlxDir, ShardsAndIndex) {
    test::TempDir tmp;
    MlxConvertOptions o;
    o.max_shard_bytes = 1 << 20;
    convert_hf_to_mlx(demo_dir(), tmp.path("s"), o);
    const auto idx = nlohmann::json::parse(std::ifstream(tmp.path("s") + "/model.safetensors.index.json"));
    std::set<std::string> files;
    for (const auto& [name, file] : idx["weight_map"].items()) files.insert(file.get<std::string>());
    ASSERT_GE(files.size(), 3u);
    EXPECT_TRUE(files.count("model-00001-of-" + [&] { char b[8]; std::snprintf(b, sizeof b, "%05zu", files.size()); return std::string(b); }() + ".safetensors"));
    uint64_t total = 0;
    for (const auto& f : files) {
        EXPECT_LE(fs::file_size(tmp.path("s") + "/" + f), (1u << 20) + 65536u) << f;
        total += SafetensorsFile::open(tmp.path("s") + "/" + f)->file_size();
    }
    EXPECT_GT(total, idx["metadata"]["total_size"].get<uint64_t>());
    write_demo_mlx(tmp.path("one"));
    const auto a = Model::load(tmp.path("s")), b = Model::load(tmp.path("one"));
    const auto ta = a->tokenizer().tokenize("Once upon a time", true);
    std::vector<float> la, lb;
    Context ca(*a, 64, KvCacheType::F16, 1), cb(*b, 64, KvCacheType::F16, 1);
    ca.eval(ta, la);
    cb.eval(ta, lb);
    EXPECT_EQ(la, lb);
}

// GGUF -> MLX directory -> read back: for Q4_0, Q4_1, Q5_1 and Q8_0 files the dequantized weights
// equal the GGUF's (f32 scales), Q/K rows included; the rebuilt tokenizer tokenizes like the GGUF.
TEST(MlxDir, FromGgufRoundTripsExactly) {
    test::TempDir tmp;
    const auto hf = open_hf_model(demo_dir());
    const std::string text = [] {
        std::ifstream f(std::string(QFORGE_SOURCE_DIR) + "/data/eval/tinystories-valid-excerpt.txt");
        return std::string(std::istreambuf_iterator<char>(f), {}).substr(0, 20000);
    }();
    for (const char* type : {"q4_0", "q4_1", "q5_1", "q8_0"}) {
        const std::string gguf = tmp.path(std::string(type) + ".gguf"), dir = tmp.path(std::string(type) + "-mlx");
        convert_hf_model(*hf, gguf, type, 2);
        MlxConvertOptions o;
        o.dtype = MlxDtype::F32;
        const auto report = convert_gguf_to_mlx(gguf, dir, o);
        const auto g = GgufFile::open(gguf);
        const GgmlType main = find_ftype(type)->default_type;
        int exact = 0;
        for (const auto& r : report)
            if (r.how.starts_with("same codes")) {
                EXPECT_TRUE(r.exact) << type << " " << r.name << " " << r.max_abs_err;
                ++exact;
            }
        EXPECT_GE(exact, 50) << type;
        const auto back = open_hf_model(dir);
        int compared = 0;
        for (const auto& st : back->source.tensors) {
            const GgufTensorInfo* t = g->find_tensor(st.name);
            ASSERT_NE(t, nullptr) << st.name;
            if (t->type != main || t->ne.size() != 2) continue;
            std::vector<uint8_t> raw(st.n_bytes());
            st.read(raw.data());
            const auto mine = dequantize(st.type, raw, st.n_elements());
            const auto ref = dequantize(t->type, std::vector<uint8_t>(t->data, t->data + t->n_bytes), t->n_elements());
            ASSERT_EQ(mine.size(), ref.size());
            for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(mine[i], ref[i]) << type << " " << st.name << " at " << i;
            ++compared;
        }
        EXPECT_GE(compared, 50) << type;
        // The tokenizer rebuilt as tokenizer.json tokenizes like the GGUF's vocabulary.
        const auto m1 = Model::load(gguf), m2 = Model::load(dir);
        EXPECT_EQ(m1->tokenizer().tokenize(text, true), m2->tokenizer().tokenize(text, true)) << type;
    }
}

}  // namespace
}  // namespace qforge

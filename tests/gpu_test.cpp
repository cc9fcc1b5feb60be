// The Vulkan backend: every shader against the CPU reference on random inputs, and whole models
// on the GPU against the CPU path. Runs on any Vulkan device, Mesa's lavapipe (software) included;
// skips with the reason where there is none.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gpu/gpu_forward.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/model.hpp"
#include "qforge/quantize.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

#define REQUIRE_GPU()                                                     \
    do {                                                                  \
        try {                                                             \
            gpu_ops::device();                                            \
        } catch (const Error& e) {                                        \
            GTEST_SKIP() << "no Vulkan device: " << e.what();             \
        }                                                                 \
    } while (0)

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

// Within tol of the reference, relative to the sum of the magnitudes that made it.
// slack (where given): an absolute allowance per output on top.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& mag, double tol, const std::string& what,
                  const std::vector<double>& slack = {}) {
    ASSERT_EQ(got.size(), want.size()) << what;
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
        if (std::fabs(got[i] - want[i]) > tol * (1.0 + mag[i]) + (slack.empty() ? 0.0 : slack[i]) && bad++ < 5)
            ADD_FAILURE() << what << " [" << i << "]: " << got[i] << " vs " << want[i];
    EXPECT_EQ(bad, 0) << what;
}

// got = wd . x (+ bias + y0) for B tokens of cols, as gpu_ops::matvec computes it with weights of type t
// (dequantized: wd). On integer dot products (one token) the shader meets the activations quantized
// to 8 bits a block of 32 (xq below); a code that lies within 1e-3 of a rounding tie may round
// either way, so such elements add d |w| to the tolerance (slack). On tensor cores (batches)
// weights and activations are rounded to f16 first: each product within about 2^-10 of its magnitude.
void expect_product(const std::vector<float>& got, GgmlType t, const std::vector<float>& wd, int64_t rows, int64_t cols, const std::vector<float>& x,
                    int B, const std::vector<float>& bias, const std::vector<float>& y0, const std::string& what) {
    const bool q8_inputs = B == 1 && gpu_ops::int_dot(t);
    std::vector<float> xq(x), tie(x.size(), 0.f);
    if (q8_inputs)
        for (size_t b0 = 0; b0 < x.size(); b0 += 32) {
            float amax = 0;
            for (size_t i = b0; i < b0 + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
            for (size_t i = b0; i < b0 + 32; ++i) {
                const double v = amax > 0 ? x[i] / amax * 127.0 : 0.0;
                xq[i] = static_cast<float>(std::nearbyint(v) * amax / 127.0);
                if (std::fabs(std::fabs(v - std::trunc(v)) - 0.5) < 1e-3) tie[i] = amax / 127.f;
            }
        }
    std::vector<double> want(got.size()), mag(got.size()), slack(got.size(), 0.0);
    for (int b = 0; b < B; ++b)
        for (int64_t r = 0; r < rows; ++r) {
            double s = 0, a = 0, sl = 0;
            for (int64_t c = 0; c < cols; ++c) {
                const size_t xi = static_cast<size_t>(b * cols + c);
                const double wv = wd[static_cast<size_t>(r * cols + c)], p = wv * xq[xi];
                s += p;
                a += std::fabs(p);
                sl += tie[xi] * std::fabs(wv);
            }
            const size_t i = static_cast<size_t>(b * rows + r);
            if (!bias.empty()) s += bias[static_cast<size_t>(r)] + y0[i];
            want[i] = s;
            mag[i] = a;
            slack[i] = sl;
        }
    const bool f16_inputs = B >= 2 && gpu_ops::coopmat(t);
    expect_close(got, want, mag, f16_inputs ? 1.2e-3 : 1e-5, what + (q8_inputs ? " (8-bit activations)" : ""), slack);
}

TEST(GpuShaders, MatvecEveryStoredFormat) {
    REQUIRE_GPU();
    struct Shape {
        int64_t rows, cols;
        int B;
    };
    using T = GgmlType;
    for (GgmlType t : {T::F32, T::F16, T::BF16, T::Q8_0, T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q2_K, T::Q3_K, T::Q4_K, T::Q5_K, T::Q6_K,
                       T::IQ4_NL, T::IQ4_XS, T::MLX_A2, T::MLX_A3, T::MLX_A6, T::MLX_A8})
        // One token: matvec.comp (37 rows: a partial group of 4; 530000 rows: more than 65535 groups,
        // the grid's z); more tokens: the tiled matmul.comp, with partial tiles.
        // 96 columns (32-element block formats only): a last half step of the tensor-core shader.
        // 16640 columns: more activation blocks than matvec_dot.comp holds in shared memory.
        for (const Shape sh : {Shape{37, 512, 1}, Shape{37, 256, 11}, Shape{64, 2048, 2}, Shape{530000, 32, 1}, Shape{70, 512, 40}, Shape{128, 256, 70},
                               Shape{40, 96, 5}, Shape{9, 16640, 1}}) {
            if (sh.cols % type_traits(t).block_size != 0) continue;
            const auto w = randn(static_cast<size_t>(sh.rows * sh.cols), 1, 0.05f);
            const auto x = randn(static_cast<size_t>(sh.cols) * sh.B, 2);
            const auto bias = randn(static_cast<size_t>(sh.rows), 3);
            const auto y0 = randn(static_cast<size_t>(sh.rows) * sh.B, 4);
            if (sh.rows > 1000 && t != T::F32 && t != T::Q4_0) continue;  // the grid once per layout kind
            const auto q = quantize_tensor(w.data(), sh.rows, sh.cols, t);
            const auto wd = dequantize(t, q, sh.rows * sh.cols);
            for (int variant = 0; variant < 2; ++variant) {  // plain; with bias and accumulation
                const auto got = gpu_ops::matvec(t, q, sh.rows, sh.cols, x, sh.B, variant ? std::span<const float>(bias) : std::span<const float>(),
                                                 variant ? std::span<const float>(y0) : std::span<const float>());
                expect_product(got, t, wd, sh.rows, sh.cols, x, sh.B, variant ? bias : std::vector<float>(), variant ? y0 : std::vector<float>(),
                               std::string(type_traits(t).name) + " " + std::to_string(sh.rows) + "x" + std::to_string(sh.cols) + " B=" + std::to_string(sh.B));
            }
        }
}

// SwiGLU fused into the integer-dot product (generation's ffn_down): silu(gate) * up made as the
// activations are quantized.
TEST(GpuShaders, MatvecFusedSwiglu) {
    REQUIRE_GPU();
    using T = GgmlType;
    int tested = 0;
    for (GgmlType t : {T::Q8_0, T::Q4_0, T::Q4_K, T::Q6_K}) {
        if (!gpu_ops::int_dot(t)) continue;
        const int64_t rows = 37, cols = 768;
        const auto w = randn(static_cast<size_t>(rows * cols), 11, 0.05f), gate = randn(static_cast<size_t>(cols), 12),
                   up = randn(static_cast<size_t>(cols), 13);
        const auto q = quantize_tensor(w.data(), rows, cols, t);
        std::vector<float> act(gate.size());
        for (size_t i = 0; i < act.size(); ++i) act[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
        const auto got = gpu_ops::matvec(t, q, rows, cols, gate, 1, {}, {}, up);
        expect_product(got, t, dequantize(t, q, rows * cols), rows, cols, act, 1, {}, {}, std::string(type_traits(t).name) + " fused SwiGLU");
        ++tested;
    }
    // Batches on tensor cores: SwiGLU as ffn_down's input goes to f16.
    for (GgmlType t : {T::Q8_0, T::Q4_0, T::Q4_K, T::F16}) {
        if (!gpu_ops::coopmat(t)) continue;
        const int64_t rows = 37, cols = 768;
        const int B = 5;
        const auto w = randn(static_cast<size_t>(rows * cols), 14, 0.05f), gate = randn(static_cast<size_t>(cols * B), 15),
                   up = randn(static_cast<size_t>(cols * B), 16);
        const auto q = quantize_tensor(w.data(), rows, cols, t);
        std::vector<float> act(gate.size());
        for (size_t i = 0; i < act.size(); ++i) act[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
        const auto got = gpu_ops::matvec(t, q, rows, cols, gate, B, {}, {}, up);
        expect_product(got, t, dequantize(t, q, rows * cols), rows, cols, act, B, {}, {}, std::string(type_traits(t).name) + " SwiGLU into f16");
        ++tested;
    }
    if (!tested) GTEST_SKIP() << "no integer dot products or tensor cores on " << gpu_ops::device();
}

TEST(GpuShaders, RmsNormRopeSwiglu) {
    REQUIRE_GPU();
    for (const int n : {288, 2112, 5000}) {  // rows that fit the registers (16 per thread), and one longer
        const int rows = 3;
        const auto x = randn(static_cast<size_t>(n * rows), 5), w = randn(static_cast<size_t>(n), 6);
        std::vector<double> want(x.size()), mag(x.size(), 0.0);
        for (int r = 0; r < rows; ++r) {
            double ss = 0;
            for (int i = 0; i < n; ++i) ss += static_cast<double>(x[static_cast<size_t>(r * n + i)]) * x[static_cast<size_t>(r * n + i)];
            const double sc = 1.0 / std::sqrt(ss / n + 1e-5);
            for (int i = 0; i < n; ++i) want[static_cast<size_t>(r * n + i)] = x[static_cast<size_t>(r * n + i)] * sc * w[static_cast<size_t>(i)];
        }
        expect_close(gpu_ops::rmsnorm(x, w, 1e-5f), want, mag, 1e-5, "rmsnorm " + std::to_string(n));
        // From sum-of-squares parts: one, a few, and more than a workgroup's threads take at once.
        for (const int parts : {1, 7, 300})
            expect_close(gpu_ops::rmsnorm(x, w, 1e-5f, parts), want, mag, 1e-5, "rmsnorm " + std::to_string(n) + " from " + std::to_string(parts) + " parts");
    }

    for (bool neox : {false, true}) {
        const int heads = 3, hd = 64, n_rot = 32, B = 2;
        const auto v = randn(static_cast<size_t>(B * heads * hd), 7);
        std::vector<float> cs(static_cast<size_t>(B * n_rot));
        for (int b = 0; b < B; ++b)
            for (int i = 0; i < n_rot / 2; ++i) {
                const float th = static_cast<float>(b + 5) * std::pow(10000.f, -2.f * i / n_rot);
                cs[static_cast<size_t>(b * n_rot + 2 * i)] = std::cos(th);
                cs[static_cast<size_t>(b * n_rot + 2 * i + 1)] = std::sin(th);
            }
        const auto got = gpu_ops::rope(v, cs, heads, hd, n_rot, neox, B);
        std::vector<double> ref(v.begin(), v.end());
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < heads; ++h)
                for (int i = 0; i < n_rot / 2; ++i) {
                    const size_t base = static_cast<size_t>((b * heads + h) * hd);
                    const size_t i0 = base + (neox ? i : 2 * i), i1 = base + (neox ? i + n_rot / 2 : 2 * i + 1);
                    const double c = cs[static_cast<size_t>(b * n_rot + 2 * i)], s = cs[static_cast<size_t>(b * n_rot + 2 * i + 1)];
                    ref[i0] = v[i0] * c - v[i1] * s;
                    ref[i1] = v[i0] * s + v[i1] * c;
                }
        expect_close(got, ref, std::vector<double>(ref.size(), 1.0), 1e-6, neox ? "rope neox" : "rope");
        // Keys are rotated by kv_store on their way into the cache.
        expect_close(gpu_ops::rope_stored_keys(v, cs, heads, hd, n_rot, neox, B), ref, std::vector<double>(ref.size(), 1.0), 1e-6,
                     neox ? "stored keys neox" : "stored keys");
    }

    const auto g = randn(1000, 8, 3.f), u = randn(1000, 9);
    const auto sw = gpu_ops::swiglu(g, u);
    std::vector<double> ref(g.size());
    for (size_t i = 0; i < g.size(); ++i) ref[i] = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    expect_close(sw, ref, std::vector<double>(ref.size(), 1.0), 1e-5, "swiglu");
}

// Causal attention with grouped KV heads over more than one tile of positions, head sizes below
// and above one workgroup's width; one token over long caches goes through the split form
// (parts of 128 positions and more, the last one short or empty); longer batches from an empty
// cache and after one, head size 128 (batches: attention_batch.comp, 16 tokens a workgroup, the
// last group partial).
TEST(GpuShaders, Attention) {
    REQUIRE_GPU();
    struct Case {
        int hd, n_past, B;
    };
    for (const Case c : {Case{64, 70, 3}, Case{80, 70, 3}, Case{64, 300, 1}, Case{80, 1100, 1}, Case{64, 255, 1}, Case{64, 0, 19},
                         Case{80, 100, 20}, Case{128, 5, 70}}) {
        const int hd = c.hd, n_past = c.n_past, B = c.B;
        const int n_head = 4, n_kv = 2, kv_dim = n_kv * hd, n_pos = n_past + B;
        const auto q = randn(static_cast<size_t>(B * n_head * hd), 10), kc = randn(static_cast<size_t>(n_pos * kv_dim), 11),
                   vc = randn(static_cast<size_t>(n_pos * kv_dim), 12);
        const auto got = gpu_ops::attention(q, kc, vc, n_head, n_kv, hd, n_past, B);
        // Batches also with attention_batch.comp's tiles of 8 and 16 positions (one of them the
        // subgroup size on lavapipe: its subgroup form; NVIDIA's 32 is the default).
        const auto got8 = gpu_ops::attention(q, kc, vc, n_head, n_kv, hd, n_past, B, 8);
        const auto got16 = gpu_ops::attention(q, kc, vc, n_head, n_kv, hd, n_past, B, 16);
        std::vector<double> ref(got.size());
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < n_head; ++h) {
                const int kvh = h / (n_head / n_kv), n = n_past + b + 1;
                std::vector<double> s(static_cast<size_t>(n));
                double mx = -1e300, sum = 0;
                for (int p = 0; p < n; ++p) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i)
                        d += static_cast<double>(q[static_cast<size_t>((b * n_head + h) * hd + i)]) * kc[static_cast<size_t>(p * kv_dim + kvh * hd + i)];
                    s[static_cast<size_t>(p)] = d / std::sqrt(static_cast<double>(hd));
                    mx = std::max(mx, s[static_cast<size_t>(p)]);
                }
                for (auto& e : s) sum += e = std::exp(e - mx);
                for (int i = 0; i < hd; ++i) {
                    double a = 0;
                    for (int p = 0; p < n; ++p) a += s[static_cast<size_t>(p)] / sum * vc[static_cast<size_t>(p * kv_dim + kvh * hd + i)];
                    ref[static_cast<size_t>((b * n_head + h) * hd + i)] = a;
                }
            }
        const std::string what = "attention hd " + std::to_string(hd) + " n_past " + std::to_string(n_past) + " B " + std::to_string(B);
        expect_close(got, ref, std::vector<double>(ref.size(), 1.0), 1e-5, what);
        expect_close(got8, ref, std::vector<double>(ref.size(), 1.0), 1e-5, what + " (tile 8)");
        expect_close(got16, ref, std::vector<double>(ref.size(), 1.0), 1e-5, what + " (tile 16)");
    }
}

std::string demo_dir() { return std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m"; }

std::vector<int32_t> greedy(const Model& m, int n_gpu_layers, const std::vector<int32_t>& prompt, int n, std::vector<float>* prompt_logits) {
    Context ctx(m, 256, KvCacheType::F32, 2, n_gpu_layers, true);
    std::vector<float> logits;
    ctx.eval(prompt, logits, prompt_logits != nullptr);
    if (prompt_logits) {
        *prompt_logits = logits;
        logits.assign(logits.end() - m.hparams().n_vocab, logits.end());
    }
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(t);
        ctx.eval({t}, logits);
    }
    return out;
}

// The logits after each of tokens, fed one at a time (generation's path) after the prompt.
std::vector<float> step_logits(const Model& m, int n_gpu_layers, const std::vector<int32_t>& prompt, const std::vector<int32_t>& tokens) {
    Context ctx(m, 256, KvCacheType::F32, 2, n_gpu_layers, true);
    std::vector<float> logits, all;
    ctx.eval(prompt, logits);
    for (int32_t t : tokens) {
        ctx.eval({t}, logits);
        all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
}

// Logits of n positions (rows of V) close (max difference below tol) and the same top token in
// at least 90% of them.
void expect_logits_close(const std::vector<float>& cpu, const std::vector<float>& gpu, size_t V, double tol, const std::string& what) {
    ASSERT_EQ(cpu.size(), gpu.size()) << what;
    const size_t n = cpu.size() / V;
    double max_diff = 0;
    size_t same_top = 0;
    for (size_t p = 0; p < n; ++p) {
        const float* a = &cpu[p * V];
        const float* b = &gpu[p * V];
        for (size_t i = 0; i < V; ++i) max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i])));
        same_top += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
    }
    EXPECT_LT(max_diff, tol) << what;
    EXPECT_GE(same_top * 100, n * 90) << what;
}

// The same weights on the GPU and the CPU: logits for every prompt position (the batch path) and
// for each generated token fed one at a time (generation's path) close, the same greedy
// continuation; with every layer offloaded and with the last three only (-ngl 3).
void check_model(const std::string& path, double logit_tol, bool exact_greedy) {
    const auto m = Model::load(path);
    const auto prompt = m->tokenizer().tokenize("Once upon a time, there was a little dog who liked to run in the park.", true);
    std::vector<float> cpu_logits, gpu_logits;
    const auto cpu = greedy(*m, 0, prompt, 24, &cpu_logits);
    const auto gpu = greedy(*m, 1000, prompt, 24, &gpu_logits);
    const size_t V = static_cast<size_t>(m->hparams().n_vocab);
    expect_logits_close(cpu_logits, gpu_logits, V, logit_tol, path + " (prompt)");
    expect_logits_close(step_logits(*m, 0, prompt, cpu), step_logits(*m, 1000, prompt, cpu), V, logit_tol, path + " (generation)");
    if (exact_greedy) {
        EXPECT_EQ(gpu, cpu) << path;
        EXPECT_EQ(greedy(*m, 3, prompt, 24, nullptr), cpu) << path << " with -ngl 3";
    }
}

TEST(GpuModel, F32WeightsMatchTheCpu) {
    REQUIRE_GPU();
    check_model(demo_dir(), 1e-3, true);  // bf16 weights: exact in f32 on both sides
}

TEST(GpuModel, TinyLlamaMatchesTheCpu) {
    REQUIRE_GPU();
    QFORGE_REQUIRE_SHARED(data);
    check_model(data + "/models/tiny-llama-23m", 2e-3, true);
}

// Quantized weights: the CPU meets them with q8_0/q8_K activations (as ggml), the GPU with f32 or
// f16 ones, or (generation, integer dot products) q8 blocks of its own: close, not equal.
TEST(GpuModel, QuantizedWeightsMatchClosely) {
    REQUIRE_GPU();
    test::TempDir tmp;
    const auto hf = open_hf_model(demo_dir());
    for (const char* type : {"q8_0", "q4_0", "q4_k_m"}) {
        const std::string out = tmp.path(std::string("demo-") + type + ".gguf");
        convert_hf_model(*hf, out, type, 2);
        check_model(out, 0.5, false);
    }
}

TEST(GpuCli, DeviceOptions) {
    REQUIRE_GPU();
    const auto r = test::run_qforge({"run", "-m", demo_dir(), "-p", "Once upon a time", "-n", "8", "--temp", "0", "--device", "gpu", "-ngl", "4"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("4 of 8 layers on"), std::string::npos) << r.err;
    const auto bad = test::run_qforge({"run", "-m", demo_dir(), "-p", "x", "--device", "tpu"});
    EXPECT_EQ(bad.status, 1);
    const auto cpu = test::run_qforge({"run", "-m", demo_dir(), "-p", "x", "-n", "2", "--device", "cpu"});
    EXPECT_EQ(cpu.status, 0) << cpu.err;
    EXPECT_EQ(cpu.err.find("layers"), std::string::npos) << cpu.err;
}

}  // namespace
}  // namespace qforge

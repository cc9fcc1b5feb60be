// Kernels in isolation, one thread. BM_X8/BM_XK: groups of eight regrouped weight rows (Q4_0,
// Q2_K … Q6_K) against 8 tokens (a prompt's tile) or 1 (generation), weights and activations in
// cache; reports multiply-accumulates per second (GMAC/s), the figure the kernel's arithmetic sets.
// BM_Stream*: generation over 256 MiB of weights (out of cache, huge pages); reports GB/s, to set
// against bench_stream's one-thread read. The end-to-end speed is bench/e2e.sh's.
// Run: build-bench/bench/bench_kernels  (scripts/bench.sh builds it and prints the machine).
#include <benchmark/benchmark.h>

#include <random>

#include "core/huge_arena.hpp"
#include "kernels/panel.hpp"
#include "kernels/vec_dot.hpp"
#include "qforge/half.hpp"
#include "quant/blocks.hpp"
#include "qforge/quantize.hpp"

namespace {

using qforge::GgmlType;

constexpr int64_t kRows = 64;

std::vector<float> random_matrix(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& e : v) e = nd(rng);
    return v;
}

// nc random activation rows of length K, quantized to act_type and packed for a kernel.
template <class Acts>
Acts random_acts(GgmlType act_type, int64_t K, int nc, void (*resize)(Acts&, int64_t, int), void (*pack)(const void*, int, Acts&)) {
    Acts acts;
    resize(acts, K, nc);
    const auto x = random_matrix(K * nc, 2);
    const qforge::QuantizeRowFn aq = qforge::find_act_quantizer(act_type);
    std::vector<uint8_t> row(*qforge::row_bytes(qforge::type_traits(act_type), K));
    for (int t = 0; t < nc; ++t) {
        aq(x.data() + static_cast<size_t>(t) * K, row.data(), K, nullptr);
        pack(row.data(), t, acts);
    }
    return acts;
}

// kRows random rows of kCols quantized to `type` and regrouped by the format's repacker.
template <class Format>
std::vector<uint8_t> regrouped_rows(const Format& f, GgmlType type, int64_t kCols, size_t group_bytes) {
    const auto q = qforge::quantize_tensor(random_matrix(kRows * kCols, 1).data(), kRows, kCols, type, {}, 1);
    std::vector<uint8_t> packed(group_bytes * (kRows / qforge::kPanelRows));
    f.repack(q.data(), kRows, kCols, packed.data());
    return packed;
}

// F16 weights for the F16 benchmarks: buf filled with random halves of moderate size.
const uint16_t* fill_random_f16(const qforge::HugeArena& buf) {
    auto* w = reinterpret_cast<uint16_t*>(buf.data());
    std::mt19937 rng(1);
    for (size_t i = 0; i < buf.size() / 2; ++i) w[i] = static_cast<uint16_t>(0x3000 + rng() % 0x1000);
    return w;
}

std::vector<uint16_t> to_f16(const std::vector<float>& x) {
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) h[i] = qforge::fp32_to_fp16(x[i]);
    return h;
}

// Every group of rows meets the batch of tokens kGemmCols at a time, as the forward pass does.
template <class Acts, class Gemm>
void run_groups(benchmark::State& st, const std::vector<uint8_t>& packed, size_t group_bytes, const Acts& acts, Gemm gemm, int64_t K, int n) {
    float out[qforge::kPanelRows * qforge::kGemmCols];
    for (auto _ : st) {
        for (int64_t g = 0; g < kRows / qforge::kPanelRows; ++g)
            for (int c0 = 0; c0 < n; c0 += qforge::kGemmCols) gemm(packed.data() + static_cast<size_t>(g) * group_bytes, acts, c0, std::min(n, qforge::kGemmCols), out);
        benchmark::DoNotOptimize(out);
    }
    st.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * static_cast<double>(kRows * K) * n / 1e9, benchmark::Counter::kIsRate);
}

// Arguments: tokens (1: generation, 8: one tile, 64: a prompt's batch), row length; wide: two
// groups a call through the sixteen-row kernel (AVX-512), as the forward pass runs prompts.
void BM_XK(benchmark::State& st, GgmlType type, bool wide) {
    const int nc = static_cast<int>(st.range(0));
    const int64_t kCols = st.range(1);
    const qforge::XKFormat* f = qforge::find_xk_format(type);
    if (!f || !f->gemm || (wide && !f->gemm16)) return st.SkipWithError("no SIMD kernel on this CPU");
    const size_t group_bytes = static_cast<size_t>(kCols / qforge::QK_K) * f->block_bytes;
    const auto packed = regrouped_rows(*f, type, kCols, group_bytes);
    const auto acts = random_acts<qforge::XKActs>(GgmlType::Q8_K, kCols, nc, qforge::resize_xk_acts, qforge::pack_xk_acts);
    if (!wide) return run_groups(st, packed, group_bytes, acts, f->gemm, kCols, nc);
    float out[2 * qforge::kPanelRows * qforge::kGemmCols];
    for (auto _ : st) {
        for (int64_t g = 0; g < kRows / qforge::kPanelRows; g += 2)
            for (int c0 = 0; c0 + qforge::kGemmCols <= nc; c0 += qforge::kGemmCols) f->gemm16(packed.data() + static_cast<size_t>(g) * group_bytes, group_bytes, acts, c0, out);
        benchmark::DoNotOptimize(out);
    }
    st.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * static_cast<double>(kRows * kCols) * nc / 1e9, benchmark::Counter::kIsRate);
}

// The regrouped 32-element formats (Q4_0, Q5_0, Q8_0).
void BM_X8(benchmark::State& st, GgmlType t) {
    const int nc = static_cast<int>(st.range(0));
    const int64_t kCols = st.range(1);
    const qforge::X8Format* f = qforge::find_x8_format(t);
    if (!f->gemm) return st.SkipWithError("no SIMD kernel on this CPU");
    const qforge::X8GemmFn gemm = f->gemm;
    const size_t group_bytes = *qforge::row_bytes(qforge::type_traits(t), kCols) * qforge::kPanelRows;
    const auto packed = regrouped_rows(*f, t, kCols, group_bytes);
    const auto acts = random_acts<qforge::X8Acts>(GgmlType::Q8_0, kCols, nc, qforge::resize_x8_acts, qforge::pack_x8_acts);
    run_groups(st, packed, group_bytes, acts, gemm, kCols, nc);
}

// Generation out of cache: one token against a weight matrix far larger than the caches (the
// 64-row groups copied over 256 MiB of huge-page memory, as qforge keeps the weights), one thread, as a forward pass meets each weight once per
// token. Reports the weight bytes read per second (GB/s), to set against bench_stream's read figure.
constexpr size_t kStreamBytes = size_t{256} << 20;

template <class Gemm, class Acts>
void run_stream(benchmark::State& st, const std::vector<uint8_t>& groups, size_t group_bytes, const Acts& acts, Gemm gemm) {
    const size_t n_groups = kStreamBytes / group_bytes;
    qforge::HugeArena big(n_groups * group_bytes);
    for (size_t g = 0; g < n_groups; ++g) std::copy(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(group_bytes), big.data() + g * group_bytes);
    float out[qforge::kPanelRows * qforge::kGemmCols];
    for (auto _ : st) {
        for (size_t g = 0; g < n_groups; ++g) gemm(big.data() + g * group_bytes, acts, 0, 1, out);
        benchmark::DoNotOptimize(out);
    }
    st.counters["GB/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * static_cast<double>(big.size()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_StreamXK(benchmark::State& st, GgmlType type) {
    constexpr int64_t kCols = 2048;
    const qforge::XKFormat* f = qforge::find_xk_format(type);
    if (!f || !f->gemm) return st.SkipWithError("no SIMD kernel on this CPU");
    const size_t group_bytes = static_cast<size_t>(kCols / qforge::QK_K) * f->block_bytes;
    run_stream(st, regrouped_rows(*f, type, kCols, group_bytes), group_bytes, random_acts<qforge::XKActs>(GgmlType::Q8_K, kCols, 1, qforge::resize_xk_acts, qforge::pack_xk_acts), f->gemm);
}

void BM_StreamX8(benchmark::State& st, GgmlType type) {
    constexpr int64_t kCols = 2048;
    const qforge::X8Format* f = qforge::find_x8_format(type);
    if (!f || !f->gemm) return st.SkipWithError("no SIMD kernel on this CPU");
    const size_t group_bytes = *qforge::row_bytes(qforge::type_traits(type), kCols) * qforge::kPanelRows;
    run_stream(st, regrouped_rows(*f, type, kCols, group_bytes), group_bytes, random_acts<qforge::X8Acts>(GgmlType::Q8_0, kCols, 1, qforge::resize_x8_acts, qforge::pack_x8_acts), f->gemm);
}

// F16 rows as stored (four rows a tile: four streams) or regrouped four rows at a time (one stream).
void BM_StreamF16(benchmark::State& st, bool regrouped) {
    constexpr int64_t kCols = 2048;
    const qforge::F16GemmFn fg = qforge::find_f16_gemm();
    const qforge::F16X4GemmFn fx4 = qforge::find_f16_x4_gemm();
    if (!fg || (regrouped && !fx4)) return st.SkipWithError("no SIMD kernel on this CPU");
    const int64_t rows = static_cast<int64_t>(kStreamBytes / (2 * kCols));
    const qforge::HugeArena buf(static_cast<size_t>(rows * kCols) * 2);
    const uint16_t* w = fill_random_f16(buf);
    const auto x = random_matrix(kCols, 2);
    const auto xh = to_f16(x);
    std::vector<float> y(static_cast<size_t>(rows));
    for (auto _ : st) {
        if (regrouped) fx4(w, rows / qforge::kF16X4Rows, xh.data(), kCols, 1, kCols, y.data(), static_cast<size_t>(rows));
        else fg(w, kCols, rows, x.data(), kCols, 1, kCols, y.data(), static_cast<size_t>(rows));
        benchmark::DoNotOptimize(y.data());
    }
    st.counters["GB/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * static_cast<double>(buf.size()) / 1e9, benchmark::Counter::kIsRate);
}

// Prompts with F16 weights regrouped four rows at a time: rows x cols weights (range 0, 1) against
// tokens (range 2) f16 activations, one thread; GMAC/s (compare with the core's FMA peak:
// 16 MACs per 512-bit FMA).
void BM_F16Prompt(benchmark::State& st) {
    const qforge::F16X4GemmFn fx4 = qforge::find_f16_x4_gemm();
    if (!fx4) return st.SkipWithError("no regrouped F16 kernel on this CPU");
    const int64_t rows = st.range(0), cols = st.range(1);
    const int B = static_cast<int>(st.range(2));
    const qforge::HugeArena buf(static_cast<size_t>(rows * cols) * 2);
    const uint16_t* w = fill_random_f16(buf);
    const auto xh = to_f16(random_matrix(cols * B, 2));
    std::vector<float> y(static_cast<size_t>(rows) * static_cast<size_t>(B));
    for (auto _ : st) {
        fx4(w, rows / qforge::kF16X4Rows, xh.data(), static_cast<size_t>(cols), B, cols, y.data(), static_cast<size_t>(rows));
        benchmark::DoNotOptimize(y.data());
    }
    st.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * static_cast<double>(rows * cols * B) / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_F16Prompt)->Args({64, 2048, 64})->Args({2048, 2048, 64})->Args({256, 5632, 64})->Args({2048, 2048, 512});
BENCHMARK_CAPTURE(BM_StreamF16, F16, false);
BENCHMARK_CAPTURE(BM_StreamF16, F16_x4, true);
BENCHMARK_CAPTURE(BM_StreamX8, Q8_0, GgmlType::Q8_0);
BENCHMARK_CAPTURE(BM_StreamX8, Q4_0, GgmlType::Q4_0);
BENCHMARK_CAPTURE(BM_StreamX8, Q5_0, GgmlType::Q5_0);
BENCHMARK_CAPTURE(BM_StreamXK, Q2_K, GgmlType::Q2_K);
BENCHMARK_CAPTURE(BM_StreamXK, Q3_K, GgmlType::Q3_K);
BENCHMARK_CAPTURE(BM_StreamXK, Q4_K, GgmlType::Q4_K);
BENCHMARK_CAPTURE(BM_StreamXK, Q5_K, GgmlType::Q5_K);
BENCHMARK_CAPTURE(BM_StreamXK, Q6_K, GgmlType::Q6_K);
BENCHMARK_CAPTURE(BM_X8, Q4_0, GgmlType::Q4_0)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_X8, Q5_0, GgmlType::Q5_0)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_X8, Q8_0, GgmlType::Q8_0)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q2_K, GgmlType::Q2_K, false)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q2_K_x16, GgmlType::Q2_K, true)->Args({8, 2048})->Args({64, 5632});
BENCHMARK_CAPTURE(BM_XK, Q3_K, GgmlType::Q3_K, false)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q3_K_x16, GgmlType::Q3_K, true)->Args({8, 2048})->Args({64, 5632});
BENCHMARK_CAPTURE(BM_XK, Q4_K, GgmlType::Q4_K, false)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q4_K_x16, GgmlType::Q4_K, true)->Args({8, 2048})->Args({64, 5632});
BENCHMARK_CAPTURE(BM_XK, Q5_K, GgmlType::Q5_K, false)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q5_K_x16, GgmlType::Q5_K, true)->Args({8, 2048})->Args({64, 5632});
BENCHMARK_CAPTURE(BM_XK, Q6_K, GgmlType::Q6_K, false)->Args({8, 2048})->Args({64, 5632})->Args({1, 2048});
BENCHMARK_CAPTURE(BM_XK, Q6_K_x16, GgmlType::Q6_K, true)->Args({8, 2048})->Args({64, 5632});
BENCHMARK_MAIN();

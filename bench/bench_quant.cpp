// Quantize and dequantize throughput per type, in MB/s of f32 input (1 and 2 threads).
// Run: build-bench/bench/bench_quant  (scripts/bench.sh builds it and prints the machine).
#include <benchmark/benchmark.h>

#include <random>
#include <thread>

#include "qforge/quantize.hpp"

namespace {

using qforge::GgmlType;

constexpr int64_t kRows = 256, kCols = 4096;  // 4 MiB of f32 per iteration

const std::vector<float>& input() {
    static const std::vector<float> x = [] {
        std::mt19937 rng(1);
        std::normal_distribution<float> nd(0.f, 0.02f);
        std::vector<float> v(static_cast<size_t>(kRows * kCols));
        for (auto& e : v) e = nd(rng);
        return v;
    }();
    return x;
}

const std::vector<float>& imatrix() {
    static const std::vector<float> w = [] {
        std::vector<float> v(static_cast<size_t>(kCols));
        for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f + static_cast<float>(i % 13) * 0.1f;
        return v;
    }();
    return w;
}

void BM_Quantize(benchmark::State& st, GgmlType type, bool with_imatrix) {
    const int threads = static_cast<int>(st.range(0));
    const auto& x = input();
    std::vector<uint8_t> out(*qforge::row_bytes(qforge::type_traits(type), kCols) * kRows);
    for (auto _ : st) {
        qforge::quantize_rows(x.data(), out.data(), kRows, kCols, type, with_imatrix ? imatrix().data() : nullptr, threads);
        benchmark::DoNotOptimize(out.data());
    }
    st.SetBytesProcessed(st.iterations() * kRows * kCols * 4);
    st.counters["threads"] = threads;
}

void BM_Dequantize(benchmark::State& st, GgmlType type) {
    const auto& x = input();
    const auto q = qforge::quantize_tensor(x.data(), kRows, kCols, type, {}, 2);
    std::vector<float> y(x.size());
    for (auto _ : st) {
        qforge::dequantize(type, q.data(), y.data(), kRows * kCols);
        benchmark::DoNotOptimize(y.data());
    }
    st.SetBytesProcessed(st.iterations() * kRows * kCols * 4);
}

const GgmlType kTypes[] = {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q5_1,
                           GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q4_1, GgmlType::Q4_0, GgmlType::Q3_K, GgmlType::Q2_K,
                           GgmlType::IQ4_NL, GgmlType::IQ4_XS};

const bool registered = [] {
    for (GgmlType t : kTypes) {
        const std::string name = qforge::type_traits(t).name;
        benchmark::RegisterBenchmark(("quantize/" + name).c_str(), BM_Quantize, t, false)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
        if (qforge::type_traits(t).is_quantized && t != GgmlType::Q8_0)
            benchmark::RegisterBenchmark(("quantize_imatrix/" + name).c_str(), BM_Quantize, t, true)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("dequantize/" + name).c_str(), BM_Dequantize, t)->Unit(benchmark::kMillisecond);
    }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();

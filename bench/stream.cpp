// STREAM-style memory bandwidth: read, copy and triad over 1 GiB arrays with N threads. The arrays
// are advised for transparent huge pages, as qforge's weights are (a fair roofline for generation).
// Usage: bench_stream [threads] [MiB]
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : static_cast<int>(std::thread::hardware_concurrency());
    const size_t mib = argc > 2 ? static_cast<size_t>(std::atoll(argv[2])) : 1024;
    const size_t n = mib * (1u << 20) / sizeof(float);
    auto array = [&](float v) {
        constexpr size_t kHuge = size_t{2} << 20;
        void* p = ::mmap(nullptr, n * sizeof(float) + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "bench_stream: out of memory\n");
            std::exit(1);
        }
        float* f = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
#ifdef MADV_HUGEPAGE
        ::madvise(f, n * sizeof(float), MADV_HUGEPAGE);
#endif
        std::fill(f, f + n, v);
        return f;
    };
    float* a = array(1.0f);
    float* b = array(2.0f);
    float* c = array(0.0f);
    auto run = [&](auto body) {
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<std::thread> ts;
            for (int t = 0; t < threads; ++t) ts.emplace_back(body, n * t / threads, n * (t + 1) / threads);
            for (auto& t : ts) t.join();
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return best;
    };
    std::vector<double> sums(static_cast<size_t>(threads) * 16);
    // Read: eight independent integer accumulators over 64-bit words, so the loop is bound by
    // memory, not by the latency of a floating-point add chain.
    const double t_read = run([&](size_t b0, size_t b1) {
        uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const auto* w = reinterpret_cast<const uint64_t*>(a + b0);
        const size_t nw = (b1 - b0) / 2;
        for (size_t i = 0; i + 8 <= nw; i += 8)
            for (int k = 0; k < 8; ++k) s[k] ^= w[i + static_cast<size_t>(k)];
        uint64_t r = 0;
        for (uint64_t v : s) r ^= v;
        sums[(b0 * threads / n) * 16] = static_cast<double>(r & 0xFF);
    });
    const double t_copy = run([&](size_t b0, size_t b1) { std::copy(a + b0, a + b1, c + b0); });
    const double t_triad = run([&](size_t b0, size_t b1) {
        for (size_t i = b0; i < b1; ++i) c[i] = a[i] + 3.0f * b[i];
    });
    const double gb = static_cast<double>(n * sizeof(float)) / 1e9;
    std::printf("threads %d, arrays %zu MiB: read %.1f GB/s, copy %.1f GB/s, triad %.1f GB/s\n", threads, mib, gb / t_read,
                2 * gb / t_copy, 3 * gb / t_triad);
    return sums[0] == -1 ? 1 : 0;
}

// A dependency-free check of the SIMD kernels against the scalar references, for cross builds
// (aarch64 under qemu, see scripts/cross-arm.sh). Prints a line per kernel; exit status 1 on failure.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vec_dot.hpp"
#include "qforge/quantize.hpp"

using namespace qforge;

static int failures = 0;

static void check(bool ok, const char* what) {
    std::printf("%-40s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) ++failures;
}

int main() {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    // f32 GEMM, including row/token tails and a K that is not a multiple of 8.
    for (int64_t K : {8, 172, 512}) {
        const int64_t rows = 9;
        const int B = 6;
        std::vector<float> W(static_cast<size_t>(rows * K)), X(static_cast<size_t>(B * K)), ys(static_cast<size_t>(rows * B)), yv(ys.size());
        for (auto& v : W) v = nd(rng);
        for (auto& v : X) v = nd(rng);
        gemm_f32_scalar(W.data(), K, rows, X.data(), K, B, K, ys.data(), rows);
        best_gemm_f32()(W.data(), K, rows, X.data(), K, B, K, yv.data(), rows);
        bool ok = true;
        for (size_t i = 0; i < ys.size(); ++i) ok &= std::fabs(ys[i] - yv[i]) <= 1e-3f * (1.f + std::fabs(ys[i]));
        char name[64];
        std::snprintf(name, sizeof name, "gemm_f32 (%s) K=%lld", gemm_f32_name(), static_cast<long long>(K));
        check(ok, name);
    }
    struct Case {
        GgmlType w, a;
        VecDotFn ref;  // nullptr: the dequantized product in double (vec_dot_generic)
    } cases[] = {{GgmlType::Q4_0, GgmlType::Q8_0, vec_dot_q4_0_q8_0_scalar}, {GgmlType::Q8_0, GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar},
                 {GgmlType::Q4_K, GgmlType::Q8_K, vec_dot_q4_k_q8_k_scalar}, {GgmlType::Q6_K, GgmlType::Q8_K, vec_dot_q6_k_q8_k_scalar},
                 {GgmlType::Q4_1, GgmlType::Q8_1, vec_dot_q4_1_q8_1_scalar}, {GgmlType::Q5_1, GgmlType::Q8_1, vec_dot_q5_1_q8_1_scalar},
                 {GgmlType::Q5_0, GgmlType::Q8_0, nullptr},  {GgmlType::Q5_K, GgmlType::Q8_K, nullptr},
                 {GgmlType::Q3_K, GgmlType::Q8_K, nullptr},  {GgmlType::Q2_K, GgmlType::Q8_K, nullptr},
                 {GgmlType::IQ4_NL, GgmlType::Q8_0, nullptr}, {GgmlType::IQ4_XS, GgmlType::Q8_K, nullptr}};
    for (const auto& c : cases) {
        if (!find_vec_dot(c.w) || find_vec_dot(c.w) == c.ref) {  // no SIMD kernel for this type here: nothing to compare
            std::printf("%-40s scalar only\n", type_traits(c.w).name);
            continue;
        }
        bool ok = true;
        for (int trial = 0; trial < 8; ++trial) {
            const int64_t n = 1024;
            std::vector<float> w(n), x(n);
            for (auto& v : w) v = nd(rng) * (trial == 1 ? 100.f : 0.05f);
            for (auto& v : x) v = nd(rng);
            if (trial == 2) std::fill(w.begin(), w.end(), 0.f);
            if (trial == 3) std::fill(x.begin(), x.end(), -0.5f);
            const auto qw = quantize_tensor(w.data(), 1, n, c.w);
            const auto qx = quantize_tensor(x.data(), 1, n, c.a);
            const float r = c.ref ? c.ref(n, qw.data(), qx.data()) : vec_dot_generic(c.w, n, qw.data(), qx.data());
            const float s = find_vec_dot(c.w)(n, qw.data(), qx.data());
            ok &= std::fabs(r - s) <= 1e-4f * (1.f + std::fabs(r));
        }
        char name[64];
        std::snprintf(name, sizeof name, "vec_dot %s (%s)", type_traits(c.w).name, vec_dot_isa());
        check(ok, name);
    }
    // Two rows at once (ARM i8mm): every output the one-row kernel's bits, odd token counts too.
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
        const VecDot2Fn two = find_vec_dot_2(t);
        if (!two) {
            std::printf("%-40s none on this CPU\n", (std::string("vec_dot_2 ") + type_traits(t).name).c_str());
            continue;
        }
        const int64_t n = 256;
        bool ok = true;
        std::vector<float> w(2 * n), x(5 * n);
        for (auto& v : w) v = nd(rng);
        for (auto& v : x) v = nd(rng);
        const auto qw = quantize_tensor(w.data(), 2, n, t);
        const auto qx = quantize_tensor(x.data(), 5, n, GgmlType::Q8_0);
        const size_t rb = qw.size() / 2, by = qx.size() / 5;
        for (int nc = 1; nc <= 5; ++nc) {
            std::vector<float> out(static_cast<size_t>(nc) * 3, -1.f);
            two(n, qw.data(), qw.data() + rb, qx.data(), by, nc, out.data(), 3);
            for (int c = 0; c < nc; ++c)
                for (int r = 0; r < 2; ++r) {
                    const float one = find_vec_dot(t)(n, qw.data() + static_cast<size_t>(r) * rb, qx.data() + static_cast<size_t>(c) * by);
                    ok &= std::memcmp(&one, &out[static_cast<size_t>(c) * 3 + static_cast<size_t>(r)], 4) == 0;
                }
        }
        char name[64];
        std::snprintf(name, sizeof name, "vec_dot_2 %s (%s)", type_traits(t).name, vec_dot_isa());
        check(ok, name);
    }
    // One row against several tokens: every output the one-token kernel's bits.
    for (const auto& cs : cases) {
        const GgmlType t = cs.w;
        const VecDotNFn many = find_vec_dot_n(t);
        if (!many) {
            std::printf("%-40s none on this CPU\n", (std::string("vec_dot_n ") + type_traits(t).name).c_str());
            continue;
        }
        const int64_t n = 512;
        bool ok = true;
        std::vector<float> w(n), x(kMaxDotCols * n);
        for (auto& v : w) v = nd(rng) * 0.05f;
        for (auto& v : x) v = nd(rng);
        const auto qw = quantize_tensor(w.data(), 1, n, t);
        const auto qx = quantize_tensor(x.data(), kMaxDotCols, n, cs.a);
        const size_t by = qx.size() / kMaxDotCols;
        for (int nc = 1; nc <= kMaxDotCols; ++nc) {
            std::vector<float> out(static_cast<size_t>(nc) * 3, -1.f);
            many(n, qw.data(), qx.data(), by, nc, out.data(), 3);
            for (int c = 0; c < nc; ++c) {
                const float one = find_vec_dot(t)(n, qw.data(), qx.data() + static_cast<size_t>(c) * by);
                ok &= std::memcmp(&one, &out[static_cast<size_t>(c) * 3], 4) == 0;
            }
        }
        char name[64];
        std::snprintf(name, sizeof name, "vec_dot_n %s (%s)", type_traits(t).name, vec_dot_isa());
        check(ok, name);
    }
    std::printf("kernel checks: %d failed\n", failures);
    return failures ? 1 : 0;
}

// SIMD kernels against the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/gemm.hpp"

namespace qforge {
namespace {

TEST(Gemm, Avx2MatchesScalarAndIgnoresTiling) {
    if (best_gemm_f32() != gemm_f32_avx2) GTEST_SKIP() << "no AVX2+FMA on this CPU";
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int64_t K : {8, 64, 172, 512}) {
        const int64_t rows = 13;
        const int B = 7;
        std::vector<float> W(static_cast<size_t>(rows * K)), X(static_cast<size_t>(B * K));
        for (auto& v : W) v = nd(rng);
        for (auto& v : X) v = nd(rng);
        X[5] = 0.f;  // edge values
        W[3] = 1e4f;
        std::vector<float> ys(static_cast<size_t>(rows * B)), ya(ys.size()), yt(ys.size());
        gemm_f32_scalar(W.data(), K, rows, X.data(), K, B, K, ys.data(), rows);
        gemm_f32_avx2(W.data(), K, rows, X.data(), K, B, K, ya.data(), rows);
        for (size_t i = 0; i < ys.size(); ++i) EXPECT_NEAR(ya[i], ys[i], 1e-3f * (1.f + std::fabs(ys[i]))) << K;
        // Split rows and tokens differently: bit-identical results.
        gemm_f32_avx2(W.data(), K, 5, X.data(), K, B, K, yt.data(), rows);
        gemm_f32_avx2(W.data() + 5 * K, K, rows - 5, X.data(), K, B, K, yt.data() + 5, rows);
        EXPECT_EQ(std::vector<float>(yt.begin(), yt.end()), ya) << K;
        for (int b = 0; b < B; ++b)
            gemm_f32_avx2(W.data(), K, rows, X.data() + b * K, K, 1, K, yt.data() + b * rows, rows);
        EXPECT_EQ(yt, ya) << "single-token path differs, K=" << K;
    }
}

}  // namespace
}  // namespace qforge

#include "kernels/vec_dot.hpp"
#include "qforge/quantize.hpp"

namespace qforge {
namespace {

struct DotCase {
    GgmlType w, a;
    VecDotFn scalar, simd;
};

TEST(VecDot, SimdMatchesScalarAndDequantizedDot) {
    if (find_vec_dot(GgmlType::Q4_0) != vec_dot_q4_0_q8_0_avx2) GTEST_SKIP() << "no AVX2 on this CPU";
    const DotCase cases[] = {
        {GgmlType::Q4_0, GgmlType::Q8_0, vec_dot_q4_0_q8_0_scalar, vec_dot_q4_0_q8_0_avx2},
        {GgmlType::Q8_0, GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar, vec_dot_q8_0_q8_0_avx2},
        {GgmlType::Q4_K, GgmlType::Q8_K, vec_dot_q4_k_q8_k_scalar, vec_dot_q4_k_q8_k_avx2},
        {GgmlType::Q6_K, GgmlType::Q8_K, vec_dot_q6_k_q8_k_scalar, vec_dot_q6_k_q8_k_avx2},
    };
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (const auto& c : cases) {
        for (int trial = 0; trial < 4; ++trial) {
            const int64_t n = 512;
            std::vector<float> w(n), x(n);
            for (auto& v : w) v = nd(rng) * (trial == 1 ? 1e3f : 0.05f);
            for (auto& v : x) v = nd(rng);
            if (trial == 2) std::fill(w.begin(), w.end(), 0.f);  // edge: zeros
            if (trial == 3) std::fill(x.begin(), x.end(), 0.25f);  // edge: constant
            const auto qw = quantize_tensor(w.data(), 1, n, c.w);
            const auto qx = quantize_tensor(x.data(), 1, n, c.a);
            const float ref = c.scalar(n, qw.data(), qx.data());
            const float simd = c.simd(n, qw.data(), qx.data());
            EXPECT_NEAR(simd, ref, 1e-4f * (1.f + std::fabs(ref))) << type_traits(c.w).name << " trial " << trial;
            // The scalar reference equals the dot product of the dequantized vectors.
            const auto dw = dequantize(c.w, qw, n), dx = dequantize(c.a, qx, n);
            double d = 0;
            for (int64_t i = 0; i < n; ++i) d += static_cast<double>(dw[static_cast<size_t>(i)]) * dx[static_cast<size_t>(i)];
            EXPECT_NEAR(ref, d, 1e-3 * (1.0 + std::fabs(d))) << type_traits(c.w).name << " trial " << trial;
        }
    }
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

TEST(VecDot, EveryAvx2KernelMatchesTheGenericReference) {
    if (find_vec_dot(GgmlType::Q4_0) != vec_dot_q4_0_q8_0_avx2) GTEST_SKIP() << "no AVX2 on this CPU";
    std::mt19937 rng(13);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (GgmlType t : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                       GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const VecDotFn vd = find_vec_dot(t);
        ASSERT_NE(vd, nullptr) << type_traits(t).name;
        const GgmlType at = type_traits(t).vec_dot_type;
        for (int trial = 0; trial < 4; ++trial) {
            const int64_t n = 768;
            std::vector<float> w(n), x(n);
            for (auto& v : w) v = nd(rng) * (trial == 1 ? 30.f : 0.05f);
            for (auto& v : x) v = nd(rng);
            if (trial == 2) std::fill(w.begin(), w.end(), 0.f);
            if (trial == 3) std::fill(x.begin(), x.end(), 0.75f);
            const auto qw = quantize_tensor(w.data(), 1, n, t);
            const auto qx = quantize_tensor(x.data(), 1, n, at);
            const float ref = vec_dot_generic(t, n, qw.data(), qx.data());
            EXPECT_NEAR(vd(n, qw.data(), qx.data()), ref, 2e-4f * (1.f + std::fabs(ref))) << type_traits(t).name << " trial " << trial;
        }
    }
}

}  // namespace
}  // namespace qforge

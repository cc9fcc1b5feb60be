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

// Every format round-trips within its expected error; edge cases are handled.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "qforge/error.hpp"
#include "qforge/quantize.hpp"

namespace qforge {
namespace {

// Gaussian rows (std 0.02) with a few outliers per row, like trained LLM weights.
std::vector<float> llm_like(int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 0.02f);
    std::vector<float> x(static_cast<size_t>(rows * cols));
    for (auto& v : x) v = nd(rng);
    std::uniform_int_distribution<int64_t> col(0, cols - 1);
    for (int64_t r = 0; r < rows; ++r)
        for (int k = 0; k < 3; ++k) x[static_cast<size_t>(r * cols + col(rng))] = (k % 2 ? -1.f : 1.f) * 0.2f;
    return x;
}

double rel_rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += a[i] * a[i];
    }
    return std::sqrt(num / den);
}

struct Case {
    GgmlType type;
    double max_rel_rmse;  // relative RMS error bound on llm_like data
};

class QuantRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(QuantRoundTrip, ErrorWithinBound) {
    const auto [type, bound] = GetParam();
    const int64_t rows = 16, cols = 512;
    const auto x = llm_like(rows, cols, 42);
    const auto q = quantize_tensor(x.data(), rows, cols, type);
    EXPECT_EQ(q.size(), *row_bytes(type_traits(type), cols) * rows);
    const auto y = dequantize(type, q, rows * cols);
    const double err = rel_rmse(x, y);
    EXPECT_LT(err, bound) << type_traits(type).name;
    // With an importance matrix the result is still a valid encoding of the same data.
    std::vector<float> imat(static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) imat[static_cast<size_t>(c)] = 1.0f + static_cast<float>(c % 7);
    const auto qi = quantize_tensor(x.data(), rows, cols, type, imat);
    EXPECT_LT(rel_rmse(x, dequantize(type, qi, rows * cols)), bound * 1.5) << type_traits(type).name << " with imatrix";
    // The thread count does not change the bytes.
    EXPECT_EQ(quantize_tensor(x.data(), rows, cols, type, {}, 3), q);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, QuantRoundTrip,
                         ::testing::Values(Case{GgmlType::F32, 1e-9}, Case{GgmlType::F16, 1e-3}, Case{GgmlType::BF16, 5e-3},
                                           Case{GgmlType::Q8_0, 0.01}, Case{GgmlType::Q8_1, 0.01}, Case{GgmlType::Q6_K, 0.03},
                                           Case{GgmlType::Q5_0, 0.08}, Case{GgmlType::Q5_1, 0.06}, Case{GgmlType::Q5_K, 0.06},
                                           Case{GgmlType::Q4_0, 0.16}, Case{GgmlType::Q4_1, 0.12}, Case{GgmlType::Q4_K, 0.12},
                                           Case{GgmlType::IQ4_NL, 0.12}, Case{GgmlType::IQ4_XS, 0.12},
                                           Case{GgmlType::Q3_K, 0.25}, Case{GgmlType::Q2_K, 0.45}, Case{GgmlType::Q8_K, 0.025}),
                         [](const auto& info) { return std::string(type_traits(info.param.type).name); });

const GgmlType kQuantTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                GgmlType::IQ4_NL, GgmlType::IQ4_XS};

TEST(QuantEdge, ZerosAndConstantsAreExactOrClose) {
    for (GgmlType t : kQuantTypes) {
        SCOPED_TRACE(type_traits(t).name);
        std::vector<float> zeros(256, 0.f);
        auto y = dequantize(t, quantize_tensor(zeros.data(), 1, 256, t), 256);
        for (float v : y) EXPECT_EQ(v, 0.f);
        std::vector<float> c(256, 0.37f);
        y = dequantize(t, quantize_tensor(c.data(), 1, 256, t), 256);
        for (float v : y) EXPECT_NEAR(v, 0.37f, 0.37f * 0.15f);
    }
}

TEST(QuantEdge, HugeRangesAndSubnormals) {
    for (GgmlType t : kQuantTypes) {
        SCOPED_TRACE(type_traits(t).name);
        std::vector<float> x(256);
        for (int i = 0; i < 256; ++i) x[static_cast<size_t>(i)] = (i % 2 ? 1.f : -1.f) * 1e4f * static_cast<float>(i % 5) / 4.f;
        auto y = dequantize(t, quantize_tensor(x.data(), 1, 256, t), 256);
        for (float v : y) EXPECT_TRUE(std::isfinite(v));
        EXPECT_LT(rel_rmse(x, y), 0.5);
        std::vector<float> sub(256, std::numeric_limits<float>::denorm_min() * 7);
        y = dequantize(t, quantize_tensor(sub.data(), 1, 256, t), 256);
        for (float v : y) EXPECT_TRUE(std::isfinite(v));
    }
}

TEST(QuantEdge, NanOrInfInputIsAClearError) {
    for (GgmlType t : kQuantTypes) {
        std::vector<float> x(256, 0.1f);
        x[17] = std::numeric_limits<float>::quiet_NaN();
        try {
            quantize_tensor(x.data(), 1, 256, t);
            FAIL() << "no error for " << type_traits(t).name;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("NaN or Inf"), std::string::npos);
        }
        x[17] = std::numeric_limits<float>::infinity();
        EXPECT_THROW(quantize_tensor(x.data(), 1, 256, t), Error);
    }
}

TEST(QuantEdge, RowLengthMustBeAMultipleOfTheBlock) {
    std::vector<float> x(100, 0.f);
    EXPECT_THROW(quantize_tensor(x.data(), 1, 100, GgmlType::Q4_K), Error);
    EXPECT_THROW(quantize_tensor(x.data(), 1, 100, GgmlType::Q4_0), Error);
}

TEST(TypeTable, SizesAndNames) {
    EXPECT_EQ(type_traits(GgmlType::Q4_K).type_size, 144u);
    EXPECT_DOUBLE_EQ(type_traits(GgmlType::Q4_K).bits_per_weight(), 4.5);
    EXPECT_EQ(find_type_by_name("Q6_k")->type, GgmlType::Q6_K);
    EXPECT_EQ(find_type(4), nullptr);  // removed Q4_2
    EXPECT_EQ(find_type(39)->block_size, 32);
    EXPECT_FALSE(row_bytes(type_traits(GgmlType::Q2_K), 100).has_value());
}

}  // namespace
}  // namespace qforge

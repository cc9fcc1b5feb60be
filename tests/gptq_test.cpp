// GPTQ: against plain rounding with the same importance (diag H), on correlated inputs the output
// error on those inputs is smaller, and what it returns is what the format stores.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qforge/error.hpp"
#include "qforge/gptq.hpp"
#include "qforge/mlx_model.hpp"
#include "kernels/panel.hpp"
#include "qforge/quantize.hpp"

namespace qforge {
namespace {

struct Case {
    int64_t rows, K, n;  // n calibration inputs
    std::vector<float> W, X;
    std::vector<double> H;
};

// Inputs with correlated columns and uneven scales (like activations), weights with outliers.
Case make_case(int64_t rows, int64_t K, int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    Case c{rows, K, n, std::vector<float>(static_cast<size_t>(rows * K)), std::vector<float>(static_cast<size_t>(n * K)), {}};
    for (auto& v : c.W) v = nd(rng) * 0.02f;
    for (int64_t r = 0; r < rows; ++r) c.W[static_cast<size_t>(r * K + (r * 7) % K)] = 0.2f;
    std::vector<float> scale(static_cast<size_t>(K));
    for (auto& s : scale) s = std::exp(nd(rng));
    for (int64_t t = 0; t < n; ++t) {
        const float common = nd(rng);
        for (int64_t k = 0; k < K; ++k) c.X[static_cast<size_t>(t * K + k)] = scale[static_cast<size_t>(k)] * (0.6f * common + 0.8f * nd(rng));
    }
    c.H.assign(static_cast<size_t>(K * K), 0.0);
    for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j)
                c.H[static_cast<size_t>(i * K + j)] += static_cast<double>(c.X[static_cast<size_t>(t * K + i)]) * c.X[static_cast<size_t>(t * K + j)];
    return c;
}

// sum over inputs and rows of ((W - Q) x)^2
double output_error(const Case& c, const std::vector<float>& Q) {
    double e = 0;
    for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t t = 0; t < c.n; ++t) {
            double s = 0;
            for (int64_t k = 0; k < c.K; ++k)
                s += (static_cast<double>(c.W[static_cast<size_t>(r * c.K + k)]) - Q[static_cast<size_t>(r * c.K + k)]) * c.X[static_cast<size_t>(t * c.K + k)];
            e += s * s;
        }
    return e;
}

TEST(Gptq, BeatsImportanceWeightedRoundingOnTheOutput) {
    const Case c = make_case(16, 512, 600, 3);
    std::vector<float> imp(static_cast<size_t>(c.K));
    for (int64_t k = 0; k < c.K; ++k) imp[static_cast<size_t>(k)] = static_cast<float>(c.H[static_cast<size_t>(k * c.K + k)] / static_cast<double>(c.n));
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                       GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
        ASSERT_TRUE(gptq_supports(t)) << type_traits(t).name;
        const auto plain = dequantize(t, quantize_tensor(c.W.data(), c.rows, c.K, t, imp), c.rows * c.K);
        std::vector<float> g = c.W;
        gptq_matrix(g.data(), c.rows, c.K, t, c.H, GptqOptions{0.01, 2});
        // Stored as the format stores it: quantizing the result gives it back (or nearly: the
        // format's quantizer searches its scales anew).
        const auto stored = dequantize(t, quantize_tensor(g.data(), c.rows, c.K, t, imp), c.rows * c.K);
        const double e_plain = output_error(c, plain), e_gptq = output_error(c, g), e_stored = output_error(c, stored);
        EXPECT_LT(e_gptq, 0.9 * e_plain) << type_traits(t).name;
        EXPECT_LT(e_stored, 0.9 * e_plain) << type_traits(t).name << " after requantizing: " << e_stored << " vs " << e_gptq;
        // The bytes GPTQ writes itself hold exactly its values.
        std::vector<float> g2 = c.W;
        std::vector<uint8_t> bytes(static_cast<size_t>(c.rows) * *row_bytes(type_traits(t), c.K));
        gptq_matrix(g2.data(), c.rows, c.K, t, c.H, GptqOptions{0.01, 2}, bytes.data());
        EXPECT_EQ(dequantize(t, bytes, c.rows * c.K), g2) << type_traits(t).name;
        // Activation order (static groups): also below rounding, also stored exactly.
        std::vector<float> g3 = c.W;
        gptq_matrix(g3.data(), c.rows, c.K, t, c.H, GptqOptions{0.01, 2, true}, bytes.data());
        EXPECT_EQ(dequantize(t, bytes, c.rows * c.K), g3) << type_traits(t).name;
        const double e_act = output_error(c, g3);
        EXPECT_LT(e_act, 0.9 * e_plain) << type_traits(t).name;
        std::printf("%-7s act-order %.2fx\n", type_traits(t).name, e_act / e_plain);
        std::printf("%-7s output error: plain %.4g, gptq %.4g (%.2fx), requantized %.4g (%.2fx)\n", type_traits(t).name, e_plain, e_gptq,
                    e_gptq / e_plain, e_stored, e_stored / e_plain);
    }
}

// put_block_codes is the inverse of the panel unpacking: the codes of a quantized block put back
// into it with its codes cleared give the same bytes.
// MLX affine: the weighted fit never loses to MLX's own scales on the weighted error, GPTQ beats
// both on the output, and the tensor it returns dequantizes (as MLX does) to its values.
TEST(Gptq, MlxAffine) {
    const Case c = make_case(16, 512, 600, 5);
    std::vector<float> imp(static_cast<size_t>(c.K));
    for (int64_t k = 0; k < c.K; ++k) imp[static_cast<size_t>(k)] = static_cast<float>(c.H[static_cast<size_t>(k * c.K + k)] / static_cast<double>(c.n));
    for (int bits : {2, 3, 4, 8})
        for (int gs : {32, 64, 128})
            for (MlxDtype dt : {MlxDtype::F16, MlxDtype::BF16}) {
                const MlxAffineParams p{bits, gs, dt};
                MlxAffineTensor plain = mlx_affine_empty(p, c.rows, c.K), fit = mlx_affine_empty(p, c.rows, c.K);
                mlx_affine_quantize(c.W.data(), c.rows, c.K, p, plain.wq.data(), plain.scales.data(), plain.biases.data());
                mlx_affine_quantize_weighted(c.W.data(), c.rows, c.K, p, imp.data(), fit.wq.data(), fit.scales.data(), fit.biases.data());
                const auto vp = mlx_dequantize_f32(plain), vf = mlx_dequantize_f32(fit);
                for (int64_t r = 0; r < c.rows; ++r)
                    for (int64_t g = 0; g < c.K / gs; ++g) {
                        double ep = 0, ef = 0;
                        for (int64_t j = g * gs; j < (g + 1) * gs; ++j) {
                            const size_t i = static_cast<size_t>(r * c.K + j);
                            ep += imp[static_cast<size_t>(j)] * std::pow(static_cast<double>(c.W[i]) - vp[i], 2);
                            ef += imp[static_cast<size_t>(j)] * std::pow(static_cast<double>(c.W[i]) - vf[i], 2);
                        }
                        ASSERT_LE(ef, ep * (1 + 1e-6)) << bits << "-bit g" << gs << " row " << r << " group " << g;
                    }
                std::vector<float> g = c.W;
                const MlxAffineTensor q = gptq_mlx_matrix(g.data(), c.rows, c.K, p, c.H, GptqOptions{0.01, 2});
                EXPECT_EQ(mlx_dequantize_f32(q), g) << bits << "-bit g" << gs;
                std::vector<float> ga = c.W;
                const MlxAffineTensor qa = gptq_mlx_matrix(ga.data(), c.rows, c.K, p, c.H, GptqOptions{0.01, 2, true});
                EXPECT_EQ(mlx_dequantize_f32(qa), ga) << bits << "-bit g" << gs << " act-order";
                EXPECT_LT(output_error(c, ga), output_error(c, vp)) << bits << "-bit g" << gs << " act-order";
                const double e_plain = output_error(c, vp), e_fit = output_error(c, vf), e_gptq = output_error(c, g);
                EXPECT_LT(e_fit, e_plain) << bits << "-bit g" << gs;
                EXPECT_LT(e_gptq, 0.9 * e_fit) << bits << "-bit g" << gs;
                if (dt == MlxDtype::F16 && gs == 64)
                    std::printf("MLX %d-bit g%d output error: MLX %.4g, fitted %.2fx, gptq %.2fx\n", bits, gs, e_plain, e_fit / e_plain, e_gptq / e_plain);
            }
}

TEST(Gptq, BlockCodesRoundTrip) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                       GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
        const int64_t n = type_traits(t).block_size;
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& v : x) v = nd(rng) + 0.3f;
        const auto q = quantize_tensor(x.data(), 1, n, t);
        const PanelFormat* f = find_panel_format(t);
        std::vector<int8_t> codes(static_cast<size_t>(n));
        std::vector<float> s(static_cast<size_t>(n)), m(static_cast<size_t>(n));
        f->unpack(q.data(), n, codes.data(), s.data(), m.data());
        std::vector<uint8_t> back = q;
        put_block_codes(t, back.data(), codes.data());
        EXPECT_EQ(back, q) << type_traits(t).name;
        // And other codes land where the unpacking finds them.
        for (auto& c : codes) c = static_cast<int8_t>(c == codes[0] ? codes[1] : codes[0]);
        put_block_codes(t, back.data(), codes.data());
        std::vector<int8_t> again(static_cast<size_t>(n));
        f->unpack(back.data(), n, again.data(), s.data(), m.data());
        EXPECT_EQ(again, codes) << type_traits(t).name;
    }
}

TEST(Gptq, ErrorsAreClear) {
    const Case c = make_case(2, 64, 80, 4);
    std::vector<float> w = c.W;
    EXPECT_THROW(gptq_matrix(w.data(), 2, 64, GgmlType::F16, c.H, {}), Error);  // no grid
    EXPECT_THROW(gptq_matrix(w.data(), 2, 64, GgmlType::Q4_K, c.H, {}), Error);  // not whole super-blocks
    EXPECT_FALSE(gptq_supports(GgmlType::F32));
}

}  // namespace
}  // namespace qforge

// SIMD kernels against the scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <cmath>
#include <string>
#include <random>

#include "kernels/cpu.hpp"
#include "kernels/gemm.hpp"

namespace qforge {
namespace {

// The attention's helpers: the dispatched forms give the portable ones' bits, every length.
TEST(Gemm, AttentionHelpersMatchThePortableOnes) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 3.f);
    const DotF32Fn dot = best_dot_f32();
    const AxpyF32Fn axpy = best_axpy_f32();
    const RoundF16Fn round = best_round_f16();
    for (int n = 0; n <= 70; ++n) {
        std::vector<float> a(static_cast<size_t>(n)), b(a.size()), y0(a.size()), y1;
        for (size_t i = 0; i < a.size(); ++i) a[i] = nd(rng), b[i] = nd(rng), y0[i] = nd(rng);
        EXPECT_EQ(std::bit_cast<uint32_t>(dot(a.data(), b.data(), n)), std::bit_cast<uint32_t>(dot_f32(a.data(), b.data(), n))) << n;
        y1 = y0;
        axpy(0.37f, a.data(), y0.data(), n);
        axpy_f32(0.37f, a.data(), y1.data(), n);
        EXPECT_EQ(y0, y1) << n;
        // Many positions a call (rows 0..9 of a cache with a stride): the one-row helpers' bits.
        for (int64_t rows : {0, 1, 3, 4, 9}) {
            const size_t ld = static_cast<size_t>(n) + 3;
            std::vector<float> cache(static_cast<size_t>(rows) * ld + 1), s(static_cast<size_t>(rows)), o0(s.size()), o1(s.size());
            for (auto& v : cache) v = nd(rng);
            for (auto& v : s) v = nd(rng);
            best_dot_f32_rows()(a.data(), cache.data(), ld, rows, n, o0.data());
            for (int64_t p = 0; p < rows; ++p) o1[static_cast<size_t>(p)] = dot_f32(a.data(), cache.data() + static_cast<size_t>(p) * ld, n);
            for (size_t p = 0; p < s.size(); ++p) EXPECT_EQ(std::bit_cast<uint32_t>(o0[p]), std::bit_cast<uint32_t>(o1[p])) << n << " " << rows;
            std::vector<float> z0 = y1, z1 = y1;
            best_axpy_f32_rows()(s.data(), cache.data(), ld, rows, n, z0.data());
            for (int64_t p = 0; p < rows; ++p) axpy_f32(s[static_cast<size_t>(p)], cache.data() + static_cast<size_t>(p) * ld, z1.data(), n);
            EXPECT_EQ(z0, z1) << n << " " << rows;
        }
        // f16's edges: ties, subnormals, overflow, infinities, NaN
        const float edges[] = {1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 0x1p-25f, 0x1.8p-25f, 0x1p-20f + 0x1p-30f, 65519.f, 65520.f, 1e9f,
                               -std::numeric_limits<float>::infinity(), -0.0f, 6.1e-5f, std::numeric_limits<float>::quiet_NaN()};
        for (size_t i = 0; i < a.size() && i < std::size(edges); ++i) a[i * 5 % a.size()] = edges[i];
        std::vector<float> r0(a.size()), r1(a.size());
        round(a.data(), r0.data(), n);
        round_f16_f32(a.data(), r1.data(), n);
        for (size_t i = 0; i < a.size(); ++i) {
            if (std::isnan(r1[i])) EXPECT_TRUE(std::isnan(r0[i])) << n << " " << i;
            else EXPECT_EQ(std::bit_cast<uint32_t>(r0[i]), std::bit_cast<uint32_t>(r1[i])) << n << " " << a[i];
        }
    }
}

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
#include "quant/affine_blocks.hpp"
#include "qforge/quantize.hpp"

namespace qforge {
namespace {

// Random weights and activations, with edge cases: large values, zeros, constants, and an
// activation outlier that makes q8_K hold -128.
std::pair<std::vector<float>, std::vector<float>> dot_case(std::mt19937& rng, int64_t n, int trial) {
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n));
    for (auto& v : w) v = nd(rng) * (trial == 1 ? 30.f : 0.05f);
    for (auto& v : x) v = nd(rng);
    if (trial == 2) std::fill(w.begin(), w.end(), 0.f);
    if (trial == 3) std::fill(x.begin(), x.end(), 0.75f);
    if (trial == 4)
        for (size_t i = 0; i < x.size(); i += 37) x[i] = -20.f;
    return {w, x};
}

TEST(VecDot, ScalarReferencesEqualTheDequantizedDot) {
    const std::pair<GgmlType, VecDotFn> cases[] = {{GgmlType::Q4_0, vec_dot_q4_0_q8_0_scalar},
                                                   {GgmlType::Q8_0, vec_dot_q8_0_q8_0_scalar},
                                                   {GgmlType::Q4_1, vec_dot_q4_1_q8_1_scalar},
                                                   {GgmlType::Q5_1, vec_dot_q5_1_q8_1_scalar},
                                                   {GgmlType::Q4_K, vec_dot_q4_k_q8_k_scalar},
                                                   {GgmlType::Q6_K, vec_dot_q6_k_q8_k_scalar},
                                                   {GgmlType::MLX_A2, vec_dot_mlx_q8_0_scalar<BlockMlxA2>},
                                                   {GgmlType::MLX_A3, vec_dot_mlx_q8_0_scalar<BlockMlxA3>},
                                                   {GgmlType::MLX_A6, vec_dot_mlx_q8_0_scalar<BlockMlxA6>},
                                                   {GgmlType::MLX_A8, vec_dot_mlx_q8_0_scalar<BlockMlxA8>}};
    std::mt19937 rng(11);
    for (const auto& [t, fn] : cases) {
        for (int trial = 0; trial < 5; ++trial) {
            const int64_t n = 512;
            const auto [w, x] = dot_case(rng, n, trial);
            const auto qw = quantize_tensor(w.data(), 1, n, t);
            const auto qx = quantize_tensor(x.data(), 1, n, type_traits(t).vec_dot_type);
            const float ref = vec_dot_generic(t, n, qw.data(), qx.data());
            // q8_1 stores d*sum(y) in f16: allow that rounding, times the largest weight minimum.
            const float tol = t == GgmlType::Q4_1 || t == GgmlType::Q5_1 ? 2e-3f : 1e-4f;
            EXPECT_NEAR(fn(n, qw.data(), qx.data()), ref, tol * (1.f + std::fabs(ref))) << type_traits(t).name << " trial " << trial;
        }
    }
}

VecDotFn find_scalar(GgmlType t) { return t == GgmlType::Q4_1 ? vec_dot_q4_1_q8_1_scalar : vec_dot_q5_1_q8_1_scalar; }

// Every SIMD kernel this CPU runs: one row against the f32 reference, several rows at once equal
// to one at a time (bit for bit), and every instruction set giving the same bits.
TEST(VecDot, EverySimdKernelMatchesTheReference) {
    const auto sets = usable_kernel_sets();
    if (sets.empty()) GTEST_SKIP() << "no SIMD kernels on this CPU";
    std::mt19937 rng(13);
    for (const DotKernel* k = sets.front().begin; k != sets.front().end; ++k) {
        const GgmlType t = k->type, at = type_traits(t).vec_dot_type;
        for (int trial = 0; trial < 5; ++trial) {
            const int64_t n = t == GgmlType::F16 ? 776 : 768;  // F16 also gets a tail
            std::vector<std::vector<uint8_t>> qx;
            std::vector<uint8_t> qw;
            for (int c = 0; c < kMaxDotCols; ++c) {
                const auto [w, x] = dot_case(rng, n, trial);
                if (c == 0) qw = quantize_tensor(w.data(), 1, n, t);
                qx.push_back(quantize_tensor(x.data(), 1, n, at));
            }
            const size_t by = qx[0].size();
            std::vector<uint8_t> packed;
            for (const auto& q : qx) packed.insert(packed.end(), q.begin(), q.end());
            for (const KernelSet& s : sets) {
                const DotKernel* ks = std::find_if(s.begin, s.end, [&](const DotKernel& d) { return d.type == t; });
                ASSERT_NE(ks, s.end) << s.isa << " lacks " << type_traits(t).name;
                for (int c = 0; c < kMaxDotCols; ++c) {
                    // q8_1 keeps the activation sum in f16: compare those with their own scalar reference.
                    const float ref = at == GgmlType::Q8_1 ? find_scalar(t)(n, qw.data(), qx[static_cast<size_t>(c)].data())
                                                           : vec_dot_generic(t, n, qw.data(), qx[static_cast<size_t>(c)].data());
                    const float one = ks->one(n, qw.data(), qx[static_cast<size_t>(c)].data());
                    EXPECT_NEAR(one, ref, 2e-4f * (1.f + std::fabs(ref))) << s.isa << " " << type_traits(t).name << " trial " << trial;
                    EXPECT_EQ(one, k->one(n, qw.data(), qx[static_cast<size_t>(c)].data())) << s.isa << " vs " << sets.front().isa;
                }
                for (int nc = 1; nc <= kMaxDotCols; ++nc) {
                    float out[2 * kMaxDotCols];
                    ks->many(n, qw.data(), packed.data(), by, nc, out, 2);
                    for (int c = 0; c < nc; ++c)
                        EXPECT_EQ(out[2 * c], ks->one(n, qw.data(), qx[static_cast<size_t>(c)].data()))
                            << s.isa << " " << type_traits(t).name << " nc " << nc << " col " << c;
                }
            }
        }
    }
}

TEST(VecDot, EveryQuantizedTypeWithAnX86KernelHasOne) {
    const auto sets = usable_kernel_sets();
    if (sets.empty() || std::string(sets.back().isa) != "avx2") GTEST_SKIP() << "no x86 SIMD kernels on this CPU";
    for (GgmlType t : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                       GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL,
                       GgmlType::IQ4_XS, GgmlType::MLX_A2, GgmlType::MLX_A3, GgmlType::MLX_A6, GgmlType::MLX_A8}) {
        EXPECT_NE(find_vec_dot_n(t), nullptr) << type_traits(t).name;
        EXPECT_NE(find_vec_dot(t), nullptr) << type_traits(t).name;
    }
}

}  // namespace
}  // namespace qforge

#include "kernels/panel.hpp"

namespace qforge {
namespace {

// Panels: the SIMD packers equal the portable unpackers bit for bit, and every panel kernel this
// CPU runs gives the dot products of the dequantized rows (within f32 rounding).
TEST(Panel, PackersAndKernelsMatchTheReference) {
    const auto sets = usable_kernel_sets();
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.f, 1.f);
    const int64_t K = 512;
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_1, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL,
                       GgmlType::IQ4_XS, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q2_K, GgmlType::Q3_K,
                       GgmlType::MLX_A2, GgmlType::MLX_A3, GgmlType::MLX_A6, GgmlType::MLX_A8}) {
        const PanelFormat* f = find_panel_format(t);
        ASSERT_NE(f, nullptr) << type_traits(t).name;
        const GgmlType at = type_traits(t).vec_dot_type;
        for (int nrows : {8, 5}) {
            std::vector<float> w(static_cast<size_t>(nrows * K)), x(static_cast<size_t>(6 * K));
            for (auto& v : w) v = nd(rng) * 0.05f;
            for (auto& v : x) v = nd(rng);
            w[7] = 2.f;    // an outlier row value
            x[40] = -9.f;  // q8_K gets -128
            const auto qw = quantize_tensor(w.data(), nrows, K, t);
            const size_t rb = qw.size() / static_cast<size_t>(nrows);
            Panel ref;
            pack_panel(*f, qw.data(), rb, nrows, K, ref);
            PanelActs acts;
            resize_panel_acts(acts, K, f->G, 6);
            std::vector<std::vector<uint8_t>> qx;
            for (int c = 0; c < 6; ++c) {
                qx.push_back(quantize_tensor(x.data() + c * K, 1, K, at));
                pack_panel_acts(at, qx.back().data(), c, acts);
            }
            float out_ref[8 * 4];
            panel_gemm_scalar(ref, acts, 2, 4, out_ref);
            for (int c = 0; c < 4; ++c)
                for (int r = 0; r < 8; ++r) {
                    double d = 0;
                    if (r < nrows) {
                        const auto dw = dequantize(t, std::vector<uint8_t>(qw.begin() + static_cast<ptrdiff_t>(rb) * r, qw.begin() + static_cast<ptrdiff_t>(rb) * (r + 1)), K);
                        const auto dx = dequantize(at, qx[static_cast<size_t>(c + 2)], K);
                        for (int64_t i = 0; i < K; ++i) d += static_cast<double>(dw[static_cast<size_t>(i)]) * dx[static_cast<size_t>(i)];
                    }
                    // q8_1's stored sum is f16; panels use the exact sum of the codes.
                    EXPECT_NEAR(out_ref[c * 8 + r], d, 2e-4 * (1.0 + std::fabs(d))) << type_traits(t).name << " row " << r << " col " << c;
                }
            for (const KernelSet& s : sets) {
                if (f->max_code > s.panel_max_code) continue;
                const PanelGemmFn gemm = s.panel[f->G == 16 ? 0 : 1][f->has_min ? 1 : 0];
                const PanelPacker* pk = std::find_if(s.packers_begin, s.packers_end, [&](const PanelPacker& p) { return p.type == t; });
                ASSERT_NE(pk, s.packers_end) << s.isa << " " << type_traits(t).name;
                Panel simd;
                pk->pack(qw.data(), rb, nrows, K, simd);
                EXPECT_EQ(simd.codes, ref.codes) << s.isa << " " << type_traits(t).name;
                EXPECT_EQ(simd.scale, ref.scale) << s.isa << " " << type_traits(t).name;
                EXPECT_EQ(simd.min, ref.min) << s.isa << " " << type_traits(t).name;
                EXPECT_EQ(simd.bias, ref.bias) << s.isa << " " << type_traits(t).name;
                for (int nc = 1; nc <= 4; ++nc) {
                    float out[8 * 4];
                    gemm(simd, acts, 2, nc, out);
                    for (int i = 0; i < nc * 8; ++i)
                        EXPECT_NEAR(out[i], out_ref[i], 1e-5f * (1.f + std::fabs(out_ref[i]))) << s.isa << " " << type_traits(t).name << " nc " << nc;
                }
            }
        }
    }
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// The SIMD activation quantizers write the same bytes as the portable ones, ties included.
TEST(ActQuant, SimdEqualsPortable) {
    const auto sets = usable_kernel_sets();
    if (sets.empty() || !sets.back().quantize_q8_0) GTEST_SKIP() << "no SIMD activation quantizers on this CPU";
    std::mt19937 rng(19);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int trial = 0; trial < 6; ++trial) {
        const int64_t n = 1024;
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& v : x) v = nd(rng) * (trial == 1 ? 1e4f : 1.f);
        if (trial == 2) std::fill(x.begin(), x.begin() + 300, 0.f);  // all-zero blocks
        if (trial == 3)  // exact halves: with 127 in the block, id = 1 and x * id = x
            for (size_t i = 0; i < x.size(); ++i) x[i] = i % 32 == 0 ? 127.f : static_cast<float>(static_cast<int>(i % 9) - 4) + 0.5f;
        if (trial == 4) {  // equal magnitudes, opposite signs
            x[5] = 50.f;
            x[7] = -50.f;
        }
        std::vector<float> xf = x;  // f16's edges: ties, subnormals, overflow, inf, NaN, a tail
        if (trial == 5) {
            const float edges[] = {1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 0x1p-25f, 0x1.8p-25f, 0x1p-20f + 0x1p-30f, 65519.f, 65520.f, 1e9f,
                                   -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                   std::bit_cast<float>(0x7f812345u), -0.0f, 6.1e-5f};
            for (size_t i = 0; i < std::size(edges); ++i) xf[i * 7] = edges[i];
        }
        for (const KernelSet& s : sets) {
            if (s.quantize_f16) {
                const int64_t nf = n - 3;
                std::vector<uint8_t> ref(static_cast<size_t>(nf) * 2), got(ref.size());
                type_traits(GgmlType::F16).quantize(xf.data(), ref.data(), nf, nullptr);
                s.quantize_f16(xf.data(), got.data(), nf, nullptr);
                EXPECT_EQ(got, ref) << s.isa << " f16 trial " << trial;
            }
            for (auto [t, fn] : {std::pair{GgmlType::Q8_0, s.quantize_q8_0}, std::pair{GgmlType::Q8_K, s.quantize_q8_k}}) {
                const auto ref = quantize_tensor(x.data(), 1, n, t);
                std::vector<uint8_t> got(ref.size());
                fn(x.data(), got.data(), n, nullptr);
                EXPECT_EQ(got, ref) << s.isa << " " << type_traits(t).name << " trial " << trial;
            }
        }
    }
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// A format regrouped eight rows at a time: the scalar form equals the per-row reference dot, the
// SIMD kernels equal the scalar form for 1-8 tokens, and every instruction set gives the same bits.
template <class Acts, class Gemm>
void check_regrouped(GgmlType t, GgmlType at, int64_t K, float offset, size_t group_bytes, void (*repack)(const uint8_t*, int64_t, int64_t, uint8_t*),
                     void (*resize)(Acts&, int64_t, int), void (*pack)(const void*, int, Acts&), Gemm scalar, Gemm KernelSet::*member,
                     VecDotFn row_ref, XKGemm16Fn KernelSet::*wide = nullptr, int extreme = 0) {
    std::mt19937 rng(23);
    std::normal_distribution<float> nd(0.f, 1.f);
    const int64_t rows = 16;
    std::vector<float> w(static_cast<size_t>(rows * K)), x(static_cast<size_t>((kGemmCols + 1) * K));
    for (auto& v : w) v = nd(rng) * 0.05f + offset;
    for (auto& v : x) v = nd(rng);
    w[3] = 1.5f;  // an outlier
    if (extreme != 0) {  // the largest sums: codes at one end of their range (extreme's sign), activations all -128
        // A block's first value is its largest magnitude, the others of the other sign: they
        // quantize to the far end of the code range (15 for Q4_0, 63 for Q6_K, ...); equal
        // activations quantize to -128 in q8_K (127 in q8_0).
        for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 16 == 0 ? -extreme : extreme);
        std::fill(x.begin(), x.end(), 1.f);
    }
    const auto qw = quantize_tensor(w.data(), rows, K, t);
    const size_t rb = qw.size() / rows;
    std::vector<uint8_t> packed(group_bytes * (rows / 8));
    repack(qw.data(), rows, K, packed.data());
    Acts acts;
    resize(acts, K, kGemmCols + 1);
    std::vector<std::vector<uint8_t>> qx;
    for (int c = 0; c <= kGemmCols; ++c) {
        qx.push_back(quantize_tensor(x.data() + c * K, 1, K, at));
        pack(qx.back().data(), c, acts);
    }
    // The first token at 0 (every batch the forward pass makes; AVX-512 kernels pair tokens 2k and
    // 2k+1) and at 1 (any offset).
    for (int c0 : {0, 1}) {
        std::vector<float> firsts[2];  // each group's 8-token result
        for (int g = 0; g < 2; ++g) {
            float ref[8 * kGemmCols];
            scalar(packed.data() + g * group_bytes, acts, c0, kGemmCols, ref);
            for (int c = 0; c < kGemmCols; ++c)
                for (int r = 0; r < 8; ++r) {
                    const float row = row_ref(K, qw.data() + (g * 8 + r) * rb, qx[static_cast<size_t>(c + c0)].data());
                    EXPECT_NEAR(ref[c * 8 + r], row, 1e-4f * (1.f + std::fabs(row))) << type_traits(t).name << " group " << g << " row " << r << " col " << c;
                }
            std::vector<float> first;
            for (const KernelSet& s : usable_kernel_sets()) {
                if (!(s.*member)) continue;
                for (int nc = 1; nc <= kGemmCols; ++nc) {
                    float out[8 * kGemmCols];
                    (s.*member)(packed.data() + g * group_bytes, acts, c0, nc, out);
                    for (int i = 0; i < nc * 8; ++i)
                        EXPECT_NEAR(out[i], ref[i], 1e-5f * (1.f + std::fabs(ref[i]))) << s.isa << " " << type_traits(t).name << " nc " << nc << " c0 " << c0;
                    if (nc == kGemmCols) {
                        if (first.empty()) first.assign(out, out + 8 * kGemmCols);
                        else EXPECT_EQ(std::vector<float>(out, out + 8 * kGemmCols), first) << s.isa << " " << type_traits(t).name << " c0 " << c0;
                    }
                }
            }
            firsts[g] = first;
        }
        // Both groups at once (sixteen rows per vector): the same bits as one group at a time.
        if constexpr (std::is_same_v<Acts, XKActs>) {
            if (!wide) continue;
            int ran = 0;
            for (const KernelSet& s : usable_kernel_sets()) {
                if (!(s.*wide) || firsts[0].empty()) continue;
                ++ran;
                float out16[16 * kGemmCols];
                (s.*wide)(packed.data(), group_bytes, acts, c0, out16);
                for (int c = 0; c < kGemmCols; ++c)
                    for (int g = 0; g < 2; ++g)
                        for (int r = 0; r < 8; ++r)
                            EXPECT_EQ(out16[c * 16 + 8 * g + r], firsts[g][static_cast<size_t>(c * 8 + r)])
                                << s.isa << " " << type_traits(t).name << " 16 rows, c0 " << c0 << " token " << c << " row " << 8 * g + r;
            }
            if (cpu_has_avx512vnni() && !kernels_forced_avx2() && !kernels_forced_scalar()) {
                EXPECT_EQ(ran, 1) << "the AVX-512 16-row kernel did not run";
            }
        }
    }
}

TEST(Regrouped, Q4_0) {
    check_regrouped<X8Acts>(GgmlType::Q4_0, GgmlType::Q8_0, 256, 0.f, 8 * 144, repack_q4_0_x8, resize_x8_acts, pack_x8_acts,
                            q4_0_x8_gemm_scalar, &KernelSet::q4_0_x8, vec_dot_q4_0_q8_0_scalar);
}

TEST(Regrouped, Q8_0) {
    check_regrouped<X8Acts>(GgmlType::Q8_0, GgmlType::Q8_0, 256, 0.f, 8 * kQ8_0x8Block, repack_q8_0_x8, resize_x8_acts, pack_x8_acts,
                            q8_0_x8_gemm_scalar, &KernelSet::q8_0_x8, vec_dot_q8_0_q8_0_scalar);
}

TEST(Regrouped, Q5_0) {
    check_regrouped<X8Acts>(GgmlType::Q5_0, GgmlType::Q8_0, 256, 0.f, 8 * kQ5_0x8Block, repack_q5_0_x8, resize_x8_acts, pack_x8_acts,
                            q5_0_x8_gemm_scalar, &KernelSet::q5_0_x8,
                            [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q5_0, n, vx, vy); });
}

TEST(Regrouped, Q4_K) {  // an offset, so the mins matter
    check_regrouped<XKActs>(GgmlType::Q4_K, GgmlType::Q8_K, 512, 0.01f, 2 * kQ4_Kx8Block, repack_q4_k_x8, resize_xk_acts, pack_xk_acts,
                            q4_k_x8_gemm_scalar, &KernelSet::q4_k_x8, vec_dot_q4_k_q8_k_scalar, &KernelSet::q4_k_x16);
}

TEST(Regrouped, Q5_K) {  // an offset, so the mins matter
    check_regrouped<XKActs>(GgmlType::Q5_K, GgmlType::Q8_K, 512, 0.01f, 2 * kQ5_Kx8Block, repack_q5_k_x8, resize_xk_acts, pack_xk_acts,
                            q5_k_x8_gemm_scalar, &KernelSet::q5_k_x8,
                            [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q5_K, n, vx, vy); }, &KernelSet::q5_k_x16);
}

TEST(Regrouped, Q3_K) {
    check_regrouped<XKActs>(GgmlType::Q3_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ3_Kx8Block, repack_q3_k_x8, resize_xk_acts, pack_xk_acts,
                            q3_k_x8_gemm_scalar, &KernelSet::q3_k_x8,
                            [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q3_K, n, vx, vy); }, &KernelSet::q3_k_x16);
}

TEST(Regrouped, Q2_K) {  // an offset, so the mins matter
    check_regrouped<XKActs>(GgmlType::Q2_K, GgmlType::Q8_K, 512, 0.01f, 2 * kQ2_Kx8Block, repack_q2_k_x8, resize_xk_acts, pack_xk_acts,
                            q2_k_x8_gemm_scalar, &KernelSet::q2_k_x8,
                            [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q2_K, n, vx, vy); }, &KernelSet::q2_k_x16);
}

TEST(Regrouped, Q6_K) {
    check_regrouped<XKActs>(GgmlType::Q6_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ6_Kx8Block, repack_q6_k_x8, resize_xk_acts, pack_xk_acts,
                            q6_k_x8_gemm_scalar, &KernelSet::q6_k_x8, vec_dot_q6_k_q8_k_scalar, &KernelSet::q6_k_x16);
}

// Sums at the edge of what the kernels hold: every code at one end of its range against
// activations of -128 (the AVX2 kernels sum runs of products in 16 bits before widening them).
TEST(Regrouped, LargestSumsStayExact) {
    for (int e : {1, -1}) {
        SCOPED_TRACE(e);
        check_regrouped<X8Acts>(GgmlType::Q4_0, GgmlType::Q8_0, 256, 0.f, 8 * 144, repack_q4_0_x8, resize_x8_acts, pack_x8_acts,
                                q4_0_x8_gemm_scalar, &KernelSet::q4_0_x8, vec_dot_q4_0_q8_0_scalar, nullptr, e);
        check_regrouped<X8Acts>(GgmlType::Q8_0, GgmlType::Q8_0, 256, 0.f, 8 * kQ8_0x8Block, repack_q8_0_x8, resize_x8_acts, pack_x8_acts,
                                q8_0_x8_gemm_scalar, &KernelSet::q8_0_x8, vec_dot_q8_0_q8_0_scalar, nullptr, e);
        check_regrouped<X8Acts>(GgmlType::Q5_0, GgmlType::Q8_0, 256, 0.f, 8 * kQ5_0x8Block, repack_q5_0_x8, resize_x8_acts, pack_x8_acts,
                                q5_0_x8_gemm_scalar, &KernelSet::q5_0_x8,
                                [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q5_0, n, vx, vy); }, nullptr, e);
        check_regrouped<XKActs>(GgmlType::Q4_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ4_Kx8Block, repack_q4_k_x8, resize_xk_acts, pack_xk_acts,
                                q4_k_x8_gemm_scalar, &KernelSet::q4_k_x8, vec_dot_q4_k_q8_k_scalar, &KernelSet::q4_k_x16, e);
        check_regrouped<XKActs>(GgmlType::Q5_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ5_Kx8Block, repack_q5_k_x8, resize_xk_acts, pack_xk_acts,
                                q5_k_x8_gemm_scalar, &KernelSet::q5_k_x8,
                                [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q5_K, n, vx, vy); },
                                &KernelSet::q5_k_x16, e);
        check_regrouped<XKActs>(GgmlType::Q6_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ6_Kx8Block, repack_q6_k_x8, resize_xk_acts, pack_xk_acts,
                                q6_k_x8_gemm_scalar, &KernelSet::q6_k_x8, vec_dot_q6_k_q8_k_scalar, &KernelSet::q6_k_x16, e);
        check_regrouped<XKActs>(GgmlType::Q3_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ3_Kx8Block, repack_q3_k_x8, resize_xk_acts, pack_xk_acts,
                                q3_k_x8_gemm_scalar, &KernelSet::q3_k_x8,
                                [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q3_K, n, vx, vy); }, &KernelSet::q3_k_x16, e);
        check_regrouped<XKActs>(GgmlType::Q2_K, GgmlType::Q8_K, 512, 0.f, 2 * kQ2_Kx8Block, repack_q2_k_x8, resize_xk_acts, pack_xk_acts,
                                q2_k_x8_gemm_scalar, &KernelSet::q2_k_x8,
                                [](int64_t n, const void* vx, const void* vy) { return vec_dot_generic(GgmlType::Q2_K, n, vx, vy); }, &KernelSet::q2_k_x16, e);
    }
}

}  // namespace
}  // namespace qforge

#include "qforge/half.hpp"

namespace qforge {
namespace {

// F16 weights (prompts and generation): every set's tiled F16 product against a double reference on the same f16 values,
// and the same bits whatever the rows, tokens and tiles (odd sizes reach every edge tile).
TEST(F16Gemm, MatchesTheReferenceAndDoesNotDependOnTheTiling) {
    const auto sets = usable_kernel_sets();
    if (sets.empty() || !sets.front().f16_gemm) GTEST_SKIP() << "no F16 matrix kernel on this CPU";
    std::mt19937 rng(23);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int64_t K : {int64_t{512}, int64_t{200}}) {
        const int rows = 11, B = 13;
        std::vector<uint16_t> W(static_cast<size_t>(rows * K));
        std::vector<float> X(static_cast<size_t>(B * K));
        for (auto& v : W) v = fp32_to_fp16(nd(rng) * 0.1f);
        for (auto& v : X) v = fp16_to_fp32(fp32_to_fp16(nd(rng)));
        for (const KernelSet& s : sets) {
            if (!s.f16_gemm) continue;
            std::vector<float> y(static_cast<size_t>(B * rows)), yt(y.size());
            s.f16_gemm(W.data(), K, rows, X.data(), K, B, K, y.data(), rows);
            for (int b = 0; b < B; ++b)
                for (int r = 0; r < rows; ++r) {
                    double d = 0;
                    for (int64_t i = 0; i < K; ++i) d += static_cast<double>(fp16_to_fp32(W[static_cast<size_t>(r * K + i)])) * X[static_cast<size_t>(b * K + i)];
                    EXPECT_NEAR(y[static_cast<size_t>(b * rows + r)], d, 1e-5 * (1.0 + std::fabs(d))) << s.isa << " K " << K << " row " << r << " token " << b;
                }
            // Rows split at 5, every token on its own: the same bits.
            s.f16_gemm(W.data(), K, 5, X.data(), K, B, K, yt.data(), rows);
            for (int b = 0; b < B; ++b)
                s.f16_gemm(W.data() + 5 * K, K, rows - 5, X.data() + b * K, K, 1, K, yt.data() + b * rows + 5, rows);
            EXPECT_EQ(y, yt) << s.isa << " K " << K;
        }
    }
}

// F16 regrouped four rows at a time: the same bits as the kernel on the rows as stored, for every
// batch size from generation to past a prompt tile, and the layout is the documented one.
TEST(F16Gemm, RegroupedRowsGiveTheSameBits) {
    const auto sets = usable_kernel_sets();
    if (sets.empty() || !sets.front().f16_x4_gemm) GTEST_SKIP() << "no regrouped F16 kernel on this CPU";
    std::mt19937 rng(29);
    std::normal_distribution<float> nd(0.f, 1.f);
    const int64_t K = 320, rows = 12;
    std::vector<uint16_t> W(static_cast<size_t>(rows * K)), G(W.size());
    for (auto& v : W) v = fp32_to_fp16(nd(rng) * 0.1f);
    repack_f16_x4(W.data(), rows, K, G.data());
    EXPECT_EQ(G[static_cast<size_t>(2 * 4 * K + 3 * 16 * 4 + 1 * 16 + 5)], W[static_cast<size_t>((2 * 4 + 1) * K + 3 * 16 + 5)]);
    for (int B : {1, 2, 3, 4, 5, 6, 7, 13, 40}) {
        std::vector<uint16_t> Xh(static_cast<size_t>(B * K));
        std::vector<float> X(Xh.size());
        for (size_t i = 0; i < Xh.size(); ++i) X[i] = fp16_to_fp32(Xh[i] = fp32_to_fp16(nd(rng)));
        for (const KernelSet& s : sets) {
            if (!s.f16_x4_gemm || !s.f16_gemm) continue;
            std::vector<float> y(static_cast<size_t>(B * rows)), yg(y.size());
            s.f16_gemm(W.data(), K, rows, X.data(), K, B, K, y.data(), rows);
            s.f16_x4_gemm(G.data(), rows / kF16X4Rows, Xh.data(), K, B, K, yg.data(), rows);
            EXPECT_EQ(y, yg) << s.isa << " B " << B;
        }
    }
}

}  // namespace
}  // namespace qforge

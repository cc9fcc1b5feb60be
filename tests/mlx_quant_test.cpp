// Bit-exactness against MLX's own quantize/dequantize outputs (../shared/data/mlx-vectors).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <regex>

#include "qforge/mlx_quant.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "qforge/half.hpp"
#include "qforge/quantize.hpp"
#include "qforge/safetensors.hpp"
#include "quant/affine_blocks.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

namespace fs = std::filesystem;

MlxDtype dtype_of(const std::string& s) {
    if (s == "float32") return MlxDtype::F32;
    if (s == "float16") return MlxDtype::F16;
    return MlxDtype::BF16;
}

std::vector<float> load_floats(const StTensor& t) {
    const MlxDtype d = t.dtype == StDtype::F32 ? MlxDtype::F32 : t.dtype == StDtype::F16 ? MlxDtype::F16 : MlxDtype::BF16;
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = mlx_load(d, t.data, i);
    return v;
}

size_t count_diff(const void* a, const void* b, size_t n_bytes, size_t elem) {
    size_t bad = 0;
    for (size_t i = 0; i < n_bytes; i += elem)
        if (std::memcmp(static_cast<const uint8_t*>(a) + i, static_cast<const uint8_t*>(b) + i, elem) != 0) ++bad;
    return bad;
}

TEST(MlxGolden, AffineVectorsMatchBitExactly) {
    QFORGE_REQUIRE_SHARED(data);
    const std::regex re("affine_b(\\d)_g(\\d+)_(\\w+)\\.safetensors");
    int files = 0;
    for (const auto& e : fs::directory_iterator(data + "/mlx-vectors")) {
        std::smatch m;
        const std::string fname = e.path().filename().string();
        if (!std::regex_match(fname, m, re)) continue;
        SCOPED_TRACE(fname);
        MlxAffineParams p;
        p.bits = std::stoi(m[1]);
        p.group_size = std::stoi(m[2]);
        p.dtype = dtype_of(m[3]);
        auto f = SafetensorsFile::open(e.path().string());
        const StTensor* w = f->find("w");
        ASSERT_NE(w, nullptr);
        const int64_t rows = w->shape[0], cols = w->shape[1];
        const auto x = load_floats(*w);
        std::vector<uint32_t> wq(static_cast<size_t>(rows * cols * p.bits / 32));
        const size_t ng = static_cast<size_t>(rows * cols / p.group_size), es = mlx_dtype_size(p.dtype);
        std::vector<uint8_t> scales(ng * es), biases(ng * es);
        mlx_affine_quantize(x.data(), rows, cols, p, wq.data(), scales.data(), biases.data());
        EXPECT_EQ(count_diff(wq.data(), f->find("wq")->data, wq.size() * 4, 4), 0u);
        EXPECT_EQ(count_diff(scales.data(), f->find("scales")->data, scales.size(), es), 0u);
        EXPECT_EQ(count_diff(biases.data(), f->find("biases")->data, biases.size(), es), 0u);
        std::vector<uint8_t> deq(static_cast<size_t>(rows * cols) * es);
        mlx_affine_dequantize(reinterpret_cast<const uint32_t*>(f->find("wq")->data), f->find("scales")->data,
                              f->find("biases")->data, rows, cols, p, deq.data());
        EXPECT_EQ(count_diff(deq.data(), f->find("deq")->data, deq.size(), es), 0u);
        ++files;
    }
    EXPECT_EQ(files, 54);
}

TEST(MlxGolden, Fp4VectorsMatchBitExactly) {
    QFORGE_REQUIRE_SHARED(data);
    const std::regex re("(mx|nv)fp4_g(\\d+)(_(\\w+))?\\.safetensors");
    int files = 0;
    for (const auto& e : fs::directory_iterator(data + "/mlx-vectors")) {
        std::smatch m;
        const std::string fname = e.path().filename().string();
        if (!std::regex_match(fname, m, re)) continue;
        SCOPED_TRACE(fname);
        const MlxFp4Mode mode = m[1] == "mx" ? MlxFp4Mode::MXFP4 : MlxFp4Mode::NVFP4;
        const MlxDtype dt = m[4].matched ? dtype_of(m[4]) : MlxDtype::F32;
        auto f = SafetensorsFile::open(e.path().string());
        const StTensor* w = f->find("w");
        const int64_t rows = w->shape[0], cols = w->shape[1];
        const auto x = load_floats(*w);
        std::vector<uint32_t> wq(static_cast<size_t>(rows * cols / 8));
        std::vector<uint8_t> scales(static_cast<size_t>(rows * cols / mlx_fp4_group_size(mode)));
        mlx_fp4_quantize(x.data(), rows, cols, mode, dt, wq.data(), scales.data());
        EXPECT_EQ(count_diff(wq.data(), f->find("wq")->data, wq.size() * 4, 4), 0u);
        EXPECT_EQ(count_diff(scales.data(), f->find("scales")->data, scales.size(), 1), 0u);
        const size_t es = mlx_dtype_size(dt);
        std::vector<uint8_t> deq(static_cast<size_t>(rows * cols) * es);
        mlx_fp4_dequantize(reinterpret_cast<const uint32_t*>(f->find("wq")->data), f->find("scales")->data, rows, cols,
                           mode, dt, deq.data());
        EXPECT_EQ(count_diff(deq.data(), f->find("deq")->data, deq.size(), es), 0u);
        ++files;
    }
    EXPECT_EQ(files, 6);
}

TEST(MlxQuant, RejectsBadParameters) {
    std::vector<float> x(64, 1.0f);
    std::vector<uint32_t> wq(64);
    std::vector<uint16_t> s(4), b(4);
    EXPECT_THROW(mlx_affine_quantize(x.data(), 1, 64, {7, 32, MlxDtype::F16}, wq.data(), s.data(), b.data()), Error);
    EXPECT_THROW(mlx_affine_quantize(x.data(), 1, 64, {4, 48, MlxDtype::F16}, wq.data(), s.data(), b.data()), Error);
    EXPECT_THROW(mlx_affine_quantize(x.data(), 1, 48, {4, 32, MlxDtype::F16}, wq.data(), s.data(), b.data()), Error);
}

// qforge's MLX blocks hold MLX's codes exactly, for every width and group size, and give
// scale * code + bias; they exist only in memory (no GGUF type).
TEST(MlxBlocks, HoldMlxCodesExactly) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 0.05f);
    const int64_t rows = 3, cols = 256;
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (auto& v : w) v = round_fp16(nd(rng));
    for (int bits : {2, 3, 6, 8})
        for (int g : {32, 64, 128}) {
            const MlxAffineParams p{bits, g, MlxDtype::F16};
            std::vector<uint32_t> wq(static_cast<size_t>(rows * cols * bits / 32));
            std::vector<uint16_t> s(static_cast<size_t>(rows * cols / g)), b(s.size());
            mlx_affine_quantize(w.data(), rows, cols, p, wq.data(), s.data(), b.data());
            const GgmlType t = *mlx_block_type(bits);
            const TypeTraits& tt = type_traits(t);
            EXPECT_TRUE(tt.internal);
            std::vector<uint8_t> blocks(*row_bytes(tt, cols) * rows);
            mlx_to_blocks(wq.data(), s.data(), b.data(), rows, cols, p, t, blocks.data());
            const auto deq = dequantize(t, blocks, rows * cols);
            int64_t bad = 0;
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t k = 0; k < cols; ++k) {
                    const size_t gi = static_cast<size_t>(r * (cols / g) + k / g);
                    const float want = fp16_to_fp32(s[gi]) * static_cast<float>(mlx_get_code(wq.data() + r * cols * bits / 32, k, bits)) +
                                       fp16_to_fp32(b[gi]);
                    bad += deq[static_cast<size_t>(r * cols + k)] != want;
                }
            EXPECT_EQ(bad, 0) << bits << "-bit g" << g;
            if (g == 32) {  // the row quantizer is MLX's own at group 32
                EXPECT_EQ(quantize_tensor(w.data(), rows, cols, t), blocks) << bits;
            }
        }
    EXPECT_THROW(mlx_to_blocks(nullptr, nullptr, nullptr, 1, 64, {4, 64, MlxDtype::F16}, GgmlType::MLX_A8, nullptr), Error);
    test::TempDir tmp;
    GgufWriter gw(tmp.path("x.gguf"), {});
    EXPECT_THROW(gw.add_tensor("w", GgmlType::MLX_A8, {32, 1}), Error);
}

}  // namespace
}  // namespace qforge

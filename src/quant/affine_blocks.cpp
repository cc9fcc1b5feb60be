// MLX affine codes in qforge's blocks of 32 (quant/affine_blocks.hpp): packing from MLX's bit
// stream, and the row quantizers (MLX's own rounding, groups of 32, f16 scales) and dequantizers.
#include "quant/affine_blocks.hpp"

#include <cstring>
#include <vector>

#include "qforge/error.hpp"
#include "qforge/half.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

namespace {

void set_plane2(uint8_t* p, int j, int v) { p[j % 8] |= static_cast<uint8_t>((v & 3) << (2 * (j / 8))); }

void set_code(BlockMlxA2& b, int j, int v) { set_plane2(b.qs, j, v); }
void set_code(BlockMlxA3& b, int j, int v) {
    set_plane2(b.ql, j, v);
    b.qh[j / 8] |= static_cast<uint8_t>(((v >> 2) & 1) << (j % 8));
}
void set_code(BlockMlxA6& b, int j, int v) {
    b.ql[j % 16] |= static_cast<uint8_t>((v & 15) << (4 * (j / 16)));
    set_plane2(b.qh, j, v >> 4);
}
void set_code(BlockMlxA8& b, int j, int v) { b.qs[j] = static_cast<uint8_t>(v); }

template <class Block>
void to_blocks(const uint32_t* wq, const void* scales, const void* biases, int64_t rows, int64_t cols, const MlxAffineParams& p,
               uint8_t* out) {
    const int64_t words = cols * p.bits / 32, groups = cols / p.group_size;
    auto* b = reinterpret_cast<Block*>(out);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < cols / 32; ++i, ++b) {
            std::memset(b, 0, sizeof(Block));
            const size_t g = static_cast<size_t>(r * groups + i * 32 / p.group_size);
            b->d = fp32_to_fp16(mlx_load(p.dtype, scales, g));
            b->m = fp32_to_fp16(mlx_load(p.dtype, biases, g));
            for (int j = 0; j < 32; ++j) set_code(*b, j, static_cast<int>(mlx_get_code(wq + r * words, i * 32 + j, p.bits)));
        }
}

template <class Block>
void quantize_row(const float* src, void* dst, int64_t n, int bits) {
    const MlxAffineParams p{bits, 32, MlxDtype::F16};
    std::vector<uint32_t> wq(static_cast<size_t>(n * bits / 32));
    std::vector<uint16_t> s(static_cast<size_t>(n / 32)), m(s.size());
    mlx_affine_quantize(src, 1, n, p, wq.data(), s.data(), m.data());
    to_blocks<Block>(wq.data(), s.data(), m.data(), 1, n, p, static_cast<uint8_t*>(dst));
}

template <class Block>
void dequantize_row(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const Block*>(src);
    for (int64_t i = 0; i < n / 32; ++i) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < 32; ++j) dst[i * 32 + j] = d * static_cast<float>(mlx_block_code(b[i], j)) + m;
    }
}

}  // namespace

std::optional<GgmlType> mlx_block_type(int bits) {
    switch (bits) {
        case 2: return GgmlType::MLX_A2;
        case 3: return GgmlType::MLX_A3;
        case 6: return GgmlType::MLX_A6;
        case 8: return GgmlType::MLX_A8;
        default: return std::nullopt;
    }
}

void mlx_to_blocks(const uint32_t* wq, const void* scales, const void* biases, int64_t rows, int64_t cols,
                   const MlxAffineParams& p, GgmlType t, uint8_t* out) {
    if (p.group_size % 32 != 0 || cols % p.group_size != 0 || mlx_block_type(p.bits) != t)
        throw_usage(std::string("[mlx_to_blocks] ") + std::to_string(p.bits) + "-bit codes in groups of " +
                    std::to_string(p.group_size) + " do not fit " + type_traits(t).name);
    switch (t) {
        case GgmlType::MLX_A2: return to_blocks<BlockMlxA2>(wq, scales, biases, rows, cols, p, out);
        case GgmlType::MLX_A3: return to_blocks<BlockMlxA3>(wq, scales, biases, rows, cols, p, out);
        case GgmlType::MLX_A6: return to_blocks<BlockMlxA6>(wq, scales, biases, rows, cols, p, out);
        default: return to_blocks<BlockMlxA8>(wq, scales, biases, rows, cols, p, out);
    }
}

void quantize_row_mlx_a2(const float* src, void* dst, int64_t n, const float*) { quantize_row<BlockMlxA2>(src, dst, n, 2); }
void quantize_row_mlx_a3(const float* src, void* dst, int64_t n, const float*) { quantize_row<BlockMlxA3>(src, dst, n, 3); }
void quantize_row_mlx_a6(const float* src, void* dst, int64_t n, const float*) { quantize_row<BlockMlxA6>(src, dst, n, 6); }
void quantize_row_mlx_a8(const float* src, void* dst, int64_t n, const float*) { quantize_row<BlockMlxA8>(src, dst, n, 8); }
void dequantize_row_mlx_a2(const void* src, float* dst, int64_t n) { dequantize_row<BlockMlxA2>(src, dst, n); }
void dequantize_row_mlx_a3(const void* src, float* dst, int64_t n) { dequantize_row<BlockMlxA3>(src, dst, n); }
void dequantize_row_mlx_a6(const void* src, float* dst, int64_t n) { dequantize_row<BlockMlxA6>(src, dst, n); }
void dequantize_row_mlx_a8(const void* src, float* dst, int64_t n) { dequantize_row<BlockMlxA8>(src, dst, n); }

}  // namespace qforge

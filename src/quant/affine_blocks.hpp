// qforge's in-memory blocks for MLX affine codes of 2, 3, 6 and 8 bits (types MLX_A2 … MLX_A8):
// 32 codes q with an f16 scale d and bias m, weight = d * q + m, as MLX groups them (a group of
// 64 or 128 is two or four blocks with the same d and m). Bit planes keep SIMD unpacking cheap:
//   2 bits: code j = (qs[j % 8] >> 2 * (j / 8)) & 3
//   3 bits: those two low bits from ql, the third bit j of qh
//   6 bits: low nibble j of ql (0-15 low nibbles, 16-31 high), two high bits as the 2-bit plane
//   8 bits: one byte per code
#pragma once

#include <cstdint>

#include "qforge/mlx_quant.hpp"
#include "qforge/types.hpp"

namespace qforge {

#pragma pack(push, 1)
struct BlockMlxA2 { uint16_t d, m; uint8_t qs[8]; };
struct BlockMlxA3 { uint16_t d, m; uint8_t ql[8]; uint8_t qh[4]; };
struct BlockMlxA6 { uint16_t d, m; uint8_t ql[16]; uint8_t qh[8]; };
struct BlockMlxA8 { uint16_t d, m; uint8_t qs[32]; };
#pragma pack(pop)
static_assert(sizeof(BlockMlxA2) == 12);
static_assert(sizeof(BlockMlxA3) == 16);
static_assert(sizeof(BlockMlxA6) == 28);
static_assert(sizeof(BlockMlxA8) == 36);

inline int plane2(const uint8_t* p, int j) { return (p[j % 8] >> (2 * (j / 8))) & 3; }
inline int mlx_block_code(const BlockMlxA2& b, int j) { return plane2(b.qs, j); }
inline int mlx_block_code(const BlockMlxA3& b, int j) { return plane2(b.ql, j) | (((b.qh[j / 8] >> (j % 8)) & 1) << 2); }
inline int mlx_block_code(const BlockMlxA6& b, int j) { return ((b.ql[j % 16] >> (4 * (j / 16))) & 15) | (plane2(b.qh, j) << 4); }
inline int mlx_block_code(const BlockMlxA8& b, int j) { return b.qs[j]; }

// The block type for MLX affine codes of `bits` (2, 3, 6, 8), or nullopt.
std::optional<GgmlType> mlx_block_type(int bits);

// An MLX affine matrix (codes packed as MLX packs them, scales and biases in p.dtype, every one
// of them exact in f16 and p.group_size a multiple of 32) as rows of blocks of type t.
void mlx_to_blocks(const uint32_t* wq, const void* scales, const void* biases, int64_t rows, int64_t cols,
                   const MlxAffineParams& p, GgmlType t, uint8_t* out);

}  // namespace qforge

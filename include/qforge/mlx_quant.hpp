// MLX's quantization formats, bit-exact with mlx.core.quantize / dequantize (CPU, MLX 0.32):
// affine (2-8 bits, groups of 32/64/128, f32/f16/bf16 scales and biases) and mxfp4 / nvfp4.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qforge {

enum class MlxDtype { F32, F16, BF16 };
size_t mlx_dtype_size(MlxDtype d);
const char* mlx_dtype_name(MlxDtype d);  // "float16"

// Values stored in dtype d: read as float / round a float into it.
float mlx_load(MlxDtype d, const void* p, size_t i);
void mlx_store(MlxDtype d, void* p, size_t i, float v);
float mlx_round(MlxDtype d, float v);  // v rounded to d and back

struct MlxAffineParams {
    int bits = 4;
    int group_size = 64;
    MlxDtype dtype = MlxDtype::F16;  // of scales and biases
};

// Quantize rows x cols values (given as floats already representable in the input dtype).
// wq: rows * cols*bits/32 words; scales, biases: rows * cols/group_size values of params.dtype.
void mlx_affine_quantize(const float* w, int64_t rows, int64_t cols, const MlxAffineParams& p, uint32_t* wq,
                         void* scales, void* biases);
// A group's scale and bias (rounded to p.dtype) chosen to minimise sum importance * (x - (s q + b))^2
// over codes q in [0, 2^bits - 1] (importance may be null: all 1): MLX's own choice and narrowed
// ranges, each refit by weighted least squares; never worse than MLX's on that error. codes
// (optional, group_size values) receives the codes that error was measured with.
void mlx_affine_fit_group(const float* x, const float* importance, const MlxAffineParams& p, float* scale, float* bias,
                          uint8_t* codes = nullptr);
// mlx_affine_quantize with mlx_affine_fit_group's scales and biases (importance: cols values or null).
void mlx_affine_quantize_weighted(const float* w, int64_t rows, int64_t cols, const MlxAffineParams& p, const float* importance,
                                  uint32_t* wq, void* scales, void* biases);
// Code i of a row packed as MLX packs it: an LSB-first bit stream of little-endian uint32 words
// (put ORs into words that start zeroed).
void mlx_put_code(uint32_t* row_words, int64_t i, int bits, uint32_t v);
uint32_t mlx_get_code(const uint32_t* row_words, int64_t i, int bits);

// Dequantize into `out` (rows*cols values of params.dtype), exactly as MLX's CPU path.
void mlx_affine_dequantize(const uint32_t* wq, const void* scales, const void* biases, int64_t rows, int64_t cols,
                           const MlxAffineParams& p, void* out);

// mxfp4 (groups of 32, E8M0 scales) and nvfp4 (groups of 16, E4M3 scales, no global scale).
enum class MlxFp4Mode { MXFP4, NVFP4 };
int mlx_fp4_group_size(MlxFp4Mode m);
// dtype: the dtype of the input (all arithmetic happens in it, as MLX's op-composed path does).
void mlx_fp4_quantize(const float* w, int64_t rows, int64_t cols, MlxFp4Mode mode, MlxDtype dtype, uint32_t* wq,
                      uint8_t* scales);
void mlx_fp4_dequantize(const uint32_t* wq, const uint8_t* scales, int64_t rows, int64_t cols, MlxFp4Mode mode,
                        MlxDtype dtype, void* out);

float fp8_e4m3_to_float(uint8_t v);
uint8_t float_to_fp8_e4m3(float v);  // round to nearest even, saturating at 448

}  // namespace qforge

// MLX affine quantization: per group, w ≈ scale * q + bias with q in [0, 2^bits - 1].
#include <cmath>
#include <cstring>

#include "qforge/error.hpp"
#include "qforge/half.hpp"
#include "qforge/mlx_quant.hpp"

namespace qforge {

size_t mlx_dtype_size(MlxDtype d) { return d == MlxDtype::F32 ? 4 : 2; }

const char* mlx_dtype_name(MlxDtype d) {
    switch (d) {
        case MlxDtype::F32: return "float32";
        case MlxDtype::F16: return "float16";
        case MlxDtype::BF16: return "bfloat16";
    }
    return "?";
}

// Tensors in safetensors files need not be aligned (MLX writes unpadded headers): copy, don't cast.
float mlx_load(MlxDtype d, const void* p, size_t i) {
    const auto* b = static_cast<const uint8_t*>(p);
    if (d == MlxDtype::F32) {
        float f;
        std::memcpy(&f, b + 4 * i, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    return d == MlxDtype::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

void mlx_store(MlxDtype d, void* p, size_t i, float v) {
    auto* b = static_cast<uint8_t*>(p);
    if (d == MlxDtype::F32) {
        std::memcpy(b + 4 * i, &v, 4);
        return;
    }
    const uint16_t h = d == MlxDtype::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
    std::memcpy(b + 2 * i, &h, 2);
}

float mlx_round(MlxDtype d, float v) {
    switch (d) {
        case MlxDtype::F32: return v;
        case MlxDtype::F16: return round_fp16(v);
        case MlxDtype::BF16: return round_bf16(v);
    }
    return v;
}

namespace {

void check_params(int64_t cols, const MlxAffineParams& p) {
    if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 5 && p.bits != 6 && p.bits != 8)
        throw_usage("[quantize] bits must be 2, 3, 4, 5, 6 or 8, got " + std::to_string(p.bits));
    if (p.group_size != 32 && p.group_size != 64 && p.group_size != 128)
        throw_usage("[quantize] group_size must be 32, 64 or 128, got " + std::to_string(p.group_size));
    if (cols % p.group_size != 0)
        throw_usage("[quantize] the last dimension (" + std::to_string(cols) + ") must be a multiple of group_size " +
                    std::to_string(p.group_size));
}

// Writes `bits`-bit code v as element i of an LSB-first bit stream of little-endian words.
uint32_t load_word(const uint32_t* words, int64_t w) {
    uint32_t v;
    std::memcpy(&v, reinterpret_cast<const uint8_t*>(words) + 4 * w, 4);
    return v;
}

void or_word(uint32_t* words, int64_t w, uint32_t v) {
    const uint32_t cur = load_word(words, w) | v;
    std::memcpy(reinterpret_cast<uint8_t*>(words) + 4 * w, &cur, 4);
}

}  // namespace

void mlx_put_code(uint32_t* words, int64_t i, int bits, uint32_t v) {
    const int64_t bit = i * bits;
    const int64_t w = bit / 32;
    const int off = static_cast<int>(bit % 32);
    or_word(words, w, v << off);
    if (off + bits > 32) or_word(words, w + 1, v >> (32 - off));
}

uint32_t mlx_get_code(const uint32_t* words, int64_t i, int bits) {
    const int64_t bit = i * bits;
    const int64_t w = bit / 32;
    const int off = static_cast<int>(bit % 32);
    uint64_t v = load_word(words, w) >> off;
    if (off + bits > 32) v |= static_cast<uint64_t>(load_word(words, w + 1)) << (32 - off);
    return static_cast<uint32_t>(v) & ((1u << bits) - 1u);
}

void mlx_affine_quantize(const float* w, int64_t rows, int64_t cols, const MlxAffineParams& p, uint32_t* wq,
                         void* scales, void* biases) {
    check_params(cols, p);
    const int64_t words_per_row = cols * p.bits / 32;
    const int64_t groups = cols / p.group_size;
    const float n_bins = static_cast<float>((1 << p.bits) - 1);
    const float eps = 1e-7f;
    std::memset(wq, 0, static_cast<size_t>(rows * words_per_row) * 4);
    for (int64_t r = 0; r < rows; ++r) {
        uint32_t* row_words = wq + r * words_per_row;
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + r * cols + g * p.group_size;
            float mn = x[0], mx = x[0];
            for (int j = 1; j < p.group_size; ++j) {
                mn = std::min(mn, x[j]);
                mx = std::max(mx, x[j]);
            }
            float scale = std::max((mx - mn) / n_bins, eps);
            float edge;
            if (std::fabs(mn) > std::fabs(mx)) {
                edge = mn;
            } else {
                edge = mx;
                scale = -scale;
            }
            const float q0 = std::rint(edge / scale);
            float bias = 0;
            if (q0 != 0) {
                scale = edge / q0;
                bias = edge;
            }
            for (int j = 0; j < p.group_size; ++j) {
                float q = std::rint((x[j] - bias) / scale);
                q = std::min(std::max(q, 0.0f), n_bins);
                mlx_put_code(row_words, g * p.group_size + j, p.bits, static_cast<uint32_t>(q));
            }
            mlx_store(p.dtype, scales, static_cast<size_t>(r * groups + g), scale);
            mlx_store(p.dtype, biases, static_cast<size_t>(r * groups + g), bias);
        }
    }
}

void mlx_affine_dequantize(const uint32_t* wq, const void* scales, const void* biases, int64_t rows, int64_t cols,
                           const MlxAffineParams& p, void* out) {
    check_params(cols, p);
    const int64_t words_per_row = cols * p.bits / 32;
    const int64_t groups = cols / p.group_size;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            const size_t gi = static_cast<size_t>(r * groups + c / p.group_size);
            const float s = mlx_load(p.dtype, scales, gi), b = mlx_load(p.dtype, biases, gi);
            const float q = static_cast<float>(mlx_get_code(wq + r * words_per_row, c, p.bits));
            const float v = mlx_round(p.dtype, mlx_round(p.dtype, q * s) + b);
            mlx_store(p.dtype, out, static_cast<size_t>(r * cols + c), v);
        }
    }
}

}  // namespace qforge

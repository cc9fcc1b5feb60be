// MLX affine quantization: per group, w ≈ scale * q + bias with q in [0, 2^bits - 1].
#include <algorithm>
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

// MLX's own scale and bias for a group: the range over 2^bits - 1 steps, its larger end exact.
void plain_params(const float* x, int n, float n_bins, float* scale_out, float* bias_out) {
    const float eps = 1e-7f;
    float mn = x[0], mx = x[0];
    for (int j = 1; j < n; ++j) {
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
    *scale_out = scale;
    *bias_out = bias;
}

// sum importance * (x - deq(q))^2 with the codes nearest on (scale, bias), as MLX dequantizes.
double group_error(const float* x, const float* imp, int n, float n_bins, MlxDtype dt, float scale, float bias, uint8_t* L) {
    double e = 0;
    for (int j = 0; j < n; ++j) {
        float q = scale == 0.f ? 0.f : std::min(std::max(std::rint((x[j] - bias) / scale), 0.0f), n_bins);
        float d = x[j] - mlx_round(dt, mlx_round(dt, q * scale) + bias);
        // With many codes the products' rounding in the dtype can make a neighbour nearer.
        if (std::fabs(d) > 0.45f * std::fabs(scale))
            for (const float n : {q - 1.f, q + 1.f})
                if (n >= 0.f && n <= n_bins) {
                    const float dn = x[j] - mlx_round(dt, mlx_round(dt, n * scale) + bias);
                    if (std::fabs(dn) < std::fabs(d)) d = dn, q = n;
                }
        L[j] = static_cast<uint8_t>(q);
        e += static_cast<double>(imp ? imp[j] : 1.f) * static_cast<double>(d) * static_cast<double>(d);
    }
    return e;
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
    std::memset(wq, 0, static_cast<size_t>(rows * words_per_row) * 4);
    for (int64_t r = 0; r < rows; ++r) {
        uint32_t* row_words = wq + r * words_per_row;
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + r * cols + g * p.group_size;
            float scale, bias;
            plain_params(x, p.group_size, n_bins, &scale, &bias);
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

void mlx_affine_fit_group(const float* x, const float* imp, const MlxAffineParams& p, float* scale_out, float* bias_out, uint8_t* codes) {
    const int n = p.group_size;
    const float n_bins = static_cast<float>((1 << p.bits) - 1);
    uint8_t L[128], best_L[128];
    float s0, b0;
    plain_params(x, n, n_bins, &s0, &b0);
    float best_s = mlx_round(p.dtype, s0), best_b = mlx_round(p.dtype, b0);
    // MLX's own codes (found with the unrounded scale and bias), and the nearest ones.
    double best = 0;
    for (int j = 0; j < n; ++j) {
        const float q = std::min(std::max(std::rint((x[j] - b0) / s0), 0.0f), n_bins);
        best_L[j] = static_cast<uint8_t>(q);
        const double d = x[j] - mlx_round(p.dtype, mlx_round(p.dtype, q * best_s) + best_b);
        best += static_cast<double>(imp ? imp[j] : 1.f) * d * d;
    }
    auto consider = [&](float s, float b) {
        const double e = group_error(x, imp, n, n_bins, p.dtype, s, b, L);
        if (e < best) best = e, best_s = s, best_b = b, std::copy_n(L, n, best_L);
    };
    consider(best_s, best_b);
    float mn = x[0], mx = x[0];
    for (int j = 1; j < n; ++j) {
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
    }
    // Candidate grids: the range narrowed by up to a quarter, from either end or both, then each
    // refit to its codes by weighted least squares (twice).
    for (int step = 0; step <= 8 && mx > mn; ++step) {
        const float narrow = 0.03f * static_cast<float>(step);
        for (int side = 0; side < 3; ++side) {
            if (step == 0 && side > 0) break;
            const float lo = mn + (side != 1 ? narrow * (mx - mn) * (side == 2 ? 0.5f : 1.f) : 0.f);
            const float hi = mx - (side != 0 ? narrow * (mx - mn) * (side == 2 ? 0.5f : 1.f) : 0.f);
            float s = (hi - lo) / n_bins, b = lo;
            for (int it = 0; it < 2; ++it) {
                group_error(x, imp, n, n_bins, MlxDtype::F32, s, b, L);
                double W = 0, Q = 0, QQ = 0, X = 0, QX = 0;
                for (int j = 0; j < n; ++j) {
                    const double w = imp ? imp[j] : 1.0, q = L[j];
                    W += w, Q += w * q, QQ += w * q * q, X += w * x[j], QX += w * q * x[j];
                }
                const double det = W * QQ - Q * Q;
                if (!(det > 0)) break;
                s = static_cast<float>((W * QX - Q * X) / det);
                b = static_cast<float>((QQ * X - Q * QX) / det);
                if (!(s > 0)) break;
                consider(mlx_round(p.dtype, s), mlx_round(p.dtype, b));
            }
        }
    }
    *scale_out = best_s;
    *bias_out = best_b;
    if (codes) std::copy_n(best_L, n, codes);
}

void mlx_affine_quantize_weighted(const float* w, int64_t rows, int64_t cols, const MlxAffineParams& p, const float* importance,
                                  uint32_t* wq, void* scales, void* biases) {
    check_params(cols, p);
    const int64_t words_per_row = cols * p.bits / 32, groups = cols / p.group_size;
    std::memset(wq, 0, static_cast<size_t>(rows * words_per_row) * 4);
    uint8_t L[128];
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + r * cols + g * p.group_size;
            const float* imp = importance ? importance + g * p.group_size : nullptr;
            float scale, bias;
            mlx_affine_fit_group(x, imp, p, &scale, &bias, L);
            for (int j = 0; j < p.group_size; ++j) mlx_put_code(wq + r * words_per_row, g * p.group_size + j, p.bits, L[j]);
            mlx_store(p.dtype, scales, static_cast<size_t>(r * groups + g), scale);
            mlx_store(p.dtype, biases, static_cast<size_t>(r * groups + g), bias);
        }
}

}  // namespace qforge

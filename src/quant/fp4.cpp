// MLX mxfp4 and nvfp4: E2M1 codes with a per-group power-of-two (E8M0) or E4M3 scale. MLX has
// no CPU kernel for them: it composes ordinary ops in the input dtype, which is reproduced here
// by rounding every intermediate result to that dtype.
#include <cmath>
#include <cstring>

#include "qforge/error.hpp"
#include "qforge/mlx_quant.hpp"

namespace qforge {

namespace {
constexpr float kE2M1[16] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f, -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};

uint32_t nearest_code(float x, MlxDtype dt) {
    // argmin |x - LUT[k]|, each difference rounded to the dtype; ties keep the lowest index.
    uint32_t best = 0;
    float best_d = 0;
    for (uint32_t k = 0; k < 16; ++k) {
        const float d = std::fabs(mlx_round(dt, x - kE2M1[k]));
        if (k == 0 || d < best_d) {
            best = k;
            best_d = d;
        }
    }
    return best;
}
}  // namespace

int mlx_fp4_group_size(MlxFp4Mode m) { return m == MlxFp4Mode::MXFP4 ? 32 : 16; }

float fp8_e4m3_to_float(uint8_t v) {
    const int sign = v >> 7, e = (v >> 3) & 15, m = v & 7;
    float r;
    if (e == 15 && m == 7) r = NAN;
    else if (e == 0) r = std::ldexp(static_cast<float>(m), -9);
    else r = std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
    return sign ? -r : r;
}

uint8_t float_to_fp8_e4m3(float v) {
    if (std::isnan(v)) return 0x7f;
    const uint8_t sign = std::signbit(v) ? 0x80 : 0;
    float a = std::fabs(v);
    if (a >= 448.0f) return sign | 0x7e;
    // Candidates are all finite codes; pick the nearest, ties to the even code.
    uint8_t best = 0;
    float best_d = INFINITY;
    for (uint8_t c = 0; c < 0x7f; ++c) {
        const float d = std::fabs(fp8_e4m3_to_float(c) - a);
        if (d < best_d || (d == best_d && (c & 1) == 0)) {
            best = c;
            best_d = d;
        }
    }
    return sign | best;
}

void mlx_fp4_quantize(const float* w, int64_t rows, int64_t cols, MlxFp4Mode mode, MlxDtype dt, uint32_t* wq,
                      uint8_t* scales) {
    const int gs = mlx_fp4_group_size(mode);
    if (cols % gs != 0) throw_usage("[quantize] the last dimension must be a multiple of " + std::to_string(gs));
    const int64_t groups = cols / gs;
    std::memset(static_cast<void*>(wq), 0, static_cast<size_t>(rows * cols / 8) * 4);
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + r * cols + g * gs;
            float amax = 0;
            for (int j = 0; j < gs; ++j) amax = std::max(amax, std::fabs(x[j]));
            const float s = mlx_round(dt, amax / 6.0f);
            float div;
            if (mode == MlxFp4Mode::MXFP4) {
                const int e = s == 0 ? 0 : static_cast<int>(std::rint(mlx_round(dt, std::log2(s))));
                scales[r * groups + g] = static_cast<uint8_t>(e + 127);
                div = mlx_round(dt, std::ldexp(1.0f, e));
            } else {
                const uint8_t sc = float_to_fp8_e4m3(s);
                scales[r * groups + g] = sc;
                div = mlx_round(dt, fp8_e4m3_to_float(sc));
            }
            for (int j = 0; j < gs; ++j) {
                const float xv = mlx_round(dt, x[j] / div);
                const int64_t i = r * cols + g * gs + j;
                uint32_t word;
                std::memcpy(&word, reinterpret_cast<uint8_t*>(wq) + 4 * (i / 8), 4);
                word |= nearest_code(xv, dt) << (4 * (i % 8));
                std::memcpy(reinterpret_cast<uint8_t*>(wq) + 4 * (i / 8), &word, 4);
            }
        }
    }
}

void mlx_fp4_dequantize(const uint32_t* wq, const uint8_t* scales, int64_t rows, int64_t cols, MlxFp4Mode mode,
                        MlxDtype dt, void* out) {
    const int gs = mlx_fp4_group_size(mode);
    const int64_t groups = cols / gs;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            const int64_t i = r * cols + c;
            const uint8_t sc = scales[r * groups + c / gs];
            const float mult = mode == MlxFp4Mode::MXFP4 ? mlx_round(dt, std::ldexp(1.0f, static_cast<int>(sc) - 127))
                                                          : mlx_round(dt, fp8_e4m3_to_float(sc));
            uint32_t word;
            std::memcpy(&word, reinterpret_cast<const uint8_t*>(wq) + 4 * (i / 8), 4);
            const float v = kE2M1[(word >> (4 * (i % 8))) & 15];
            mlx_store(dt, out, static_cast<size_t>(i), mlx_round(dt, v * mult));
        }
    }
}

}  // namespace qforge

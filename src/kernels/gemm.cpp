#include "kernels/gemm.hpp"

#include <cstdlib>
#include <cstring>

namespace qforge {

void gemm_f32_scalar(const float* W, size_t ldw, int64_t n_rows, const float* X, size_t ldx, int B, int64_t K, float* Y,
                     size_t ldy) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* w = W + static_cast<size_t>(r) * ldw;
        for (int b = 0; b < B; ++b) {
            const float* x = X + static_cast<size_t>(b) * ldx;
            float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t i = 0;
            for (; i + 8 <= K; i += 8)
                for (int k = 0; k < 8; ++k) s[k] += w[i + k] * x[i + k];
            float acc = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
            for (; i < K; ++i) acc += w[i] * x[i];
            Y[static_cast<size_t>(b) * ldy + static_cast<size_t>(r)] = acc;
        }
    }
}

namespace {
#if defined(__x86_64__)
bool cpu_has_avx2_fma() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
bool force_scalar() {
    const char* e = std::getenv("QFORGE_KERNELS");
    return e && std::strcmp(e, "scalar") == 0;
}
}  // namespace

GemmFn best_gemm_f32() {
#if defined(__x86_64__)
    static const GemmFn fn = (!force_scalar() && cpu_has_avx2_fma()) ? gemm_f32_avx2 : gemm_f32_scalar;
#elif defined(__aarch64__)
    static const GemmFn fn = force_scalar() ? gemm_f32_scalar : gemm_f32_neon;
#else
    static const GemmFn fn = gemm_f32_scalar;
#endif
    return fn;
}

const char* gemm_f32_name() {
    if (best_gemm_f32() == gemm_f32_scalar) return "scalar";
#if defined(__x86_64__)
    return "avx2+fma";
#else
    return "neon";
#endif
}

}  // namespace qforge

// AVX2 int8 dot products (this file alone is compiled with -mavx2 -mfma -mf16c).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <type_traits>
#include <vector>

#include "kernels/vec_dot.hpp"
#include "quant/affine_blocks.hpp"
#include "quant/blocks.hpp"

namespace qforge {
namespace x86_avx2 {

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
inline __m256i dp_u8s8_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot_u8s8(u, s)); }

inline constexpr bool kWideCols = false;
inline constexpr bool kVnni = false;

// f32 vectors for the F16 matrix product: 8 lanes, 2 rows x 4 tokens per tile (16 registers).
struct FVec {
    using V = __m256;
    static constexpr int L = 8, R = 2, C = 4;
    static V zero() { return _mm256_setzero_ps(); }
    static V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static float sum(V v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
};

#include "kernels/vec_dot_x86.inc"

}  // namespace x86_avx2

KernelSet kernel_set_avx2() {
    // vpmaddubsw adds two u8 x s8 products in 16 bits: codes up to 64 against activations + 128.
    return {"avx2", std::begin(x86_avx2::kX86Kernels), std::end(x86_avx2::kX86Kernels), 64, X86_PANELS(x86_avx2)};
}

}  // namespace qforge

#endif  // __x86_64__

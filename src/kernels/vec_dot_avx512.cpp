// The same int8 dot products with AVX-512 VNNI on 256-bit vectors (this file alone is compiled with
// -mavx512f -mavx512vl -mavx512bw -mavx512vnni): vpdpbusd and vpdpwssd fuse the multiply, the
// pairwise add and the accumulation that AVX2 does in two or three instructions.
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
namespace x86_avx512vnni {

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
inline __m256i dp_u8s8_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }

inline constexpr bool kWideCols = true;
inline constexpr bool kVnni = true;

// f32 vectors for the F16 matrix product: 16 lanes, 4 rows x 6 tokens per tile (24 accumulators).
struct FVec {
    using V = __m512;
    static constexpr int L = 16, R = 4, C = 6;
    static V zero() { return _mm512_setzero_ps(); }
    static V load_f16(const uint16_t* p) { return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static float sum(V v) {
        const __m256 h = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, _mm512_castps_pd(v), 0)), _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, _mm512_castps_pd(v), 1)));
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
};

#include "kernels/vec_dot_x86.inc"

}  // namespace x86_avx512vnni

KernelSet kernel_set_avx512vnni() {
    // vpdpbusd sums u8 x s8 products in 32 bits: any int8 code, -128 included.
    KernelSet s{"avx512vnni", std::begin(x86_avx512vnni::kX86Kernels), std::end(x86_avx512vnni::kX86Kernels), 128,
                X86_PANELS(x86_avx512vnni)};
    s.q4_k_x16 = x86_avx512vnni::q4_k_x16;
    s.q5_k_x16 = x86_avx512vnni::q5_k_x16;
    s.q6_k_x16 = x86_avx512vnni::q6_k_x16;
    s.q3_k_x16 = x86_avx512vnni::q3_k_x16;
    s.q2_k_x16 = x86_avx512vnni::q2_k_x16;
    return s;
}

}  // namespace qforge

#endif  // __x86_64__

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

#include "kernels/vec_dot.hpp"
#include "quant/affine_blocks.hpp"
#include "quant/blocks.hpp"

namespace qforge {
namespace x86_avx512vnni {

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
inline __m256i dp_u8s8_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }

inline constexpr bool kWideCols = true;

#include "kernels/vec_dot_x86.inc"

}  // namespace x86_avx512vnni

KernelSet kernel_set_avx512vnni() {
    // vpdpbusd sums u8 x s8 products in 32 bits: any int8 code, -128 included.
    return {"avx512vnni", std::begin(x86_avx512vnni::kX86Kernels), std::end(x86_avx512vnni::kX86Kernels), 128,
            X86_PANELS(x86_avx512vnni)};
}

}  // namespace qforge

#endif  // __x86_64__

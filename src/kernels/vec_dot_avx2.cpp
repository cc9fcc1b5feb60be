// AVX2 int8 dot products (this file alone is compiled with -mavx2 -mfma -mf16c).
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
namespace x86_avx2 {

inline __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }
inline __m256i dp_s16(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
inline __m256i dp_u8s8_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot_u8s8(u, s)); }

inline constexpr bool kWideCols = false;

#include "kernels/vec_dot_x86.inc"

}  // namespace x86_avx2

KernelSet kernel_set_avx2() {
    // vpmaddubsw adds two u8 x s8 products in 16 bits: codes up to 64 against activations + 128.
    return {"avx2", std::begin(x86_avx2::kX86Kernels), std::end(x86_avx2::kX86Kernels), 64, X86_PANELS(x86_avx2)};
}

}  // namespace qforge

#endif  // __x86_64__

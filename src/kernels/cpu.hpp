// Which SIMD kernels this process may use: the CPU's features, unless QFORGE_KERNELS=scalar asks
// for the portable references (for comparisons and debugging).
#pragma once

namespace qforge {

bool kernels_forced_scalar();
bool cpu_has_avx2();  // AVX2 + FMA (every such CPU also has F16C); false off x86-64

}  // namespace qforge

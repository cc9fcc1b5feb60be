// Which SIMD kernels this process may use: the CPU's features, unless QFORGE_KERNELS=scalar asks
// for the portable references and QFORGE_KERNELS=avx2 caps x86 at AVX2 (for comparisons and debugging).
#pragma once

namespace qforge {

bool kernels_forced_scalar();
bool kernels_forced_avx2();
bool cpu_has_avx2();  // AVX2 + FMA (every such CPU also has F16C); false off x86-64
bool cpu_has_avx512vnni();  // AVX-512 F/BW/VL + VNNI (and AVX2); false off x86-64

}  // namespace qforge

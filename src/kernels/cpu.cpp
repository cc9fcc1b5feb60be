#include "kernels/cpu.hpp"

#include <cstdlib>
#include <cstring>

namespace qforge {

bool kernels_forced_scalar() {
    static const bool forced = [] {
        const char* e = std::getenv("QFORGE_KERNELS");
        return e && std::strcmp(e, "scalar") == 0;
    }();
    return forced;
}

bool cpu_has_avx2() {
#if defined(__x86_64__)
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return has;
#else
    return false;
#endif
}

}  // namespace qforge

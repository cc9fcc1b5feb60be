#include "kernels/cpu.hpp"

#include <cstdlib>
#include <cstring>

namespace qforge {

namespace {

bool kernels_env_is(const char* what) {
    const char* e = std::getenv("QFORGE_KERNELS");
    return e && std::strcmp(e, what) == 0;
}

}  // namespace

bool kernels_forced_scalar() {
    static const bool forced = kernels_env_is("scalar");
    return forced;
}

bool kernels_forced_avx2() {
    static const bool forced = kernels_env_is("avx2");
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

bool cpu_has_avx512vnni() {
#if defined(__x86_64__)
    static const bool has = [] {
        __builtin_cpu_init();
        return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }();
    return has;
#else
    return false;
#endif
}

}  // namespace qforge

#include "core/huge_arena.hpp"

#include <sys/mman.h>

#include <string>

#include "qforge/error.hpp"

namespace qforge {

HugeArena::HugeArena(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    mapped_ = bytes + kHuge;
    void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error(ExitCode::resource, "out of memory: cannot map " + std::to_string(bytes >> 20) + " MiB for the weights");
    base_ = static_cast<uint8_t*>(p);
    data_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base_) + kHuge - 1) / kHuge * kHuge);
    bytes_ = bytes;
#ifdef MADV_HUGEPAGE
    ::madvise(data_, bytes, MADV_HUGEPAGE);  // advice only: without transparent huge pages nothing changes
#endif
}

HugeArena::~HugeArena() {
    if (base_) ::munmap(base_, mapped_);
}

}  // namespace qforge

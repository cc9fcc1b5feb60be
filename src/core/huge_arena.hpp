// Anonymous memory, 2 MiB aligned and advised for transparent huge pages: the CPU's copy of the
// weights (fewer TLB misses while generation streams every weight once a token).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qforge {

class HugeArena {
public:
    HugeArena() = default;
    explicit HugeArena(size_t bytes);  // throws Error(resource) when the memory cannot be mapped
    HugeArena(const HugeArena&) = delete;
    HugeArena& operator=(const HugeArena&) = delete;
    ~HugeArena();
    uint8_t* data() const { return data_; }
    size_t size() const { return bytes_; }

private:
    uint8_t* base_ = nullptr;
    uint8_t* data_ = nullptr;
    size_t mapped_ = 0, bytes_ = 0;
};

}  // namespace qforge

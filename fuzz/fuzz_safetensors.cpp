// libFuzzer target for the safetensors parser.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "qforge/error.hpp"
#include "qforge/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f = qforge::SafetensorsFile::parse(std::span<const uint8_t>(data, size), "fuzz.safetensors");
        for (const auto& t : f->tensors()) {
            if (t.data < data || t.data + t.n_bytes() > data + size) std::abort();
        }
    } catch (const qforge::Error&) {
    }
    return 0;
}

// libFuzzer target: the GGUF parser must reject or accept any bytes without crashing, and
// every accepted file's tensor views must lie inside the input.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "qforge/error.hpp"
#include "qforge/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f = qforge::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
        for (const auto& t : f->tensors()) {
            if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
            volatile uint8_t sink = 0;
            if (t.n_bytes) sink = t.data[t.n_bytes - 1];
            (void)sink;
        }
        for (const auto& kv : f->metadata()) (void)kv.value.to_display();
    } catch (const qforge::Error&) {
    }
    return 0;
}

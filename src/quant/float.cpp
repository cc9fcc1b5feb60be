// F32, F16 and BF16 "quantization": plain conversions with ggml's rounding.
#include <cstring>

#include "qforge/half.hpp"
#include "quant/quant_fns.hpp"

namespace qforge {

void quantize_row_f32(const float* src, void* dst, int64_t n, const float*) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
void dequantize_row_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void quantize_row_f16(const float* src, void* dst, int64_t n, const float*) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}
namespace {
// Rows may come straight from a safetensors file, whose data need not be 2-byte aligned.
uint16_t load_u16(const void* src, int64_t i) {
    uint16_t h;
    std::memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2);
    return h;
}
}  // namespace

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(src, i));
}

void quantize_row_bf16(const float* src, void* dst, int64_t n, const float*) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}
void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(src, i));
}

}  // namespace qforge

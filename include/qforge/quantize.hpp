// Quantize and dequantize whole tensors with the type table, over several threads by rows.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qforge/types.hpp"

namespace qforge {

// Quantize nrows x n_per_row floats into `type`. imatrix (n_per_row weights) may be empty.
// The result does not depend on n_threads.
std::vector<uint8_t> quantize_tensor(const float* src, int64_t nrows, int64_t n_per_row, GgmlType type,
                                     std::span<const float> imatrix = {}, int n_threads = 1);
void quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row, GgmlType type,
                   const float* imatrix, int n_threads);

// Dequantize n elements stored as `type` into f32.
void dequantize(GgmlType type, const void* src, float* dst, int64_t n);
std::vector<float> dequantize(GgmlType type, std::span<const uint8_t> src, int64_t n);

}  // namespace qforge

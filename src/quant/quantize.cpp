#include "qforge/quantize.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

#include "qforge/error.hpp"

namespace qforge {

void quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row, GgmlType type, const float* imatrix,
                   int n_threads) {
    const TypeTraits& t = type_traits(type);
    if (!t.quantize) throw_usage(std::string("quantizing to ") + t.name + " is not supported");
    const auto rb = row_bytes(t, n_per_row);
    if (!rb) throw_usage(std::string("row length ") + std::to_string(n_per_row) + " is not a multiple of the " + t.name +
                         " block size " + std::to_string(t.block_size));
    auto* out = static_cast<uint8_t*>(dst);
    auto work = [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) t.quantize(src + r * n_per_row, out + r * *rb, n_per_row, imatrix);
    };
    if (n_threads <= 1 || nrows < 2) {
        work(0, nrows);
        return;
    }
    const int64_t nt = std::min<int64_t>(n_threads, nrows);
    std::vector<std::thread> threads;
    for (int64_t k = 0; k < nt; ++k) threads.emplace_back(work, nrows * k / nt, nrows * (k + 1) / nt);
    for (auto& th : threads) th.join();
}

std::vector<uint8_t> quantize_tensor(const float* src, int64_t nrows, int64_t n_per_row, GgmlType type,
                                     std::span<const float> imatrix, int n_threads) {
    const TypeTraits& t = type_traits(type);
    const auto rb = row_bytes(t, n_per_row);
    if (!rb) throw_usage(std::string("row length ") + std::to_string(n_per_row) + " is not a multiple of the " + t.name +
                         " block size " + std::to_string(t.block_size));
    if (!imatrix.empty() && static_cast<int64_t>(imatrix.size()) != n_per_row)
        throw_usage("importance matrix has " + std::to_string(imatrix.size()) + " values for rows of " +
                    std::to_string(n_per_row));
    for (int64_t i = 0; i < nrows * n_per_row; ++i) {
        if (!std::isfinite(src[i]))
            throw Error(ExitCode::bad_input, "cannot quantize: input contains NaN or Inf (element " + std::to_string(i) + ")");
    }
    std::vector<uint8_t> out(static_cast<size_t>(*rb * nrows));
    quantize_rows(src, out.data(), nrows, n_per_row, type, imatrix.empty() ? nullptr : imatrix.data(), n_threads);
    return out;
}

void dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
    const TypeTraits& t = type_traits(type);
    if (!t.dequantize) throw_usage(std::string("dequantizing ") + t.name + " is not supported");
    t.dequantize(src, dst, n);
}

std::vector<float> dequantize(GgmlType type, std::span<const uint8_t> src, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    dequantize(type, src.data(), out.data(), n);
    return out;
}

}  // namespace qforge

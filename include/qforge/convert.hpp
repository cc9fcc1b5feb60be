// `qforge convert`: a Hugging Face model directory to GGUF, as llama.cpp's convert_hf_to_gguf.py
// writes it (same metadata keys, order and values, tensor names, order and data).
#pragma once

#include <memory>
#include <string>

#include "qforge/quantize_model.hpp"
#include "qforge/safetensors.hpp"

namespace qforge {

// An opened Hugging Face model: its config, tokenizer and tensors, presented as the GGUF the
// converter would write (tensors in converter order with GGUF names; 2-D tensors in their
// stored dtype with llama's Q/K row permutation applied, 1-D tensors as F32).
struct HfModel {
    std::string dir;
    SafetensorsModel weights;
    SourceModel source;  // metadata (general.file_type = F16 until set_file_type) and tensors
    std::string hf_architecture;
    std::string gguf_architecture;
};

std::unique_ptr<HfModel> open_hf_model(const std::string& dir);

// The outtypes the converter itself writes (f32, f16, bf16, q8_0), "auto" (each matrix in the type
// it was read in: an MLX directory's codes as Q4_1/Q5_1) or any quantize type/mix.
// Writes `out`; returns the report of what was written.
QuantizeReport convert_hf_model(const HfModel& model, const std::string& out, const std::string& outtype, int threads,
                                const Imatrix* imatrix = nullptr, const std::string& imatrix_file = "");

// The ggml type the converter gives a tensor for an outtype (f32/f16/bf16/q8_0).
GgmlType converter_tensor_type(const SourceTensor& t, GgmlType outtype);

}  // namespace qforge

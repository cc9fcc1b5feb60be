// llama-quantize's per-tensor type rules ("mixes") for each file type.
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "qforge/quantize_model.hpp"

namespace qforge {

class TensorTypeChooser {
public:
    TensorTypeChooser(const SourceModel& model, const Ftype& ftype, const QuantizeOptions& opt);
    // Call once per tensor, in output order (the layer counters depend on it).
    GgmlType choose(const SourceTensor& t);

private:
    GgmlType mix_type(GgmlType new_type, const SourceTensor& t);
    GgmlType fallback(GgmlType target, const SourceTensor& t);
    bool allows_quantization(const SourceTensor& t) const;

    const Ftype& ftype_;
    const QuantizeOptions& opt_;
    std::vector<std::pair<std::regex, GgmlType>> patterns_;
    std::string arch_;
    int n_gqa_ = 1;
    int n_expert_ = 0;
    bool has_output_ = false;
    int n_attention_wv_ = 0, n_ffn_down_ = 0, n_ffn_gate_ = 0, n_ffn_up_ = 0;
    int i_attention_wv_ = 0, i_ffn_down_ = 0, i_ffn_gate_ = 0, i_ffn_up_ = 0;
    bool has_imatrix_ = false;
};

}  // namespace qforge

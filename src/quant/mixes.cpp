// The per-tensor rules of llama.cpp's llama-quantize (build 4748): which tensors are quantized
// at all, which get more bits (attn_v, ffn_down, output …) for each file type, and the
// fallbacks for rows that are not a multiple of the block size.
#include "quant/mixes.hpp"

#include <cstdio>

#include "qforge/error.hpp"

namespace qforge {

namespace {

using T = GgmlType;

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

bool is_attn_v(const std::string& name) {
    return contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight");
}

}  // namespace

TensorTypeChooser::TensorTypeChooser(const SourceModel& model, const Ftype& ftype, const QuantizeOptions& opt)
    : ftype_(ftype), opt_(opt) {
    for (const auto& [re, type] : opt.tensor_types) {
        try {
            patterns_.emplace_back(std::regex(re), type);
        } catch (const std::regex_error&) {
            throw_usage("--tensor-type: invalid regular expression '" + re + "'");
        }
    }
    arch_ = model.architecture();
    const auto n_head = model.get_int(arch_ + ".attention.head_count").value_or(1);
    const auto n_head_kv = model.get_int(arch_ + ".attention.head_count_kv").value_or(n_head);
    n_gqa_ = n_head_kv > 0 ? static_cast<int>(n_head / n_head_kv) : 1;
    n_expert_ = static_cast<int>(model.get_int(arch_ + ".expert_count").value_or(0));
    const int n_layer = static_cast<int>(model.get_int(arch_ + ".block_count").value_or(0));
    for (const auto& t : model.tensors) {
        if (is_attn_v(t.name)) ++n_attention_wv_;
        else if (t.name == "output.weight") has_output_ = true;
    }
    n_ffn_down_ = n_ffn_gate_ = n_ffn_up_ = n_layer;
    has_imatrix_ = opt.imatrix != nullptr && !opt.imatrix->entries.empty();
}

bool TensorTypeChooser::allows_quantization(const SourceTensor& t) const {
    if (t.ne.size() < 2) return false;
    const std::string& name = t.name;
    bool q = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
    q &= !contains(name, "_norm.weight");
    q &= !opt_.leave_output_tensor || name != "output.weight";
    q &= !contains(name, "ffn_gate_inp.weight");
    q &= name != "position_embd.weight" && name != "token_types.weight";
    q &= !contains(name, "ssm_conv1d.weight");
    q &= !contains(name, "time_mix_first.weight") && !contains(name, "time_mix_w1.weight") &&
         !contains(name, "time_mix_w2.weight") && !contains(name, "time_mix_decay_w1.weight") &&
         !contains(name, "time_mix_decay_w2.weight") && !contains(name, "time_mix_lerp_fused.weight");
    q &= !contains(name, "attn_rel_b.weight");
    return q;
}

GgmlType TensorTypeChooser::choose(const SourceTensor& t) {
    if (!allows_quantization(t)) return t.type;
    GgmlType new_type = ftype_.default_type;
    const bool quantized_default = type_traits(new_type).is_quantized;
    if (quantized_default) {
        bool manual = false;
        for (const auto& [re, type] : patterns_) {
            if (std::regex_search(t.name, re)) {
                new_type = type;
                manual = true;
                break;
            }
        }
        if (!manual && !opt_.pure) new_type = mix_type(new_type, t);
    }
    if (opt_.token_embedding_type && t.name == "token_embd.weight") new_type = *opt_.token_embedding_type;
    if (opt_.output_tensor_type && t.name == "output.weight") new_type = *opt_.output_tensor_type;
    if (type_traits(new_type).is_quantized) new_type = fallback(new_type, t);
    return new_type;
}

GgmlType TensorTypeChooser::fallback(GgmlType target, const SourceTensor& t) {
    const int64_t ncols = t.ne[0];
    if (ncols % type_traits(target).block_size == 0) return target;
    GgmlType r;
    switch (target) {
        case T::IQ2_XXS:
        case T::IQ2_XS:
        case T::IQ3_XXS:
        case T::IQ3_S:
        case T::IQ1_S:
        case T::IQ1_M:
        case T::IQ2_S:
        case T::IQ4_XS: r = T::IQ4_NL; break;
        case T::Q2_K:
        case T::Q3_K:
        case T::TQ1_0:
        case T::TQ2_0: r = T::Q4_0; break;
        case T::Q4_K: r = T::Q5_0; break;
        case T::Q5_K: r = T::Q5_1; break;
        case T::Q6_K: r = T::Q8_0; break;
        default: r = T::F16; break;
    }
    if (ncols % type_traits(r).block_size != 0) r = T::F16;
    return r;
}

// llama_tensor_get_type: the mix for the file type, by tensor name and layer.
GgmlType TensorTypeChooser::mix_type(GgmlType new_type, const SourceTensor& t) {
    const std::string& name = t.name;
    const uint32_t ft = ftype_.id;
    enum : uint32_t {
        Q2_K = 10, Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17,
        Q4_0 = 2, Q5_0 = 8, IQ4_NL = 25, IQ4_XS = 30, Q2_K_S = 21,
    };
    const bool falcon = arch_ == "falcon";
    const bool is_output = name == "output.weight" || (!has_output_ && name == "token_embd.weight");
    if (is_output) {
        const int64_t nx = t.ne[0];
        const int64_t qk_k = type_traits(new_type).block_size;
        if (falcon || nx % qk_k != 0) new_type = T::Q8_0;
        else if (new_type != T::Q8_0) new_type = T::Q6_K;
        return new_type;
    }
    if (name == "token_embd.weight") return new_type;
    if (is_attn_v(name)) {
        if (ft == Q2_K) new_type = n_gqa_ >= 4 ? T::Q4_K : T::Q3_K;
        else if (ft == Q2_K_S && n_gqa_ >= 4) new_type = T::Q4_K;
        else if (ft == Q3_K_M) new_type = i_attention_wv_ < 2 ? T::Q5_K : T::Q4_K;
        else if (ft == Q3_K_L) new_type = T::Q5_K;
        else if ((ft == IQ4_NL || ft == IQ4_XS) && n_gqa_ >= 4) new_type = T::Q5_K;
        else if ((ft == Q4_K_M || ft == Q5_K_M) && use_more_bits(i_attention_wv_, n_attention_wv_)) new_type = T::Q6_K;
        else if (ft == Q4_K_S && i_attention_wv_ < 4) new_type = T::Q5_K;
        if (n_expert_ == 8) new_type = T::Q8_0;
        ++i_attention_wv_;
    } else if (contains(name, "attn_k.weight")) {
        if (n_expert_ == 8) new_type = T::Q8_0;
    } else if (contains(name, "ffn_down")) {
        int i_layer = i_ffn_down_;
        const int n_layer = n_ffn_down_;
        if (n_expert_ > 1 && std::sscanf(name.c_str(), "blk.%d.", &i_layer) != 1)
            throw_bad_input(name, "cannot determine the layer of this tensor");
        if (ft == Q2_K) new_type = T::Q3_K;
        else if (ft == Q2_K_S) {
            if (i_layer < n_layer / 8) new_type = T::Q4_K;
        } else if (ft == Q3_K_M) {
            new_type = i_layer < n_layer / 16 ? T::Q5_K : (!falcon || use_more_bits(i_layer, n_layer)) ? T::Q4_K : T::Q3_K;
        } else if (ft == Q3_K_L) {
            new_type = falcon ? T::Q4_K : T::Q5_K;
        } else if (ft == Q4_K_M) {
            if (falcon) new_type = i_layer < n_layer / 16 ? T::Q6_K : use_more_bits(i_layer, n_layer) ? T::Q5_K : T::Q4_K;
            else if (use_more_bits(i_layer, n_layer)) new_type = T::Q6_K;
        } else if (i_layer < n_layer / 8 && (ft == IQ4_NL || ft == IQ4_XS) && !has_imatrix_) {
            new_type = T::Q5_K;
        } else if (ft == Q5_K_M && use_more_bits(i_layer, n_layer)) {
            new_type = T::Q6_K;
        } else if (ft == Q4_K_S && !falcon && i_layer < n_layer / 8) {
            new_type = T::Q5_K;
        } else if ((ft == Q4_0 || ft == Q5_0) && has_imatrix_ && i_layer < n_layer / 8) {
            new_type = ft == Q4_0 ? T::Q4_1 : T::Q5_1;
        }
        ++i_ffn_down_;
    } else if (contains(name, "attn_output.weight")) {
        if (!falcon) {
            if (n_expert_ == 8) {
                if (ft == Q2_K || ft == Q3_K_S || ft == Q3_K_M || ft == IQ4_NL || ft == Q4_K_S || ft == Q4_K_M ||
                    ft == IQ4_XS)
                    new_type = T::Q5_K;
            } else {
                if (ft == Q2_K) new_type = T::Q3_K;
                else if (ft == Q3_K_M) new_type = T::Q4_K;
                else if (ft == Q3_K_L) new_type = T::Q5_K;
            }
        } else if (ft == Q3_K_L) {
            new_type = T::Q4_K;
        }
    } else if (contains(name, "attn_qkv.weight")) {
        if (ft == Q3_K_M || ft == Q3_K_L) new_type = T::Q4_K;
        else if (ft == Q4_K_M) new_type = T::Q5_K;
        else if (ft == Q5_K_M) new_type = T::Q6_K;
    } else if (contains(name, "ffn_gate")) {
        ++i_ffn_gate_;
    } else if (contains(name, "ffn_up")) {
        ++i_ffn_up_;
    }
    return new_type;
}

}  // namespace qforge

// Hugging Face (llama family, qwen2) -> GGUF, following llama.cpp's convert_hf_to_gguf.py.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/strings.hpp"
#include "formats/hf_vocab.hpp"
#include "formats/json_file.hpp"
#include "quant/affine_blocks.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/half.hpp"
#include "qforge/mlx_model.hpp"
#include "qforge/progress.hpp"
#include "qforge/quantize.hpp"

namespace qforge {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Hparams {
    int64_t n_layer = 0, n_ctx = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0, vocab = 0;
    std::optional<double> rope_theta, rms_eps;
    std::optional<int64_t> head_dim_cfg;
    json rope_scaling;
    bool tied = false;
};

int64_t get_int(const json& cfg, std::initializer_list<const char*> keys, const std::string& file, bool required = true) {
    for (const char* k : keys)
        if (cfg.contains(k) && cfg[k].is_number_integer()) return cfg[k].get<int64_t>();
    if (required) throw_bad_input(file, std::string("config.json has no ") + *keys.begin());
    return 0;
}

Hparams read_hparams(const json& cfg, const std::string& file) {
    Hparams h;
    h.n_layer = get_int(cfg, {"num_hidden_layers", "n_layer"}, file);
    h.n_ctx = get_int(cfg, {"max_position_embeddings", "n_ctx", "n_positions"}, file, false);
    h.n_embd = get_int(cfg, {"hidden_size", "n_embd"}, file);
    h.n_ff = get_int(cfg, {"intermediate_size", "n_inner"}, file, false);
    h.n_head = get_int(cfg, {"num_attention_heads", "n_head"}, file);
    h.n_head_kv = cfg.contains("num_key_value_heads") && cfg["num_key_value_heads"].is_number_integer()
                      ? cfg["num_key_value_heads"].get<int64_t>() : h.n_head;
    h.vocab = get_int(cfg, {"vocab_size"}, file, false);
    if (cfg.contains("head_dim") && cfg["head_dim"].is_number_integer()) h.head_dim_cfg = cfg["head_dim"].get<int64_t>();
    if (h.n_layer <= 0 || h.n_embd <= 0 || h.n_head <= 0 || h.n_head_kv <= 0 || h.n_head % h.n_head_kv != 0)
        throw_bad_input(file, "inconsistent layer, embedding or head counts");
    h.head_dim = h.head_dim_cfg.value_or(h.n_embd / h.n_head);
    if (!h.head_dim_cfg && h.n_embd % h.n_head != 0) throw_bad_input(file, "hidden_size is not a multiple of num_attention_heads");
    // Older layout: rope_theta at top level; newer: rope_parameters.rope_theta.
    if (cfg.contains("rope_theta") && cfg["rope_theta"].is_number()) h.rope_theta = cfg["rope_theta"].get<double>();
    else if (cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object() && cfg["rope_parameters"].contains("rope_theta"))
        h.rope_theta = cfg["rope_parameters"]["rope_theta"].get<double>();
    if (cfg.contains("rms_norm_eps") && cfg["rms_norm_eps"].is_number()) h.rms_eps = cfg["rms_norm_eps"].get<double>();
    if (cfg.contains("rope_scaling") && cfg["rope_scaling"].is_object()) h.rope_scaling = cfg["rope_scaling"];
    else if (cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object() &&
             cfg["rope_parameters"].value("rope_type", "default") != "default")
        h.rope_scaling = cfg["rope_parameters"];
    h.tied = cfg.value("tie_word_embeddings", false);
    return h;
}

// general.name / basename / size_label from the directory name, as gguf-py's heuristics do.
void general_names(const std::string& dir_name, int64_t n_params, std::vector<GgufKV>& kv) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i <= dir_name.size(); ++i) {
        if (i == dir_name.size() || dir_name[i] == '-') {
            if (i > start) parts.push_back(dir_name.substr(start, i - start));
            start = i + 1;
        }
    }
    static const std::regex size_re("^(\\d+x)?\\d+([._]\\d+)?[kmbtKMBT]$");
    int size_idx = -1;
    for (size_t i = 0; i < parts.size(); ++i)
        if (std::regex_match(parts[i], size_re)) size_idx = static_cast<int>(i);
    std::string title;
    for (const auto& w : parts) {
        std::string t = w;
        const bool lower = std::none_of(w.begin(), w.end(), [](unsigned char c) { return std::isupper(c); }) &&
                           std::any_of(w.begin(), w.end(), [](unsigned char c) { return std::isalpha(c); });
        if (lower && !std::isdigit(static_cast<unsigned char>(w[0])) && !(w[0] == 'v' && w.size() > 1 && std::isdigit(static_cast<unsigned char>(w[1])))) {
            bool new_word = true;
            for (auto& c : t) {
                c = static_cast<char>(new_word ? std::toupper(static_cast<unsigned char>(c)) : c);
                new_word = !std::isalpha(static_cast<unsigned char>(c));
            }
        }
        title += (title.empty() ? "" : " ") + t;
    }
    kv.push_back({"general.name", GgufValue::string(title)});
    std::string basename, finetune, size_label;
    if (size_idx >= 0) {
        for (int i = 0; i < size_idx; ++i) basename += (i ? "-" : "") + parts[static_cast<size_t>(i)];
        for (size_t i = static_cast<size_t>(size_idx) + 1; i < parts.size(); ++i) finetune += (finetune.empty() ? "" : "-") + parts[i];
        size_label = parts[static_cast<size_t>(size_idx)];
        size_label.back() = static_cast<char>(std::toupper(static_cast<unsigned char>(size_label.back())));
    } else {
        // Size from the parameter count: two significant digits, e.g. 8.4M, 23M, 1.1B.
        const char* units[] = {"", "K", "M", "B", "T"};
        double v = static_cast<double>(n_params);
        int u = 0;
        while (v >= 1000.0 && u < 4) {
            v /= 1000.0;
            ++u;
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, v < 10 ? "%.1f%s" : "%.0f%s", v, units[u]);
        size_label = buf;
    }
    if (!finetune.empty()) kv.push_back({"general.finetune", GgufValue::string(finetune)});
    if (!basename.empty()) kv.push_back({"general.basename", GgufValue::string(basename)});
    kv.push_back({"general.size_label", GgufValue::string(size_label)});
}

struct TensorMap {
    std::string gguf_name;
    int permute_heads = 0;  // llama Q/K: number of heads for the row permutation
    std::vector<int64_t> expect;  // expected HF shape
};

// HF tensor name -> GGUF name (and its expected shape), or nullopt for tensors the converter drops.
std::optional<TensorMap> map_tensor(const std::string& name, const Hparams& h, const std::string& arch) {
    const int64_t q_dim = h.n_head * h.head_dim, kv_dim = h.n_head_kv * h.head_dim;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) return std::nullopt;
    if (name == "model.embed_tokens.weight") return TensorMap{"token_embd.weight", 0, {h.vocab, h.n_embd}};
    if (name == "model.norm.weight") return TensorMap{"output_norm.weight", 0, {h.n_embd}};
    if (name == "lm_head.weight") return TensorMap{"output.weight", 0, {h.vocab, h.n_embd}};
    static const std::regex layer_re("^model\\.layers\\.(\\d+)\\.(.+)$");
    std::smatch m;
    if (!std::regex_match(name, m, layer_re)) throw_bad_input(name, "cannot map this tensor to a GGUF name");
    const std::string bid = m[1];
    if (std::stoll(bid) >= h.n_layer) throw_bad_input(name, "layer index beyond num_hidden_layers");
    const std::string rest = m[2];
    const std::string blk = "blk." + bid + ".";
    const bool llama = arch == "llama";
    if (rest == "input_layernorm.weight") return TensorMap{blk + "attn_norm.weight", 0, {h.n_embd}};
    if (rest == "post_attention_layernorm.weight") return TensorMap{blk + "ffn_norm.weight", 0, {h.n_embd}};
    if (rest == "self_attn.q_proj.weight") return TensorMap{blk + "attn_q.weight", llama ? static_cast<int>(h.n_head) : 0, {q_dim, h.n_embd}};
    if (rest == "self_attn.k_proj.weight") return TensorMap{blk + "attn_k.weight", llama ? static_cast<int>(h.n_head_kv) : 0, {kv_dim, h.n_embd}};
    if (rest == "self_attn.v_proj.weight") return TensorMap{blk + "attn_v.weight", 0, {kv_dim, h.n_embd}};
    if (rest == "self_attn.o_proj.weight") return TensorMap{blk + "attn_output.weight", 0, {h.n_embd, q_dim}};
    if (rest == "self_attn.q_proj.bias") return TensorMap{blk + "attn_q.bias", llama ? static_cast<int>(h.n_head) : 0, {q_dim}};
    if (rest == "self_attn.k_proj.bias") return TensorMap{blk + "attn_k.bias", llama ? static_cast<int>(h.n_head_kv) : 0, {kv_dim}};
    if (rest == "self_attn.v_proj.bias") return TensorMap{blk + "attn_v.bias", 0, {kv_dim}};
    if (rest == "mlp.gate_proj.weight") return TensorMap{blk + "ffn_gate.weight", 0, {h.n_ff, h.n_embd}};
    if (rest == "mlp.up_proj.weight") return TensorMap{blk + "ffn_up.weight", 0, {h.n_ff, h.n_embd}};
    if (rest == "mlp.down_proj.weight") return TensorMap{blk + "ffn_down.weight", 0, {h.n_embd, h.n_ff}};
    throw_bad_input(name, "cannot map this tensor to a GGUF name");
}

GgmlType ggml_type_of(StDtype d, const std::string& name) {
    switch (d) {
        case StDtype::F32: return GgmlType::F32;
        case StDtype::F16: return GgmlType::F16;
        case StDtype::BF16: return GgmlType::BF16;
        default: throw_bad_input(name, std::string("unsupported dtype ") + st_dtype_name(d) + " (expected F32, F16 or BF16)");
    }
}

// llama's Q/K row order in GGUF (LlamaModel.permute): rows (head, 2, half) -> (head, half, 2).
// heads == 0 copies the rows unchanged.
void permute_rows(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int heads) {
    if (heads == 0) {
        std::memcpy(dst, src, static_cast<size_t>(rows) * row_bytes);
        return;
    }
    const int64_t half = rows / heads / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i)
            for (int64_t j = 0; j < 2; ++j) {
                const int64_t out_row = h * 2 * half + i * 2 + j, in_row = h * 2 * half + j * half + i;
                std::memcpy(dst + static_cast<size_t>(out_row) * row_bytes, src + static_cast<size_t>(in_row) * row_bytes, row_bytes);
            }
}

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

// An MLX-quantized module (mlx-lm layout): P.weight uint32 codes, P.scales and P.biases, with
// bits and group size from config.json "quantization" (a module's own entry first).
struct MlxModule {
    const StTensor* wq;
    const StTensor* scales;
    const StTensor* biases;
    MlxAffineParams p;
    int64_t cols;
    bool to_blocks;  // exact as Q4_1 / Q5_1
    std::optional<GgmlType> block_type;  // else exact as qforge's MLX blocks (2, 3, 6, 8 bits), else dequantized into the scales' dtype
    std::optional<MlxFp4Mode> fp4;  // mxfp4 / nvfp4: uint8 scales, no biases, dequantized to f32
};

std::optional<MlxModule> mlx_module(const SafetensorsModel& w, const StTensor& t, const json& cfg) {
    if (t.dtype != StDtype::U32 || !t.name.ends_with(".weight")) return std::nullopt;
    const std::string module = t.name.substr(0, t.name.size() - 7);
    const StTensor* sc = w.find(module + ".scales");
    const StTensor* bi = w.find(module + ".biases");
    const json* q = cfg.contains("quantization") ? &cfg["quantization"] : cfg.contains("quantization_config") ? &cfg["quantization_config"] : nullptr;
    if (!q || !q->is_object()) throw_bad_input(t.name, "quantized weights but no \"quantization\" in config.json");
    const json& qm = q->contains(module) && (*q)[module].is_object() ? (*q)[module] : *q;
    MlxModule m{&t, sc, bi, {}, 0, false, std::nullopt, std::nullopt};
    const json& g = qm.contains("group_size") && !qm["group_size"].is_null() ? qm["group_size"] : (*q)["group_size"];
    m.p.bits = qm.value("bits", 0);
    m.p.group_size = g.is_number_integer() ? g.get<int>() : 64;
    const std::string mode = qm.value("mode", q->value("mode", std::string("affine")));
    if (mode == "mxfp4") m.fp4 = MlxFp4Mode::MXFP4;
    else if (mode == "nvfp4") m.fp4 = MlxFp4Mode::NVFP4;
    else if (mode != "affine") throw_bad_input(t.name, "MLX mode '" + mode + "' is not supported (affine, mxfp4, nvfp4)");
    if (!sc || (!bi && !m.fp4)) throw_bad_input(t.name, "uint32 weights without " + module + ".scales" + (m.fp4 ? "" : " and .biases"));
    if (t.shape.size() != 2 || m.p.bits <= 0 || m.p.group_size <= 0) throw_bad_input(t.name, "bad MLX quantization parameters or shape");
    m.cols = t.shape[1] * 32 / m.p.bits;
    if (m.fp4) {
        const std::vector<int64_t> gshape{t.shape[0], m.cols / m.p.group_size};
        if (m.p.bits != 4 || m.p.group_size != mlx_fp4_group_size(*m.fp4) || sc->dtype != StDtype::U8 || sc->shape != gshape)
            throw_bad_input(t.name, "scales do not match " + mode + " codes");
        m.p.dtype = MlxDtype::F32;
        return m;
    }
    if (sc->dtype == StDtype::F16) m.p.dtype = MlxDtype::F16;
    else if (sc->dtype == StDtype::BF16) m.p.dtype = MlxDtype::BF16;
    else if (sc->dtype == StDtype::F32) m.p.dtype = MlxDtype::F32;
    else throw_bad_input(sc->name, "scales must be F16, BF16 or F32");
    const std::vector<int64_t> gshape{t.shape[0], m.cols / m.p.group_size};
    if (m.cols % m.p.group_size != 0 || sc->shape != gshape || bi->shape != gshape || bi->dtype != sc->dtype)
        throw_bad_input(t.name, "scales/biases do not match " + std::to_string(m.p.bits) + "-bit codes in groups of " + std::to_string(m.p.group_size));
    // Blocks of 32 with f16 scales hold the same codes when every scale and bias fits f16: ggml's
    // Q4_1 / Q5_1 for 4 and 5 bits, qforge's own for 2, 3, 6 and 8.
    bool f16_exact = m.p.group_size % 32 == 0;
    for (int64_t i = 0; f16_exact && i < sc->n_elements(); ++i)
        for (const StTensor* x : {sc, bi}) {
            const float v = mlx_load(m.p.dtype, x->data, static_cast<size_t>(i));
            if (!std::isfinite(v) || fp16_to_fp32(fp32_to_fp16(v)) != v) f16_exact = false;
        }
    m.to_blocks = f16_exact && (m.p.bits == 4 || m.p.bits == 5);
    if (f16_exact && !m.to_blocks) m.block_type = mlx_block_type(m.p.bits);
    return m;
}

MlxAffineTensor mlx_tensor(const MlxModule& m) {
    MlxAffineTensor t;
    t.p = m.p;
    t.rows = m.wq->shape[0];
    t.cols = m.cols;
    t.wq.resize(static_cast<size_t>(m.wq->n_elements()));
    std::memcpy(t.wq.data(), m.wq->data, t.wq.size() * 4);
    t.scales.assign(m.scales->data, m.scales->data + m.scales->n_bytes());
    if (m.biases) t.biases.assign(m.biases->data, m.biases->data + m.biases->n_bytes());
    return t;
}

}  // namespace

std::unique_ptr<HfModel> open_hf_model(const std::string& dir_str) {
    const fs::path dir(dir_str);
    if (!fs::is_directory(dir)) throw_bad_input(dir_str, "not a directory (expected a Hugging Face model directory)");
    if (!fs::exists(dir / "config.json")) throw_bad_input(dir_str, "no config.json in this directory");
    const std::string cfg_file = (dir / "config.json").string();
    const json cfg = read_json_file(dir / "config.json");
    auto m = std::make_unique<HfModel>();
    m->dir = dir_str;
    if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty())
        m->hf_architecture = cfg["architectures"][0].get<std::string>();
    const std::string& a = m->hf_architecture;
    if (a == "LlamaForCausalLM" || a == "MistralForCausalLM") m->gguf_architecture = "llama";
    else if (a == "Qwen2ForCausalLM") m->gguf_architecture = "qwen2";
    else throw_bad_input(cfg_file, "unsupported architecture '" + a + "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
    const std::string& arch = m->gguf_architecture;
    Hparams h = read_hparams(cfg, cfg_file);
    m->weights = SafetensorsModel::open(dir_str);

    // Tensors in converter order, with shape checks.
    int64_t n_params = 0;
    auto& src = m->source;
    src.path = dir_str;
    for (const auto& f : m->weights.files()) src.inputs.push_back(f->path());
    if (h.vocab == 0) {
        if (const StTensor* e = m->weights.find("model.embed_tokens.weight"); e && e->shape.size() == 2) h.vocab = e->shape[0];
    }
    for (const StTensor* t : m->weights.tensors()) {
        if (t->name.ends_with(".scales") || t->name.ends_with(".biases")) {
            const std::string module = t->name.substr(0, t->name.size() - 7);
            if (const StTensor* wq = m->weights.find(module + ".weight"); wq && wq->dtype == StDtype::U32) continue;  // read with it
        }
        const auto map = map_tensor(t->name, h, arch);
        if (!map) continue;
        if (const auto mq = mlx_module(m->weights, *t, cfg)) {
            // MLX affine codes: the same codes as Q4_1/Q5_1 where they fit, else MLX's dequantized
            // weights in the scales' dtype; llama's Q/K row order either way.
            const std::vector<int64_t> shape{t->shape[0], mq->cols};
            if (shape != map->expect)
                throw_bad_input(t->name, "shape " + shape_str(shape) + " does not match config.json (expected " + shape_str(map->expect) + ")");
            SourceTensor st;
            st.name = map->gguf_name;
            st.ne = {mq->cols, t->shape[0]};
            n_params += mq->cols * t->shape[0];
            st.type = mq->to_blocks    ? (mq->p.bits == 4 ? GgmlType::Q4_1 : GgmlType::Q5_1)
                      : mq->block_type ? *mq->block_type
                      : mq->p.dtype == MlxDtype::F16 ? GgmlType::F16 : mq->p.dtype == MlxDtype::BF16 ? GgmlType::BF16 : GgmlType::F32;
            if (!mq->to_blocks) {  // the nearest ggml type for --outtype auto
                const bool k = mq->cols % 256 == 0;  // whole k-quant super-blocks
                switch (mq->p.bits) {
                    case 8: st.auto_type = GgmlType::Q8_0; break;
                    case 6: st.auto_type = k ? GgmlType::Q6_K : GgmlType::Q8_0; break;
                    case 5: st.auto_type = k ? GgmlType::Q5_K : GgmlType::Q5_1; break;
                    case 4: st.auto_type = k ? GgmlType::Q4_K : GgmlType::Q4_1; break;
                    case 3: st.auto_type = k ? GgmlType::Q3_K : GgmlType::Q4_1; break;
                    case 2: st.auto_type = k ? GgmlType::Q2_K : GgmlType::Q4_1; break;
                    default: break;
                }
            }
            const int heads = map->permute_heads;
            const MlxModule mm = *mq;
            const GgmlType type = st.type;
            st.read = [mm, heads, type](uint8_t* dst) {
                const MlxAffineTensor q = mlx_tensor(mm);
                std::vector<uint8_t> rows;
                if (type == GgmlType::Q4_1 || type == GgmlType::Q5_1) {
                    rows = *mlx_to_gguf(q, nullptr);
                } else if (mm.block_type) {
                    rows.resize(*row_bytes(type_traits(type), q.cols) * static_cast<size_t>(q.rows));
                    mlx_to_blocks(q.wq.data(), q.scales.data(), q.biases.data(), q.rows, q.cols, q.p, type, rows.data());
                } else if (mm.fp4) {  // e2m1 codes times a power of two / an e4m3 scale: exact in f32
                    rows.resize(static_cast<size_t>(q.rows * q.cols) * 4);
                    mlx_fp4_dequantize(q.wq.data(), q.scales.data(), q.rows, q.cols, *mm.fp4, MlxDtype::F32, rows.data());
                } else {
                    rows.resize(static_cast<size_t>(q.rows * q.cols) * mlx_dtype_size(q.p.dtype));
                    mlx_affine_dequantize(q.wq.data(), q.scales.data(), q.biases.data(), q.rows, q.cols, q.p, rows.data());
                }
                permute_rows(rows.data(), dst, q.rows, rows.size() / static_cast<size_t>(q.rows), heads);
            };
            src.tensors.push_back(std::move(st));
            continue;
        }
        if (t->shape != map->expect)
            throw_bad_input(t->name, "shape " + shape_str(t->shape) + " does not match config.json (expected " + shape_str(map->expect) + ")");
        const GgmlType stored = ggml_type_of(t->dtype, t->name);
        SourceTensor st;
        st.name = map->gguf_name;
        st.ne.assign(t->shape.rbegin(), t->shape.rend());
        n_params += t->n_elements();
        const bool one_d = t->shape.size() <= 1 || st.name.ends_with("_norm.weight");
        const int heads = map->permute_heads;
        const StTensor* tp = t;
        if (one_d) {
            st.type = GgmlType::F32;
            st.read = [tp, heads, stored](uint8_t* dst) {
                const int64_t n = tp->n_elements();
                std::vector<float> v(static_cast<size_t>(n));
                dequantize(stored, tp->data, v.data(), n);
                // A bias of a permuted weight gets the same row order.
                permute_rows(reinterpret_cast<const uint8_t*>(v.data()), dst, n, 4, heads);
            };
        } else {
            st.type = stored;
            st.read = [tp, heads](uint8_t* dst) {
                const int64_t rows = tp->shape[0];
                permute_rows(tp->data, dst, rows, static_cast<size_t>(tp->n_bytes() / static_cast<uint64_t>(rows)), heads);
            };
        }
        if (heads > 0 && (map->expect[0] % (2 * heads)) != 0) throw_bad_input(t->name, "rows are not a multiple of 2 x heads");
        src.tensors.push_back(std::move(st));
    }
    auto require = [&](const std::string& name) {
        for (const auto& t : src.tensors)
            if (t.name == name) return;
        throw_bad_input(dir_str, "missing tensor for '" + name + "'");
    };
    require("token_embd.weight");
    require("output_norm.weight");
    for (int64_t l = 0; l < h.n_layer; ++l)
        for (const char* n : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"})
            require("blk." + std::to_string(l) + "." + n + ".weight");

    // Metadata, in the converter's order.
    auto& kv = src.metadata;
    kv.push_back({"general.architecture", GgufValue::string(arch)});
    kv.push_back({"general.type", GgufValue::string("model")});
    general_names(dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string(), n_params, kv);
    const std::string p = arch + ".";
    kv.push_back({p + "block_count", GgufValue::u32(static_cast<uint32_t>(h.n_layer))});
    if (h.n_ctx) kv.push_back({p + "context_length", GgufValue::u32(static_cast<uint32_t>(h.n_ctx))});
    kv.push_back({p + "embedding_length", GgufValue::u32(static_cast<uint32_t>(h.n_embd))});
    if (h.n_ff) kv.push_back({p + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(h.n_ff))});
    kv.push_back({p + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(h.n_head))});
    if (cfg.contains("num_key_value_heads")) kv.push_back({p + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(h.n_head_kv))});
    if (h.rope_theta) kv.push_back({p + "rope.freq_base", GgufValue::f32(static_cast<float>(*h.rope_theta))});
    if (h.rms_eps) kv.push_back({p + "attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(*h.rms_eps))});
    if (h.head_dim_cfg) {
        kv.push_back({p + "attention.key_length", GgufValue::u32(static_cast<uint32_t>(*h.head_dim_cfg))});
        kv.push_back({p + "attention.value_length", GgufValue::u32(static_cast<uint32_t>(*h.head_dim_cfg))});
    }
    kv.push_back({"general.file_type", GgufValue::u32(1)});
    const json& rs = h.rope_scaling;
    const std::string rs_type = rs.is_object() ? rs.value("type", rs.value("rope_type", "")) : "";
    if (arch == "llama") {
        kv.push_back({p + "vocab_size", GgufValue::u32(static_cast<uint32_t>(h.vocab))});
        kv.push_back({p + "rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(h.head_dim))});
        if (rs.is_object() && rs.contains("factor") && rs_type == "linear") {
            kv.push_back({p + "rope.scaling.type", GgufValue::string("linear")});
            kv.push_back({p + "rope.scaling.factor", GgufValue::f32(rs["factor"].get<float>())});
        }
    } else if (arch == "qwen2" && rs.is_object() && rs.contains("factor") && rs_type == "yarn") {
        kv.push_back({p + "rope.scaling.type", GgufValue::string("yarn")});
        kv.push_back({p + "rope.scaling.factor", GgufValue::f32(rs["factor"].get<float>())});
        if (rs.contains("original_max_position_embeddings"))
            kv.push_back({p + "rope.scaling.original_context_length", GgufValue::u32(rs["original_max_position_embeddings"].get<uint32_t>())});
    }
    append_hf_vocab(dir, h.vocab, arch, kv);
    kv.push_back({"general.quantization_version", GgufValue::u32(2)});
    return m;
}

GgmlType converter_tensor_type(const SourceTensor& t, GgmlType outtype) {
    if (t.ne.size() <= 1 || t.name.ends_with("_norm.weight")) return GgmlType::F32;
    return outtype;
}

QuantizeReport convert_hf_model(const HfModel& model, const std::string& out, const std::string& outtype_in, int threads,
                                const Imatrix* imatrix, const std::string& imatrix_file) {
    std::string outtype = to_lower(outtype_in);
    // "auto": every matrix stays in the type it was read in (MLX codes as Q4_1/Q5_1, floats as stored).
    const bool keep = outtype == "auto";
    if (keep) {
        std::map<GgmlType, int> count;
        for (const auto& t : model.source.tensors)
            if (t.ne.size() > 1) ++count[t.auto_type.value_or(t.type)];
        GgmlType most = GgmlType::F16;
        int best = 0;
        for (const auto& [ty, c] : count)
            if (c > best) best = c, most = ty;
        outtype = most == GgmlType::F16 || most == GgmlType::BF16 || most == GgmlType::F32 ? to_lower(type_traits(most).name) : "";
        for (const auto& f : all_ftypes())
            if (outtype.empty() && f.default_type == most) outtype = f.name;  // the file type named after it
        if (outtype.empty()) outtype = "f16";
    }
    const Ftype* ft = find_ftype(outtype);
    if (!ft) throw_usage("--outtype: unknown type '" + outtype_in + "'");
    const bool converter_type = keep || outtype == "f32" || outtype == "f16" || outtype == "bf16" || outtype == "q8_0";
    if (!converter_type || imatrix) {
        // Any other type: exactly what quantizing the converter's f32 output with llama-quantize gives.
        QuantizeOptions opt;
        opt.ftype = ft->name;
        opt.threads = threads;
        opt.imatrix = imatrix;
        opt.imatrix_file = imatrix_file;
        return quantize_model(model.source, out, opt);
    }
    const auto start = std::chrono::steady_clock::now();
    GgufWriter w(out, model.source.inputs);
    for (const auto& kv : model.source.metadata) {
        if (kv.key == "general.file_type") w.add_kv(kv.key, GgufValue::u32(ft->id));
        else w.add_kv(kv.key, kv.value);
    }
    QuantizeReport report;
    for (const auto& t : model.source.tensors) {
        const GgmlType to = keep && t.ne.size() > 1 && !t.name.ends_with("_norm.weight") ? t.auto_type.value_or(t.type)
                                                                                         : converter_tensor_type(t, ft->default_type);
        w.add_tensor(t.name, to, t.ne);
        const uint64_t bytes_out = *row_bytes(type_traits(to), t.ne[0]) * static_cast<uint64_t>(t.n_elements() / t.ne[0]);
        report.tensors.push_back({t.name, t.ne, t.type, to, t.n_bytes(), bytes_out});
        report.bytes_in += t.n_bytes();
        report.bytes_out += bytes_out;
    }
    report.file_size = w.predicted_size();
    w.write_header();
    std::vector<const SourceTensor*> order;
    for (const auto& t : model.source.tensors) order.push_back(&t);
    write_tensors(w, order, report.tensors, {}, threads > 0 ? threads : 1, "convert", model.dir);
    w.finish();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace qforge

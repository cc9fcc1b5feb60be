// Model loading: hyper-parameters and weight views from a GGUF (zero-copy) or a Hugging Face
// directory (converted in memory), with every tensor's presence and shape checked.
#include "qforge/model.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "core/huge_arena.hpp"
#include "core/strings.hpp"
#include "kernels/panel.hpp"
#include "kernels/vec_dot.hpp"
#include "quant/blocks.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"

namespace qforge {

size_t WeightView::row_bytes() const { return *qforge::row_bytes(type_traits(type), cols()); }

struct Model::Storage {
    std::unique_ptr<GgufFile> gguf;
    std::unique_ptr<HfModel> hf;
    std::vector<std::vector<uint8_t>> buffers;
    std::unique_ptr<HugeArena> weights;  // repack_for_cpu's copy
};

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path) {
    auto m = std::unique_ptr<Model>(new Model());
    m->storage_ = std::make_unique<Storage>();
    m->path_ = path;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        m->storage_->hf = open_hf_model(path);
        const SourceModel& src = m->storage_->hf->source;
        m->metadata_ = src.metadata;
        for (const auto& t : src.tensors) {
            std::vector<uint8_t> buf(t.n_bytes());
            t.read(buf.data());
            m->storage_->buffers.push_back(std::move(buf));
            m->tensors_.push_back({t.name, WeightView{t.type, t.ne, m->storage_->buffers.back().data()}});
        }
    } else {
        m->storage_->gguf = GgufFile::open(path);
        const GgufFile& f = *m->storage_->gguf;
        f.advise_willneed();
        m->metadata_ = f.metadata();
        for (const auto& t : f.tensors()) m->tensors_.push_back({t.name, WeightView{t.type, t.ne, t.data}});
    }
    m->bind(path);
    m->repack_for_cpu();
    return m;
}

// Q4_0, Q5_0, Q8_0 and Q2_K … Q6_K matrices regrouped eight rows at a time for the x8 kernels (as llama.cpp repacks
// at load), F16 four rows at a time (repack_f16_x4): the same bytes (Q4_K: 2.8% more, Q5_K: 2.3%, Q3_K: 3.6%), so memory use stays; the
// other matrices copied as stored. All in one huge-page arena in the order the forward pass reads
// them; the mapped file's pages of each are handed back to the kernel (they stay on disk and are
// read again only if something touches them).
void Model::repack_for_cpu() {
    if (const char* e = std::getenv("QFORGE_REPACK"); e && std::string(e) == "0") return;  // for comparisons
    const uint8_t* embd = tok_embd.data;
    std::vector<WeightView*> order;  // as the forward pass reads them
    for (auto& L : layers)
        for (WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) order.push_back(w);
    order.push_back(&output);
    const long avail_pages = ::sysconf(_SC_AVPHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    const size_t avail = avail_pages > 0 && page_size > 0 ? static_cast<size_t>(avail_pages) * static_cast<size_t>(page_size) : 0;
    // F16 matrices of a GGUF (of a shape the regrouped layout takes) are regrouped where they take at
    // most half the memory available (else they stay mapped, as stored: a model directory's are in
    // memory already).
    auto f16_groupable = [](const WeightView& w) {
        return w.present() && w.type == GgmlType::F16 && w.rows() % kF16X4Rows == 0 && w.cols() % kF16X4Chunk == 0;
    };
    size_t f16_bytes = 0;
    for (const WeightView* w : order)
        if (f16_groupable(*w)) f16_bytes += w->row_bytes() * static_cast<size_t>(w->rows());
    const bool regroup_f16 = storage_->gguf && find_f16_x4_gemm() && f16_bytes <= avail / 2;
    // The regrouped size of a matrix (0: it stays as stored).
    auto regrouped_bytes = [&](const WeightView& w) -> size_t {
        if (w.present() && w.type == GgmlType::F16) return regroup_f16 && f16_groupable(w) ? w.row_bytes() * static_cast<size_t>(w.rows()) : 0;
        if (!w.present() || w.rows() % kPanelRows != 0) return 0;
        if (const X8Format* f = find_x8_format(w.type); f && f->gemm && w.cols() % 32 == 0) return w.row_bytes() * static_cast<size_t>(w.rows());
        if (const XKFormat* f = find_xk_format(w.type); f && f->gemm && w.cols() % QK_K == 0)
            return static_cast<size_t>(w.rows() / kPanelRows) * static_cast<size_t>(w.cols() / QK_K) * f->block_bytes;
        return 0;
    };
    // The other matrices of a GGUF are copied as stored (huge pages: generation reads F16/Q8_0 ~10%
    // faster), unless they would take more than half the memory available: then they stay mapped.
    auto stored_bytes = [&](const WeightView& w) -> size_t {
        return regrouped_bytes(w) == 0 && w.present() && storage_->gguf && w.data != embd ? w.row_bytes() * static_cast<size_t>(w.rows()) : 0;
    };
    size_t to_copy = 0;
    for (WeightView* w : order) to_copy += stored_bytes(*w);
    const bool copy = to_copy + (regroup_f16 ? f16_bytes : 0) <= avail / 2;  // the F16 copies count in the half
    auto arena_bytes = [&](const WeightView& w) -> size_t {
        if (const size_t b = regrouped_bytes(w)) return b;
        return copy ? stored_bytes(w) : 0;
    };
    size_t total = 0;
    for (WeightView* w : order) total += (arena_bytes(*w) + 63) / 64 * 64;
    if (total == 0) return;
    storage_->weights = std::make_unique<HugeArena>(total);
    uint8_t* next = storage_->weights->data();
    auto repack = [&](WeightView& w) {
        const size_t bytes = arena_bytes(w);
        if (bytes == 0) return;
        uint8_t* buf = next;
        next += (bytes + 63) / 64 * 64;
        const uint8_t* stored = w.data;
        if (regrouped_bytes(w) == 0) {
            std::memcpy(buf, w.data, bytes);
            w.data = buf;
        } else if (w.type == GgmlType::F16) {
            repack_f16_x4(reinterpret_cast<const uint16_t*>(w.data), w.rows(), w.cols(), reinterpret_cast<uint16_t*>(buf));
            w.x8 = buf;
        } else if (const X8Format* f = find_x8_format(w.type)) {
            f->repack(w.data, w.rows(), w.cols(), buf);
            w.x8 = buf;
        } else {
            find_xk_format(w.type)->repack(w.data, w.rows(), w.cols(), buf);
            w.x8 = buf;
        }
        if (storage_->gguf && stored != embd && page_size > 0) {
            const auto page = static_cast<uintptr_t>(page_size);
            const auto b = (reinterpret_cast<uintptr_t>(stored) + page - 1) / page * page;
            const auto e = (reinterpret_cast<uintptr_t>(stored) + w.row_bytes() * static_cast<size_t>(w.rows())) / page * page;
            if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
        }
    };
    for (WeightView* w : order) repack(*w);
}

std::vector<std::pair<std::string, WeightView*>> Model::matrices() {
    std::vector<std::pair<std::string, WeightView*>> out;
    if (tok_embd.present()) out.emplace_back("token_embd.weight", &tok_embd);
    for (size_t i = 0; i < layers.size(); ++i) {
        LayerWeights& L = layers[i];
        const std::string b = "blk." + std::to_string(i) + ".";
        const std::pair<const char*, WeightView*> mats[] = {{"attn_q", &L.wq},       {"attn_k", &L.wk},   {"attn_v", &L.wv},      {"attn_output", &L.wo},
                                                            {"ffn_gate", &L.w_gate}, {"ffn_up", &L.w_up}, {"ffn_down", &L.w_down}};
        for (const auto& [n, v] : mats)
            if (v->present()) out.emplace_back(b + n + ".weight", v);
    }
    if (output.present() && output.data != tok_embd.data) out.emplace_back("output.weight", &output);
    return out;
}

std::string Model::chat_template() const {
    for (const auto& kv : metadata_)
        if (kv.key == "tokenizer.chat_template" && kv.value.type == GgufValueType::STRING) return kv.value.str;
    return "";
}

void Model::bind(const std::string& source) {
    auto find_kv = [&](const std::string& key) -> const GgufValue* {
        for (const auto& kv : metadata_)
            if (kv.key == key) return &kv.value;
        return nullptr;
    };
    auto get_int = [&](const std::string& key, std::optional<int64_t> def) -> int64_t {
        const GgufValue* v = find_kv(key);
        if (v && v->as_int()) return *v->as_int();
        if (!def) throw_bad_input(source, "missing metadata key " + key);
        return *def;
    };
    auto get_float = [&](const std::string& key, float def) -> float {
        const GgufValue* v = find_kv(key);
        return v && v->as_double() ? static_cast<float>(*v->as_double()) : def;
    };
    const GgufValue* archv = find_kv("general.architecture");
    if (!archv || archv->type != GgufValueType::STRING) throw_bad_input(source, "no general.architecture");
    hp_.arch = archv->str;
    if (hp_.arch != "llama" && hp_.arch != "qwen2")
        throw_bad_input(source, "unsupported architecture '" + hp_.arch + "' (supported: llama, qwen2)");
    const std::string a = hp_.arch + ".";
    hp_.n_layer = static_cast<int>(get_int(a + "block_count", std::nullopt));
    hp_.n_embd = static_cast<int>(get_int(a + "embedding_length", std::nullopt));
    hp_.n_head = static_cast<int>(get_int(a + "attention.head_count", std::nullopt));
    hp_.n_head_kv = static_cast<int>(get_int(a + "attention.head_count_kv", hp_.n_head));
    hp_.n_ff = static_cast<int>(get_int(a + "feed_forward_length", std::nullopt));
    hp_.n_ctx_train = static_cast<int>(get_int(a + "context_length", 2048));
    if (hp_.n_layer <= 0 || hp_.n_embd <= 0 || hp_.n_head <= 0 || hp_.n_head_kv <= 0 || hp_.n_head % hp_.n_head_kv != 0 ||
        hp_.n_layer > 4096 || hp_.n_head > 4096 || hp_.n_ctx_train <= 0)
        throw_bad_input(source, "inconsistent hyper-parameters (layers, heads or context)");
    hp_.head_dim = static_cast<int>(get_int(a + "attention.key_length", hp_.n_embd / hp_.n_head));
    hp_.n_rot = static_cast<int>(get_int(a + "rope.dimension_count", hp_.head_dim));
    if (hp_.head_dim <= 0 || hp_.n_rot <= 0 || hp_.n_rot > hp_.head_dim || hp_.n_rot % 2) throw_bad_input(source, "bad head or rotary dimension");
    hp_.rms_eps = get_float(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    hp_.rope_base = get_float(a + "rope.freq_base", 10000.f);
    if (const GgufValue* st = find_kv(a + "rope.scaling.type"); st && st->type == GgufValueType::STRING && st->str == "linear")
        hp_.rope_freq_scale = 1.0f / get_float(a + "rope.scaling.factor", 1.f);
    hp_.rope_neox = hp_.arch == "qwen2";
    tokenizer_ = Tokenizer::from_metadata(metadata_, source);

    auto find = [&](const std::string& name) -> const WeightView* {
        for (const auto& [n, v] : tensors_)
            if (n == name) return &v;
        return nullptr;
    };
    auto shape_str = [](const std::vector<int64_t>& ne) {
        std::string s = "[";
        for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
        return s + "]";
    };
    auto need = [&](const std::string& name, std::vector<int64_t> ne, bool optional = false) -> WeightView {
        const WeightView* v = find(name);
        if (!v) {
            if (optional) return {};
            throw_bad_input(source, "missing tensor '" + name + "'");
        }
        if (v->ne != ne) throw_bad_input(source, "tensor '" + name + "' has shape " + shape_str(v->ne) + ", expected " + shape_str(ne));
        if (!type_traits(v->type).dequantize) throw_bad_input(source, "tensor '" + name + "' has unsupported type " + type_traits(v->type).name);
        return *v;
    };
    const WeightView* embd = find("token_embd.weight");
    if (!embd || embd->ne.size() != 2) throw_bad_input(source, "missing tensor 'token_embd.weight'");
    hp_.n_vocab = static_cast<int>(embd->ne[1]);
    if (tokenizer_->n_vocab() > hp_.n_vocab) throw_bad_input(source, "the tokenizer has more tokens than token_embd.weight has rows");
    const int64_t E = hp_.n_embd, Q = int64_t{hp_.n_head} * hp_.head_dim, KV = int64_t{hp_.n_head_kv} * hp_.head_dim;
    tok_embd = need("token_embd.weight", {E, hp_.n_vocab});
    output_norm = need("output_norm.weight", {E});
    output = need("output.weight", {E, hp_.n_vocab}, true);
    if (!output.present()) output = tok_embd;  // tied embeddings
    const bool bias = hp_.arch == "qwen2";
    layers.resize(static_cast<size_t>(hp_.n_layer));
    for (int l = 0; l < hp_.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        auto& L = layers[static_cast<size_t>(l)];
        L.attn_norm = need(p + "attn_norm.weight", {E});
        L.wq = need(p + "attn_q.weight", {E, Q});
        L.wk = need(p + "attn_k.weight", {E, KV});
        L.wv = need(p + "attn_v.weight", {E, KV});
        L.wo = need(p + "attn_output.weight", {Q, E});
        L.bq = need(p + "attn_q.bias", {Q}, !bias);
        L.bk = need(p + "attn_k.bias", {KV}, !bias);
        L.bv = need(p + "attn_v.bias", {KV}, !bias);
        L.ffn_norm = need(p + "ffn_norm.weight", {E});
        L.w_gate = need(p + "ffn_gate.weight", {E, hp_.n_ff});
        L.w_up = need(p + "ffn_up.weight", {E, hp_.n_ff});
        L.w_down = need(p + "ffn_down.weight", {hp_.n_ff, E});
    }
    for (const auto& [n, v] : tensors_) {
        weight_bytes_ += v.row_bytes() * static_cast<uint64_t>(v.rows() * (v.ne.size() > 2 ? v.ne[2] : 1));
        int64_t k = 1;
        for (auto d : v.ne) k *= d;
        n_params_ += k;
    }
}

KvCacheType parse_cache_type(const std::string& s_in) {
    const std::string s = to_lower(s_in);
    if (s == "f32") return KvCacheType::F32;
    if (s == "f16") return KvCacheType::F16;
    if (s == "q8_0") return KvCacheType::Q8_0;
    throw_usage("--cache-type must be f32, f16 or q8_0, got '" + s_in + "'");
}

uint64_t peak_rss_bytes() {
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

}  // namespace qforge

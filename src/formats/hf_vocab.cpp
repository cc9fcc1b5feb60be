#include "formats/hf_vocab.hpp"

#include <sentencepiece_processor.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <nlohmann/json.hpp>

#include "formats/json_file.hpp"
#include "qforge/error.hpp"

namespace qforge {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

enum TokenType : int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };



bool starts_ends(const std::string& t, const char* a, const char* b) {
    const size_t la = std::strlen(a), lb = std::strlen(b);
    return t.size() >= la + lb && t.compare(0, la, a) == 0 && t.compare(t.size() - lb, lb, b) == 0;
}

// The converter's does_token_look_special: added tokens that ought to be control tokens.
bool looks_special(const std::string& t) {
    if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
    return starts_ends(t, "<|", "|>") || starts_ends(t, "<\xef\xbd\x9c", "\xef\xbd\x9c>") || starts_ends(t, "<unused", ">");
}

void add_special_vocab(const fs::path& dir, int64_t n_vocab, bool with_merges, const json& tokenizer_json,
                       std::vector<GgufKV>& kv) {
    if (with_merges && tokenizer_json.contains("model") && tokenizer_json["model"].contains("merges")) {
        std::vector<std::string> merges;
        for (const auto& m : tokenizer_json["model"]["merges"]) {
            if (m.is_string()) merges.push_back(m.get<std::string>());
            else if (m.is_array() && m.size() == 2) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        }
        if (!merges.empty()) kv.push_back({"tokenizer.ggml.merges", GgufValue::string_array(std::move(merges))});
    }
    const char* kTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    std::vector<std::pair<std::string, int64_t>> ids;
    std::vector<std::pair<std::string, bool>> add_flags;
    auto set_id = [&](const std::string& typ, const json& v) {
        if (!v.is_number_integer()) return;
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id >= n_vocab) return;
        for (const auto& [t, _] : ids)
            if (t == typ) return;
        ids.emplace_back(typ, id);
    };
    const json added = tokenizer_json.value("added_tokens", json::array());
    const json tc = read_json_file_if_exists(dir / "tokenizer_config.json");
    std::string chat_template;
    if (tc.is_object()) {
        if (tc.contains("chat_template")) {
            const auto& ct = tc["chat_template"];
            if (ct.is_string()) chat_template = ct.get<std::string>();
            else if (ct.is_array())
                for (const auto& e : ct)
                    if (e.value("name", "") == "default" && e.contains("template")) chat_template = e["template"].get<std::string>();
        }
        for (const char* typ : kTypes) {
            const std::string t = typ;
            if (tc.contains("add_" + t + "_token") && tc["add_" + t + "_token"].is_boolean())
                add_flags.emplace_back(t, tc["add_" + t + "_token"].get<bool>());
            std::string content;
            const json entry = tc.value(t + "_token", json());
            if (entry.is_string()) content = entry.get<std::string>();
            else if (entry.is_object() && entry.contains("content") && entry["content"].is_string()) content = entry["content"].get<std::string>();
            else continue;
            for (const auto& a : added) {
                if (a.value("content", "") == content) {
                    set_id(t, a.value("id", json()));
                    break;
                }
            }
        }
    }
    if (chat_template.empty() && fs::exists(dir / "chat_template.jinja")) {
        std::ifstream in(dir / "chat_template.jinja");
        chat_template.assign(std::istreambuf_iterator<char>(in), {});
    }
    const json cfg = read_json_file_if_exists(dir / "config.json");
    for (const char* typ : kTypes) set_id(typ, cfg.value(std::string(typ) + "_token_id", json()));
    // generation_config.json names BOS/EOS too; it only fills what the files above left unset.
    const json gen = read_json_file_if_exists(dir / "generation_config.json");
    for (const char* typ : {"bos", "eos"}) {
        const json v = gen.value(std::string(typ) + "_token_id", json());
        set_id(typ, v.is_array() && !v.empty() ? v[0] : v);
    }
    // GGUF's key names (sic: "seperator").
    const std::map<std::string, std::string> key = {{"bos", "bos"}, {"eos", "eos"}, {"unk", "unknown"}, {"sep", "seperator"},
                                                    {"pad", "padding"}, {"cls", "cls"}, {"mask", "mask"}};
    for (const auto& [typ, id] : ids)
        kv.push_back({"tokenizer.ggml." + key.at(typ) + "_token_id", GgufValue::u32(static_cast<uint32_t>(id))});
    for (const auto& [typ, on] : add_flags) kv.push_back({"tokenizer.ggml.add_" + typ + "_token", GgufValue::boolean(on)});
    if (!chat_template.empty()) kv.push_back({"tokenizer.chat_template", GgufValue::string(chat_template)});
}

void append_sentencepiece(const fs::path& dir, int64_t vocab_size, std::vector<GgufKV>& kv) {
    sentencepiece::SentencePieceProcessor sp;
    const auto status = sp.Load((dir / "tokenizer.model").string());
    if (!status.ok()) throw_bad_input((dir / "tokenizer.model").string(), "not a SentencePiece model: " + status.ToString());
    const int n = sp.GetPieceSize();
    if (vocab_size <= 0) vocab_size = n;
    if (n > vocab_size) throw_bad_input((dir / "config.json").string(), "vocab_size " + std::to_string(vocab_size) +
                                                                           " is smaller than the tokenizer's " + std::to_string(n) + " tokens");
    std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
    std::vector<float> scores(static_cast<size_t>(vocab_size), -10000.0f);
    std::vector<int32_t> types(static_cast<size_t>(vocab_size), UNUSED);
    for (int64_t i = 0; i < vocab_size; ++i) tokens[static_cast<size_t>(i)] = "[PAD" + std::to_string(i) + "]";
    for (int id = 0; id < n; ++id) {
        tokens[static_cast<size_t>(id)] = sp.IdToPiece(id);
        scores[static_cast<size_t>(id)] = sp.GetScore(id);
        int32_t t = NORMAL;
        if (sp.IsUnknown(id)) t = UNKNOWN;
        else if (sp.IsControl(id)) t = CONTROL;
        else if (sp.IsUnused(id)) t = UNUSED;
        else if (sp.IsByte(id)) t = BYTE;
        types[static_cast<size_t>(id)] = t;
    }
    // added_tokens.json and tokenizer_config.json's added_tokens_decoder, as the converter applies them.
    const json added_file = read_json_file_if_exists(dir / "added_tokens.json");
    for (auto it = added_file.begin(); it != added_file.end(); ++it) {
        if (!it.value().is_number_integer()) continue;
        const int64_t id = it.value().get<int64_t>();
        if (id < 0 || id >= vocab_size) continue;
        tokens[static_cast<size_t>(id)] = it.key();
        scores[static_cast<size_t>(id)] = -1000.0f;
        types[static_cast<size_t>(id)] = USER_DEFINED;
    }
    const json tc = read_json_file_if_exists(dir / "tokenizer_config.json");
    if (tc.is_object() && tc.contains("added_tokens_decoder") && tc["added_tokens_decoder"].is_object()) {
        for (auto it = tc["added_tokens_decoder"].begin(); it != tc["added_tokens_decoder"].end(); ++it) {
            int64_t id;
            try {
                id = std::stoll(it.key());
            } catch (...) {
                continue;
            }
            if (id < 0 || id >= vocab_size || !it.value().contains("content")) continue;
            const size_t i = static_cast<size_t>(id);
            if (types[i] == UNUSED) continue;  // the converter skips ids the model does not use
            std::string content = it.value()["content"].get<std::string>();
            if (it.value().value("special", false) || looks_special(content)) {
                types[i] = CONTROL;
            } else {
                for (size_t p; (p = content.find("\xe2\x96\x81")) != std::string::npos;) content.replace(p, 3, " ");
                types[i] = USER_DEFINED;
            }
            scores[i] = -1000.0f;
            tokens[i] = content;
        }
    }
    kv.push_back({"tokenizer.ggml.model", GgufValue::string("llama")});
    kv.push_back({"tokenizer.ggml.pre", GgufValue::string("default")});
    kv.push_back({"tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens))});
    kv.push_back({"tokenizer.ggml.scores", GgufValue::numeric_array<float>(GgufValueType::FLOAT32, scores)});
    kv.push_back({"tokenizer.ggml.token_type", GgufValue::numeric_array<int32_t>(GgufValueType::INT32, types)});
    json tokenizer_json = read_json_file_if_exists(dir / "tokenizer.json");
    add_special_vocab(dir, vocab_size, false, tokenizer_json, kv);
}

// tokenizer.json's vocabulary by id, its added tokens (content, special), and the vocabulary
// size: config.json's, or larger when the tokenizer has more ids.
struct JsonVocab {
    std::map<int64_t, std::string> by_id;
    std::map<int64_t, std::pair<std::string, bool>> added;
    int64_t size = 0;
};

JsonVocab read_json_vocab(const json& tj, int64_t vocab_size) {
    JsonVocab v;
    for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it) v.by_id[it.value().get<int64_t>()] = it.key();
    for (const auto& a : tj.value("added_tokens", json::array())) v.added[a["id"].get<int64_t>()] = {a["content"].get<std::string>(), a.value("special", false)};
    v.size = vocab_size;
    for (const auto& [id, _] : v.by_id) v.size = std::max(v.size, id + 1);
    for (const auto& [id, _] : v.added) v.size = std::max(v.size, id + 1);
    return v;
}

// The pre-tokenizer name llama.cpp uses, recognised from the split regex in tokenizer.json.
std::string bpe_pre_name(const json& tj, const std::string& gguf_arch) {
    std::string pattern;
    std::function<void(const json&)> find = [&](const json& n) {
        if (n.is_object()) {
            if (n.value("type", "") == "Split" && n.contains("pattern") && n["pattern"].contains("Regex"))
                pattern = n["pattern"]["Regex"].get<std::string>();
            for (auto it = n.begin(); it != n.end(); ++it) find(it.value());
        } else if (n.is_array()) {
            for (const auto& e : n) find(e);
        }
    };
    find(tj.value("pre_tokenizer", json()));
    if (pattern.find("\\p{N}{1,3}") != std::string::npos) return "llama-bpe";
    if (pattern.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") != std::string::npos) return "qwen2";
    if (pattern.empty()) return gguf_arch == "qwen2" ? "qwen2" : "gpt-2";
    throw_bad_input("tokenizer.json", "unrecognised BPE pre-tokenizer pattern; cannot choose tokenizer.ggml.pre");
}

void append_bpe(const fs::path& dir, int64_t vocab_size, const std::string& gguf_arch, std::vector<GgufKV>& kv) {
    const json tj = read_json_file(dir / "tokenizer.json");
    if (!tj.contains("model") || tj["model"].value("type", "") != "BPE" || !tj["model"].contains("vocab"))
        throw_bad_input((dir / "tokenizer.json").string(), "expected a BPE model with a vocab");
    const auto [by_id, added, size] = read_json_vocab(tj, vocab_size);
    vocab_size = size;
    std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
    std::vector<int32_t> types(static_cast<size_t>(vocab_size), UNUSED);
    for (int64_t i = 0; i < vocab_size; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (auto a = added.find(i); a != added.end()) {
            tokens[k] = a->second.first;
            types[k] = (a->second.second || looks_special(a->second.first)) ? CONTROL : USER_DEFINED;
        } else if (auto v = by_id.find(i); v != by_id.end()) {
            tokens[k] = v->second;
            types[k] = NORMAL;
        } else {
            tokens[k] = "[PAD" + std::to_string(i) + "]";
        }
    }
    kv.push_back({"tokenizer.ggml.model", GgufValue::string("gpt2")});
    kv.push_back({"tokenizer.ggml.pre", GgufValue::string(bpe_pre_name(tj, gguf_arch))});
    kv.push_back({"tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens))});
    kv.push_back({"tokenizer.ggml.token_type", GgufValue::numeric_array<int32_t>(GgufValueType::INT32, types)});
    add_special_vocab(dir, vocab_size, true, tj, kv);
}

// A SentencePiece model saved only as tokenizer.json (BPE with byte fallback, "▁" for spaces, as
// transformers' fast Llama tokenizer and mlx-lm write it): the same vocabulary as a "llama"
// (SentencePiece) vocabulary, each merge result scored by its merge rank so that earlier merges
// win, as they do in the BPE it was converted to.
void append_spm_from_json(const fs::path& dir, int64_t vocab_size, std::vector<GgufKV>& kv) {
    const json tj = read_json_file(dir / "tokenizer.json");
    const json& model = tj["model"];
    const auto [by_id, added, size] = read_json_vocab(tj, vocab_size);
    vocab_size = size;
    std::map<std::string, int64_t> rank;
    int64_t r = 0;
    for (const auto& m : model.value("merges", json::array())) {
        std::string merged;
        if (m.is_string()) {
            const std::string pair = m.get<std::string>();
            const size_t sp = pair.find(' ');
            if (sp == std::string::npos) continue;
            merged = pair.substr(0, sp) + pair.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2) {
            merged = m[0].get<std::string>() + m[1].get<std::string>();
        }
        rank.emplace(merged, r++);
    }
    const std::string unk = model.value("unk_token", json()).is_string() ? model["unk_token"].get<std::string>() : "";
    std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
    std::vector<float> scores(static_cast<size_t>(vocab_size), -1e9f);
    std::vector<int32_t> types(static_cast<size_t>(vocab_size), UNUSED);
    static const std::regex byte_token("<0x[0-9A-Fa-f]{2}>");
    for (int64_t i = 0; i < vocab_size; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (auto a = added.find(i); a != added.end()) {
            tokens[k] = a->second.first;
            types[k] = (a->second.second || looks_special(a->second.first)) ? CONTROL : USER_DEFINED;
            scores[k] = -1000.0f;
        } else if (auto v = by_id.find(i); v != by_id.end()) {
            tokens[k] = v->second;
            types[k] = v->second == unk ? UNKNOWN : std::regex_match(v->second, byte_token) ? BYTE : NORMAL;
            if (auto rk = rank.find(v->second); rk != rank.end()) scores[k] = -static_cast<float>(rk->second);
            else if (types[k] == NORMAL && v->second.size() <= 4) scores[k] = 0.f;  // a single character
        } else {
            tokens[k] = "[PAD" + std::to_string(i) + "]";
        }
    }
    kv.push_back({"tokenizer.ggml.model", GgufValue::string("llama")});
    kv.push_back({"tokenizer.ggml.pre", GgufValue::string("default")});
    kv.push_back({"tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens))});
    kv.push_back({"tokenizer.ggml.scores", GgufValue::numeric_array<float>(GgufValueType::FLOAT32, scores)});
    kv.push_back({"tokenizer.ggml.token_type", GgufValue::numeric_array<int32_t>(GgufValueType::INT32, types)});
    add_special_vocab(dir, vocab_size, false, tj, kv);
}

bool is_spm_style_bpe(const fs::path& dir) {
    const json tj = read_json_file(dir / "tokenizer.json");
    return tj.contains("model") && tj["model"].value("type", "") == "BPE" && tj["model"].value("byte_fallback", false);
}

}  // namespace

void append_hf_vocab(const fs::path& dir, int64_t vocab_size, const std::string& gguf_arch, std::vector<GgufKV>& kv) {
    if (fs::exists(dir / "tokenizer.model")) append_sentencepiece(dir, vocab_size, kv);
    else if (fs::exists(dir / "tokenizer.json") && is_spm_style_bpe(dir)) append_spm_from_json(dir, vocab_size, kv);
    else if (fs::exists(dir / "tokenizer.json")) append_bpe(dir, vocab_size, gguf_arch, kv);
    else throw_bad_input(dir.string(), "no tokenizer.model or tokenizer.json");
}

}  // namespace qforge

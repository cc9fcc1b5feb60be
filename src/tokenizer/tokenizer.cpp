#include "qforge/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <cstring>
#include <map>
#include <queue>

#include "formats/byte_reader.hpp"
#include "qforge/error.hpp"
#include "qforge/mapped_file.hpp"
#include "tokenizer/pretokenize.hpp"

namespace qforge {

namespace {

size_t utf8_len(unsigned char c) {
    static const size_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

const GgufValue* find_kv(const std::vector<GgufKV>& kv, const std::string& key) {
    for (const auto& e : kv)
        if (e.key == key) return &e.value;
    return nullptr;
}

struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
};

// ---- SentencePiece-style ("llama") -----------------------------------------------------------

class SpmTokenizer final : public Tokenizer {
public:
    using Tokenizer::Tokenizer;
    void init() {
        for (int i = 0; i < 256; ++i) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "<0x%02X>", i);
            byte_tokens_[static_cast<size_t>(i)] = find_token(buf);
        }
    }

protected:
    void tokenize_text(const std::string& raw, bool first, std::vector<int32_t>& out) const override {
        std::string text;
        if (add_space_prefix_ && first) text = " ";
        text += raw;
        std::string esc;  // ' ' -> U+2581
        for (char c : text) {
            if (c == ' ') esc += "\xe2\x96\x81";
            else esc += c;
        }
        encode(esc, out);
    }

    std::string decode_piece(int32_t id) const override {
        const auto t = types_[static_cast<size_t>(id)];
        const std::string& s = tokens_[static_cast<size_t>(id)];
        if (t == TokenType::Byte && s.size() == 6) return std::string(1, static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
        if (t == TokenType::Unknown) return "\xe2\x96\x85";
        std::string r;
        for (size_t i = 0; i < s.size();) {
            if (s.compare(i, 3, "\xe2\x96\x81") == 0) {
                r += ' ';
                i += 3;
            } else {
                r += s[i++];
            }
        }
        return r;
    }

private:
    struct Bigram {
        int left, right;
        float score;
        size_t size;
    };
    struct BigramLess {
        bool operator()(const Bigram& l, const Bigram& r) const { return l.score < r.score || (l.score == r.score && l.left > r.left); }
    };

    void encode(const std::string& text, std::vector<int32_t>& out) const {
        std::vector<Symbol> symbols;
        size_t offs = 0;
        int index = 0;
        while (offs < text.size()) {
            const size_t len = std::min(utf8_len(static_cast<unsigned char>(text[offs])), text.size() - offs);
            symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, text.data() + offs, len});
            offs += len;
            ++index;
        }
        std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
        std::map<std::string, std::pair<int, int>> rev_merge;
        auto try_add = [&](int left, int right) {
            if (left == -1 || right == -1) return;
            const std::string s(symbols[static_cast<size_t>(left)].text, symbols[static_cast<size_t>(left)].n + symbols[static_cast<size_t>(right)].n);
            const int32_t id = find_token(s);
            if (id < 0) return;
            queue.push({left, right, scores_[static_cast<size_t>(id)], s.size()});
            rev_merge[s] = {left, right};
        };
        for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);
        while (!queue.empty()) {
            const Bigram b = queue.top();
            queue.pop();
            auto& l = symbols[static_cast<size_t>(b.left)];
            auto& r = symbols[static_cast<size_t>(b.right)];
            if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
            try_add(l.prev, b.left);
            try_add(b.left, l.next);
        }
        std::function<void(const Symbol&)> resegment = [&](const Symbol& s) {
            const std::string t(s.text, s.n);
            const int32_t id = find_token(t);
            if (id >= 0) {
                out.push_back(id);
                return;
            }
            auto p = rev_merge.find(t);
            if (p == rev_merge.end()) {
                for (size_t j = 0; j < s.n; ++j) {
                    const int32_t b = byte_tokens_[static_cast<unsigned char>(s.text[j])];
                    out.push_back(b >= 0 ? b : unk_);
                }
                return;
            }
            resegment(symbols[static_cast<size_t>(p->second.first)]);
            resegment(symbols[static_cast<size_t>(p->second.second)]);
        };
        if (symbols.empty()) return;
        for (int i = 0; i != -1; i = symbols[static_cast<size_t>(i)].next) resegment(symbols[static_cast<size_t>(i)]);
    }

    std::array<int32_t, 256> byte_tokens_{};
};

// ---- byte-level BPE ("gpt2") -----------------------------------------------------------------

class BpeTokenizer final : public Tokenizer {
public:
    BpeTokenizer(const std::string& pre, const GgufArray* merges, const std::string& source) : pre_tok_(pre) {
        if (!merges || merges->elem_type != GgufValueType::STRING)
            throw_bad_input(source, "BPE tokenizer has no tokenizer.ggml.merges");
        ranks_.reserve(merges->strings.size());
        for (size_t i = 0; i < merges->strings.size(); ++i) {
            const std::string& m = merges->strings[i];
            const size_t sp = m.find(' ', 1);
            if (sp == std::string::npos) continue;
            ranks_.emplace(m, static_cast<int>(i));
        }
    }

protected:
    void tokenize_text(const std::string& text, bool, std::vector<int32_t>& out) const override {
        for (const std::string& word_raw : pre_tok_.split(text)) {
            std::string word;
            for (unsigned char c : word_raw) word += byte_to_unicode(c);
            encode_word(word, out);
        }
    }

    std::string decode_piece(int32_t id) const override {
        const auto t = types_[static_cast<size_t>(id)];
        const std::string& s = tokens_[static_cast<size_t>(id)];
        if (t == TokenType::Control || t == TokenType::UserDefined) return s;
        std::string r;
        for (size_t i = 0; i < s.size();) {
            const unsigned char c = static_cast<unsigned char>(s[i]);
            const size_t len = std::min(utf8_len(c), s.size() - i);
            uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
            for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
            const int b = unicode_to_byte(cp);
            if (b >= 0) r += static_cast<char>(b);
            else r.append(s, i, len);
            i += len;
        }
        return r;
    }

private:
    struct Bigram {
        int left, right;
        std::string text;
        int rank;
    };
    struct BigramGreater {
        bool operator()(const Bigram& l, const Bigram& r) const { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); }
    };

    int rank(const std::string& a, const std::string& b) const {
        auto it = ranks_.find(a + " " + b);
        return it == ranks_.end() ? -1 : it->second;
    }

    void encode_word(const std::string& word, std::vector<int32_t>& out) const {
        std::vector<Symbol> symbols;
        size_t offset = 0;
        if (pre_tok_.ignore_merges() && find_token(word) >= 0) {
            symbols.push_back({-1, -1, word.data(), word.size()});
            offset = word.size();
        }
        int index = 0;
        while (offset < word.size()) {
            const size_t len = std::min(word.size() - offset, utf8_len(static_cast<unsigned char>(word[offset])));
            symbols.push_back({index - 1, offset + len == word.size() ? -1 : index + 1, word.data() + offset, len});
            offset += len;
            ++index;
        }
        std::priority_queue<Bigram, std::vector<Bigram>, BigramGreater> queue;
        auto add = [&](int left, int right) {
            if (left == -1 || right == -1) return;
            const std::string a(symbols[static_cast<size_t>(left)].text, symbols[static_cast<size_t>(left)].n);
            const std::string b(symbols[static_cast<size_t>(right)].text, symbols[static_cast<size_t>(right)].n);
            const int r = rank(a, b);
            if (r < 0) return;
            queue.push({left, right, a + b, r});
        };
        for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add(i - 1, i);
        while (!queue.empty()) {
            const Bigram b = queue.top();
            queue.pop();
            auto& l = symbols[static_cast<size_t>(b.left)];
            auto& r = symbols[static_cast<size_t>(b.right)];
            if (l.n == 0 || r.n == 0) continue;
            if (std::string(l.text, l.n) + std::string(r.text, r.n) != b.text) continue;
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
            add(l.prev, b.left);
            add(b.left, l.next);
        }
        for (const auto& s : symbols) {
            if (s.n == 0) continue;
            const std::string str(s.text, s.n);
            const int32_t id = find_token(str);
            if (id >= 0) {
                out.push_back(id);
                continue;
            }
            for (char c : str) {
                const int32_t bid = find_token(std::string(1, c));
                if (bid >= 0) out.push_back(bid);
            }
        }
    }

    PreTokenizer pre_tok_;
    std::unordered_map<std::string, int> ranks_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_metadata(const std::vector<GgufKV>& kv, const std::string& source) {
    auto get_str = [&](const char* key) -> std::string {
        const GgufValue* v = find_kv(kv, key);
        return v && v->type == GgufValueType::STRING ? v->str : "";
    };
    const std::string model = get_str("tokenizer.ggml.model");
    std::string pre = get_str("tokenizer.ggml.pre");
    if (model.empty()) throw_bad_input(source, "no tokenizer in this model (tokenizer.ggml.model missing)");
    const GgufValue* tokens = find_kv(kv, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GgufValueType::ARRAY || tokens->array->elem_type != GgufValueType::STRING || tokens->array->count == 0)
        throw_bad_input(source, "tokenizer.ggml.tokens is missing or not an array of strings");
    std::unique_ptr<Tokenizer> t;
    if (model == "llama") {
        t = std::unique_ptr<Tokenizer>(new SpmTokenizer());
        t->add_space_prefix_ = true;
        t->add_bos_ = true;
    } else if (model == "gpt2") {
        if (pre.empty()) pre = "default";
        const GgufValue* merges = find_kv(kv, "tokenizer.ggml.merges");
        t = std::unique_ptr<Tokenizer>(new BpeTokenizer(pre, merges && merges->type == GgufValueType::ARRAY ? merges->array.get() : nullptr, source));
        t->add_bos_ = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
    } else {
        throw_bad_input(source, "unsupported tokenizer model '" + model + "' (supported: llama, gpt2)");
    }
    t->model_ = model;
    t->pre_ = pre;
    t->tokens_ = tokens->array->strings;
    const size_t n = t->tokens_.size();
    t->scores_.assign(n, 0.0f);
    if (const GgufValue* s = find_kv(kv, "tokenizer.ggml.scores"); s && s->type == GgufValueType::ARRAY) {
        if (s->array->elem_type != GgufValueType::FLOAT32 || s->array->count != n)
            throw_bad_input(source, "tokenizer.ggml.scores does not match the token list");
        std::memcpy(t->scores_.data(), s->array->raw.data(), n * 4);
    }
    t->types_.assign(n, TokenType::Normal);
    if (const GgufValue* ty = find_kv(kv, "tokenizer.ggml.token_type"); ty && ty->type == GgufValueType::ARRAY) {
        if (ty->array->elem_type != GgufValueType::INT32 || ty->array->count != n)
            throw_bad_input(source, "tokenizer.ggml.token_type does not match the token list");
        for (size_t i = 0; i < n; ++i) {
            int32_t v;
            std::memcpy(&v, ty->array->raw.data() + 4 * i, 4);
            if (v < 1 || v > 6) v = 1;
            t->types_[i] = static_cast<TokenType>(v);
        }
    }
    for (size_t i = 0; i < n; ++i) t->token_to_id_.emplace(t->tokens_[i], static_cast<int32_t>(i));
    auto get_id = [&](const char* key, int32_t def) {
        const GgufValue* v = find_kv(kv, key);
        if (!v || !v->as_int()) return def;
        const int64_t id = *v->as_int();
        if (id < 0 || id >= static_cast<int64_t>(n)) throw_bad_input(source, std::string(key) + " is out of range");
        return static_cast<int32_t>(id);
    };
    const bool spm = model == "llama";
    t->bos_ = get_id("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
    t->eos_ = get_id("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
    t->unk_ = get_id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
    if (const GgufValue* v = find_kv(kv, "tokenizer.ggml.add_bos_token"); v && v->type == GgufValueType::BOOL) t->add_bos_ = v->bits != 0;
    if (const GgufValue* v = find_kv(kv, "tokenizer.ggml.add_eos_token"); v && v->type == GgufValueType::BOOL) t->add_eos_ = v->bits != 0;
    if (const GgufValue* v = find_kv(kv, "tokenizer.ggml.add_space_prefix"); v && v->type == GgufValueType::BOOL)
        t->add_space_prefix_ = v->bits != 0;
    if (t->add_bos_ && t->bos_ < 0) throw_bad_input(source, "the tokenizer adds BOS but has no BOS token");
    for (size_t i = 0; i < n; ++i) {
        const auto ty = t->types_[i];
        if (ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) t->specials_.push_back(static_cast<int32_t>(i));
    }
    std::stable_sort(t->specials_.begin(), t->specials_.end(), [&](int32_t a, int32_t b) {
        return t->tokens_[static_cast<size_t>(a)].size() > t->tokens_[static_cast<size_t>(b)].size();
    });
    // End-of-generation tokens: EOS, EOT, and the usual end-of-turn markers.
    if (t->eos_ >= 0) t->eog_.push_back(t->eos_);
    if (const int32_t eot = get_id("tokenizer.ggml.eot_token_id", -1); eot >= 0) t->eog_.push_back(eot);
    for (const char* s : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>"}) {
        const int32_t id = t->find_token(s);
        if (id >= 0 && t->types_[static_cast<size_t>(id)] == TokenType::Control) t->eog_.push_back(id);
    }
    if (auto* spm_t = dynamic_cast<SpmTokenizer*>(t.get())) spm_t->init();
    return t;
}

int32_t Tokenizer::find_token(std::string_view text) const {
    auto it = token_to_id_.find(std::string(text));
    return it == token_to_id_.end() ? -1 : it->second;
}

bool Tokenizer::is_eog(int32_t id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

std::vector<int32_t> Tokenizer::tokenize_file(const std::string& path) const {
    const MappedFile f(path);
    return tokenize(std::string_view(reinterpret_cast<const char*>(f.data()), f.size()), true);
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text_in, bool add_special, bool parse_special) const {
    const std::string text(text_in);
    // Split out special tokens (user-defined ones always; control ones only when asked).
    struct Fragment {
        int32_t token;  // -1: raw text
        size_t off, len;
    };
    std::vector<Fragment> frags;
    if (!text.empty()) frags.push_back({-1, 0, text.size()});
    for (int32_t sid : specials_) {
        const auto ty = types_[static_cast<size_t>(sid)];
        if (!parse_special && (ty == TokenType::Control || ty == TokenType::Unknown)) continue;
        const std::string& st = tokens_[static_cast<size_t>(sid)];
        if (st.empty()) continue;
        std::vector<Fragment> next;
        for (const auto& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            size_t pos = f.off;
            const size_t end = f.off + f.len;
            while (pos < end) {
                const size_t hit = text.find(st, pos);
                if (hit == std::string::npos || hit + st.size() > end) break;
                if (hit > pos) next.push_back({-1, pos, hit - pos});
                next.push_back({sid, 0, 0});
                pos = hit + st.size();
            }
            if (pos < end) next.push_back({-1, pos, end - pos});
        }
        frags.swap(next);
    }
    std::vector<int32_t> out;
    if (add_special && add_bos_) out.push_back(bos_);
    bool prev_special = true;
    for (const auto& f : frags) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
        } else {
            tokenize_text(text.substr(f.off, f.len), prev_special, out);
            prev_special = false;
        }
    }
    if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
    if (id < 0 || id >= n_vocab()) return "";
    const auto t = types_[static_cast<size_t>(id)];
    if ((t == TokenType::Control || t == TokenType::Unused) && !special) return "";
    if (t == TokenType::Control || t == TokenType::Unused) return tokens_[static_cast<size_t>(id)];
    return decode_piece(id);
}

std::string Tokenizer::detokenize(const std::vector<int32_t>& ids, bool special) const {
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
        std::string piece = token_to_piece(ids[i], special);
        // SentencePiece adds a space before the first word; drop it again.
        if (add_space_prefix_ && out.empty() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        out += piece;
    }
    return out;
}

std::string Utf8Stream::push(const std::string& bytes) {
    pending_ += bytes;
    // Emit everything up to the start of a trailing incomplete sequence.
    size_t cut = pending_.size();
    for (size_t back = 1; back <= 4 && back <= pending_.size(); ++back) {
        const unsigned char c = static_cast<unsigned char>(pending_[pending_.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        if (c >= 0xC2 && c <= 0xF4 && utf8_len(c) > back) cut = pending_.size() - back;
        break;
    }
    std::string ready = pending_.substr(0, cut);
    pending_.erase(0, cut);
    return ready;
}

std::string Utf8Stream::flush() {
    std::string r;
    r.swap(pending_);
    return r;
}

}  // namespace qforge

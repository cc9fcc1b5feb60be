// Tokenizers built from GGUF tokenizer.* metadata, matching llama.cpp: SentencePiece-style
// ("llama": score-driven merges with byte fallback) and byte-level BPE ("gpt2", with the
// pre-tokenizer that tokenizer.ggml.pre names).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qforge/gguf.hpp"

namespace qforge {

enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
public:
    // From a model's metadata; `source` names the file in errors.
    static std::unique_ptr<Tokenizer> from_metadata(const std::vector<GgufKV>& kv, const std::string& source);
    virtual ~Tokenizer() = default;

    // add_special: BOS/EOS as the model asks; parse_special: special-token text becomes that token.
    std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special = false) const;
    // A whole text file, with BOS where the model adds it (as llama-perplexity/llama-imatrix read it).
    std::vector<int32_t> tokenize_file(const std::string& path) const;
    // The bytes a token stands for (control tokens: empty unless `special`).
    std::string token_to_piece(int32_t id, bool special = false) const;
    std::string detokenize(const std::vector<int32_t>& ids, bool special = false) const;

    int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
    int32_t bos() const { return bos_; }
    int32_t eos() const { return eos_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool is_eog(int32_t id) const;
    const std::string& token_text(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
    TokenType token_type(int32_t id) const { return types_.at(static_cast<size_t>(id)); }
    int32_t find_token(std::string_view text) const;  // -1 when absent
    const std::string& model() const { return model_; }
    const std::string& pre() const { return pre_; }

protected:
    Tokenizer() = default;
    virtual void tokenize_text(const std::string& text, bool first, std::vector<int32_t>& out) const = 0;
    virtual std::string decode_piece(int32_t id) const = 0;

    std::string model_, pre_;
    std::vector<std::string> tokens_;
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    std::unordered_map<std::string, int32_t> token_to_id_;
    std::vector<int32_t> specials_;  // control / user-defined / unknown, longest text first
    std::vector<int32_t> eog_;
    int32_t bos_ = -1, eos_ = -1, unk_ = -1;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
};

// Streaming text output: holds back the bytes of an incomplete UTF-8 sequence.
class Utf8Stream {
public:
    std::string push(const std::string& bytes);  // complete characters ready to print
    std::string flush();                          // whatever is left (possibly invalid)

private:
    std::string pending_;
};

}  // namespace qforge

// Regex pre-tokenization for byte-level BPE (PCRE2 with Unicode properties).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace qforge {

// The single split regex Hugging Face's tokenizer.json carries for a tokenizer.ggml.pre value
// ("" for gpt-2, whose ByteLevel pre-tokenizer applies its own), or nullptr when the value needs
// several regexes (not expressible as one Split).
const char* hf_split_regex(const std::string& pre);

class PreTokenizer {
public:
    // The regexes llama.cpp applies for a tokenizer.ggml.pre value; throws for unknown names.
    explicit PreTokenizer(const std::string& pre);
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;
    // Splits valid UTF-8 text into words: each regex splits the pieces the previous one left.
    std::vector<std::string> split(const std::string& text) const;
    bool ignore_merges() const { return ignore_merges_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    bool ignore_merges_ = false;
};

// GPT-2's reversible byte <-> printable-codepoint mapping, as UTF-8 strings.
const std::string& byte_to_unicode(uint8_t b);
int unicode_to_byte(uint32_t codepoint);  // -1 when not a mapped codepoint

}  // namespace qforge

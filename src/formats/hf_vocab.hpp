// Tokenizer metadata for GGUF from Hugging Face tokenizer files, as llama.cpp's converter
// writes it (SentencePiece tokenizer.model, or byte-level BPE from tokenizer.json).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "qforge/gguf.hpp"

namespace qforge {

// Appends tokenizer.ggml.* keys (model, pre, tokens, scores/merges, token types, special ids,
// add_bos/add_eos, chat template) in the converter's order. vocab_size pads the token list.
void append_hf_vocab(const std::filesystem::path& dir, int64_t vocab_size, const std::string& gguf_arch,
                     std::vector<GgufKV>& kv);

}  // namespace qforge

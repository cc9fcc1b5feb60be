// `qforge synth`: models of real shapes with random weights (gaussian, a few outliers per row,
// like trained LLM weights), for measuring speed and memory without downloading weights.
#pragma once

#include <string>

#include "qforge/quantize_model.hpp"

namespace qforge {

struct SynthShape {
    std::string arch = "llama";  // llama or qwen2
    int n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, n_vocab = 0, n_ctx = 2048;
    float rope_base = 10000.f;
    bool tied = false;  // qwen2 small models tie the output to the embeddings
};

// tinyllama-1.1b, llama2-7b, llama3-8b, qwen2-0.5b, qwen2-7b; throws for other names.
SynthShape synth_preset(const std::string& name);

// A source model of that shape. The vocabulary comes from `vocab_gguf` (its tokenizer.* keys;
// its size wins) or, when empty, a generated SentencePiece-style vocabulary of n_vocab tokens.
SourceModel synth_model(SynthShape shape, const std::string& vocab_gguf, uint64_t seed);

}  // namespace qforge

#include <gtest/gtest.h>

#include <cmath>

#include "qforge/error.hpp"
#include "qforge/model.hpp"
#include "qforge/synth.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

TEST(Synth, SmallLlamaAndQwen2RunAndAreDeterministic) {
    test::TempDir tmp;
    for (const char* arch : {"llama", "qwen2"}) {
        SynthShape s;
        s.arch = arch;
        s.n_layer = 2;
        s.n_embd = 256;
        s.n_ff = 512;
        s.n_head = 4;
        s.n_head_kv = 2;
        s.n_vocab = 1000;
        s.tied = std::string(arch) == "qwen2";
        QuantizeOptions opt;
        opt.ftype = "Q4_K_M";
        quantize_model(synth_model(s, "", 7), tmp.path("a.gguf"), opt);
        quantize_model(synth_model(s, "", 7), tmp.path("b.gguf"), opt);
        EXPECT_EQ(test::read_file(tmp.path("a.gguf")), test::read_file(tmp.path("b.gguf"))) << arch;
        auto m = Model::load(tmp.path("a.gguf"));
        EXPECT_EQ(m->hparams().arch, arch);
        EXPECT_EQ(m->layers[0].bq.present(), std::string(arch) == "qwen2");
        Context ctx(*m, 64, KvCacheType::F16, 2);
        std::vector<float> logits;
        ctx.eval(m->tokenizer().tokenize("hello world", true), logits);
        for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    }
}

TEST(Synth, PresetsAndVocabulary) {
    EXPECT_EQ(synth_preset("tinyllama-1.1b").n_layer, 22);
    EXPECT_EQ(synth_preset("llama3-8b").n_vocab, 128256);
    EXPECT_THROW(synth_preset("gpt-5"), Error);
    QFORGE_REQUIRE_SHARED(data);
    SynthShape s = synth_preset("tinyllama-1.1b");
    s.n_layer = 1;  // keep the test small; the vocabulary decides n_vocab
    const SourceModel m = synth_model(s, data + "/vocab/ggml-vocab-llama-spm.gguf", 1);
    EXPECT_EQ(m.tensors.front().ne[1], 32000);
}

}  // namespace
}  // namespace qforge

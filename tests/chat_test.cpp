#include <gtest/gtest.h>

#include "qforge/chat.hpp"
#include "qforge/convert.hpp"
#include "qforge/error.hpp"
#include "qforge/gguf.hpp"
#include "test_util.hpp"

namespace qforge {
namespace {

TEST(Chat, DetectsTemplates) {
    EXPECT_EQ(detect_chat_format("{% for m in messages %}<|im_start|>{{m.role}}..."), ChatFormat::ChatML);
    EXPECT_EQ(detect_chat_format("{{ bos_token }}<|start_header_id|>..."), ChatFormat::Llama3);
    EXPECT_EQ(detect_chat_format("[INST] <<SYS>>\\n..."), ChatFormat::Llama2);
    EXPECT_EQ(detect_chat_format("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), ChatFormat::Mistral);
    EXPECT_THROW(detect_chat_format("{{ weird }}"), Error);
    EXPECT_THROW(detect_chat_format(""), Error);
}

TEST(Chat, Formats) {
    const std::vector<ChatMessage> m = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}};
    EXPECT_EQ(format_chat(ChatFormat::ChatML, m, true),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
              "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(format_chat(ChatFormat::Llama3, {{"user", "Hi"}}, true),
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(format_chat(ChatFormat::Llama2, m, true),
              "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello!</s>[INST] Bye [/INST]");
    EXPECT_EQ(format_chat(ChatFormat::Mistral, {{"user", "Hi"}}, true), "[INST] Hi [/INST]");
}

TEST(Chat, InteractiveSessionReadsStdin) {
    test::TempDir tmp;
    const std::string demo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";
    convert_hf_model(*open_hf_model(demo), tmp.path("d.gguf"), "f16", 2);
    auto src = GgufFile::open(tmp.path("d.gguf"));
    {
        GgufWriter w(tmp.path("chat.gguf"));
        for (const auto& kv : src->metadata()) w.add_kv(kv.key, kv.value);
        w.add_kv("tokenizer.chat_template", GgufValue::string("{% for message in messages %}<|im_start|>..."));
        for (const auto& t : src->tensors()) w.add_tensor(t.name, t.type, t.ne);
        w.write_header();
        for (const auto& t : src->tensors()) w.write_tensor_data(t.data, t.n_bytes);
        w.finish();
    }
    auto r = test::run_qforge({"run", "-m", tmp.path("chat.gguf"), "--chat", "-n", "6", "--temp", "0", "-p", "You tell stories."},
                              "Tell me about a dog.\nAnd a cat?\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("chatml"), std::string::npos);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;  // two answers
}

}  // namespace
}  // namespace qforge

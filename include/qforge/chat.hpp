// Chat prompts in the formats models are trained on, recognised from tokenizer.chat_template.
#pragma once

#include <string>
#include <vector>

namespace qforge {

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

enum class ChatFormat { Llama2, Llama3, ChatML, Mistral };

// Recognises the template's format; throws a clear error for a missing or unknown template.
ChatFormat detect_chat_format(const std::string& jinja_template);
const char* chat_format_name(ChatFormat f);
// The prompt text for `messages`, ending with the assistant's turn opened when add_assistant.
std::string format_chat(ChatFormat f, const std::vector<ChatMessage>& messages, bool add_assistant);

}  // namespace qforge

#include "qforge/chat.hpp"

#include "qforge/error.hpp"

namespace qforge {

ChatFormat detect_chat_format(const std::string& t) {
    if (t.empty()) throw_usage("the model has no chat template (tokenizer.chat_template); --chat needs one");
    if (t.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
    if (t.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
    if (t.find("[INST]") != std::string::npos)
        return t.find("<<SYS>>") != std::string::npos ? ChatFormat::Llama2 : ChatFormat::Mistral;
    throw_usage("unsupported chat template (known: Llama 2, Llama 3, ChatML, Mistral)");
}

const char* chat_format_name(ChatFormat f) {
    switch (f) {
        case ChatFormat::Llama2: return "llama2";
        case ChatFormat::Llama3: return "llama3";
        case ChatFormat::ChatML: return "chatml";
        case ChatFormat::Mistral: return "mistral";
    }
    return "?";
}

std::string format_chat(ChatFormat f, const std::vector<ChatMessage>& msgs, bool add_assistant) {
    std::string out;
    switch (f) {
        case ChatFormat::ChatML:
            for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
            if (add_assistant) out += "<|im_start|>assistant\n";
            break;
        case ChatFormat::Llama3:
            for (const auto& m : msgs) out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
            if (add_assistant) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
            break;
        case ChatFormat::Llama2:
        case ChatFormat::Mistral: {
            // [INST] user [/INST] answer</s>[INST] ... ; Llama 2 folds the system prompt into <<SYS>>.
            std::string system;
            bool first_user = true;
            for (const auto& m : msgs) {
                if (m.role == "system") {
                    system = m.content;
                } else if (m.role == "user") {
                    std::string content = m.content;
                    if (first_user && !system.empty())
                        content = f == ChatFormat::Llama2 ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content : system + "\n\n" + content;
                    out += "[INST] " + content + " [/INST]";
                    first_user = false;
                } else {
                    out += " " + m.content + "</s>";
                }
            }
            (void)add_assistant;  // the open [/INST] is the assistant's cue
            break;
        }
    }
    return out;
}

}  // namespace qforge

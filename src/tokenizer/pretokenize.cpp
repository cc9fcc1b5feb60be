#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenize.hpp"

#include <pcre2.h>

#include <array>
#include <map>

#include "qforge/error.hpp"

namespace qforge {

namespace {

const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}"
    "\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kDeepseekLlmLetters =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

struct PreSpec {
    std::vector<const char*> regexes;
    bool ignore_merges = false;
};

// tokenizer.ggml.pre -> llama.cpp's pre-tokenizer regexes (applied in sequence).
const std::map<std::string, PreSpec>& pre_specs() {
    static const std::map<std::string, PreSpec> specs = [] {
        std::map<std::string, PreSpec> m;
        const PreSpec llama3{{kLlama3}, true};
        for (const char* n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"}) m[n] = llama3;
        for (const char* n : {"dbrx", "smaug-bpe", "chatglm-bpe"}) m[n] = PreSpec{{kLlama3}};
        for (const char* n : {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "mpt", "olmo",
                              "jais", "trillion", "roberta-bpe", "jina-v1-en", "jina-v2-code"})
            m[n] = PreSpec{{kGpt2}};
        for (const char* n : {"qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan"}) m[n] = PreSpec{{kQwen2}};
        for (const char* n : {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})
            m[n] = PreSpec{{"\\p{N}", kGpt2}};
        m["falcon"] = PreSpec{{"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}};
        m["deepseek-llm"] = PreSpec{{"[\\r\\n]", kDeepseekLlmLetters, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$",
                                     "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"}};
        m["deepseek-coder"] = PreSpec{{"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}};
        for (const char* n : {"poro-chat", "bloom", "gpt3-finnish"}) m[n] = PreSpec{{" ?[^(\\s|.,!?…。，、।۔،)]+"}};
        m["viking"] = PreSpec{{" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"}};
        m["tekken"] = PreSpec{{kTekken}};
        m["gpt-4o"] = PreSpec{{kGpt4o}};
        m["default"] = PreSpec{{"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}};
        return m;
    }();
    return specs;
}

}  // namespace

const char* hf_split_regex(const std::string& pre) {
    if (pre == "gpt-2") return "";
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return kLlama3;
    if (pre == "qwen2") return kQwen2;
    return nullptr;
}

struct PreTokenizer::Impl {
    std::vector<pcre2_code*> codes;
    ~Impl() {
        for (auto* c : codes) pcre2_code_free(c);
    }
};

PreTokenizer::PreTokenizer(const std::string& pre) : impl_(std::make_unique<Impl>()) {
    const auto& specs = pre_specs();
    auto it = specs.find(pre);
    if (it == specs.end()) throw_bad_input("tokenizer.ggml.pre", "unknown pre-tokenizer '" + pre + "'");
    ignore_merges_ = it->second.ignore_merges;
    for (const char* re : it->second.regexes) {
        int err = 0;
        PCRE2_SIZE off = 0;
        pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
        if (!code) throw std::logic_error(std::string("pre-tokenizer regex does not compile: ") + re);
        impl_->codes.push_back(code);
    }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::split(const std::string& text) const {
    // Offsets of the pieces; each regex splits every piece into matches and the gaps between.
    std::vector<size_t> pieces = {text.size()};
    if (text.empty()) return {};
    pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
    for (pcre2_code* code : impl_->codes) {
        std::vector<size_t> next;
        size_t start = 0;
        for (size_t len : pieces) {
            const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + start);
            size_t pos = 0, last = 0;
            while (pos <= len) {
                const int rc = pcre2_match(code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
                if (rc < 0) break;
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
                const size_t ms = ov[0], me = ov[1];
                if (me == ms) {  // empty match: move on by one character
                    pos = ms + 1;
                    while (pos < len && (static_cast<unsigned char>(text[start + pos]) & 0xC0) == 0x80) ++pos;
                    continue;
                }
                if (ms > last) next.push_back(ms - last);
                next.push_back(me - ms);
                last = pos = me;
            }
            if (last < len) next.push_back(len - last);
            start += len;
        }
        pieces.swap(next);
    }
    pcre2_match_data_free(md);
    std::vector<std::string> words;
    size_t start = 0;
    for (size_t len : pieces) {
        words.push_back(text.substr(start, len));
        start += len;
    }
    return words;
}

namespace {
struct ByteMap {
    std::array<std::string, 256> to_unicode;
    std::map<uint32_t, int> to_byte;
    ByteMap() {
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
            std::string s;
            if (cp < 0x80) s += static_cast<char>(cp);
            else {
                s += static_cast<char>(0xC0 | (cp >> 6));
                s += static_cast<char>(0x80 | (cp & 0x3F));
            }
            to_unicode[static_cast<size_t>(b)] = s;
            to_byte[cp] = b;
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}
}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) {
    const auto& m = byte_map().to_byte;
    auto it = m.find(cp);
    return it == m.end() ? -1 : it->second;
}

}  // namespace qforge

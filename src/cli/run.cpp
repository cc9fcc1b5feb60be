#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.hpp"
#include "formats/byte_reader.hpp"
#include "qforge/chat.hpp"
#include "qforge/convert.hpp"
#include "qforge/mapped_file.hpp"
#include "qforge/error.hpp"
#include "qforge/model.hpp"

namespace qforge::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct RunArgs {
    std::string model, prompt, cache_type = "f16";
    int n_predict = 128, n_ctx = 0, threads = 0, batch = 512;
    SamplerParams sp;
    DeviceOptions device;
    bool chat = false, json = false, no_display_prompt = false;
};

// Generates up to n tokens after the context's current state; calls on_token for each.
template <class OnToken>
int generate(Context& ctx, Sampler& sampler, std::vector<float>& logits, int n, OnToken on_token) {
    const Model& m = ctx.model();
    int produced = 0;
    while (produced < n) {
        const int32_t t = sampler.sample(logits.data(), m.hparams().n_vocab);
        sampler.accept(t);
        if (m.tokenizer().is_eog(t)) break;
        ++produced;
        on_token(t);
        if (produced == n) break;
        ctx.eval({t}, logits);
    }
    return produced;
}

int run_once(const RunArgs& a, const Model& model, Context& ctx) {
    const Tokenizer& tok = model.tokenizer();
    const auto prompt_ids = tok.tokenize(a.prompt, true);
    if (prompt_ids.empty()) throw_usage("the prompt is empty");
    if (static_cast<int>(prompt_ids.size()) + a.n_predict > ctx.n_ctx())
        throw_usage("context overflow: prompt (" + std::to_string(prompt_ids.size()) + " tokens) + -n " + std::to_string(a.n_predict) +
                    " exceeds the context of " + std::to_string(ctx.n_ctx()) + " (use -c)");
    Sampler sampler(a.sp);
    for (int32_t t : prompt_ids) sampler.accept(t);
    std::vector<float> logits;
    if (!a.json && !a.no_display_prompt) {
        std::cout << a.prompt << std::flush;
    }
    const auto t0 = Clock::now();
    ctx.eval(prompt_ids, logits, false, a.batch);
    const double prompt_ms = ms_since(t0);
    Utf8Stream stream;
    nlohmann::json tokens = nlohmann::json::array();
    const auto t1 = Clock::now();
    const int n_gen = generate(ctx, sampler, logits, a.n_predict, [&](int32_t t) {
        const std::string piece = tok.token_to_piece(t);
        if (a.json) {
            tokens.push_back({{"id", t}, {"text", piece}});
        } else {
            std::cout << stream.push(piece) << std::flush;
        }
    });
    const double gen_ms = ms_since(t1);
    const double pp_tps = prompt_ids.size() / (prompt_ms / 1000.0), tg_tps = n_gen > 0 ? n_gen / (gen_ms / 1000.0) : 0.0;
    if (a.json) {
        nlohmann::json j;
        j["prompt_ids"] = prompt_ids;
        j["tokens"] = tokens;
        std::string text;
        for (const auto& e : tokens) text += e["text"].get<std::string>();
        j["text"] = text;
        j["timings"] = {{"prompt_tokens", prompt_ids.size()}, {"prompt_ms", prompt_ms}, {"prompt_tokens_per_s", pp_tps},
                        {"generated_tokens", n_gen},          {"generation_ms", gen_ms}, {"generation_tokens_per_s", tg_tps},
                        {"peak_rss_bytes", peak_rss_bytes()}, {"threads", a.threads}};
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
        std::cout << stream.flush() << "\n";
        std::fprintf(stderr, "\nprompt: %zu tokens in %.1f ms (%.1f tokens/s); generation: %d tokens in %.1f ms (%.1f tokens/s); peak memory %.1f MiB\n",
                     prompt_ids.size(), prompt_ms, pp_tps, n_gen, gen_ms, tg_tps, static_cast<double>(peak_rss_bytes()) / 1048576.0);
    }
    return 0;
}

int run_chat(const RunArgs& a, const Model& model, Context& ctx) {
    const ChatFormat fmt = detect_chat_format(model.chat_template());
    const Tokenizer& tok = model.tokenizer();
    std::vector<ChatMessage> messages;
    if (!a.prompt.empty()) messages.push_back({"system", a.prompt});
    std::vector<int32_t> in_cache;
    Sampler sampler(a.sp);
    const bool tty = ::isatty(STDIN_FILENO);
    std::fprintf(stderr, "chat (%s template); an empty line or end of input quits\n", chat_format_name(fmt));
    std::string line;
    while (true) {
        if (tty) std::cout << "> " << std::flush;
        if (!std::getline(std::cin, line) || line.empty()) break;
        if (!is_valid_utf8(line)) {
            std::fprintf(stderr, "qforge: input is not valid UTF-8; try again\n");
            continue;
        }
        messages.push_back({"user", line});
        const auto ids = tok.tokenize(format_chat(fmt, messages, true), true, true);
        size_t common = 0;
        while (common < ids.size() && common < in_cache.size() && ids[common] == in_cache[common]) ++common;
        if (common == ids.size()) --common;  // always evaluate at least one token
        ctx.truncate(static_cast<int>(common));
        in_cache.resize(common);
        std::vector<int32_t> fresh(ids.begin() + static_cast<long>(common), ids.end());
        if (ctx.n_past() + static_cast<int>(fresh.size()) + a.n_predict > ctx.n_ctx())
            throw_usage("context overflow: the conversation no longer fits in " + std::to_string(ctx.n_ctx()) + " tokens (use -c)");
        std::vector<float> logits;
        ctx.eval(fresh, logits, false, a.batch);
        in_cache.insert(in_cache.end(), fresh.begin(), fresh.end());
        Utf8Stream stream;
        std::vector<int32_t> answer;
        generate(ctx, sampler, logits, a.n_predict, [&](int32_t t) {
            answer.push_back(t);
            in_cache.push_back(t);
            std::cout << stream.push(tok.token_to_piece(t)) << std::flush;
        });
        // The last sampled token is not in the cache yet; the next turn re-evaluates it.
        if (!answer.empty()) in_cache.pop_back();
        std::cout << stream.flush() << "\n";
        std::string reply;
        for (int32_t t : answer) reply += tok.token_to_piece(t);
        messages.push_back({"assistant", reply});
    }
    return 0;
}

}  // namespace

Command add_run(CLI::App& root) {
    auto* app = root.add_subcommand("run", "Generate text with a model (GGUF file or Hugging Face directory)");
    auto a = std::make_shared<RunArgs>();
    a->sp.seed = 0xFFFFFFFF;
    app->add_option("-m,--model", a->model, "GGUF file or Hugging Face model directory")->required();
    app->add_option("-p,--prompt", a->prompt, "Prompt (with --chat: the system prompt)");
    app->add_option("-n,--n-predict", a->n_predict, "Tokens to generate (default 128)")->check(CLI::Range(0, 1 << 20));
    app->add_option("-c,--ctx-size", a->n_ctx, "Context size (default: the model's, at most 4096)")->check(CLI::Range(0, 1 << 24));
    app->add_option("-t,--threads", a->threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
    app->add_option("-b,--batch-size", a->batch, "Prompt tokens per batch (default 512)")->check(CLI::Range(1, 1 << 16));
    app->add_option("--seed", a->sp.seed, "Random seed (default: random)");
    app->add_option("--temp", a->sp.temp, "Temperature; 0 = greedy (default 0.8)")->check(CLI::Range(0.0, 100.0));
    app->add_option("--top-k", a->sp.top_k, "Top-k (default 40, 0 = off)")->check(CLI::Range(0, 1 << 24));
    app->add_option("--top-p", a->sp.top_p, "Top-p (default 0.95)")->check(CLI::Range(0.0, 1.0));
    app->add_option("--min-p", a->sp.min_p, "Min-p (default 0.05)")->check(CLI::Range(0.0, 1.0));
    app->add_option("--repeat-penalty", a->sp.repeat_penalty, "Repeat penalty over the last 64 tokens (default 1.0 = off)")->check(CLI::Range(0.0, 100.0));
    app->add_option("--cache-type", a->cache_type, "KV cache type: f16 (default), q8_0 or f32");
    add_device_options(app, a->device);
    app->add_flag("--chat", a->chat, "Interactive chat with the model's chat template (reads stdin)");
    app->add_flag("--json", a->json, "Print one JSON object with the ids, tokens and timings");
    app->add_flag("--no-display-prompt", a->no_display_prompt, "Do not echo the prompt");
    app->footer("Example: qforge run -m models/tiny-demo-8m -p \"Once upon a time\" -n 64 --temp 0");
    return {app, [a]() {
                if (!is_valid_utf8(a->prompt)) throw_usage("the prompt is not valid UTF-8");
                if (!a->chat && a->prompt.empty()) throw_usage("-p/--prompt is required (or use --chat)");
                const KvCacheType ct = parse_cache_type(a->cache_type);
                auto model = Model::load(a->model);
                if (a->threads == 0) a->threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
                int n_ctx = a->n_ctx > 0 ? a->n_ctx : std::min(model->hparams().n_ctx_train, 4096);
                const int ngl = resolve_gpu_layers(a->device, *model);
                Context ctx(*model, n_ctx, ct, a->threads, ngl, a->device.device == "gpu");
                gpu_notice(ctx, ngl);
                return a->chat ? run_chat(*a, *model, ctx) : run_once(*a, *model, ctx);
            }};
}

Command add_tokenize(CLI::App& root) {
    auto* app = root.add_subcommand("tokenize", "Show how a model's tokenizer splits a text");
    struct Args {
        std::string model, prompt, file;
        bool ids = false, no_bos = false, parse_special = false;
    };
    auto a = std::make_shared<Args>();
    app->add_option("-m,--model", a->model, "GGUF file (a vocabulary-only GGUF is fine) or Hugging Face directory")->required();
    auto* p = app->add_option("-p,--prompt", a->prompt, "Text to tokenize");
    auto* f = app->add_option("-f,--file", a->file, "File whose bytes are tokenized exactly");
    p->excludes(f);
    app->add_flag("--ids", a->ids, "Print only the ids, space-separated on one line");
    app->add_flag("--no-bos", a->no_bos, "Add no BOS/EOS tokens");
    app->add_flag("--parse-special", a->parse_special, "Treat special-token text in the input as those tokens");
    app->footer("Example: qforge tokenize -m models/tiny-demo-8m -p \"Hello world\"");
    return {app, [a, p, f]() {
                if (!*p && !*f) throw_usage("give -p TEXT or -f FILE");
                std::string text = a->prompt;
                if (*f) {
                    MappedFile mf(a->file);
                    text.assign(reinterpret_cast<const char*>(mf.data()), mf.size());
                }
                std::unique_ptr<Tokenizer> tok;
                std::error_code ec;
                if (std::filesystem::is_directory(a->model, ec)) {
                    tok = Tokenizer::from_metadata(open_hf_model(a->model)->source.metadata, a->model);
                } else {
                    auto g = GgufFile::open(a->model);
                    tok = Tokenizer::from_metadata(g->metadata(), a->model);
                }
                const auto ids = tok->tokenize(text, !a->no_bos, a->parse_special);
                if (a->ids) {
                    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
                    std::cout << "\n";
                } else {
                    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok->token_to_piece(id, true).c_str());
                }
                return 0;
            }};
}

}  // namespace qforge::cli

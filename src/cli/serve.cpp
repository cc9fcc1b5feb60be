// qforge serve: an OpenAI-compatible HTTP server (cpp-httplib) with a chat page.
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cli/commands.hpp"
#include "cli/serve_page.hpp"
#include "qforge/chat.hpp"
#include "qforge/error.hpp"
#include "qforge/model.hpp"

namespace qforge::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct ServeArgs {
    std::string model, host = "127.0.0.1", api_key, cache_type = "f16", alias;
    int port = 8080, n_ctx = 0, parallel = 1, queue = 16, threads = 0, batch = 512;
    DeviceOptions device;
};

// An OpenAI-style error: status, message, type, param.
struct ApiError {
    ApiError(int s, std::string m, std::string t = "invalid_request_error", std::string p = "", std::string c = "")
        : status(s), message(std::move(m)), type(std::move(t)), param(std::move(p)), code(std::move(c)) {}
    int status;
    std::string message, type, param, code;
};

json error_body(const ApiError& e) {
    return {{"error", {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                       {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

// One generation slot: its own KV cache and what is in it.
struct Slot {
    std::unique_ptr<Context> ctx;
    std::vector<int32_t> cached;
};

// Slots handed out to requests; at most `max_queue` requests wait for one, the rest get 503.
class SlotPool {
   public:
    SlotPool(std::vector<std::unique_ptr<Slot>> slots, int max_queue) : slots_(std::move(slots)), max_queue_(max_queue) {
        for (auto& s : slots_) free_.push_back(s.get());
    }
    Slot* acquire() {
        std::unique_lock<std::mutex> lock(m_);
        if (free_.empty()) {
            if (waiting_ >= max_queue_) return nullptr;
            ++waiting_;
            cv_.wait(lock, [&] { return !free_.empty(); });
            --waiting_;
        }
        Slot* s = free_.back();
        free_.pop_back();
        return s;
    }
    void release(Slot* s) {
        {
            std::lock_guard<std::mutex> lock(m_);
            free_.push_back(s);
        }
        cv_.notify_one();
    }
    int busy() {
        std::lock_guard<std::mutex> lock(m_);
        return static_cast<int>(slots_.size() - free_.size());
    }
    int waiting() {
        std::lock_guard<std::mutex> lock(m_);
        return waiting_;
    }
    size_t size() const { return slots_.size(); }

   private:
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<Slot*> free_;
    int max_queue_, waiting_ = 0;
    std::mutex m_;
    std::condition_variable cv_;
};

// A slot held by a request until it (or its streaming provider) is destroyed.
struct SlotLease {
    SlotLease(SlotPool& p, Slot* s) : pool(p), slot(s) {}
    SlotLease(const SlotLease&) = delete;
    SlotLease& operator=(const SlotLease&) = delete;
    ~SlotLease() { release(); }
    // Back to the pool as soon as the generation ends, before the answer's last bytes go out: a
    // client that has its whole answer may send the next request at once.
    void release() {
        if (slot) pool.release(slot);
        slot = nullptr;
    }
    SlotPool& pool;
    Slot* slot;
};

struct GenRequest {
    std::vector<int32_t> prompt;
    int max_tokens = -1;  // -1: until the context is full
    SamplerParams sp;
    std::vector<std::string> stop;
    bool ignore_eos = false;  // llama-server's: end-of-generation tokens are never sampled
};

struct GenResult {
    std::string text, finish_reason = "length";
    int prompt_tokens = 0, completion_tokens = 0;
    bool cancelled = false;
    double prompt_ms = 0, gen_ms = 0;
};

// Generates into `slot`, reusing the cached prefix; on_text gets the text as it becomes final
// (held back while it could still be the start of a stop string) and returns false to cancel.
GenResult generate(Slot& slot, const GenRequest& r, int batch, const std::function<bool(const std::string&)>& on_text) {
    Context& ctx = *slot.ctx;
    const Model& model = ctx.model();
    const Tokenizer& tok = model.tokenizer();
    GenResult res;
    res.prompt_tokens = static_cast<int>(r.prompt.size());
    size_t common = 0;
    while (common < r.prompt.size() && common < slot.cached.size() && common < static_cast<size_t>(ctx.n_past()) &&
           r.prompt[common] == slot.cached[common])
        ++common;
    if (common == r.prompt.size()) --common;  // evaluate at least one token for fresh logits
    ctx.truncate(static_cast<int>(common));
    const std::vector<int32_t> fresh(r.prompt.begin() + static_cast<long>(common), r.prompt.end());
    std::vector<float> logits;
    auto t0 = Clock::now();
    slot.cached.clear();  // unknown if eval throws
    ctx.eval(fresh, logits, false, batch);
    slot.cached = r.prompt;
    res.prompt_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    t0 = Clock::now();
    Sampler sampler(r.sp);
    for (int32_t t : r.prompt) sampler.accept(t);
    Utf8Stream utf8;
    std::string text;  // all generated text; [0, sent) delivered
    size_t sent = 0, max_stop = 0;
    for (const auto& s : r.stop) max_stop = std::max(max_stop, s.size());
    auto deliver = [&](size_t upto) {
        if (upto > sent) {
            if (!on_text(text.substr(sent, upto - sent))) res.cancelled = true;
            sent = upto;
        }
    };
    std::vector<int32_t> eog;
    if (r.ignore_eos)
        for (int32_t i = 0; i < model.hparams().n_vocab; ++i)
            if (tok.is_eog(i)) eog.push_back(i);
    while (r.max_tokens < 0 || res.completion_tokens < r.max_tokens) {
        for (int32_t e : eog) logits[static_cast<size_t>(e)] = -INFINITY;
        const int32_t t = sampler.sample(logits.data(), model.hparams().n_vocab);
        sampler.accept(t);
        if (tok.is_eog(t)) {
            res.finish_reason = "stop";
            break;
        }
        ++res.completion_tokens;
        const size_t before = text.size();
        text += utf8.push(tok.token_to_piece(t));
        // A stop string ends the text where it starts.
        size_t cut = std::string::npos;
        for (const auto& s : r.stop) {
            const size_t from = before >= s.size() ? before - s.size() + 1 : 0;
            const size_t p = text.find(s, from);
            if (p != std::string::npos) cut = std::min(cut, p);
        }
        if (cut != std::string::npos) {
            text.resize(cut);
            deliver(std::min(cut, text.size()));
            res.finish_reason = "stop";
            break;
        }
        // Hold back the longest tail that is the start of a stop string.
        size_t hold = 0;
        for (const auto& s : r.stop)
            for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
                if (text.compare(text.size() - k, k, s, 0, k) == 0) {
                    hold = k;
                    break;
                }
        deliver(text.size() - hold);
        if (res.cancelled) break;
        if (r.max_tokens >= 0 && res.completion_tokens >= r.max_tokens) break;
        if (ctx.n_past() + 1 > ctx.n_ctx()) break;  // the context is full: "length"
        ctx.eval({t}, logits);
        slot.cached.push_back(t);
    }
    if (!res.cancelled && res.finish_reason != "stop") {
        text += utf8.flush();
        deliver(text.size());
    } else if (!res.cancelled && sent < text.size()) {
        deliver(text.size());
    }
    res.text = text.substr(0, sent);
    res.gen_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return res;
}

// ---- request parsing ----

const json* field(const json& body, const char* name) {
    const auto it = body.find(name);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number_field(const json& body, const char* name, double def, double lo, double hi) {
    const json* v = field(body, name);
    if (!v) return def;
    if (!v->is_number()) throw ApiError{400, std::string("'") + name + "' must be a number", "invalid_request_error", name};
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
        throw ApiError{400, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump(), "invalid_request_error",
                       name};
    return x;
}

int64_t int_field(const json& body, const char* name, int64_t def, int64_t lo, int64_t hi) {
    const json* v = field(body, name);
    if (!v) return def;
    if (!v->is_number_integer() && !(v->is_number_float() && v->get<double>() == std::floor(v->get<double>())))
        throw ApiError{400, std::string("'") + name + "' must be an integer", "invalid_request_error", name};
    const double x = v->get<double>();
    if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
        throw ApiError{400, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), "invalid_request_error",
                       name};
    return static_cast<int64_t>(x);
}

bool bool_field(const json& body, const char* name, bool def) {
    const json* v = field(body, name);
    if (!v) return def;
    if (!v->is_boolean()) throw ApiError{400, std::string("'") + name + "' must be true or false", "invalid_request_error", name};
    return v->get<bool>();
}

std::string string_field(const json& body, const char* name) {
    const json* v = field(body, name);
    if (!v) return "";
    if (!v->is_string()) throw ApiError{400, std::string("'") + name + "' must be a string", "invalid_request_error", name};
    return v->get<std::string>();
}

// The sampling options and limits shared by both endpoints.
GenRequest common_options(const json& body, int n_ctx) {
    GenRequest g;
    g.sp.temp = static_cast<float>(number_field(body, "temperature", 1.0, 0.0, 2.0));
    g.sp.top_p = static_cast<float>(number_field(body, "top_p", 1.0, 0.0, 1.0));
    g.sp.top_k = static_cast<int>(int_field(body, "top_k", 0, 0, 1 << 24));
    g.sp.min_p = static_cast<float>(number_field(body, "min_p", 0.0, 0.0, 1.0));
    g.sp.repeat_penalty = static_cast<float>(number_field(body, "repeat_penalty", 1.0, 0.0, 100.0));
    if (field(body, "seed"))
        g.sp.seed = static_cast<uint32_t>(int_field(body, "seed", 0, INT64_MIN / 2, INT64_MAX / 2) & 0xFFFFFFFF);
    else
        g.sp.seed = std::random_device{}();
    if (field(body, "max_completion_tokens"))
        g.max_tokens = static_cast<int>(int_field(body, "max_completion_tokens", -1, 0, n_ctx));
    else
        g.max_tokens = static_cast<int>(int_field(body, "max_tokens", -1, 0, 1 << 30));
    g.ignore_eos = bool_field(body, "ignore_eos", false);
    if (int_field(body, "n", 1, 1, 1) != 1) throw ApiError{400, "'n' must be 1", "invalid_request_error", "n"};
    if (const json* s = field(body, "stop")) {
        if (s->is_string()) {
            g.stop.push_back(s->get<std::string>());
        } else if (s->is_array() && s->size() <= 4) {
            for (const auto& x : *s) {
                if (!x.is_string()) throw ApiError{400, "'stop' must be a string or an array of up to 4 strings", "invalid_request_error", "stop"};
                g.stop.push_back(x.get<std::string>());
            }
        } else {
            throw ApiError{400, "'stop' must be a string or an array of up to 4 strings", "invalid_request_error", "stop"};
        }
        std::erase_if(g.stop, [](const std::string& x) { return x.empty(); });
    }
    return g;
}

std::string message_text(const json& content) {
    if (content.is_string()) return content.get<std::string>();
    if (content.is_array()) {  // [{"type": "text", "text": …}, …]
        std::string s;
        for (const auto& part : content) {
            if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
                throw ApiError{400, "message content parts must be {\"type\": \"text\", \"text\": …}", "invalid_request_error", "messages"};
            s += part["text"].get<std::string>();
        }
        return s;
    }
    if (content.is_null()) return "";
    throw ApiError{400, "message 'content' must be a string or an array of text parts", "invalid_request_error", "messages"};
}

std::string random_id(const char* prefix) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t base = std::random_device{}();
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s-%016llx", prefix, static_cast<unsigned long long>(base ^ (++counter * 0x9E3779B97F4A7C15ull)));
    return buf;
}

class Server {
   public:
    Server(const ServeArgs& a, std::unique_ptr<Model> model, SlotPool& pool, std::optional<ChatFormat> fmt)
        : a_(a), model_(std::move(model)), pool_(pool), fmt_(fmt) {
        model_id_ = a.alias.empty() ? std::filesystem::path(a.model).filename().string() : a.alias;
        if (model_id_.empty()) model_id_ = std::filesystem::path(a.model).parent_path().filename().string();
        created_ = static_cast<int64_t>(std::time(nullptr));
    }

    void routes(httplib::Server& http) {
        http.set_payload_max_length(8u << 20);
        http.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kChatPage, "text/html; charset=utf-8"); });
        http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(json{{"status", "ok"}, {"slots_idle", static_cast<int>(pool_.size()) - pool_.busy()}, {"slots_processing", pool_.busy()},
                                 {"requests_waiting", pool_.waiting()}, {"requests_cancelled", cancelled_.load()}}
                                .dump(),
                            "application/json");
        });
        http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] {
                res.set_content(json{{"object", "list"},
                                     {"data", json::array({{{"id", model_id_}, {"object", "model"}, {"created", created_}, {"owned_by", "qforge"},
                                                            {"meta", {{"n_ctx", a_.n_ctx}, {"n_params", model_->n_params()}, {"n_vocab", model_->hparams().n_vocab}}}}})}}
                                    .dump(),
                                "application/json");
            });
        });
        http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] { complete(req, res, false); });
        });
        http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
            guarded(req, res, [&] { complete(req, res, true); });
        });
        http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (!res.body.empty()) return;
            const std::string msg = res.status == 404 ? "not found" : res.status == 413 ? "request body too large" : "error " + std::to_string(res.status);
            res.set_content(error_body(ApiError{res.status, msg}).dump(), "application/json");
        });
    }

   private:
    template <class F>
    void guarded(const httplib::Request& req, httplib::Response& res, F f) {
        try {
            if (!a_.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + a_.api_key)
                throw ApiError{401, "invalid API key", "invalid_request_error", "", "invalid_api_key"};
            f();
        } catch (const ApiError& e) {
            res.status = e.status;
            res.set_content(error_body(e).dump(), "application/json");
        } catch (const std::exception& e) {
            res.status = 500;
            res.set_content(error_body(ApiError{500, e.what(), "server_error"}).dump(), "application/json");
        }
    }

    void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
        json body;
        try {
            body = json::parse(req.body);
        } catch (const json::exception& e) {
            throw ApiError{400, std::string("invalid JSON: ") + e.what()};
        }
        if (!body.is_object()) throw ApiError{400, "the request body must be a JSON object"};
        GenRequest g = common_options(body, a_.n_ctx);
        const bool stream = bool_field(body, "stream", false);
        bool include_usage = false;
        if (const json* so = field(body, "stream_options")) {
            if (!so->is_object()) throw ApiError{400, "'stream_options' must be an object", "invalid_request_error", "stream_options"};
            include_usage = bool_field(*so, "include_usage", false);
        }
        string_field(body, "model");  // any model name is accepted (there is one)
        const Tokenizer& tok = model_->tokenizer();
        if (chat) {
            const json* msgs = field(body, "messages");
            if (!msgs || !msgs->is_array() || msgs->empty())
                throw ApiError{400, "'messages' must be a non-empty array", "invalid_request_error", "messages"};
            std::vector<ChatMessage> messages;
            for (const auto& m : *msgs) {
                if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
                    throw ApiError{400, "each message needs a 'role' string", "invalid_request_error", "messages"};
                const std::string role = m["role"];
                if (role != "system" && role != "user" && role != "assistant" && role != "developer")
                    throw ApiError{400, "unknown message role '" + role + "'", "invalid_request_error", "messages"};
                messages.push_back({role == "developer" ? "system" : role, message_text(m.contains("content") ? m["content"] : json())});
            }
            g.prompt = tok.tokenize(format_chat(fmt_.value_or(ChatFormat::ChatML), messages, true), true, true);
        } else {
            const json* p = field(body, "prompt");
            if (!p) throw ApiError{400, "'prompt' is required", "invalid_request_error", "prompt"};
            if (p->is_string()) {
                g.prompt = tok.tokenize(p->get<std::string>(), true);
            } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
                g.prompt = tok.tokenize((*p)[0].get<std::string>(), true);
            } else if (p->is_array() && !p->empty() && std::all_of(p->begin(), p->end(), [](const json& x) { return x.is_number_integer(); })) {
                for (const auto& x : *p) {
                    const int64_t id = x.get<int64_t>();
                    if (id < 0 || id >= model_->hparams().n_vocab) throw ApiError{400, "token id " + std::to_string(id) + " is out of range", "invalid_request_error", "prompt"};
                    g.prompt.push_back(static_cast<int32_t>(id));
                }
            } else {
                throw ApiError{400, "'prompt' must be a string, one string in an array, or an array of token ids", "invalid_request_error", "prompt"};
            }
            if (!field(body, "max_tokens")) g.max_tokens = 16;  // OpenAI's default for completions
        }
        if (g.prompt.empty()) throw ApiError{400, "the prompt is empty", "invalid_request_error", chat ? "messages" : "prompt"};
        if (static_cast<int>(g.prompt.size()) >= a_.n_ctx)
            throw ApiError{400,
                           "the prompt is " + std::to_string(g.prompt.size()) + " tokens, the context holds " + std::to_string(a_.n_ctx) +
                               " (start the server with a larger -c)",
                           "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded"};
        Slot* slot = pool_.acquire();
        if (!slot) throw ApiError{503, "the server is busy (all slots in use and the queue is full); try again", "server_error", "", "server_busy"};
        auto lease = std::make_shared<SlotLease>(pool_, slot);
        const std::string id = random_id(chat ? "chatcmpl" : "cmpl");
        const int64_t created = static_cast<int64_t>(std::time(nullptr));
        const char* object = chat ? "chat.completion" : "text_completion";
        auto usage = [](const GenResult& r) {
            return json{{"prompt_tokens", r.prompt_tokens}, {"completion_tokens", r.completion_tokens}, {"total_tokens", r.prompt_tokens + r.completion_tokens}};
        };
        auto timings = [](const GenResult& r) {
            return json{{"prompt_n", r.prompt_tokens}, {"prompt_ms", r.prompt_ms}, {"predicted_n", r.completion_tokens}, {"predicted_ms", r.gen_ms},
                        {"predicted_per_second", r.gen_ms > 0 ? 1000.0 * r.completion_tokens / r.gen_ms : 0.0}};
        };
        const int batch = a_.batch;
        if (!stream) {
            // Chunked, so that a client gone away is noticed (a space before the JSON every second
            // of generation; JSON allows it) and its generation cancelled.
            res.set_chunked_content_provider("application/json", [=, this](size_t, httplib::DataSink& sink) {
                auto last = Clock::now();
                const GenResult r = generate(*lease->slot, g, batch, [&](const std::string&) {
                    if (Clock::now() - last < std::chrono::seconds(1)) return true;
                    last = Clock::now();
                    return sink.write(" ", 1);
                });
                lease->release();
                if (r.cancelled) {
                    cancelled_.fetch_add(1);
                    return false;
                }
                json choice = {{"index", 0}, {"finish_reason", r.finish_reason}};
                if (chat)
                    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
                else
                    choice["text"] = r.text, choice["logprobs"] = nullptr;
                const std::string out = json{{"id", id}, {"object", object}, {"created", created}, {"model", model_id_},
                                             {"choices", json::array({choice})}, {"usage", usage(r)}, {"timings", timings(r)}}
                                            .dump(-1, ' ', false, json::error_handler_t::replace);
                sink.write(out.data(), out.size());
                sink.done();
                return true;
            });
            return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider("text/event-stream", [=, this](size_t, httplib::DataSink& sink) {
            const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";
            auto event = [&](const json& choice, const json* extra) {
                json j = {{"id", id}, {"object", chunk_object}, {"created", created}, {"model", model_id_}, {"choices", json::array({choice})}};
                if (extra) j.update(*extra);
                const std::string s = "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
                return sink.write(s.data(), s.size());
            };
            if (chat && !event({{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}}, nullptr)) return false;
            const GenResult r = generate(*lease->slot, g, batch, [&](const std::string& piece) {
                if (chat) return event({{"index", 0}, {"delta", {{"content", piece}}}, {"finish_reason", nullptr}}, nullptr);
                return event({{"index", 0}, {"text", piece}, {"logprobs", nullptr}, {"finish_reason", nullptr}}, nullptr);
            });
            lease->release();
            if (r.cancelled) {
                cancelled_.fetch_add(1);
                return false;
            }
            const json extra = {{"timings", timings(r)}};
            json fin = chat ? json{{"index", 0}, {"delta", json::object()}, {"finish_reason", r.finish_reason}}
                            : json{{"index", 0}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", r.finish_reason}};
            if (!event(fin, &extra)) return false;
            if (include_usage) {
                const std::string s = "data: " + json{{"id", id}, {"object", chunk_object}, {"created", created}, {"model", model_id_},
                                                      {"choices", json::array()}, {"usage", usage(r)}}
                                                     .dump() +
                                      "\n\n";
                if (!sink.write(s.data(), s.size())) return false;
            }
            static const char done[] = "data: [DONE]\n\n";
            sink.write(done, sizeof(done) - 1);
            sink.done();
            return true;
        });
    }

    const ServeArgs& a_;
    std::unique_ptr<Model> model_;
    SlotPool& pool_;
    std::optional<ChatFormat> fmt_;
    std::string model_id_;
    int64_t created_ = 0;
    std::atomic<int> cancelled_{0};
};

httplib::Server* g_server = nullptr;
void on_signal(int) {
    if (g_server) g_server->stop();
}

}  // namespace

Command add_serve(CLI::App& root) {
    auto* app = root.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API, with a chat page at /");
    auto a = std::make_shared<ServeArgs>();
    app->add_option("-m,--model", a->model, "GGUF file or Hugging Face / MLX model directory")->required();
    app->add_option("--host", a->host, "Address to listen on (default 127.0.0.1: this machine only)");
    app->add_option("--port", a->port, "Port (default 8080; 0 picks a free one, printed)")->check(CLI::Range(0, 65535));
    app->add_option("-c,--ctx-size", a->n_ctx, "Context of each slot (default: the model's, at most 4096)")->check(CLI::Range(0, 1 << 24));
    app->add_option("--parallel", a->parallel, "Requests generated at once, each in its own slot and KV cache (default 1)")->check(CLI::Range(1, 256));
    app->add_option("--queue", a->queue, "Requests that may wait for a slot; more get 503 (default 16)")->check(CLI::Range(0, 100000));
    app->add_option("--api-key", a->api_key, "Require 'Authorization: Bearer KEY' on /v1/ requests");
    app->add_option("--alias", a->alias, "Model name in responses (default: the file or directory name)");
    app->add_option("-t,--threads", a->threads, "Threads in all (default: all cores; split between the slots)")->check(CLI::Range(0, 1024));
    app->add_option("-b,--batch-size", a->batch, "Prompt tokens per batch (default 512)")->check(CLI::Range(1, 1 << 16));
    app->add_option("--cache-type", a->cache_type, "KV cache type: f16 (default), q8_0 or f32");
    add_device_options(app, a->device);
    app->footer("Example: qforge serve -m models/tiny-demo-8m --port 8080, then open http://127.0.0.1:8080/ or\n"
                "         curl http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 32}'");
    return {app, [a]() {
                const KvCacheType ct = parse_cache_type(a->cache_type);
                auto model = Model::load(a->model);
                if (a->threads == 0) a->threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
                if (a->n_ctx == 0) a->n_ctx = std::min(model->hparams().n_ctx_train > 0 ? model->hparams().n_ctx_train : 4096, 4096);
                std::optional<ChatFormat> fmt;
                try {
                    fmt = detect_chat_format(model->chat_template());
                } catch (const Error&) {
                    std::fprintf(stderr, "serve: the model has no chat template it recognises; chat uses ChatML\n");
                }
                const int ngl = resolve_gpu_layers(a->device, *model);
                std::vector<std::unique_ptr<Slot>> slots;
                for (int i = 0; i < a->parallel; ++i) {
                    auto s = std::make_unique<Slot>();
                    s->ctx = std::make_unique<Context>(*model, a->n_ctx, ct, std::max(1, a->threads / a->parallel), ngl, a->device.device == "gpu");
                    if (i == 0) gpu_notice(*s->ctx, ngl);
                    slots.push_back(std::move(s));
                }
                SlotPool pool(std::move(slots), a->queue);
                httplib::Server http;
                // Workers: every slot, every queued request, and a few for /health and rejections.
                const size_t workers = static_cast<size_t>(a->parallel + a->queue + 4);
                http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
                Server server(*a, std::move(model), pool, fmt);
                server.routes(http);
                int port = a->port;
                if (port == 0) {
                    port = http.bind_to_any_port(a->host);
                    if (port < 0) throw Error(ExitCode::resource, "serve: cannot listen on " + a->host);
                } else if (!http.bind_to_port(a->host, port)) {
                    throw Error(ExitCode::resource, "serve: cannot listen on " + a->host + ":" + std::to_string(port) + " (in use, or not an address of this machine)");
                }
                std::signal(SIGPIPE, SIG_IGN);
                g_server = &http;
                std::signal(SIGINT, on_signal);
                std::signal(SIGTERM, on_signal);
                std::printf("qforge serve: http://%s:%d/ (%d slot%s of %d tokens, %d threads)\n", a->host.c_str(), port, a->parallel,
                            a->parallel == 1 ? "" : "s", a->n_ctx, a->threads);
                std::fflush(stdout);
                http.listen_after_bind();
                g_server = nullptr;
                return 0;
            }};
}

}  // namespace qforge::cli

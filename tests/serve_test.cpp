// qforge serve, through a real HTTP client: completions and chat (non-streaming and streaming,
// greedy output equal to `qforge run`), stop strings, usage, every error case, the queue's 503,
// a disconnecting client cancelling its generation, and the chat page in headless Chromium.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "test_util.hpp"

extern char** environ;

namespace qforge {
namespace {

using json = nlohmann::json;
const std::string kDemo = std::string(QFORGE_SOURCE_DIR) + "/models/tiny-demo-8m";

// `qforge serve` on a free loopback port, stopped (SIGTERM) at destruction.
class ServerProcess {
   public:
    explicit ServerProcess(std::vector<std::string> extra) {
        log_ = tmp_.path("serve.log");
        std::vector<std::string> args = {QFORGE_BINARY, "serve", "-m", kDemo, "--port", "0", "-t", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
        for (int i = 0; i < 600 && port_ == 0 && pid_ > 0; ++i) {  // up to 60 s (sanitizer builds load slowly)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const std::string s = log();
            const auto p = s.find("http://127.0.0.1:");
            if (p != std::string::npos && s.find('/', p + 17) != std::string::npos) port_ = std::atoi(s.c_str() + p + 17);
        }
    }
    ~ServerProcess() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int st = 0;
            waitpid(pid_, &st, 0);
        }
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string log() const {
        std::ifstream f(log_);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(120, 0);
        return c;
    }

   private:
    test::TempDir tmp_;
    std::string log_;
    pid_t pid_ = -1;
    int port_ = 0;
};

std::string run_greedy(const std::string& prompt, int n) {
    const auto r = test::run_qforge({"run", "-m", kDemo, "-p", prompt, "-n", std::to_string(n), "--temp", "0", "--json"});
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out)["text"].get<std::string>();
}

// The text of a stream of server-sent events (completions: choices[0].text, chat: delta.content).
struct Streamed {
    std::string text, finish_reason;
    bool done = false;
    int events = 0;
    json usage;
};
Streamed parse_sse(const std::string& body, bool chat) {
    Streamed s;
    size_t pos = 0, end;
    while ((end = body.find("\n\n", pos)) != std::string::npos) {
        const std::string ev = body.substr(pos, end - pos);
        pos = end + 2;
        EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
        const std::string data = ev.substr(6);
        if (data == "[DONE]") {
            s.done = true;
            continue;
        }
        const json j = json::parse(data);
        ++s.events;
        if (j.contains("usage")) s.usage = j["usage"];
        if (j["choices"].empty()) continue;
        const json& c = j["choices"][0];
        if (chat && c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
        if (!chat) s.text += c["text"].get<std::string>();
        if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
    }
    EXPECT_EQ(pos, body.size());
    return s;
}

TEST(Serve, CompletionsAndChat) {
    ServerProcess srv({"--parallel", "2"});
    ASSERT_GT(srv.port(), 0) << srv.log();
    auto c = srv.client();
    auto h = c.Get("/health");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_EQ(json::parse(h->body)["status"], "ok");
    auto m = c.Get("/v1/models");
    ASSERT_TRUE(m);
    EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "tiny-demo-8m");

    // Greedy completion = qforge run.
    const std::string prompt = "Once upon a time";
    const std::string expect = run_greedy(prompt, 24);
    auto r = c.Post("/v1/completions", json{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}}.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), expect);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 24);
    EXPECT_EQ(j["usage"]["prompt_tokens"], 5);  // BOS + 4
    EXPECT_EQ(j["usage"]["total_tokens"], 29);

    // Streaming: the same text in pieces, then [DONE]; usage on request.
    r = c.Post("/v1/completions",
               json{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}.dump(),
               "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    Streamed s = parse_sse(r->body, false);
    EXPECT_TRUE(s.done);
    EXPECT_GT(s.events, 5);
    EXPECT_EQ(s.text, expect);
    EXPECT_EQ(s.finish_reason, "length");
    EXPECT_EQ(s.usage["completion_tokens"], 24);

    // Stop strings end the text where they begin, streaming or not.
    const size_t cut = expect.find(' ', 8);
    ASSERT_NE(cut, std::string::npos);
    const std::string stop = expect.substr(cut, 3);
    for (bool stream : {false, true}) {
        r = c.Post("/v1/completions", json{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}, {"stop", {stop, "zzz"}}, {"stream", stream}}.dump(),
                   "application/json");
        ASSERT_TRUE(r);
        const std::string text = stream ? parse_sse(r->body, false).text : json::parse(r->body)["choices"][0]["text"].get<std::string>();
        EXPECT_EQ(text, expect.substr(0, expect.find(stop))) << "stream " << stream;
    }

    // Chat, streaming and not: the same greedy answer, and the same as run on the rendered prompt.
    const json msgs = json::array({{{"role", "system"}, {"content", "You tell stories."}}, {{"role", "user"}, {"content", "A dog?"}}});
    r = c.Post("/v1/chat/completions", json{{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}}.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json cj = json::parse(r->body);
    EXPECT_EQ(cj["object"], "chat.completion");
    EXPECT_EQ(cj["choices"][0]["message"]["role"], "assistant");
    const std::string answer = cj["choices"][0]["message"]["content"];
    EXPECT_FALSE(answer.empty());
    r = c.Post("/v1/chat/completions", json{{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true}}.dump(), "application/json");
    ASSERT_TRUE(r);
    s = parse_sse(r->body, true);
    EXPECT_EQ(s.text, answer);
    EXPECT_TRUE(s.done);
    const std::string rendered = "<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nA dog?<|im_end|>\n<|im_start|>assistant\n";
    EXPECT_EQ(run_greedy(rendered, 16), answer);

    // Sampling with a seed is repeatable.
    const std::string body = json{{"prompt", prompt}, {"max_tokens", 12}, {"temperature", 0.9}, {"top_k", 40}, {"top_p", 0.9}, {"min_p", 0.05}, {"seed", 7}}.dump();
    auto a1 = c.Post("/v1/completions", body, "application/json"), a2 = c.Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(a1 && a2);
    EXPECT_EQ(json::parse(a1->body)["choices"][0]["text"], json::parse(a2->body)["choices"][0]["text"]);
}

TEST(Serve, BadRequests) {
    ServerProcess srv({"-c", "64", "--api-key", "sekret"});
    ASSERT_GT(srv.port(), 0) << srv.log();
    auto c = srv.client();
    auto expect_error = [&](const std::string& path, const std::string& body, int status, const std::string& what, bool key = true) {
        httplib::Headers hd;
        if (key) hd.emplace("Authorization", "Bearer sekret");
        auto r = c.Post(path, hd, body, "application/json");
        ASSERT_TRUE(r) << body;
        EXPECT_EQ(r->status, status) << body << " -> " << r->body;
        const json j = json::parse(r->body);  // an OpenAI-style error object, always
        ASSERT_TRUE(j.contains("error")) << r->body;
        EXPECT_NE(j["error"]["message"].get<std::string>().find(what), std::string::npos) << r->body;
        EXPECT_TRUE(j["error"]["type"].is_string());
    };
    const std::string ok = json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump();
    expect_error("/v1/completions", ok, 401, "API key", false);
    {
        httplib::Headers hd = {{"Authorization", "Bearer wrong"}};
        auto r = c.Post("/v1/completions", hd, ok, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 401);
    }
    expect_error("/v1/completions", "{not json", 400, "invalid JSON");
    expect_error("/v1/completions", "[1, 2]", 400, "JSON object");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", -1}}.dump(), 400, "max_tokens");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", "ten"}}.dump(), 400, "max_tokens");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"temperature", "hot"}}.dump(), 400, "temperature");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"temperature", 5}}.dump(), 400, "temperature");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"top_p", 1.5}}.dump(), 400, "top_p");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"stream", "yes"}}.dump(), 400, "stream");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"stop", 3}}.dump(), 400, "stop");
    expect_error("/v1/completions", json{{"prompt", "Hi"}, {"n", 2}}.dump(), 400, "'n'");
    expect_error("/v1/completions", json{{"prompt", 42}}.dump(), 400, "prompt");
    expect_error("/v1/completions", json{{"max_tokens", 2}}.dump(), 400, "prompt");
    expect_error("/v1/completions", json{{"prompt", {1, 999999}}}.dump(), 400, "out of range");
    std::string long_prompt;
    for (int i = 0; i < 80; ++i) long_prompt += "the little dog ran ";
    expect_error("/v1/completions", json{{"prompt", long_prompt}}.dump(), 400, "context");
    expect_error("/v1/chat/completions", json{{"messages", "hi"}}.dump(), 400, "messages");
    expect_error("/v1/chat/completions", json{{"messages", {{{"content", "hi"}}}}}.dump(), 400, "role");
    expect_error("/v1/chat/completions", json{{"messages", {{{"role", "wizard"}, {"content", "hi"}}}}}.dump(), 400, "role");
    expect_error("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", 7}}}}}.dump(), 400, "content");
    expect_error("/v1/nothing", ok, 404, "not found");
    // Still serving, with the key.
    httplib::Headers hd = {{"Authorization", "Bearer sekret"}};
    auto r = c.Post("/v1/completions", hd, ok, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    auto health = c.Get("/health");  // no key needed
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
}

json health(const ServerProcess& srv) {
    auto c = srv.client();
    auto r = c.Get("/health");
    return r ? json::parse(r->body) : json();
}

// /health once `cancelled` generations were cancelled and no slot is busy (or after 30 s).
json wait_idle(const ServerProcess& srv, int cancelled) {
    json h;
    for (int i = 0; i < 300; ++i) {
        h = health(srv);
        if (h.value("requests_cancelled", 0) == cancelled && h.value("slots_processing", 1) == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return h;
}

TEST(Serve, QueueLimitAndCancellation) {
    ServerProcess srv({"--parallel", "1", "--queue", "0", "-c", "2048"});
    ASSERT_GT(srv.port(), 0) << srv.log();
    // A long streaming generation whose client goes away after a few events.
    std::atomic<int> got{0};
    std::atomic<bool> leave{false};
    std::thread long_client([&] {
        auto c = srv.client();
        httplib::Request req;
        req.method = "POST";
        req.path = "/v1/completions";
        req.body = json{{"prompt", "Once upon a time"}, {"max_tokens", 2000}, {"ignore_eos", true}, {"stream", true}}.dump();
        req.set_header("Content-Type", "application/json");
        req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {  // reads until told to leave, then disconnects
            ++got;
            return !leave.load();
        };
        c.send(req);  // ends with Error::Canceled: the receiver hung up
    });
    // While it runs, the one slot is taken and nothing may wait: 503.
    for (int i = 0; i < 600 && got == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_GT(got.load(), 0);
    auto c = srv.client();
    auto r = c.Post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump(), "application/json");
    leave = true;
    long_client.join();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("busy"), std::string::npos);
    // The disconnect cancels the generation: the slot comes back long before 2000 tokens.
    json h = wait_idle(srv, 1);
    EXPECT_EQ(h["requests_cancelled"], 1) << h.dump();
    EXPECT_EQ(h["slots_processing"], 0) << h.dump();
    r = c.Post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 2}}.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    // A non-streamed request whose client closes its connection after a second is cancelled too.
    {
        const std::string body = json{{"prompt", "Once upon a time"}, {"max_tokens", 2000}, {"ignore_eos", true}}.dump();
        const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(srv.port()));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        ASSERT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
        std::this_thread::sleep_for(std::chrono::milliseconds(1200));
        close(fd);
    }
    h = wait_idle(srv, 2);
    EXPECT_EQ(h["requests_cancelled"], 2) << h.dump();
    EXPECT_EQ(h["slots_processing"], 0) << h.dump();
}

// Resident memory of a process, in KiB (VmRSS).
long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

// 16 clients for QFORGE_SERVE_LOAD_SECONDS (default 8) against 2 slots and a queue of 6: every
// request is answered (200) or cleanly rejected (503), some clients hang up mid-stream, the server
// stays up and its memory flat. bench/serve-load.sh runs it for 30 s.
TEST(Serve, BoundedLoad) {
    const char* env = std::getenv("QFORGE_SERVE_LOAD_SECONDS");
    const int seconds = env ? std::max(1, std::atoi(env)) : 8;
    ServerProcess srv({"--parallel", "2", "--queue", "6", "-c", "512"});
    ASSERT_GT(srv.port(), 0) << srv.log();
    {  // warm up: both slots used once
        auto c = srv.client();
        for (int i = 0; i < 2; ++i) ASSERT_TRUE(c.Post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 8}}.dump(), "application/json"));
    }
    const long rss0 = rss_kib(srv.pid());
    std::atomic<int> ok{0}, busy{0}, other{0}, hangups{0}, failed{0}, tokens{0};
    std::atomic<long> rss_max{rss0};
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> clients;
    for (int k = 0; k < 16; ++k)
        clients.emplace_back([&, k] {
            auto c = srv.client();
            for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
                const int kind = (k + i) % 4;
                const bool stream = kind >= 2;
                const json body = kind == 1 ? json{{"messages", {{{"role", "user"}, {"content", "Tell me about a cat."}}}}, {"max_tokens", 24}, {"stream", stream}}
                                            : json{{"prompt", "Once upon a time"}, {"max_tokens", 24 + 8 * (i % 3)}, {"stream", stream}, {"seed", k * 100 + i}};
                const std::string path = kind == 1 ? "/v1/chat/completions" : "/v1/completions";
                if (kind == 3 && i % 2 == 0) {  // hangs up after the first events
                    httplib::Request req;
                    req.method = "POST";
                    req.path = path;
                    req.body = body.dump();
                    req.set_header("Content-Type", "application/json");
                    int n = 0;
                    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++n < 2; };
                    c.send(req);
                    ++hangups;
                    continue;
                }
                auto r = c.Post(path, body.dump(), "application/json");
                if (!r) {
                    ++failed;
                    continue;
                }
                if (r->status == 200) {
                    ++ok;
                    if (!stream) tokens += json::parse(r->body)["usage"]["completion_tokens"].get<int>();
                } else if (r->status == 503 && json::parse(r->body).contains("error")) {
                    ++busy;
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                } else {
                    ++other;
                }
                long now = rss_kib(srv.pid()), prev = rss_max.load();
                while (now > prev && !rss_max.compare_exchange_weak(prev, now)) {
                }
            }
        });
    for (auto& t : clients) t.join();
    const long rss1 = rss_kib(srv.pid());
    std::printf("load: %d s, 16 clients: %d answered, %d rejected (503), %d hung up, %d failed, %d other; %d tokens in non-streamed answers; "
                "server RSS %ld KiB after warm-up, max %ld, end %ld\n",
                seconds, ok.load(), busy.load(), hangups.load(), failed.load(), other.load(), tokens.load(), rss0, rss_max.load(), rss1);
    // Progress, not throughput (bench/serve-load.sh measures that): answers kept coming under load.
    // Under the sanitizers on a busy 2-core machine 9 in 8 s were seen, so no rate is asserted here.
    EXPECT_GE(ok.load(), 2);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(other.load(), 0);
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer keeps freed memory in quarantine (up to 256 MiB): the release build checks this.
#else
    EXPECT_LT(rss_max.load() - rss0, 64 * 1024) << "memory grew under load";
#endif
    auto h = health(srv);
    EXPECT_EQ(h["status"], "ok");
    for (int i = 0; i < 100 && h.value("slots_processing", 1) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        h = health(srv);
    }
    EXPECT_EQ(h["slots_processing"], 0) << h.dump();
    EXPECT_EQ(h["requests_waiting"], 0) << h.dump();
}

TEST(Serve, ChatPageInHeadlessChromium) {
    const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
    std::string chromium;
    for (const char* c : candidates)
        if (std::filesystem::exists(c)) chromium = c;
    if (chromium.empty()) GTEST_SKIP() << "no Chromium (Debian package chromium) for the chat page test";
    ServerProcess srv({});
    ASSERT_GT(srv.port(), 0) << srv.log();
    auto c = srv.client();
    auto page = c.Get("/");
    ASSERT_TRUE(page);
    EXPECT_NE(page->body.find("<title>qforge chat</title>"), std::string::npos);
    test::TempDir tmp;
    const std::string url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/?q=Tell%20me%20a%20story";
    const std::string flags = " --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=" + tmp.path("profile") + " ";
    const std::string dom = tmp.path("dom.html");
    ASSERT_EQ(std::system(("timeout 120 " + chromium + flags + "--dump-dom '" + url + "' > " + dom + " 2>/dev/null").c_str()), 0);
    const std::string html = [&] {
        std::ifstream f(dom);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }();
    EXPECT_NE(html.find("<div class=\"msg user\">Tell me a story</div>"), std::string::npos) << html;
    const size_t a = html.find("<div class=\"msg assistant\">");
    ASSERT_NE(a, std::string::npos) << html;
    EXPECT_NE(html.compare(a + 27, 6, "</div>"), 0) << "the answer is empty: " << html;
    EXPECT_NE(html.find("tokens/s</div>"), std::string::npos) << html;
    // The screenshot, for a person to look at.
    const std::string png = (std::filesystem::temp_directory_path() / "qforge-serve-chat.png").string();
    ASSERT_EQ(std::system(("timeout 120 " + chromium + flags + "--window-size=900,600 --screenshot=" + png + " '" + url + "' > /dev/null 2>&1").c_str()), 0);
    ASSERT_TRUE(std::filesystem::exists(png));
    EXPECT_GT(std::filesystem::file_size(png), 5000u);
    std::printf("chat page screenshot: %s\n", png.c_str());
}

}  // namespace
}  // namespace qforge

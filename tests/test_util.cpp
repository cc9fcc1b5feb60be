#include "test_util.hpp"

#include <openssl/evp.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace qforge::test {

std::string shared_data() {
    if (const char* env = std::getenv("QFORGE_SHARED_DATA")) return env;
    const auto p = std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared" / "data";
    return std::filesystem::is_directory(p) ? std::filesystem::canonical(p).string() : "";
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

TempDir::TempDir() {
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() / ("qforge-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(dir);
}
TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

namespace {
std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q += "'\\''";
        else q += c;
    }
    return q + "'";
}
std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

CmdResult run_qforge(const std::vector<std::string>& args, const std::string& stdin_text) {
    TempDir tmp;
    std::string cmd = shell_quote(QFORGE_BINARY);
    for (const auto& a : args) cmd += " " + shell_quote(a);
    write_file(tmp.path("in"), std::vector<uint8_t>(stdin_text.begin(), stdin_text.end()));
    cmd += " >" + shell_quote(tmp.path("out")) + " 2>" + shell_quote(tmp.path("err")) + " <" + shell_quote(tmp.path("in"));
    const int rc = std::system(cmd.c_str());
    CmdResult r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
    r.out = slurp(tmp.path("out"));
    r.err = slurp(tmp.path("err"));
    return r;
}

std::string sha256_hex(const uint8_t* data, size_t n) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s += hex[md[i] >> 4];
        s += hex[md[i] & 15];
    }
    return s;
}

}  // namespace qforge::test

#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qforge::test {

// ../shared/data beside the repository, or "" when absent (tests then skip).
std::string shared_data();
#define QFORGE_REQUIRE_SHARED(dir)                                                  \
    const std::string dir = ::qforge::test::shared_data();                          \
    if (dir.empty()) GTEST_SKIP() << "../shared/data not found; golden test skipped"

std::vector<uint8_t> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

// A fresh empty directory under the system temp dir, removed at destruction.
struct TempDir {
    TempDir();
    ~TempDir();
    std::string path(const std::string& name) const { return (dir / name).string(); }
    std::filesystem::path dir;
};

struct CmdResult {
    int status;
    std::string out;
    std::string err;
};
// Runs the qforge binary with the given arguments (shell-quoted here).
CmdResult run_qforge(const std::vector<std::string>& args, const std::string& stdin_text = "");

std::string sha256_hex(const uint8_t* data, size_t n);

}  // namespace qforge::test

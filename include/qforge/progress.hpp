// A progress bar on stderr when it is a terminal; silent otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace qforge {

// A progress callback (done, total) that starts its bar on the first report, when the total is
// known: what the long evaluations (perplexity, imatrix, the mix search) report through.
class LazyProgress {
public:
    explicit LazyProgress(std::string label) : label_(std::move(label)) {}
    void operator()(int done, int total);
    void finish();

private:
    std::string label_;
    std::unique_ptr<class Progress> bar_;
    int reported_ = 0;
};

class Progress {
public:
    Progress(std::string label, uint64_t total);
    ~Progress();
    void add(uint64_t n);  // thread-compatible: call from one thread
    void finish();

private:
    void draw(bool final);
    std::string label_;
    uint64_t total_;
    uint64_t done_ = 0;
    bool enabled_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace qforge

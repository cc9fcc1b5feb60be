// A progress bar on stderr when it is a terminal; silent otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qforge {

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

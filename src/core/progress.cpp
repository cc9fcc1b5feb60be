#include "qforge/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace qforge {

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(::isatty(STDERR_FILENO) == 1 && !std::getenv("QFORGE_NO_PROGRESS")) {
    start_ = last_ = std::chrono::steady_clock::now();
    if (enabled_) draw(false);
}

Progress::~Progress() { finish(); }

void LazyProgress::operator()(int done, int total) {
    if (!bar_) bar_ = std::make_unique<Progress>(label_, static_cast<uint64_t>(total));
    if (done > reported_) bar_->add(static_cast<uint64_t>(done - reported_));
    reported_ = done;
}

void LazyProgress::finish() {
    if (bar_) bar_->finish();
}

void Progress::add(uint64_t n) {
    done_ += n;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ > std::chrono::milliseconds(100)) {
        last_ = now;
        draw(false);
    }
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (enabled_) {
        done_ = total_;
        draw(true);
        std::fputc('\n', stderr);
    }
}

void Progress::draw(bool /*final*/) {
    constexpr int kWidth = 30;
    const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    const int filled = static_cast<int>(frac * kWidth + 0.5);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s [", label_.c_str());
    for (int i = 0; i < kWidth; ++i) std::fputc(i < filled ? '#' : '.', stderr);
    std::fprintf(stderr, "] %5.1f%% %6.1fs", frac * 100.0, secs);
    std::fflush(stderr);
}

}  // namespace qforge

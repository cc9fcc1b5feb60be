// A fixed pool of worker threads for data-parallel loops. parallel_for splits [0, n) into one
// contiguous chunk per thread, so each index is always handled by exactly one thread and the
// results do not depend on the thread count. Workers spin briefly between jobs (a forward pass
// issues hundreds of short loops per token) and then sleep, so an idle pool costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qforge {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // fn(begin, end, thread_index) over chunks of [0, n).
    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);
    // The same over chunks of `grain` indices that threads take as they finish (an atomic counter),
    // for loops whose items cost the same everywhere but whose threads do not run at the same
    // speed. Which thread handles an index varies, so fn's result must not depend on it.
    void parallel_chunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

private:
    void worker(int index);
    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_start_, cv_done_;
    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_n_ = 0;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
};

}  // namespace qforge

// The CPU execution context: a fixed-size thread pool. parallel_for splits [0, n) into the same
// contiguous ranges for a given thread count, so every op that assigns each output to one range
// gives bit-identical results run to run. Also usable by other CPU ops (kernels/dense.h).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/moe.h"

namespace moecast::kernels {

template <> class Context<Cpu> {
public:
    // threads >= 1; the calling thread is one of them.
    explicit Context(int threads = 1);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    int threads() const { return threads_; }

    // Runs fn(begin, end) on `threads()` contiguous ranges covering [0, n) (range i is
    // [n*i/threads, n*(i+1)/threads)); returns when all are done. Exceptions from fn are rethrown
    // (the first one). Called from inside a worker, it runs serially.
    void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

private:
    void worker_loop(int index);

    int threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable start_cv_;
    std::condition_variable done_cv_;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t job_n_ = 0;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

using CpuContext = Context<Cpu>;

}  // namespace moecast::kernels

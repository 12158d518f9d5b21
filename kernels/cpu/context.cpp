// Thread pool behind Context<Cpu> (see context.h): one job at a time, static ranges.
#include "kernels/cpu/context.h"

#include <stdexcept>

namespace moecast::kernels {
namespace {
thread_local bool in_worker = false;
}

Context<Cpu>::Context(int threads) : threads_(threads) {
    if (threads < 1) throw std::invalid_argument("Context<Cpu>: threads must be >= 1");
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

Context<Cpu>::~Context() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    start_cv_.notify_all();
    for (auto& w : workers_) w.join();
}

void Context<Cpu>::worker_loop(int index) {
    in_worker = true;
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int64_t, int64_t)>* job;
        int64_t n;
        {
            std::unique_lock lock(mutex_);
            start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
            n = job_n_;
        }
        const int64_t b = n * index / threads_, e = n * (index + 1) / threads_;
        std::exception_ptr err;
        try {
            if (b < e) (*job)(b, e);
        } catch (...) {
            err = std::current_exception();
        }
        std::lock_guard lock(mutex_);
        if (err && !error_) error_ = err;
        if (--pending_ == 0) done_cv_.notify_one();
    }
}

void Context<Cpu>::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (threads_ == 1 || in_worker || n == 1) {
        // Same ranges as the threaded path, run in order, so results do not depend on nesting.
        for (int i = 0; i < threads_; ++i) {
            const int64_t b = n * i / threads_, e = n * (i + 1) / threads_;
            if (b < e) fn(b, e);
        }
        return;
    }
    {
        std::lock_guard lock(mutex_);
        job_ = &fn;
        job_n_ = n;
        pending_ = threads_ - 1;
        error_ = nullptr;
        ++generation_;
    }
    start_cv_.notify_all();
    std::exception_ptr err;
    in_worker = true;  // nested calls from the caller's own range run serially too
    try {
        const int64_t e = n / threads_;
        if (e > 0) fn(0, e);
    } catch (...) {
        err = std::current_exception();
    }
    in_worker = false;
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    if (!err) err = error_;
    if (err) std::rethrow_exception(err);
}

}  // namespace moecast::kernels

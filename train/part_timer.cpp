// Step-part timer (see part_timer.h).
#include "train/part_timer.h"

#include <ctime>
#include <numeric>

namespace moecast::train {

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void PartTimer::start(sim::StepPart part) {
    if (current_ == static_cast<int>(part)) return;  // the running interval goes on: no clock read
    const double now = thread_cpu_seconds();
    if (current_ >= 0) s_[static_cast<size_t>(current_)] += now - t0_;
    current_ = static_cast<int>(part);
    t0_ = now;
}

void PartTimer::stop() {
    if (current_ < 0) return;
    s_[static_cast<size_t>(current_)] += thread_cpu_seconds() - t0_;
    current_ = -1;
}

double PartTimer::total() const { return std::accumulate(s_.begin(), s_.end(), 0.0); }

void PartTimer::add(const PartTimer& other) {
    for (size_t i = 0; i < s_.size(); ++i) s_[i] += other.s_[i];
}

}  // namespace moecast::train

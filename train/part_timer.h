// Where a training step's time goes, in the cost model's step parts (sim::StepPart), so that a
// measured step can be set beside sim::predict_trainer_step part by part: the whole-step error says
// how far off the model is, the parts say where. Time is the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID): a second process on the machine does not inflate it.
#pragma once

#include <array>

#include "sim/cost/timing.h"

namespace moecast::train {

class PartTimer {
public:
    // Closes the running interval, if any, and starts charging this thread's CPU time to `part`
    // (when `part` is already running, nothing changes).
    void start(sim::StepPart part);
    // Closes the running interval.
    void stop();

    double seconds(sim::StepPart part) const { return s_[static_cast<size_t>(part)]; }
    double total() const;
    void add(const PartTimer& other);
    void clear() { s_.fill(0.0); }

private:
    std::array<double, sim::kStepPartCount> s_{};
    int current_ = -1;
    double t0_ = 0;
};

// Thread CPU seconds since an arbitrary start.
double thread_cpu_seconds();

}  // namespace moecast::train

// CUPTI Range Profiler (CUDA 12.6u2+ API): hardware counters of one op, one range per kernel
// (AutoRange) with kernel replay, summed over the op's kernels. Used for a separate counter pass
// after timing (replay serializes kernels, so counters never share a run with timing).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moecast::kernels::profile {

class RangeProfiler {
public:
    // Needs a current CUDA context on `device` (call after the device check). Throws
    // std::runtime_error naming the CUPTI call and error (e.g. insufficient privileges).
    RangeProfiler(int device, const std::vector<std::string>& metrics, const std::vector<std::string>& keys);
    ~RangeProfiler();
    RangeProfiler(const RangeProfiler&) = delete;
    RangeProfiler& operator=(const RangeProfiler&) = delete;

    const std::string& chip() const;
    int64_t passes() const;
    // Runs `launch` once under the profiler; returns key -> sum over the op's kernels.
    std::map<std::string, double> measure(const std::function<void()>& launch);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace moecast::kernels::profile

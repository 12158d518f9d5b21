// The CUDA profiler (activity_profiler.cpp): CUPTI Activity API for time, Range Profiler for
// counters. Part of the CUDA backend module (kernels/profile/cuda_backend.h); programs reach it
// through cuda_backend() or make_cuda_profiler(), never by linking it.
#pragma once

#include <memory>

#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {

// Throws DeviceUnavailable when no GPU is usable; touches CUPTI only after a device is found.
std::unique_ptr<Profiler> make_activity_profiler(bool counters);

}  // namespace moecast::kernels::profile

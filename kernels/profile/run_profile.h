// `moecast profile` as a library call: load a grid, build the device's cases, measure each with
// a progress bar on stderr, and return the measured profile with its provenance. The CLI
// (app/cmd_profile.cpp) only parses arguments and writes the file.
#pragma once

#include <cstdint>
#include <string>

#include "sim/calib/measured_profile.h"

namespace moecast::kernels::profile {

struct RunOptions {
    std::string device = "cpu";  // "cpu" or "cuda"
    std::string grid_path;
    int64_t reps = 0;       // 0: the grid's
    int64_t threads = 0;    // CPU; 0: the grid's, else all hardware threads
    bool counters = false;  // CUDA: Range Profiler pass (also if the grid asks for it)
    bool progress = true;
    std::string only_class;     // profile only this kernel class ("" = all)
    double max_seconds = 0;     // stop starting new cases after this long (0: no limit)
    int64_t rotate_bytes = -1;  // inputs rotated over this many bytes; < 0: the grid's
};

// Throws sim::InputError for a bad grid, DeviceUnavailable (profiler.h) for a missing device, and
// sim::IoError when the CUDA backend module cannot be loaded (cuda_backend.h).
sim::MeasuredProfile run_profile(const RunOptions& options);

// The grid bundled for a device when none is given (configs/profile-grids/<device>-default.toml).
std::string default_grid(const std::string& device);

// Build commit recorded in provenance (git describe at configure time, "+dirty" if modified).
std::string build_commit();

}  // namespace moecast::kernels::profile

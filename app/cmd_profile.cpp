// `moecast profile --device cpu|cuda [--grid FILE] -o OUT.toml`: measures the MoE kernels over a
// shape grid and writes a measured profile (sim/calib/measured_profile.h). No usable device (no GPU, no
// driver, or a build without CUDA) is reported like bad input: a message and exit code 2. A CUDA
// backend module that cannot be loaded (kernels/profile/cuda_backend.h) is the environment failing:
// sim::IoError, exit code 4, naming the paths tried and the loader's reason.
#include <cstdio>
#include <memory>
#include <string>

#include "app/commands.h"
#include "kernels/profile/profiler.h"
#include "kernels/profile/run_profile.h"
#include "sim/core/error.h"
#include "sim/calib/measured_profile.h"

namespace moecast::app {

namespace {

struct ProfileArgs {
    kernels::profile::RunOptions run;
    std::string out;
    bool quiet = false;
};

}  // namespace

void register_profile(CLI::App& app) {
    auto args = std::make_shared<ProfileArgs>();
    CLI::App* cmd = app.add_subcommand("profile", "Measure the MoE kernels over a shape grid (CPU timers or CUPTI)");
    cmd->add_option("--device", args->run.device, "cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    cmd->add_option("--grid", args->run.grid_path,
                    "Shape grid TOML (default: configs/profile-grids/cpu-default.toml or h200-quick.toml)");
    cmd->add_option("-o,--output", args->out, "Measured profile to write (TOML)")->required();
    cmd->add_option("--reps", args->run.reps, "Timed repetitions per case (default: the grid's)")
        ->check(CLI::Range(3, 100000));
    cmd->add_option("--threads", args->run.threads, "CPU threads (default: the grid's, else all)")->check(kPositive);
    cmd->add_option("--rotate-bytes", args->run.rotate_bytes,
                    "Rotate inputs over this many bytes (default: the grid's rotate_bytes): within L2 for the "
                    "cache-resident part of a two-level profile, beyond the last-level cache for the DRAM-cold one")
        ->check(kNonNegative);
    cmd->add_option("--class", args->run.only_class, "Profile only this kernel class (gemm, grouped_gemm, ...)");
    cmd->add_option("--max-seconds", args->run.max_seconds,
                    "Stop starting new cases after this many seconds and write what was measured")
        ->check(kPositive);
    cmd->add_flag("--counters", args->run.counters, "CUDA: also collect DRAM bytes and tensor ops (Range Profiler)");
    cmd->add_flag("-q,--quiet", args->quiet, "No progress bar");
    cmd->callback([args] {
        args->run.progress = !args->quiet;
        sim::MeasuredProfile p;
        try {
            p = kernels::profile::run_profile(args->run);
        } catch (const kernels::profile::DeviceUnavailable& e) {
            throw sim::InputError("--device", 0, "device",
                                  std::string("no usable ") + args->run.device + " device: " + e.what());
        }
        sim::write_text_file(args->out, sim::measured_profile_to_string(p));
        std::printf("wrote %s: %zu samples on %s (%s), %lld timed repetitions each\n", args->out.c_str(),
                    p.samples.size(), p.provenance.device.c_str(), p.provenance.device_kind.c_str(),
                    static_cast<long long>(p.provenance.reps));
    });
}

}  // namespace moecast::app

// The profile run loop (see run_profile.h).
#include "kernels/profile/run_profile.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include <unistd.h>

#include "build_commit.h"  // MOECAST_BUILD_COMMIT, written at every build (build_commit.cmake)
#include "kernels/cpu/context.h"
#include "kernels/profile/cases_cpu.h"
#include "kernels/profile/cuda_backend.h"
#include "kernels/profile/grid.h"
#include "kernels/profile/profiler.h"
#include "sim/model/config_toml.h"
#include "sim/core/error.h"

namespace moecast::kernels::profile {
namespace {

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// One line, redrawn in place on a terminal; every ~10 % as plain lines otherwise (logs).
class ProgressBar {
public:
    ProgressBar(size_t total, bool enabled)
        : total_(total), enabled_(enabled), tty_(isatty(2) != 0), start_(std::chrono::steady_clock::now()) {}
    void update(size_t done, const std::string& what) {
        if (!enabled_ || total_ == 0) return;
        const double frac = static_cast<double>(done) / static_cast<double>(total_);
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const double eta = done > 0 ? elapsed * (1 - frac) / frac : 0;
        const int width = 30, fill = static_cast<int>(frac * width);
        if (tty_) {
            std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu %3.0f%% %5.0fs left  %-40.40s", fill,
                         "##############################", width - fill, "", done, total_, 100 * frac, eta,
                         what.c_str());
            if (done == total_) std::fprintf(stderr, "\n");
        } else if (done == total_ || static_cast<int>(frac * 10) > last_decile_) {
            last_decile_ = static_cast<int>(frac * 10);
            std::fprintf(stderr, "profile: %zu/%zu cases (%.0f%%), %.0f s elapsed, ~%.0f s left\n", done, total_,
                         100 * frac, elapsed, eta);
        }
    }

private:
    size_t total_;
    bool enabled_, tty_;
    std::chrono::steady_clock::time_point start_;
    int last_decile_ = 0;
};

}  // namespace

std::string build_commit() { return MOECAST_BUILD_COMMIT; }

std::string default_grid(const std::string& device) {
    return sim::configs_dir() + "/profile-grids/" + (device == "cuda" ? "h200-quick" : "cpu-default") + ".toml";
}

sim::MeasuredProfile run_profile(const RunOptions& o) {
    if (o.device != "cpu" && o.device != "cuda")
        throw sim::InputError("--device", 0, "device", "expected \"cpu\" or \"cuda\", got \"" + o.device + "\"");
    const std::string grid_path = o.grid_path.empty() ? default_grid(o.device) : o.grid_path;
    Grid grid = load_grid(grid_path);
    if (grid.device != o.device)
        throw sim::InputError(grid_path, 0, "grid.device",
                              "the grid is for \"" + grid.device + "\" but --device is \"" + o.device + "\"");
    if (o.reps > 0) grid.reps = o.reps;
    if (o.rotate_bytes >= 0) grid.rotate_bytes = o.rotate_bytes;
    MeasureOptions mo;
    mo.warmup_reps = grid.warmup;
    mo.reps = grid.reps;
    mo.counters = o.counters || grid.counters;

    std::unique_ptr<Profiler> profiler;
    std::unique_ptr<CpuContext> cpu_ctx;
    std::vector<CaseSpec> cases;
    int64_t threads = 0;
    if (o.device == "cpu") {
        threads = o.threads > 0      ? o.threads
                  : grid.threads > 0 ? grid.threads
                                     : std::max(1u, std::thread::hardware_concurrency());
        cpu_ctx = std::make_unique<CpuContext>(static_cast<int>(threads));
        profiler = make_cpu_profiler(static_cast<int>(threads));
        cases = cpu_cases(grid, *cpu_ctx);
    } else {
        const CudaBackend& cuda = cuda_backend();    // the module: sim::IoError when it cannot be loaded
        profiler = cuda.make_profiler(mo.counters);  // throws DeviceUnavailable without a GPU
        cases = cuda.cases(grid);
    }
    if (!o.only_class.empty()) {
        std::vector<CaseSpec> kept;
        for (auto& c : cases)
            if (c.meta.kernel_class == o.only_class) kept.push_back(std::move(c));
        cases = std::move(kept);
    }
    sim::MeasuredProfile out;
    out.provenance = profiler->provenance();
    ProgressBar bar(cases.size(), o.progress);
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < cases.size(); ++i) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (o.max_seconds > 0 && elapsed > o.max_seconds) {
            std::fprintf(stderr, "\nprofile: time limit of %.0f s reached: %zu of %zu cases measured\n", o.max_seconds,
                         i, cases.size());
            out.provenance.tool += " (stopped by --max-seconds after " + std::to_string(i) + " of " +
                                   std::to_string(cases.size()) + " cases)";
            break;
        }
        bar.update(i, cases[i].meta.kernel + " " + cases[i].meta.shape_key);
        const CaseRunner runner = cases[i].build();
        out.samples.push_back(profiler->measure(cases[i], runner, mo));
    }
    bar.update(cases.size(), "done");
    sim::ProfileProvenance& p = out.provenance;
    profiler->finish(p);
    p.date = utc_now();
    p.commit = build_commit();
    p.tool = "moecast profile --device " + o.device + p.tool;
    p.grid = grid_path;
    p.warmup_reps = mo.warmup_reps;
    p.reps = mo.reps;
    p.rotate_bytes = grid.rotate_bytes;
    if (threads > 0) p.threads = threads;
    return out;
}

}  // namespace moecast::kernels::profile

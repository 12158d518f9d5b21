// `moecast calibrate PROFILE... -o OUT.toml [--cache-resident PROFILE...] [--cache-mib C] [--base HW]
// [--name NAME] [--heldout-every N] [--json]`: fits the [efficiency.<class>] values of a hardware
// profile (sim/calib/calibrate.h) to one or more measured profiles of the same device, prints held-out
// errors per class and the worst shapes, and writes the calibrated profile (the base profile with
// measured values and provenance). With --cache-resident, the positional profiles must rotate their
// inputs beyond the last-level cache and the others within it; both are fitted and written.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/calib/calibrate.h"
#include "sim/core/error.h"
#include "sim/cost/hardware.h"
#include "sim/calib/measured_profile.h"
#include "sim/core/toml_util.h"

namespace moecast::app {

namespace {

struct CalibrateArgs {
    std::vector<std::string> profiles;
    std::vector<std::string> resident;
    double cache_mib = 0;
    double private_cache_kib = 0;
    bool no_private_cache = false;
    std::string out;
    std::string base;
    std::string name;
    long long heldout_every = 4;
    bool cpu_time = false;
    bool per_run = false;
    bool json = false;
    std::string residuals;
};

// Tile shapes tried for matmul classes. CUDA: CTA tiles of cuBLAS/CUTLASS Hopper kernels. CPU:
// row blocks (the CPU kernels split rows over threads and call Eigen per expert piece).
std::vector<std::pair<int64_t, int64_t>> tile_candidates(const std::string& device_kind) {
    if (device_kind == "cuda") return {{64, 64}, {64, 128}, {128, 64}, {128, 128}, {128, 256}, {256, 128}};
    return {{1, 1}, {8, 1}, {16, 1}, {32, 1}};
}

// The profiles' samples together, and each file's provenance (for the two-level checks).
sim::MeasuredProfile merge(const std::vector<std::string>& paths,
                           std::vector<std::pair<std::string, sim::ProfileProvenance>>* provenances = nullptr) {
    sim::MeasuredProfile all = sim::read_measured_profile(paths.front());
    if (provenances) provenances->emplace_back(paths.front(), all.provenance);
    for (size_t i = 1; i < paths.size(); ++i) {
        sim::MeasuredProfile p = sim::read_measured_profile(paths[i]);
        if (provenances) provenances->emplace_back(paths[i], p.provenance);
        if (p.provenance.device != all.provenance.device || p.provenance.device_kind != all.provenance.device_kind)
            throw sim::InputError(paths[i], 0, "provenance.device",
                                  "measured on \"" + p.provenance.device + "\", but " + paths.front() + " on \"" +
                                      all.provenance.device + "\"; calibrate one device at a time");
        all.samples.insert(all.samples.end(), p.samples.begin(), p.samples.end());
    }
    return all;
}

nlohmann::json calibration_json(const sim::Calibration& c, const sim::Calibration* resident, double cache_bytes,
                                const std::string& out_path) {
    auto classes = [](const sim::Calibration& cal) {
        nlohmann::json out;
        for (const auto& r : cal.classes) {
            nlohmann::json scales = nlohmann::json::object();
            for (const auto& [kernel, scale] : r.efficiency.kernel_scale) scales[kernel] = scale;
            out[sim::to_string(r.cls)] = {{"fit_samples", r.fit_samples},
                                          {"heldout_samples", r.heldout_samples},
                                          {"fit_median_ape", r.fit_median_ape},
                                          {"heldout_median_ape", r.heldout_median_ape},
                                          {"heldout_mean_ape", r.heldout_mean_ape},
                                          {"runs_per_shape", r.runs},
                                          {"run_spread_median", r.run_spread_median},
                                          {"kernel_scale", scales},
                                          {"private_cache_speedup", r.efficiency.private_cache_speedup},
                                          {"write_cost", r.efficiency.write_cost}};
        }
        return out;
    };
    auto overall = [](const sim::Calibration& cal) {
        return nlohmann::json{{"heldout_samples", cal.heldout_samples},
                              {"heldout_median_ape", cal.heldout_median_ape},
                              {"heldout_mean_ape", cal.heldout_mean_ape},
                              {"private_cache_stream_speedup", cal.private_cache_stream_speedup}};
    };
    nlohmann::json j;
    j["classes"] = classes(c);
    j["all"] = overall(c);
    if (resident) {
        j["cache_resident"]["classes"] = classes(*resident);
        j["cache_resident"]["all"] = overall(*resident);
        j["cache_mib"] = cache_bytes / (1024.0 * 1024.0);
    }
    j["output"] = out_path;
    j["samples"] = c.samples;
    return j;
}

void run_calibrate(const CalibrateArgs& a) {
    std::vector<std::pair<std::string, sim::ProfileProvenance>> cold_files, resident_files;
    const sim::MeasuredProfile p = merge(a.profiles, &cold_files);
    const std::string base_name = !a.base.empty()                     ? a.base
                                  : p.provenance.device_kind == "cpu" ? "cpu-template"
                                                                      : "h200";
    const sim::HardwareProfile base = sim::load_hardware(base_name);
    const toml::table base_toml = sim::parse_toml_file(base.source);
    sim::CalibrationOptions o;
    o.heldout_every = a.heldout_every;
    o.tile_candidates = tile_candidates(p.provenance.device_kind);
    o.cpu_time = a.cpu_time;
    o.pool_runs = !a.per_run;
    const sim::Calibration c = sim::calibrate(p, a.profiles, base, o);
    // With --cache-resident: the second level, fitted on samples whose operands fit the cache.
    std::unique_ptr<sim::Calibration> resident;
    double cache_bytes = 0;
    if (!a.resident.empty()) {
        const sim::MeasuredProfile w = merge(a.resident, &resident_files);
        cache_bytes = sim::two_level_cache_bytes(cold_files, resident_files, a.cache_mib * 1024.0 * 1024.0);
        sim::CalibrationOptions ro = o;
        ro.max_sample_bytes = cache_bytes;  // larger operands come from DRAM: the cold level's
        std::string note;
        ro.private_cache_bytes =
            a.no_private_cache
                ? 0.0
                : sim::resident_private_cache_bytes(resident_files, a.private_cache_kib * 1024.0, cache_bytes, &note);
        if (!note.empty()) std::fprintf(stderr, "moecast calibrate: %s\n", note.c_str());
        resident = std::make_unique<sim::Calibration>(sim::calibrate(w, a.resident, base, ro));
    }
    const std::string name = a.name.empty() ? std::filesystem::path(a.out).stem().string() : a.name;
    const std::string text = sim::calibrated_profile_string(base_toml, c, name, resident.get(), cache_bytes);
    sim::hardware_from_toml_string(text, a.out);  // the written profile must load
    sim::write_text_file(a.out, text);
    if (!a.residuals.empty()) sim::write_text_file(a.residuals, sim::calibration_residuals_csv(c, resident.get()));
    if (a.json) {
        std::printf(
            "%s\n",
            sim::checked_finite(calibration_json(c, resident.get(), cache_bytes, a.out), "calibrate").dump(2).c_str());
    } else {
        std::printf("%s", sim::calibration_table(c).c_str());
        if (resident)
            std::printf("cache-resident part (last-level cache %.0f MiB):\n%s", cache_bytes / (1024.0 * 1024.0),
                        sim::calibration_table(*resident).c_str());
        std::printf("wrote %s\n", a.out.c_str());
    }
}

void add_calibrate_options(CLI::App* cmd, const std::shared_ptr<CalibrateArgs>& args) {
    cmd->add_option("profiles", args->profiles, "Measured profiles written by `moecast profile` (same device)")
        ->required();
    cmd->add_option("-o,--output", args->out, "Calibrated hardware profile to write (TOML)")->required();
    cmd->add_option(
        "--cache-resident", args->resident,
        "Measured profiles of the same device whose inputs rotated within the last-level cache: fitted into the "
        "profile's [cache_resident] part (the positional profiles are then the DRAM-cold ones)");
    cmd->add_option("--cache-mib", args->cache_mib,
                    "Last-level cache size in MiB, for profiles that do not record it (provenance.cache_bytes)")
        ->check(kPositive);
    cmd->add_option("--private-cache-kib", args->private_cache_kib,
                    "A core's own cache below the last level (L2) in KiB, for cache-resident profiles that do not "
                    "record it (provenance.private_cache_bytes): the resident level then fits each class's speedup "
                    "for operands that fit it")
        ->check(kPositive);
    cmd->add_flag("--no-private-cache", args->no_private_cache,
                  "Fit the cache-resident level without the private-cache tier, whatever the profiles record")
        ->excludes("--private-cache-kib");
    cmd->add_option("--base", args->base,
                    "Hardware profile supplying peaks, links and price (default: cpu-template for CPU, h200 for CUDA)");
    cmd->add_option("--name", args->name, "Profile name (default: the output file's stem)");
    cmd->add_option("--heldout-every", args->heldout_every,
                    "Hold out shapes whose hash is divisible by n (about 1/n of the shapes)")
        ->check(CLI::Range(2, 1000))
        ->capture_default_str();
    cmd->add_flag("--cpu-time", args->cpu_time,
                  "CPU profiles: fit process CPU time per launch / threads instead of wall time (shared machines)");
    cmd->add_flag("--per-run", args->per_run,
                  "Fit and judge every profile's sample of a shape on its own, instead of the median of the shape's "
                  "runs over the profiles (run-to-run noise then counts as model error)");
    cmd->add_flag("--json", args->json, "Print the calibration report as JSON");
    cmd->add_option("--residuals", args->residuals,
                    "Write every timed sample's measured and predicted time (fit and held-out, both levels) as CSV");
}

}  // namespace

void register_calibrate(CLI::App& app) {
    auto args = std::make_shared<CalibrateArgs>();
    CLI::App* cmd = app.add_subcommand("calibrate", "Fit the kernel-time model to measured profiles");
    add_calibrate_options(cmd, args);
    cmd->callback([args] { run_calibrate(*args); });
}

}  // namespace moecast::app

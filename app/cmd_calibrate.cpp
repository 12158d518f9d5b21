// `moecast calibrate PROFILE... -o OUT.toml [--base HW] [--name NAME] [--heldout-every N] [--json]`:
// fits the [efficiency.<class>] values of a hardware profile (sim/calibrate.h) to one or more
// measured profiles of the same device, prints held-out errors per class and the worst shapes, and
// writes the calibrated profile (the base profile with measured values and provenance).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "sim/calibrate.h"
#include "sim/error.h"
#include "sim/hardware.h"
#include "sim/measured_profile.h"
#include "sim/toml_util.h"

namespace moecast::app {

namespace {

struct CalibrateArgs {
    std::vector<std::string> profiles;
    std::string out;
    std::string base;
    std::string name;
    long long heldout_every = 4;
    bool cpu_time = false;
    bool json = false;
};

// Tile shapes tried for matmul classes. CUDA: CTA tiles of cuBLAS/CUTLASS Hopper kernels. CPU:
// row blocks (the CPU kernels split rows over threads and call Eigen per expert piece).
std::vector<std::pair<int64_t, int64_t>> tile_candidates(const std::string& device_kind) {
    if (device_kind == "cuda") return {{64, 64}, {64, 128}, {128, 64}, {128, 128}, {128, 256}, {256, 128}};
    return {{1, 1}, {8, 1}, {16, 1}, {32, 1}};
}

sim::MeasuredProfile merge(const std::vector<std::string>& paths) {
    sim::MeasuredProfile all = sim::read_measured_profile(paths.front());
    for (size_t i = 1; i < paths.size(); ++i) {
        sim::MeasuredProfile p = sim::read_measured_profile(paths[i]);
        if (p.provenance.device != all.provenance.device || p.provenance.device_kind != all.provenance.device_kind)
            throw sim::InputError(paths[i], 0, "provenance.device",
                                  "measured on \"" + p.provenance.device + "\", but " + paths.front() + " on \"" +
                                      all.provenance.device + "\"; calibrate one device at a time");
        all.samples.insert(all.samples.end(), p.samples.begin(), p.samples.end());
    }
    return all;
}

}  // namespace

void register_calibrate(CLI::App& app) {
    auto args = std::make_shared<CalibrateArgs>();
    CLI::App* cmd = app.add_subcommand("calibrate", "Fit the kernel-time model to measured profiles");
    cmd->add_option("profiles", args->profiles, "Measured profiles written by `moecast profile` (same device)")
        ->required();
    cmd->add_option("-o,--output", args->out, "Calibrated hardware profile to write (TOML)")->required();
    cmd->add_option("--base", args->base,
                    "Hardware profile supplying peaks, links and price (default: cpu-template for CPU, h200 for CUDA)");
    cmd->add_option("--name", args->name, "Profile name (default: the output file's stem)");
    cmd->add_option("--heldout-every", args->heldout_every,
                    "Hold out shapes whose hash is divisible by n (about 1/n of the shapes)")
        ->check(CLI::Range(2, 1000))
        ->capture_default_str();
    cmd->add_flag("--cpu-time", args->cpu_time,
                  "CPU profiles: fit process CPU time per launch / threads instead of wall time (shared machines)");
    cmd->add_flag("--json", args->json, "Print the calibration report as JSON");
    cmd->callback([args] {
        const sim::MeasuredProfile p = merge(args->profiles);
        const std::string base_name =
            !args->base.empty() ? args->base : p.provenance.device_kind == "cpu" ? "cpu-template" : "h200";
        const sim::HardwareProfile base = sim::load_hardware(base_name);
        const toml::table base_toml = sim::parse_toml_file(base.source);
        sim::CalibrationOptions o;
        o.heldout_every = args->heldout_every;
        o.tile_candidates = tile_candidates(p.provenance.device_kind);
        o.cpu_time = args->cpu_time;
        const sim::Calibration c = sim::calibrate(p, args->profiles, base, o);
        const std::string name =
            args->name.empty() ? std::filesystem::path(args->out).stem().string() : args->name;
        const std::string text = sim::calibrated_profile_string(base_toml, c, name);
        sim::hardware_from_toml_string(text, args->out);  // the written profile must load
        sim::write_text_file(args->out, text);
        if (args->json) {
            nlohmann::json j;
            for (const auto& r : c.classes)
                j["classes"][sim::to_string(r.cls)] = {{"fit_samples", r.fit_samples},
                                                       {"heldout_samples", r.heldout_samples},
                                                       {"fit_median_ape", r.fit_median_ape},
                                                       {"heldout_median_ape", r.heldout_median_ape},
                                                       {"heldout_mean_ape", r.heldout_mean_ape}};
            j["output"] = args->out;
            j["samples"] = c.samples;
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("%swrote %s\n", sim::calibration_table(c).c_str(), args->out.c_str());
        }
    });
}

}  // namespace moecast::app

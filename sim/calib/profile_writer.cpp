// The calibrated hardware profile (TOML: provenance, peaks, fitted [efficiency.<class>] and
// held-out [calibration.<class>] tables, and a cache-resident part) and the human-readable and CSV
// reports of a calibration (see calibrate.h).
#include <algorithm>
#include <cstdio>
#include <sstream>

#include <fmt/format.h>

#include "sim/calib/calibrate.h"
#include "sim/core/error.h"

namespace moecast::sim {
namespace {

// The measured profiles' paths, comma-separated (profile descriptions and reports).
std::string joined_paths(const std::vector<std::string>& paths) {
    std::string out;
    for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p;
    return out;
}

}  // namespace

namespace {

// [provenance]: the measurement; the values it did not measure keep the base file's provenance,
// marked per key. `t` is the base profile's table.
toml::table measured_provenance(const toml::table& base, const toml::table& t, const Calibration& c) {
    const ProfileProvenance& v = c.provenance;
    toml::table old_prov = base.contains("provenance") ? *base["provenance"].as_table() : toml::table{};
    toml::table values;
    auto base_type = old_prov["type"].value_or(std::string("assumed"));
    auto base_source = old_prov["source"].value_or(std::string(""));
    auto mark = [&](const char* key) {
        values.insert_or_assign(key,
                                toml::table{{"type", base_type}, {"source", "from the base profile: " + base_source}});
    };
    if (v.device_kind != "cpu")
        for (const char* k : {"compute.matmul_fp32_tflops", "compute.matmul_tf32_tflops", "compute.matmul_bf16_tflops",
                              "compute.matmul_fp8_tflops", "compute.vector_fp32_tflops", "memory.bandwidth_tb_per_s"})
            if (t.at_path(k)) mark(k);
    for (const char* k :
         {"compute.launch_us", "memory.capacity_gb", "price.usd_per_device_hour", "link.intra_node.bandwidth_gb_per_s",
          "link.intra_node.latency_us", "link.intra_node.efficiency", "link.inter_node.bandwidth_gb_per_s",
          "link.inter_node.latency_us", "link.inter_node.efficiency", "node.devices_per_node"})
        if (t.at_path(k)) mark(k);
    toml::table prov{{"type", "measured"},
                     {"device", v.device},
                     {"date", v.date.substr(0, 10)},
                     {"source", "moecast profile (" + v.tool + ", grid " + v.grid + ") on host " + v.host +
                                    (c.cpu_time ? "; fitted to process CPU time per launch / threads" : "") +
                                    (c.pooled_runs ? "; repeated runs of a shape pooled at their median" : "")},
                     {"tool", "moecast calibrate (commit " + v.commit + ")"},
                     {"samples", c.samples}};
    if (!values.empty()) prov.insert("values", values);
    return prov;
}

// A CPU's peaks are the best rates its profile measured (set_measured_cpu_peaks).
void write_cpu_peaks(toml::table& t, const HardwareProfile& hw) {
    toml::table& compute = *t["compute"].as_table();
    compute.insert_or_assign("matmul_fp32_tflops", hw.matmul_flops_per_s[0] / 1e12);
    compute.insert_or_assign("matmul_bf16_tflops", hw.matmul_flops_per_s[0] / 1e12);
    compute.erase("matmul_tf32_tflops");
    compute.erase("matmul_fp8_tflops");
    compute.insert_or_assign("vector_fp32_tflops", hw.vector_flops_per_s / 1e12);
    compute.insert_or_assign("units", hw.compute_units);
    t["memory"].as_table()->insert_or_assign("bandwidth_tb_per_s", hw.memory_bandwidth_bytes_per_s / 1e12);
}

// [efficiency.<class>]: the fitted values.
toml::table efficiency_table(const Efficiency& e, KernelClass cls) {
    toml::table et{{"compute", e.compute},
                   {"memory", e.memory},
                   {"compute_half_gflop", e.compute_half_flops / 1e9},
                   {"memory_half_mb", e.memory_half_bytes / 1e6},
                   {"launch_us", e.launch_s * 1e6},
                   {"tile_m", e.tile_m},
                   {"tile_n", e.tile_n},
                   {"ctas_per_unit", e.ctas_per_unit},
                   {"wave_quantization", e.wave_quantization},
                   {"launch_per_group", e.launch_per_group},
                   {"launch_overlap", to_string(e.launch_overlap)},
                   {"work_overlap", to_string(e.work_overlap)}};
    if (cls == KernelClass::attention) et.insert_or_assign("backward_recomputes", e.backward_recomputes);
    if (e.row_s > 0) et.insert_or_assign("row_ns", e.row_s * 1e9);
    if (e.private_cache_speedup > 1) et.insert_or_assign("private_cache_speedup", e.private_cache_speedup);
    if (e.write_cost != 1) et.insert_or_assign("write_cost", e.write_cost);
    if (!e.kernel_scale.empty()) {
        toml::table ks;
        for (const auto& [kernel, scale] : e.kernel_scale) ks.insert(kernel, scale);
        et.insert_or_assign("kernel_scale", ks);
    }
    return et;
}

// [calibration.<class>]: the class's errors, counter checks and worst held-out samples.
toml::table calibration_report_table(const ClassReport& r) {
    toml::table k{{"fit_samples", r.fit_samples},
                  {"heldout_samples", r.heldout_samples},
                  {"fit_shapes", r.fit_shapes},
                  {"heldout_shapes", r.heldout_shapes},
                  {"fit_median_ape", r.fit_median_ape},
                  {"heldout_median_ape", r.heldout_median_ape},
                  {"heldout_mean_ape", r.heldout_mean_ape}};
    if (r.runs > 1) {
        k.insert("runs_per_shape", r.runs);
        k.insert("run_spread_median", r.run_spread_median);
    }
    if (r.counter_samples > 0) {
        k.insert("counter_samples", r.counter_samples);
        k.insert("dram_bytes_ratio", r.dram_bytes_ratio);
        k.insert("tensor_ops_ratio", r.tensor_ops_ratio);
    }
    toml::table bias;
    for (const auto& [kernel, b] : r.kernel_bias) bias.insert(kernel, b);
    k.insert("kernel_median_error", bias);
    toml::array worst;
    for (const auto& w : r.worst)
        worst.push_back(toml::table{{"kernel", w.kernel},
                                    {"shape", w.shape_key},
                                    {"measured_s", w.measured_s},
                                    {"predicted_s", w.predicted_s},
                                    {"ape", w.ape}});
    k.insert("worst", worst);
    return k;
}

}  // namespace

toml::table calibrated_profile_toml(const toml::table& base, const Calibration& c, const std::string& name) {
    toml::table t = base;
    const ProfileProvenance& v = c.provenance;
    t.insert_or_assign("name", name);
    const std::string paths = joined_paths(c.profile_paths);
    t.insert_or_assign("description", "calibrated by moecast calibrate from " + paths + " (" + v.device + ", " +
                                          v.driver + ", " + v.clocks + ", commit " + v.commit + ")");
    t.insert_or_assign("provenance", measured_provenance(base, t, c));
    if (v.device_kind == "cpu") write_cpu_peaks(t, c.hardware);
    toml::table eff = t.contains("efficiency") ? *t["efficiency"].as_table() : toml::table{};
    toml::table cal;
    for (const auto& r : c.classes) {
        eff.insert_or_assign(to_string(r.cls), efficiency_table(r.efficiency, r.cls));
        cal.insert(to_string(r.cls), calibration_report_table(r));
    }
    t.insert_or_assign("efficiency", eff);
    t.insert_or_assign("calibration", cal);
    return t;
}

toml::table cache_aware_profile_toml(const toml::table& base, const Calibration& cold, const Calibration& resident,
                                     double cache_bytes, const std::string& name) {
    if (cache_bytes <= 0)
        throw InputError(name, 0, "cache_bytes",
                         "a cache-resident part needs the size of the cache it was measured in");
    toml::table t = calibrated_profile_toml(base, cold, name);
    const toml::table w = calibrated_profile_toml(base, resident, name);
    toml::table cr;
    cr.insert("provenance", *w.get_as<toml::table>("provenance"));
    cr.insert("compute", *w.get_as<toml::table>("compute"));
    toml::table cr_memory{{"bandwidth_tb_per_s", *w.at_path("memory.bandwidth_tb_per_s").as_floating_point()}};
    if (resident.hardware.private_cache_bytes > 0)
        cr_memory.insert("private_cache_kib", resident.hardware.private_cache_bytes / 1024.0);
    cr.insert("memory", cr_memory);
    cr.insert("efficiency", *w.get_as<toml::table>("efficiency"));
    cr.insert("calibration", *w.get_as<toml::table>("calibration"));
    t["memory"].as_table()->insert_or_assign("cache_mib", cache_bytes / (1024.0 * 1024.0));
    t.insert_or_assign("description", *t["description"].value<std::string>() + "; cache-resident part from " +
                                          joined_paths(resident.profile_paths));
    t.insert_or_assign("cache_resident", cr);
    return t;
}

std::string calibrated_profile_string(const toml::table& base, const Calibration& c, const std::string& name,
                                      const Calibration* resident, double cache_bytes) {
    std::ostringstream os;
    os << "# Calibrated hardware profile written by `moecast calibrate` (schema: profiles/README.md).\n";
    if (resident)
        os << "# [efficiency.<class>] were fitted to kernel times measured with inputs rotated beyond the\n"
           << "# last-level cache (DRAM-cold), [cache_resident] to times measured with inputs rotated within it;\n"
           << "# sim/cost/trainer_step.h blends the two by the step's working set against memory.cache_mib.\n"
           << "# [calibration.<class>] holds the error on held-out shapes (fractions).\n"
           << cache_aware_profile_toml(base, c, *resident, cache_bytes, name) << "\n";
    else
        os << "# [efficiency.<class>] were fitted to measured kernel times (sim/calib/calibrate.h); "
              "[calibration.<class>]\n"
           << "# holds the error on held-out shapes (fractions). "
           << (c.provenance.device_kind == "cpu" ? "CPU peaks are the best rates measured in the profile.\n"
                                                 : "Peaks are the base profile's datasheet figures.\n")
           << calibrated_profile_toml(base, c, name) << "\n";
    return os.str();
}

std::string calibration_table(const Calibration& c) {
    std::ostringstream os;
    char line[512];
    const std::string paths = joined_paths(c.profile_paths);
    int64_t runs = 1;
    for (const auto& r : c.classes) runs = std::max(runs, r.runs);
    os << "calibration of " << paths << " (" << c.provenance.device_kind << ": " << c.provenance.device << ", "
       << c.provenance.date << ", " << c.samples << " samples"
       << (runs > 1 ? ", up to " + std::to_string(runs) + " runs per shape pooled at their median" : std::string())
       << (c.oversized_samples > 0
               ? ", " + std::to_string(c.oversized_samples) + " left out whose operands overflow the cache"
               : std::string())
       << ")\n";
    if (c.private_cache_stream_speedup > 0)
        os << fmt::format("private cache {:.0f} KiB: the residual add streams x{:.2f} faster with its operands in it "
                          "than beyond it (from 4x its size), the most any class's private-cache speedup may be\n",
                          c.hardware.private_cache_bytes / 1024.0, c.private_cache_stream_speedup);
    else if (c.hardware.private_cache_bytes > 0)
        os << fmt::format("private cache {:.0f} KiB: no residual add timed both within it and at 4x its size or more "
                          "([[elementwise]] grids), so the classes' speedups are bounded only by the peak bandwidth\n",
                          c.hardware.private_cache_bytes / 1024.0);
    std::snprintf(line, sizeof line, "%-13s %5s %5s %8s %9s %9s %8s  %s\n", "class", "fit", "held", "fit med",
                  "held med", "held mean", "run dev", "fitted efficiency");
    os << line;
    for (const auto& r : c.classes) {
        const Efficiency& e = r.efficiency;
        std::snprintf(
            line, sizeof line,
            "%-13s %5lld %5lld %7.1f%% %8.1f%% %8.1f%% %8s  compute %.3f (half %.3g FLOP), memory %.3f (half %.3g B), "
            "launch %.3g us%s%s, %s%s%stile %lldx%lld%s\n",
            to_string(r.cls), static_cast<long long>(r.fit_samples), static_cast<long long>(r.heldout_samples),
            100 * r.fit_median_ape, 100 * r.heldout_median_ape, 100 * r.heldout_mean_ape,
            r.runs > 1 ? fmt::format("{:.1f}%", 100 * r.run_spread_median).c_str() : "-", e.compute,
            e.compute_half_flops, e.memory, e.memory_half_bytes, e.launch_s * 1e6,
            e.launch_per_group ? " per expert" : "",
            e.launch_overlap == OverlapMode::none   ? ""
            : e.launch_overlap == OverlapMode::full ? " overlapped"
                                                    : " partly overlapped",
            e.row_s > 0 ? fmt::format("row {:.3g} ns, ", e.row_s * 1e9).c_str() : "",
            e.write_cost != 1 ? fmt::format("writes x{:.2f}, ", e.write_cost).c_str() : "",
            e.private_cache_speedup > 1 ? fmt::format("private cache x{:.2f}, ", e.private_cache_speedup).c_str() : "",
            static_cast<long long>(e.tile_m), static_cast<long long>(e.tile_n),
            e.work_overlap == OverlapMode::full   ? ""
            : e.work_overlap == OverlapMode::none ? ", compute + memory"
                                                  : ", compute and memory partly overlapped");
        os << line;
        if (r.counter_samples > 0) {
            std::snprintf(
                line, sizeof line,
                "  counters (%lld samples): DRAM bytes / analytic %.3f, BF16 tensor ops / analytic FLOPs %.3f\n",
                static_cast<long long>(r.counter_samples), r.dram_bytes_ratio, r.tensor_ops_ratio);
            os << line;
        }
        if (!e.kernel_scale.empty()) {
            os << "  time factor by kernel:";
            for (const auto& [kernel, scale] : e.kernel_scale) os << fmt::format(" {} {:.2f}", kernel, scale);
            os << "\n";
        }
        if (r.kernel_bias.size() > 1) {
            os << "  median error by kernel:";
            for (const auto& [kernel, b] : r.kernel_bias) {
                std::snprintf(line, sizeof line, " %s %+.0f%%", kernel.c_str(), 100 * b);
                os << line;
            }
            os << "\n";
        }
        for (const auto& w : r.worst) {
            std::snprintf(line, sizeof line,
                          "  worst held-out: %-11s %-44s measured %9.3g s predicted %9.3g s (%+.1f%%)\n",
                          w.kernel.c_str(), w.shape_key.c_str(), w.measured_s, w.predicted_s,
                          100 * (w.predicted_s - w.measured_s) / w.measured_s);
            os << line;
        }
    }
    std::snprintf(line, sizeof line, "%-13s %5s %5lld %8s %8.1f%% %8.1f%%  (every class's held-out samples%s)\n", "all",
                  "", static_cast<long long>(c.heldout_samples), "", 100 * c.heldout_median_ape,
                  100 * c.heldout_mean_ape,
                  c.classes.size() > 1 ? "; the generic class only when fitted on its own ops" : "");
    os << line;
    return os.str();
}

std::string calibration_residuals_csv(const Calibration& c, const Calibration* resident) {
    std::string out = "level,class,kernel,shape,set,measured_s,predicted_s,error\n";
    auto level = [&](const Calibration& cal, const char* name) {
        for (const auto& r : cal.classes)
            for (const auto& e : r.samples)
                out += fmt::format("{},{},{},\"{}\",{},{:.6g},{:.6g},{:.4f}\n", name, to_string(r.cls), e.kernel,
                                   e.shape_key, e.heldout ? "heldout" : "fit", e.measured_s, e.predicted_s,
                                   e.predicted_s / e.measured_s - 1);
    };
    level(c, "cold");
    if (resident) level(*resident, "resident");
    return out;
}

}  // namespace moecast::sim

// Loading hardware profiles (schema: profiles/README.md). Units are converted here, once:
// TFLOP/s -> FLOP/s, TB/s and GB/s -> bytes/s, GB -> bytes, us -> s.
#include "sim/cost/hardware.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "sim/core/error.h"
#include "sim/core/toml_util.h"

#ifndef MOECAST_SOURCE_DIR
#define MOECAST_SOURCE_DIR "."
#endif

namespace moecast::sim {

const char* to_string(DeviceKind k) { return k == DeviceKind::gpu ? "gpu" : "cpu"; }

const char* to_string(Precision p) {
    switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::fp8: return "fp8";
    }
    return "?";
}

const char* to_string(KernelClass c) {
    switch (c) {
    case KernelClass::gemm: return "gemm";
    case KernelClass::grouped_gemm: return "grouped_gemm";
    case KernelClass::attention: return "attention";
    case KernelClass::elementwise: return "elementwise";
    case KernelClass::router: return "router";
    case KernelClass::activation: return "activation";
    case KernelClass::permute: return "permute";
    case KernelClass::combine: return "combine";
    case KernelClass::norm: return "norm";
    }
    return "?";
}

const char* to_string(OverlapMode o) {
    switch (o) {
    case OverlapMode::none: return "none";
    case OverlapMode::partial: return "partial";
    case OverlapMode::full: return "full";
    }
    return "?";
}

int64_t element_bytes(Precision p) {
    switch (p) {
    case Precision::fp8: return 1;
    case Precision::bf16: return 2;
    default: return 4;
    }
}

namespace {

Provenance read_provenance(TomlReader& r, const Provenance& fallback) {
    Provenance p = fallback;
    p.type = r.get_enum<std::string>(
        "type", fallback.type,
        {{"datasheet", "datasheet"}, {"measured", "measured"}, {"fitted", "fitted"}, {"assumed", "assumed"}});
    p.device = r.get_string("device", fallback.device);
    p.date = r.get_string("date", fallback.date);
    p.source = r.get_string("source", fallback.source);
    p.tool = r.get_string("tool", fallback.tool);
    p.samples = r.get_int("samples", fallback.samples);
    if (p.samples < 0) r.fail("samples", "expected a count >= 0");
    return p;
}

// Reads numbers and records each with its provenance (file default or a per-key override).
class ValueReader {
public:
    ValueReader(HardwareProfile& hw, std::map<std::string, Provenance> overrides)
        : hw_(hw), overrides_(std::move(overrides)) {}

    // Returns value * scale. Missing and not required: records `fallback` as an assumed value.
    double number(TomlReader& r, const std::string& key, double scale, double fallback, bool required,
                  double min_value = 0.0) {
        const std::string dotted = r.dotted(key);
        if (required && !r.has(key)) r.fail(key, "missing required number");
        Provenance prov = hw_.provenance;
        double v = fallback;
        if (r.has(key)) {
            v = r.get_double(key, fallback);
            if (!(v >= min_value)) r.fail(key, "expected a number >= " + std::to_string(min_value));
        } else {
            prov = Provenance{"assumed", hw_.provenance.device, "", "built-in default (sim/cost/hardware.h)", "", 0};
        }
        // The most specific override wins: "efficiency.gemm.compute", then "efficiency.gemm", "efficiency".
        for (std::string key = dotted; !key.empty();) {
            if (auto it = overrides_.find(key); it != overrides_.end()) {
                prov = it->second;
                used_.insert(key);
                break;
            }
            const size_t dot = key.rfind('.');
            key = dot == std::string::npos ? "" : key.substr(0, dot);
        }
        hw_.values.push_back({dotted, v, prov});
        return v * scale;
    }

    void check_overrides_used(const std::string& source) const {
        for (const auto& [key, p] : overrides_)
            if (!used_.count(key))
                throw InputError(source, 0, "provenance.values." + key, "names no numeric key of this profile");
    }

private:
    HardwareProfile& hw_;
    std::map<std::string, Provenance> overrides_;
    std::set<std::string> used_;
};

void read_link(TomlReader& parent, ValueReader& v, const std::string& name, LinkTier& link, bool required) {
    auto t = parent.table(name);
    if (!t) {
        if (required) parent.fail(name, "missing table [" + parent.dotted(name) + "]");
        return;
    }
    link.bandwidth_bytes_per_s = v.number(*t, "bandwidth_gb_per_s", 1e9, 0, true, 1e-9);
    link.latency_s = v.number(*t, "latency_us", 1e-6, 0, true);
    link.efficiency = v.number(*t, "efficiency", 1.0, link.efficiency, false, 1e-6);
    if (link.efficiency > 1.0) t->fail("efficiency", "expected a fraction in (0, 1]");
    t->finish();
}

// A class table may give fractions of the peaks (compute, memory) or, as `moecast calibrate`
// writes them, absolute saturated rates (compute_flops_per_s, bandwidth_bytes_per_s, half_flops,
// half_bytes, launch_s, parallel_units); rates are converted to fractions of this profile's peaks
// (bf16 matmul peak for matmul classes, fp32 vector peak for the memory-bound classes). Class
// "memory" is accepted as the calibrator's name for "elementwise". activation, permute, combine and
// norm without a table of their own take the elementwise values (read before them: enum order).
void read_efficiency(std::optional<TomlReader>& parent, ValueReader& v, KernelClass c, Efficiency& e,
                     HardwareProfile& hw, const std::string& source) {
    const bool main_name = parent && parent->has(to_string(c));
    const bool alias = !main_name && parent && c == KernelClass::elementwise && parent->has("memory");
    std::optional<TomlReader> t = main_name ? parent->table(to_string(c))
                                  : alias   ? parent->table("memory")
                                            : std::nullopt;
    if (!t && falls_back_to_elementwise(c)) {
        // No table of its own: the elementwise table (already read) prices this class too, and its
        // values are listed under this class with the elementwise values' provenance.
        e = hw.eff(KernelClass::elementwise);
        const std::string from = "efficiency.elementwise.", to = std::string("efficiency.") + to_string(c) + ".";
        const size_t n = hw.values.size();
        for (size_t i = 0; i < n; ++i) {
            const ProfileValue& pv = hw.values[i];
            if (pv.key.rfind(from, 0) != 0) continue;
            ProfileValue copy = pv;
            copy.key = to + pv.key.substr(from.size());
            copy.provenance.source = "falls back to efficiency.elementwise (" + pv.provenance.source + ")";
            hw.values.push_back(copy);
        }
        return;
    }
    if (!t) {
        // Record the built-in defaults so every value used is listed with a provenance.
        static const toml::table kEmpty;
        TomlReader r(kEmpty, source, std::string("efficiency.") + to_string(c));
        v.number(r, "compute", 1.0, e.compute, false);
        v.number(r, "memory", 1.0, e.memory, false);
        return;
    }
    const double peak = memory_bound_class(c) ? hw.vector_flops_per_s : hw.matmul_peak(Precision::bf16);
    if (t->has("compute_flops_per_s")) {
        e.compute = v.number(*t, "compute_flops_per_s", 1.0, 0, true, 1e-9) / peak;
        e.memory = v.number(*t, "bandwidth_bytes_per_s", 1.0, 0, true, 1e-9) / hw.memory_bandwidth_bytes_per_s;
        e.compute_half_flops = v.number(*t, "half_flops", 1.0, 0.0, false);
        e.memory_half_bytes = v.number(*t, "half_bytes", 1.0, 0.0, false);
        e.launch_s = v.number(*t, "launch_s", 1.0, 0.0, false);
        e.tile_m = static_cast<int64_t>(v.number(*t, "tile_m", 1.0, 1.0, false, 1.0));
        e.tile_n = static_cast<int64_t>(v.number(*t, "tile_n", 1.0, 1.0, false, 1.0));
        const double units = v.number(*t, "parallel_units", 1.0, static_cast<double>(hw.compute_units), false, 1.0);
        e.ctas_per_unit = std::max<int64_t>(1, static_cast<int64_t>(units) / hw.compute_units);
        e.wave_quantization = e.tile_m > 1 || e.tile_n > 1;
        t->finish();
        return;
    }
    e.compute = v.number(*t, "compute", 1.0, e.compute, false, 1e-6);
    e.compute_fp8 = v.number(*t, "compute_fp8", 1.0, 0.0, false);
    e.memory = v.number(*t, "memory", 1.0, e.memory, false, 1e-6);
    for (const char* k : {"compute", "compute_fp8", "memory"})
        if (t->get_double(k, 0.0) > 1.0) t->fail(k, "expected a fraction in (0, 1]");
    e.compute_half_flops = v.number(*t, "compute_half_gflop", 1e9, 0.0, false);
    e.memory_half_bytes = v.number(*t, "memory_half_mb", 1e6, 0.0, false);
    e.tile_m = static_cast<int64_t>(v.number(*t, "tile_m", 1.0, static_cast<double>(e.tile_m), false, 1.0));
    e.tile_n = static_cast<int64_t>(v.number(*t, "tile_n", 1.0, static_cast<double>(e.tile_n), false, 1.0));
    e.ctas_per_unit =
        static_cast<int64_t>(v.number(*t, "ctas_per_unit", 1.0, static_cast<double>(e.ctas_per_unit), false, 1.0));
    e.wave_quantization = t->get_bool("wave_quantization", e.wave_quantization);
    e.launch_per_group = t->get_bool("launch_per_group", e.launch_per_group);
    e.backward_recomputes = t->get_bool("backward_recomputes", e.backward_recomputes);
    e.launch_overlap = t->get_enum<OverlapMode>(
        "launch_overlap", e.launch_overlap,
        {{"none", OverlapMode::none}, {"partial", OverlapMode::partial}, {"full", OverlapMode::full}});
    e.work_overlap = t->get_enum<OverlapMode>(
        "work_overlap", e.work_overlap,
        {{"none", OverlapMode::none}, {"partial", OverlapMode::partial}, {"full", OverlapMode::full}});
    if (t->has("launch_us")) e.launch_s = v.number(*t, "launch_us", 1e-6, 0.0, false);
    if (t->has("row_ns")) e.row_s = v.number(*t, "row_ns", 1e-9, 0.0, false);
    e.private_cache_speedup = v.number(*t, "private_cache_speedup", 1.0, 1.0, false, 1e-9);
    if (e.private_cache_speedup < 1.0) t->fail("private_cache_speedup", "expected a factor >= 1");
    e.write_cost = v.number(*t, "write_cost", 1.0, 1.0, false, 1e-9);
    if (auto ks = t->table("kernel_scale")) {
        for (const std::string& k : ks->keys()) e.kernel_scale.emplace_back(k, v.number(*ks, k, 1.0, 1.0, true, 1e-6));
        ks->finish();
    }
    t->finish();
}

HardwareProfile hardware_from_table(const toml::table& root, const std::string& source);

// The profile [cache_resident] describes: the file's own tables, with its provenance, compute and
// memory keys, efficiency and calibration tables in place of the file's (cached operands change
// peaks, bandwidth and efficiencies, not capacity, links or price).
toml::table cache_resident_root(const toml::table& root, TomlReader& cr) {
    toml::table sub = root;
    sub.erase("cache_resident");
    sub.erase("calibration");
    const toml::table& own = *root["cache_resident"].as_table();
    for (const auto& [k, node] : own) {
        const std::string key(k.str());
        if (key != "provenance" && key != "compute" && key != "memory" && key != "efficiency" && key != "calibration")
            cr.fail(key, "expected only provenance, compute, memory, efficiency and calibration tables");
        auto t = cr.table(key);  // fails unless a table
        (void)t;
        if (key == "compute" || key == "memory") {
            toml::table merged = sub[key].as_table() ? *sub[key].as_table() : toml::table{};
            for (const auto& [kk, vv] : *node.as_table()) merged.insert_or_assign(kk, vv);
            sub.insert_or_assign(key, merged);
        } else {
            sub.insert_or_assign(key, *node.as_table());
        }
    }
    if (auto m = sub["memory"].as_table()) m->erase("cache_mib");
    return sub;
}

HardwareProfile hardware_from_table(const toml::table& root, const std::string& source) {
    HardwareProfile hw;
    hw.source = source;
    TomlReader r(root, source);
    hw.name = r.require_string("name");
    hw.kind = r.get_enum<DeviceKind>("kind", DeviceKind::gpu, {{"gpu", DeviceKind::gpu}, {"cpu", DeviceKind::cpu}});
    r.get_string("description", "");

    std::map<std::string, Provenance> overrides;
    if (auto p = r.table("provenance")) {
        hw.provenance = read_provenance(*p, hw.provenance);
        if (auto vals = p->table("values")) {
            const toml::node* vn = root.at_path("provenance.values").node();
            for (const auto& [k, node] : *vn->as_table()) {
                const std::string key(k.str());
                auto pr = vals->table(key);  // fails unless an inline table {type = ..., date = ...}
                overrides[key] = read_provenance(*pr, hw.provenance);
                pr->finish();
            }
        }
        p->finish();
    } else {
        r.fail("provenance", "missing table [provenance] (type, device, date, source)");
    }

    ValueReader v(hw, overrides);
    auto compute = r.table("compute");
    if (!compute) r.fail("compute", "missing table [compute]");
    const std::array<const char*, kPrecisionCount> keys = {"matmul_fp32_tflops", "matmul_tf32_tflops",
                                                           "matmul_bf16_tflops", "matmul_fp8_tflops"};
    for (int i = 0; i < kPrecisionCount; ++i)
        if (compute->has(keys[i])) hw.matmul_flops_per_s[i] = v.number(*compute, keys[i], 1e12, 0, false);
    hw.vector_flops_per_s = v.number(*compute, "vector_fp32_tflops", 1e12, 0, true, 1e-9);
    if (hw.matmul_flops_per_s[0] == 0) hw.matmul_flops_per_s[0] = hw.vector_flops_per_s;
    hw.compute_units = static_cast<int64_t>(v.number(*compute, "units", 1.0, 0, true, 1.0));
    hw.launch_s = v.number(*compute, "launch_us", 1e-6, 0, true);
    if (compute->has("graph_launch_us")) hw.graph_launch_s = v.number(*compute, "graph_launch_us", 1e-6, 0, false);
    compute->finish();

    auto mem = r.table("memory");
    if (!mem) r.fail("memory", "missing table [memory]");
    hw.memory_bytes = v.number(*mem, "capacity_gb", 1e9, 0, true, 1e-9);
    hw.memory_bandwidth_bytes_per_s = v.number(*mem, "bandwidth_tb_per_s", 1e12, 0, true, 1e-9);
    if (mem->has("cache_mib")) hw.cache_bytes = v.number(*mem, "cache_mib", 1024.0 * 1024.0, 0, false, 1e-9);
    if (mem->has("private_cache_kib"))
        hw.private_cache_bytes = v.number(*mem, "private_cache_kib", 1024.0, 0, false, 1e-9);
    mem->finish();

    if (auto node = r.table("node")) {
        hw.devices_per_node = static_cast<int64_t>(v.number(*node, "devices_per_node", 1.0, 1, false, 1.0));
        node->finish();
    }
    if (auto link = r.table("link")) {
        read_link(*link, v, "intra_node", hw.intra_node, hw.kind == DeviceKind::gpu);
        read_link(*link, v, "inter_node", hw.inter_node, hw.kind == DeviceKind::gpu);
        link->finish();
    } else if (hw.kind == DeviceKind::gpu) {
        r.fail("link", "missing tables [link.intra_node] and [link.inter_node]");
    }
    if (auto price = r.table("price")) {
        hw.usd_per_device_hour = v.number(*price, "usd_per_device_hour", 1.0, 0, false);
        price->finish();
    }
    auto eff = r.table("efficiency");
    // [calibration.<class>] (held-out errors) may follow; it is read by the report, not the model.
    for (int c = 0; c < kKernelClassCount; ++c)
        read_efficiency(eff, v, static_cast<KernelClass>(c), hw.efficiency[c], hw, source);
    if (auto cal = r.table("calibration")) (void)cal;  // held-out errors written by calibrate; reported, not used
    if (eff) eff->finish();
    if (auto cr = r.table("cache_resident")) {
        if (hw.cache_bytes <= 0) r.fail("memory.cache_mib", "[cache_resident] needs the cache size it describes");
        hw.cache_resident = std::make_shared<const HardwareProfile>(
            hardware_from_table(cache_resident_root(root, *cr), source + " [cache_resident]"));
    }
    r.finish();
    v.check_overrides_used(source);
    return hw;
}

}  // namespace

HardwareProfile hardware_from_toml_string(const std::string& text, const std::string& source) {
    return hardware_from_table(parse_toml_string(text, source), source);
}

HardwareProfile load_hardware_file(const std::string& path) { return hardware_from_table(parse_toml_file(path), path); }

std::string profiles_dir() {
    if (const char* home = std::getenv("MOECAST_HOME")) return std::string(home) + "/profiles";
    return std::string(MOECAST_SOURCE_DIR) + "/profiles";
}

HardwareProfile load_hardware(const std::string& path_or_name) {
    namespace fs = std::filesystem;
    if (fs::exists(path_or_name) && fs::is_regular_file(path_or_name)) return load_hardware_file(path_or_name);
    const std::string bundled = profiles_dir() + "/" + path_or_name + ".toml";
    if (path_or_name.find('/') == std::string::npos && fs::exists(bundled)) return load_hardware_file(bundled);
    throw InputError(path_or_name, 0, "--hardware",
                     "no such file, and no bundled profile of that name in " + profiles_dir());
}

}  // namespace moecast::sim

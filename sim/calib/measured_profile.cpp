// TOML reading and writing of measured kernel profiles (see measured_profile.h).
#include "sim/calib/measured_profile.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/core/error.h"
#include "sim/core/toml_util.h"
#include "sim/cost/op_registry.h"

namespace moecast::sim {
namespace {

toml::array int_array(const std::vector<int64_t>& v) {
    toml::array a;
    for (int64_t x : v) a.push_back(x);
    return a;
}

toml::table sample_to_toml(const KernelSample& s) {
    toml::table t;
    t.insert("kernel", s.kernel);
    t.insert("class", s.kernel_class);
    t.insert("shape", s.shape_key);
    toml::table dims;
    for (const auto& [k, v] : s.dims) dims.insert(k, v);
    t.insert("dims", dims);
    if (!s.tokens_per_expert.empty()) t.insert("tokens_per_expert", int_array(s.tokens_per_expert));
    if (!s.histogram.empty()) t.insert("histogram", s.histogram);
    t.insert("dtype", s.dtype);
    t.insert("flops", s.flops);
    t.insert("bytes", s.bytes);
    t.insert("matmul", s.matmul);
    t.insert("median_s", s.median_s);
    t.insert("p10_s", s.p10_s);
    t.insert("p90_s", s.p90_s);
    t.insert("min_s", s.min_s);
    t.insert("max_s", s.max_s);
    t.insert("reps", s.reps);
    if (s.cpu_s > 0) t.insert("cpu_s", s.cpu_s);
    if (!s.device_kernels.empty()) {
        toml::array names;
        for (const auto& n : s.device_kernels) names.push_back(n);
        t.insert("device_kernels", names);
    }
    if (!s.counters.empty()) {
        toml::table c;
        for (const auto& [k, v] : s.counters) c.insert(k, v);
        t.insert("counters", c);
    }
    return t;
}

KernelSample sample_from_toml(const toml::table& raw, const std::string& source, const std::string& prefix) {
    TomlReader r(raw, source, prefix);
    KernelSample s;
    s.kernel = r.require_string("kernel");
    s.kernel_class = r.require_string("class");
    s.shape_key = r.require_string("shape");
    if (auto dims = r.table("dims")) {
        for (const auto& [k, v] : *raw.get_as<toml::table>("dims"))
            s.dims[std::string(k.str())] = dims->require_int(std::string(k.str()));
        dims->finish();
    }
    s.tokens_per_expert = r.get_int_array("tokens_per_expert");
    s.histogram = r.get_string("histogram", "");
    s.dtype = r.require_string("dtype");
    s.flops = r.require_double("flops");
    s.bytes = r.require_double("bytes");
    s.matmul = r.get_bool("matmul", false);
    s.median_s = r.require_double("median_s");
    s.p10_s = r.get_double("p10_s", s.median_s);
    s.p90_s = r.get_double("p90_s", s.median_s);
    s.min_s = r.get_double("min_s", s.median_s);
    s.max_s = r.get_double("max_s", s.median_s);
    s.reps = r.require_int("reps");
    s.cpu_s = r.get_double("cpu_s", 0.0);
    if (s.cpu_s < 0) r.fail("cpu_s", "expected a time >= 0 in seconds");
    s.device_kernels = r.get_string_array("device_kernels");
    if (auto c = r.table("counters")) {
        for (const auto& [k, v] : *raw.get_as<toml::table>("counters"))
            s.counters[std::string(k.str())] = c->require_double(std::string(k.str()));
        c->finish();
    }
    r.finish();
    if (s.median_s <= 0) r.fail("median_s", "expected a positive time in seconds");
    if (s.flops < 0) r.fail("flops", "expected non-negative FLOPs");
    if (s.bytes < 0) r.fail("bytes", "expected non-negative bytes");
    if (s.reps < 1) r.fail("reps", "expected at least one repetition");
    return s;
}

}  // namespace

toml::table measured_profile_to_toml(const MeasuredProfile& p) {
    const ProfileProvenance& v = p.provenance;
    toml::table prov;
    prov.insert("device_kind", v.device_kind);
    prov.insert("device", v.device);
    prov.insert("host", v.host);
    prov.insert("driver", v.driver);
    prov.insert("clocks", v.clocks);
    prov.insert("date", v.date);
    prov.insert("commit", v.commit);
    prov.insert("tool", v.tool);
    prov.insert("grid", v.grid);
    prov.insert("threads", v.threads);
    prov.insert("parallel_units", v.parallel_units);
    prov.insert("warmup_reps", v.warmup_reps);
    prov.insert("reps", v.reps);
    prov.insert("rotate_bytes", v.rotate_bytes);
    if (v.cache_bytes > 0) prov.insert("cache_bytes", v.cache_bytes);
    if (v.private_cache_bytes > 0) prov.insert("private_cache_bytes", v.private_cache_bytes);
    toml::array samples;
    for (const auto& s : p.samples) samples.push_back(sample_to_toml(s));
    toml::table t;
    t.insert("format", "moecast-measured-profile-1");
    t.insert("provenance", prov);
    t.insert("sample", samples);
    return t;
}

std::string measured_profile_to_string(const MeasuredProfile& p) {
    std::ostringstream os;
    os << "# Measured kernel profile written by `moecast profile`; calibrate with `moecast calibrate`.\n"
       << "# Times are seconds per launch (median and spread over timed repetitions after warm-up);\n"
       << "# flops and bytes are the analytic counts of sim/cost/ops.h for the sample's shape.\n"
       << measured_profile_to_toml(p) << "\n";
    return os.str();
}

MeasuredProfile measured_profile_from_toml(const toml::table& t, const std::string& source) {
    toml::table top = t;
    top.erase("sample");
    TomlReader r(top, source);
    const std::string format = r.require_string("format");
    if (format != "moecast-measured-profile-1")
        r.fail("format", "expected \"moecast-measured-profile-1\", got \"" + format + "\"");
    MeasuredProfile p;
    auto prov = r.table("provenance");
    if (!prov) r.fail("provenance", "missing required table [provenance]");
    ProfileProvenance& v = p.provenance;
    v.device_kind = prov->require_string("device_kind");
    if (v.device_kind != "cpu" && v.device_kind != "cuda")
        prov->fail("device_kind", "expected \"cpu\" or \"cuda\", got \"" + v.device_kind + "\"");
    v.device = prov->require_string("device");
    v.host = prov->get_string("host", "");
    v.driver = prov->get_string("driver", "");
    v.clocks = prov->get_string("clocks", "");
    v.date = prov->require_string("date");
    v.commit = prov->get_string("commit", "");
    v.tool = prov->get_string("tool", "");
    v.grid = prov->get_string("grid", "");
    v.threads = prov->get_int("threads", 0);
    v.parallel_units = prov->require_int("parallel_units");
    if (v.parallel_units < 1) prov->fail("parallel_units", "expected a positive count of SMs or threads");
    v.warmup_reps = prov->get_int("warmup_reps", 0);
    v.reps = prov->get_int("reps", 0);
    v.rotate_bytes = prov->get_int("rotate_bytes", 0);
    v.cache_bytes = prov->get_int("cache_bytes", 0);
    if (v.cache_bytes < 0) prov->fail("cache_bytes", "expected bytes >= 0");
    v.private_cache_bytes = prov->get_int("private_cache_bytes", 0);
    if (v.private_cache_bytes < 0) prov->fail("private_cache_bytes", "expected bytes >= 0");
    prov->finish();
    r.finish();
    const toml::node* n = t.get("sample");
    if (n) {
        const toml::array* a = n->as_array();
        if (!a) throw InputError(source, 0, "sample", "expected an array of tables ([[sample]])");
        int64_t i = 0;
        for (const auto& e : *a) {
            const toml::table* st = e.as_table();
            if (!st) throw InputError(source, 0, "sample", "expected an array of tables ([[sample]])");
            p.samples.push_back(sample_from_toml(*st, source, "sample[" + std::to_string(i++) + "]"));
        }
    }
    if (p.samples.empty()) throw InputError(source, 0, "sample", "the profile has no [[sample]] tables");
    return p;
}

MeasuredProfile read_measured_profile(const std::string& path) {
    return measured_profile_from_toml(parse_toml_file(path), path);
}

void write_text_file(const std::string& path, const std::string& text) {
    const std::filesystem::path target(path);
    if (target.has_parent_path() && !std::filesystem::exists(target.parent_path()))
        std::filesystem::create_directories(target.parent_path());
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw IoError("cannot create " + tmp + ": " + std::strerror(errno));
        out << text;
        out.flush();
        if (!out) throw IoError("cannot write " + tmp + ": " + std::strerror(errno));
    }
    std::filesystem::rename(tmp, target);
}

std::string make_shape_key(const std::map<std::string, int64_t>& dims, const std::string& histogram) {
    std::string key;
    for (const auto& [k, v] : dims) key += (key.empty() ? "" : ",") + k + "=" + std::to_string(v);
    if (!histogram.empty()) key += ";hist=" + histogram;
    return key;
}

bool reads_routing(const std::string& kernel) {
    const OpInfo* op = find_op(kernel);
    return !op || op->reads_routing;
}

std::string work_shape_key(const KernelSample& s) {
    if (reads_routing(s.kernel)) return s.shape_key;
    return s.shape_key.substr(0, s.shape_key.find(";hist="));
}

}  // namespace moecast::sim

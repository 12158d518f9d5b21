// CPU profiler backend: steady_clock around batches of launches, warm-up apart, inputs rotated;
// also the process CPU time per launch (divided by the threads), which is what a launch costs
// with the cores to itself when other processes share the machine. Records the CPU model, kernel
// release and the cores' clock before and after the run (/proc/cpuinfo "cpu MHz"); no perf counters.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include <time.h>

#include <sys/utsname.h>
#include <unistd.h>

#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {
namespace {

std::string cpuinfo_field(const std::string& field) {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field, 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
        }
    }
    return "";
}

// The CPU as calibrate must tell it apart: a VM's model name can be the same bare "AMD EPYC" on
// two core generations whose timings differ twofold (512-bit FMA or not), so the family, model and
// stepping and the widest vector ISA go with it: "AMD EPYC (family 26 model 2 stepping 1, avx512)".
std::string cpu_identity() {
    std::string name = cpuinfo_field("model name");
    if (name.empty()) name = "unknown CPU";
    const std::string family = cpuinfo_field("cpu family"), model = cpuinfo_field("model\t"),
                      stepping = cpuinfo_field("stepping");
    std::istringstream flags(cpuinfo_field("flags"));
    std::string flag, isa;
    while (flags >> flag) {
        if (flag == "avx512f") isa = "avx512";
        if (flag == "avx2" && isa.empty()) isa = "avx2";
    }
    std::string detail;
    if (!family.empty()) detail = "family " + family + " model " + model + " stepping " + stepping;
    if (!isa.empty()) {
        if (!detail.empty()) detail += ", ";
        detail += isa;
    }
    if (!detail.empty()) name += " (" + detail + ")";
    return name;
}

// Mean "cpu MHz" over cores, as text.
std::string cpu_mhz() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    double sum = 0;
    int n = 0;
    while (std::getline(in, line))
        if (line.rfind("cpu MHz", 0) == 0) {
            sum += std::stod(line.substr(line.find(':') + 1));
            ++n;
        }
    if (n == 0) return "unknown";
    std::ostringstream os;
    os << static_cast<int64_t>(std::lround(sum / n));
    return os.str();
}

// Size of cpu0's cache of `level` (/sys/devices/system/cpu/cpu0/cache/index*/), in bytes, or of
// its highest level when `level` is 0; 0 when sysfs does not say (the size is written "32768K").
int64_t cache_level_bytes(int64_t level = 0) {
    int64_t best_level = 0, bytes = 0;
    for (int i = 0; i < 8; ++i) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
        std::ifstream level_in(dir + "level"), size_in(dir + "size");
        int64_t own = 0;
        std::string size;
        if (!(level_in >> own) || !(size_in >> size) || size.empty()) continue;
        if (level > 0 ? own != level : own < best_level) continue;
        int64_t scale = 1;
        if (size.back() == 'K') scale = 1024;
        if (size.back() == 'M') scale = 1024 * 1024;
        try {
            bytes = std::stoll(size) * scale;
            best_level = own;
        } catch (const std::exception&) {}
    }
    return bytes;
}

// CPU seconds used by all threads of this process so far.
double process_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

class CpuProfiler : public Profiler {
public:
    explicit CpuProfiler(int threads) : threads_(threads), mhz_before_(cpu_mhz()) {}

    sim::ProfileProvenance provenance() const override {
        sim::ProfileProvenance p;
        p.device_kind = "cpu";
        p.device = cpu_identity();
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0) p.host = host;
        utsname u{};
        if (uname(&u) == 0) p.driver = std::string(u.sysname) + " " + u.release;
        p.clocks = "cpu MHz (mean over cores) " + mhz_before_ + " before";
        p.threads = threads_;
        p.parallel_units = threads_;
        p.cache_bytes = cache_level_bytes();
        if (const int64_t l2 = cache_level_bytes(2); l2 < p.cache_bytes) p.private_cache_bytes = l2;
        return p;
    }

    sim::KernelSample measure(const CaseSpec& spec, const CaseRunner& runner, const MeasureOptions& options) override {
        using clock = std::chrono::steady_clock;
        const int64_t slots = std::max<int64_t>(runner.slots, 1);
        int64_t slot = 0;
        auto next = [&] { return slot++ % slots; };
        // Warm-up, also estimating one launch to size the batches.
        double single_s = 0;
        for (int64_t i = 0; i < std::max<int64_t>(options.warmup_reps, 1); ++i) {
            const auto t0 = clock::now();
            runner.run(next());
            single_s = std::chrono::duration<double>(clock::now() - t0).count();
        }
        const int64_t batch = std::clamp<int64_t>(
            static_cast<int64_t>(std::ceil(options.min_timing_s / std::max(single_s, 1e-9))), 1, 4096);
        std::vector<double> times, cpu_times;
        for (int64_t r = 0; r < options.reps; ++r) {
            const double c0 = process_cpu_s();
            const auto t0 = clock::now();
            for (int64_t b = 0; b < batch; ++b) runner.run(next());
            const auto t1 = clock::now();
            const double c1 = process_cpu_s();
            times.push_back(std::chrono::duration<double>(t1 - t0).count() / static_cast<double>(batch));
            cpu_times.push_back((c1 - c0) / static_cast<double>(batch * threads_));
        }
        sim::KernelSample s = spec.meta;
        apply_stats(s, time_stats(times), options.reps);
        s.cpu_s = time_stats(cpu_times).median_s;
        return s;
    }

    void finish(sim::ProfileProvenance& p) override {
        p.clocks = "cpu MHz (mean over cores) " + mhz_before_ + " before, " + cpu_mhz() + " after";
    }

private:
    int threads_;
    std::string mhz_before_;
};

double quantile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

TimeStats time_stats(std::vector<double> t) {
    TimeStats s;
    if (t.empty()) return s;
    std::sort(t.begin(), t.end());
    s.median_s = quantile(t, 0.5);
    s.p10_s = quantile(t, 0.1);
    s.p90_s = quantile(t, 0.9);
    s.min_s = t.front();
    s.max_s = t.back();
    return s;
}

void apply_stats(sim::KernelSample& s, const TimeStats& st, int64_t reps) {
    s.median_s = st.median_s;
    s.p10_s = st.p10_s;
    s.p90_s = st.p90_s;
    s.min_s = st.min_s;
    s.max_s = st.max_s;
    s.reps = reps;
}

int64_t rotation_slots(int64_t bytes_per_set, int64_t rotate_bytes, int64_t max_slots) {
    if (bytes_per_set <= 0 || rotate_bytes <= 0) return 1;
    return std::clamp<int64_t>((rotate_bytes + bytes_per_set - 1) / bytes_per_set, 1, max_slots);
}

std::unique_ptr<Profiler> make_cpu_profiler(int threads) { return std::make_unique<CpuProfiler>(threads); }

}  // namespace moecast::kernels::profile

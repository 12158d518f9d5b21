// CUDA profiler backend: kernel time from the CUPTI Activity API (CONCURRENT_KERNEL records, never
// KIND_KERNEL, which serializes), joined to repetitions by external correlation ids (CUSTOM0); the
// time of one launch of an op is the span from its first kernel's start to its last kernel's end.
// Counters (optional) come from a separate Range Profiler pass. Nothing here touches CUPTI or the
// driver before cudaGetDeviceCount has found a device (libcupti crashes without a driver).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include <cuda_runtime_api.h>
#include <cupti.h>

#include "kernels/cuda/context.h"
#include "kernels/profile/cuda/activity_profiler.h"
#include "kernels/profile/cuda/cupti_host.h"
#include "kernels/profile/cuda/range_profiler.h"
#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {
namespace {

constexpr size_t kBufferBytes = 8u << 20;

struct KernelRecord {
    uint32_t correlation = 0;
    uint64_t start_ns = 0, end_ns = 0;
    std::string name;
};

// Records delivered by CUPTI's buffer callbacks (any thread); drained after each case.
std::mutex g_mutex;
std::vector<KernelRecord> g_kernels;
std::map<uint32_t, uint64_t> g_external;  // CUPTI correlation id -> our external id
uint64_t g_dropped = 0;

void check(CUptiResult r, const char* what) {
    if (r == CUPTI_SUCCESS) return;
    const char* msg = nullptr;
    cuptiGetResultString(r, &msg);
    throw std::runtime_error(std::string(what) + " failed: " + (msg ? msg : "unknown CUPTI error"));
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
    *size = kBufferBytes;
    *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t, size_t valid) {
    std::lock_guard<std::mutex> lock(g_mutex);
    CUpti_Activity* record = nullptr;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
            const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
            g_kernels.push_back({k->correlationId, k->start, k->end, k->name ? k->name : "?"});
        } else if (record->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
            const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
            if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
                g_external[e->correlationId] = e->externalId;
        }
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS) g_dropped += dropped;
    std::free(buffer);
}

std::string device_attribute_text(int device) {
    int sm_khz = 0, mem_khz = 0;
    cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, device);
    cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device);
    char buf[160];
    std::snprintf(buf, sizeof buf, "max SM clock %d MHz, memory clock %d MHz (device attributes; not locked)",
                  sm_khz / 1000, mem_khz / 1000);
    return buf;
}

class CudaProfiler : public Profiler {
public:
    explicit CudaProfiler(bool counters) {
        std::string why;
        if (cuda_device_count(&why) == 0) throw DeviceUnavailable("no CUDA device (" + why + ")");
        if (cudaSetDevice(0) != cudaSuccess || cudaFree(nullptr) != cudaSuccess)
            throw DeviceUnavailable("cannot create a CUDA context on device 0");
        check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
        check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
        check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION),
              "cuptiActivityEnable(EXTERNAL_CORRELATION)");
        // External-correlation records are emitted for recorded API calls only: record the runtime
        // and driver APIs too (cuBLAS launches through the driver); buffer_completed ignores them.
        check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME), "cuptiActivityEnable(RUNTIME)");
        check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER), "cuptiActivityEnable(DRIVER)");
        if (counters) {
            try {
                range_ = std::make_unique<RangeProfiler>(0, counter_metrics(), counter_keys());
                if (range_->passes() != 1)
                    std::fprintf(stderr, "profile: warning: the counter set needs %lld passes on %s (kernel replay)\n",
                                 static_cast<long long>(range_->passes()), range_->chip().c_str());
            } catch (const std::exception& e) {
                // Counters are optional (e.g. RmProfilingAdminOnly=1 without root): keep timing.
                std::fprintf(stderr, "profile: warning: counters disabled: %s\n", e.what());
                counter_error_ = e.what();
            }
        }
    }

    ~CudaProfiler() override {
        cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
        cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        cuptiActivityDisable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
        cuptiActivityDisable(CUPTI_ACTIVITY_KIND_RUNTIME);
        cuptiActivityDisable(CUPTI_ACTIVITY_KIND_DRIVER);
    }

    sim::ProfileProvenance provenance() const override {
        sim::ProfileProvenance p;
        p.device_kind = "cuda";
        cudaDeviceProp prop{};
        cudaGetDeviceProperties(&prop, 0);
        p.device = prop.name;
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        uint32_t cupti = 0;
        cuptiGetVersion(&cupti);
        p.driver = "CUDA driver " + std::to_string(driver) + ", runtime " + std::to_string(runtime) + ", CUPTI API " +
                   std::to_string(cupti) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                   (range_                   ? ", counters on " + range_->chip()
                    : counter_error_.empty() ? ""
                                             : ", counters off: " + counter_error_);
        p.clocks = device_attribute_text(0);
        p.parallel_units = prop.multiProcessorCount;
        p.cache_bytes = prop.l2CacheSize;
        p.threads = 0;
        return p;
    }

    sim::KernelSample measure(const CaseSpec& spec, const CaseRunner& runner, const MeasureOptions& o) override {
        const int64_t slots = std::max<int64_t>(runner.slots, 1);
        int64_t slot = 0;
        for (int64_t i = 0; i < o.warmup_reps; ++i) runner.run(slot++ % slots);
        sync("warm-up");
        drain();  // drop warm-up records
        const uint64_t base = next_id_;
        // Each repetition is synchronised and bracketed by CUPTI timestamps (the activity records'
        // time base): the fallback join when external-correlation records do not arrive.
        std::vector<std::pair<uint64_t, uint64_t>> windows(static_cast<size_t>(o.reps));
        for (int64_t r = 0; r < o.reps; ++r) {
            cuptiGetTimestamp(&windows[static_cast<size_t>(r)].first);
            check(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0,
                                                         base + static_cast<uint64_t>(r)),
                  "cuptiActivityPushExternalCorrelationId");
            runner.run(slot++ % slots);
            uint64_t popped = 0;
            check(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &popped),
                  "cuptiActivityPopExternalCorrelationId");
            sync("timed repetition");
            cuptiGetTimestamp(&windows[static_cast<size_t>(r)].second);
        }
        next_id_ += static_cast<uint64_t>(o.reps);
        sync("timed repetitions");
        check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
        std::vector<KernelRecord> kernels;
        std::map<uint32_t, uint64_t> external;
        {
            std::lock_guard<std::mutex> lock(g_mutex);
            kernels.swap(g_kernels);
            external.swap(g_external);
        }
        // Span of each repetition's kernels; kernel names in first-seen order.
        std::map<uint64_t, std::pair<uint64_t, uint64_t>> span;
        std::vector<std::string> names;
        std::set<std::string> seen;
        for (const auto& k : kernels) {
            auto it = external.find(k.correlation);
            if (it == external.end() || it->second < base || it->second >= base + static_cast<uint64_t>(o.reps))
                continue;
            auto [s, inserted] = span.try_emplace(it->second, k.start_ns, k.end_ns);
            if (!inserted) {
                s->second.first = std::min(s->second.first, k.start_ns);
                s->second.second = std::max(s->second.second, k.end_ns);
            }
            if (seen.insert(k.name).second && names.size() < 8) names.push_back(k.name);
        }
        if (static_cast<int64_t>(span.size()) != o.reps) {
            // Join by time window instead: a kernel belongs to the repetition whose window holds it.
            span.clear();
            for (const auto& k : kernels) {
                for (size_t r = 0; r < windows.size(); ++r) {
                    if (k.start_ns < windows[r].first || k.end_ns > windows[r].second) continue;
                    auto [sp, inserted] = span.try_emplace(base + r, k.start_ns, k.end_ns);
                    if (!inserted) {
                        sp->second.first = std::min(sp->second.first, k.start_ns);
                        sp->second.second = std::max(sp->second.second, k.end_ns);
                    }
                    if (seen.insert(k.name).second && names.size() < 8) names.push_back(k.name);
                    break;
                }
            }
            if (static_cast<int64_t>(span.size()) == o.reps && !joined_by_window_) {
                joined_by_window_ = true;
                std::fprintf(stderr, "profile: note: no external-correlation records; kernels joined to "
                                     "repetitions by CUPTI timestamp windows\n");
            }
        }
        if (static_cast<int64_t>(span.size()) != o.reps)
            throw std::runtime_error("CUPTI returned kernel records for " + std::to_string(span.size()) + " of " +
                                     std::to_string(o.reps) + " repetitions of " + spec.meta.kernel + " " +
                                     spec.meta.shape_key + " (dropped records: " + std::to_string(g_dropped) + ")");
        std::vector<double> times;
        for (const auto& [id, se] : span) times.push_back(static_cast<double>(se.second - se.first) * 1e-9);
        sim::KernelSample s = spec.meta;
        apply_stats(s, time_stats(times), o.reps);
        s.device_kernels = names;
        if (range_ && o.counters) {
            check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityDisable");
            try {
                s.counters = range_->measure([&] { runner.run(0); });
                s.counters["gpu_time_s"] *= 1e-9;  // gpu__time_duration is in ns
            } catch (const std::exception& e) {
                std::fprintf(stderr, "profile: warning: counters for %s failed: %s\n", spec.meta.kernel.c_str(),
                             e.what());
            }
            check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable");
            drain();
        }
        return s;
    }

private:
    static void sync(const char* what) {
        const cudaError_t e = cudaDeviceSynchronize();
        if (e != cudaSuccess)
            throw std::runtime_error(std::string("CUDA error after ") + what + ": " + cudaGetErrorString(e));
    }
    static void drain() {
        cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
        std::lock_guard<std::mutex> lock(g_mutex);
        g_kernels.clear();
        g_external.clear();
    }

    std::unique_ptr<RangeProfiler> range_;
    std::string counter_error_;
    bool joined_by_window_ = false;  // external-correlation records missing: joined by timestamps
    uint64_t next_id_ = 1;
};

}  // namespace

std::unique_ptr<Profiler> make_activity_profiler(bool counters) { return std::make_unique<CudaProfiler>(counters); }

}  // namespace moecast::kernels::profile

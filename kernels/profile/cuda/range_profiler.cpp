// The Range Profiler sequence of docs/references.md (CUPTI; see range_profiler.h).
// The driver's cuCtxGetCurrent is fetched through the runtime (cudaGetDriverEntryPointByVersion)
// so the binary never links libcuda and still starts on machines without a driver.
#include "kernels/profile/cuda/range_profiler.h"

#include <stdexcept>

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <cupti_profiler_host.h>
#include <cupti_profiler_target.h>
#include <cupti_range_profiler.h>
#include <cupti_result.h>
#include <cupti_target.h>

#include "kernels/profile/cuda/cupti_host.h"

namespace moecast::kernels::profile {
namespace {

constexpr size_t kMaxRanges = 256;  // kernels per op profiled in one pass

void check(CUptiResult r, const char* what) {
    if (r == CUPTI_SUCCESS) return;
    const char* msg = nullptr;
    cuptiGetResultString(r, &msg);
    throw std::runtime_error(std::string(what) + " failed: " + (msg ? msg : "unknown CUPTI error") + " (" +
                             std::to_string(r) + ")");
}

CUcontext current_context() {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 4000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess || fn == nullptr)
        throw std::runtime_error("cannot resolve cuCtxGetCurrent through the CUDA runtime");
    CUcontext ctx = nullptr;
    if (reinterpret_cast<PFN_cuCtxGetCurrent_v4000>(fn)(&ctx) != CUDA_SUCCESS || ctx == nullptr)
        throw std::runtime_error("no current CUDA context for the range profiler");
    return ctx;
}

}  // namespace

struct RangeProfiler::Impl {
    std::vector<std::string> metrics, keys;
    std::vector<const char*> names;
    std::string chip;
    int64_t passes = 0;
    CUcontext ctx = nullptr;
    std::vector<uint8_t> availability, config, counter_data;
    std::unique_ptr<CuptiHost> host;
    CUpti_RangeProfiler_Object* object = nullptr;
    bool initialized = false;
};

RangeProfiler::RangeProfiler(int device, const std::vector<std::string>& metrics, const std::vector<std::string>& keys)
    : impl_(std::make_unique<Impl>()) {
    Impl& s = *impl_;
    s.metrics = metrics;
    s.keys = keys;
    for (const auto& m : s.metrics) s.names.push_back(m.c_str());
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(nullptr) != cudaSuccess)
        throw std::runtime_error("cannot make a CUDA context current on device " + std::to_string(device));
    s.ctx = current_context();
    auto init = cupti_params<CUpti_Profiler_Initialize_Params>(CUpti_Profiler_Initialize_Params_STRUCT_SIZE);
    check(cuptiProfilerInitialize(&init), "cuptiProfilerInitialize");
    s.initialized = true;
    auto chip = cupti_params<CUpti_Device_GetChipName_Params>(CUpti_Device_GetChipName_Params_STRUCT_SIZE);
    chip.deviceIndex = static_cast<size_t>(device);
    check(cuptiDeviceGetChipName(&chip), "cuptiDeviceGetChipName");
    s.chip = chip.pChipName;
    auto avail = cupti_params<CUpti_Profiler_GetCounterAvailability_Params>(
        CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE);
    avail.ctx = s.ctx;
    check(cuptiProfilerGetCounterAvailability(&avail), "cuptiProfilerGetCounterAvailability (size)");
    s.availability.resize(avail.counterAvailabilityImageSize);
    avail.pCounterAvailabilityImage = s.availability.data();
    check(cuptiProfilerGetCounterAvailability(&avail), "cuptiProfilerGetCounterAvailability");
    s.host = std::make_unique<CuptiHost>(s.chip, s.availability.data());
    s.config = s.host->config_image(s.metrics);
    auto np =
        cupti_params<CUpti_Profiler_Host_GetNumOfPasses_Params>(CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE);
    np.configImageSize = s.config.size();
    np.pConfigImage = s.config.data();
    check(cuptiProfilerHostGetNumOfPasses(&np), "cuptiProfilerHostGetNumOfPasses");
    s.passes = static_cast<int64_t>(np.numOfPasses);
    auto enable = cupti_params<CUpti_RangeProfiler_Enable_Params>(CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE);
    enable.ctx = s.ctx;
    check(cuptiRangeProfilerEnable(&enable), "cuptiRangeProfilerEnable");
    s.object = enable.pRangeProfilerObject;
    auto size = cupti_params<CUpti_RangeProfiler_GetCounterDataSize_Params>(
        CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE);
    size.pRangeProfilerObject = s.object;
    size.pMetricNames = s.names.data();
    size.numMetrics = s.names.size();
    size.maxNumOfRanges = kMaxRanges;
    size.maxNumRangeTreeNodes = kMaxRanges;
    check(cuptiRangeProfilerGetCounterDataSize(&size), "cuptiRangeProfilerGetCounterDataSize");
    s.counter_data.resize(size.counterDataSize);
}

RangeProfiler::~RangeProfiler() {
    Impl& s = *impl_;
    if (s.object) {
        auto p = cupti_params<CUpti_RangeProfiler_Disable_Params>(CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE);
        p.pRangeProfilerObject = s.object;
        cuptiRangeProfilerDisable(&p);
    }
    s.host.reset();
    if (s.initialized) {
        auto p = cupti_params<CUpti_Profiler_DeInitialize_Params>(CUpti_Profiler_DeInitialize_Params_STRUCT_SIZE);
        cuptiProfilerDeInitialize(&p);
    }
}

const std::string& RangeProfiler::chip() const { return impl_->chip; }
int64_t RangeProfiler::passes() const { return impl_->passes; }

std::map<std::string, double> RangeProfiler::measure(const std::function<void()>& launch) {
    Impl& s = *impl_;
    auto init = cupti_params<CUpti_RangeProfiler_CounterDataImage_Initialize_Params>(
        CUpti_RangeProfiler_CounterDataImage_Initialize_Params_STRUCT_SIZE);
    init.pRangeProfilerObject = s.object;
    init.counterDataSize = s.counter_data.size();
    init.pCounterData = s.counter_data.data();
    check(cuptiRangeProfilerCounterDataImageInitialize(&init), "cuptiRangeProfilerCounterDataImageInitialize");
    auto cfg = cupti_params<CUpti_RangeProfiler_SetConfig_Params>(CUpti_RangeProfiler_SetConfig_Params_STRUCT_SIZE);
    cfg.pRangeProfilerObject = s.object;
    cfg.configSize = s.config.size();
    cfg.pConfig = s.config.data();
    cfg.counterDataImageSize = s.counter_data.size();
    cfg.pCounterDataImage = s.counter_data.data();
    cfg.range = CUPTI_AutoRange;
    cfg.replayMode = CUPTI_KernelReplay;
    cfg.maxRangesPerPass = kMaxRanges;
    cfg.numNestingLevels = 1;
    cfg.minNestingLevel = 1;
    cfg.passIndex = 0;
    cfg.targetNestingLevel = 1;
    check(cuptiRangeProfilerSetConfig(&cfg), "cuptiRangeProfilerSetConfig");
    auto start = cupti_params<CUpti_RangeProfiler_Start_Params>(CUpti_RangeProfiler_Start_Params_STRUCT_SIZE);
    start.pRangeProfilerObject = s.object;
    check(cuptiRangeProfilerStart(&start), "cuptiRangeProfilerStart");
    launch();
    if (cudaDeviceSynchronize() != cudaSuccess)
        throw std::runtime_error("cudaDeviceSynchronize after a counter pass failed");
    auto stop = cupti_params<CUpti_RangeProfiler_Stop_Params>(CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE);
    stop.pRangeProfilerObject = s.object;
    check(cuptiRangeProfilerStop(&stop), "cuptiRangeProfilerStop");
    auto decode =
        cupti_params<CUpti_RangeProfiler_DecodeData_Params>(CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE);
    decode.pRangeProfilerObject = s.object;
    check(cuptiRangeProfilerDecodeData(&decode), "cuptiRangeProfilerDecodeData");
    auto info = cupti_params<CUpti_RangeProfiler_GetCounterDataInfo_Params>(
        CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE);
    info.pCounterDataImage = s.counter_data.data();
    info.counterDataImageSize = s.counter_data.size();
    check(cuptiRangeProfilerGetCounterDataInfo(&info), "cuptiRangeProfilerGetCounterDataInfo");
    std::map<std::string, double> sums;
    for (const auto& k : s.keys) sums[k] = 0;
    for (size_t r = 0; r < info.numTotalRanges; ++r) {
        const std::vector<double> v = s.host->evaluate(s.counter_data, r, s.metrics);
        for (size_t i = 0; i < v.size() && i < s.keys.size(); ++i) sums[s.keys[i]] += v[i];
    }
    sums["counter_ranges"] = static_cast<double>(info.numTotalRanges);
    sums["counter_ranges_dropped"] = static_cast<double>(decode.numOfRangeDropped);
    return sums;
}

}  // namespace moecast::kernels::profile

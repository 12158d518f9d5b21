// Profiler Host API wrappers (see cupti_host.h).
#include "kernels/profile/cuda/cupti_host.h"

#include <stdexcept>

#include <cupti_profiler_host.h>
#include <cupti_result.h>

namespace moecast::kernels::profile {
namespace {

std::string cupti_error(CUptiResult r, const char* what) {
    const char* msg = nullptr;
    cuptiGetResultString(r, &msg);
    return std::string(what) + " failed: " + (msg ? msg : "unknown CUPTI error") + " (" + std::to_string(r) + ")";
}

}  // namespace

const std::vector<std::string>& counter_metrics() {
    static const std::vector<std::string> m = {"gpu__time_duration.sum", "dram__bytes_read.sum",
                                               "dram__bytes_write.sum", "sm__ops_path_tensor_src_bf16_dst_fp32.sum"};
    return m;
}

const std::vector<std::string>& counter_keys() {
    static const std::vector<std::string> k = {"gpu_time_s", "dram_bytes_read", "dram_bytes_write", "tensor_ops_bf16"};
    return k;
}

std::vector<std::string> cupti_supported_chips(std::string* error) {
    auto p = cupti_params<CUpti_Profiler_Host_GetSupportedChips_Params>(
        CUpti_Profiler_Host_GetSupportedChips_Params_STRUCT_SIZE);
    const CUptiResult r = cuptiProfilerHostGetSupportedChips(&p);
    std::vector<std::string> out;
    if (r != CUPTI_SUCCESS) {
        if (error) *error = cupti_error(r, "cuptiProfilerHostGetSupportedChips");
        return out;
    }
    for (size_t i = 0; i < p.numChips; ++i) out.emplace_back(p.ppChipNames[i]);
    return out;
}

struct CuptiHost::Impl {
    CUpti_Profiler_Host_Object* obj = nullptr;
};

CuptiHost::CuptiHost(const std::string& chip, const uint8_t* availability) : impl_(new Impl) {
    auto p = cupti_params<CUpti_Profiler_Host_Initialize_Params>(CUpti_Profiler_Host_Initialize_Params_STRUCT_SIZE);
    p.profilerType = CUPTI_PROFILER_TYPE_RANGE_PROFILER;
    p.pChipName = chip.c_str();
    p.pCounterAvailabilityImage = availability;
    const CUptiResult r = cuptiProfilerHostInitialize(&p);
    if (r != CUPTI_SUCCESS) {
        delete impl_;
        throw std::runtime_error(cupti_error(r, "cuptiProfilerHostInitialize"));
    }
    impl_->obj = p.pHostObject;
}

CuptiHost::~CuptiHost() {
    auto p = cupti_params<CUpti_Profiler_Host_Deinitialize_Params>(CUpti_Profiler_Host_Deinitialize_Params_STRUCT_SIZE);
    p.pHostObject = impl_->obj;
    cuptiProfilerHostDeinitialize(&p);
    delete impl_;
}

bool CuptiHost::has_metric(const std::string& metric) {
    auto p = cupti_params<CUpti_Profiler_Host_GetMetricProperties_Params>(
        CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE);
    p.pHostObject = impl_->obj;
    p.pMetricName = metric.c_str();
    return cuptiProfilerHostGetMetricProperties(&p) == CUPTI_SUCCESS;
}

std::vector<uint8_t> CuptiHost::config_image(const std::vector<std::string>& metrics) {
    std::vector<const char*> names;
    for (const auto& m : metrics) names.push_back(m.c_str());
    auto add = cupti_params<CUpti_Profiler_Host_ConfigAddMetrics_Params>(
        CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE);
    add.pHostObject = impl_->obj;
    add.ppMetricNames = names.data();
    add.numMetrics = names.size();
    CUptiResult r = cuptiProfilerHostConfigAddMetrics(&add);
    if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error(r, "cuptiProfilerHostConfigAddMetrics"));
    auto size = cupti_params<CUpti_Profiler_Host_GetConfigImageSize_Params>(
        CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE);
    size.pHostObject = impl_->obj;
    r = cuptiProfilerHostGetConfigImageSize(&size);
    if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error(r, "cuptiProfilerHostGetConfigImageSize"));
    std::vector<uint8_t> image(size.configImageSize);
    auto get =
        cupti_params<CUpti_Profiler_Host_GetConfigImage_Params>(CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE);
    get.pHostObject = impl_->obj;
    get.configImageSize = image.size();
    get.pConfigImage = image.data();
    r = cuptiProfilerHostGetConfigImage(&get);
    if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error(r, "cuptiProfilerHostGetConfigImage"));
    return image;
}

std::vector<double> CuptiHost::evaluate(const std::vector<uint8_t>& counter_data, size_t range,
                                        const std::vector<std::string>& metrics) {
    std::vector<const char*> names;
    for (const auto& m : metrics) names.push_back(m.c_str());
    std::vector<double> values(metrics.size(), 0.0);
    auto p = cupti_params<CUpti_Profiler_Host_EvaluateToGpuValues_Params>(
        CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE);
    p.pHostObject = impl_->obj;
    p.pCounterDataImage = counter_data.data();
    p.counterDataImageSize = counter_data.size();
    p.rangeIndex = range;
    p.ppMetricNames = names.data();
    p.numMetrics = names.size();
    p.pMetricValues = values.data();
    const CUptiResult r = cuptiProfilerHostEvaluateToGpuValues(&p);
    if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error(r, "cuptiProfilerHostEvaluateToGpuValues"));
    return values;
}

MetricCheck cupti_check_metrics(const std::string& chip, const std::vector<std::string>& metrics,
                                const uint8_t* counter_availability) {
    MetricCheck c;
    c.chip = chip;
    try {
        CuptiHost host(chip, counter_availability);
        for (const auto& m : metrics)
            if (!host.has_metric(m)) c.missing.push_back(m);
        if (!c.missing.empty()) return c;
        std::vector<uint8_t> image = host.config_image(metrics);
        auto p = cupti_params<CUpti_Profiler_Host_GetNumOfPasses_Params>(
            CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE);
        p.configImageSize = image.size();
        p.pConfigImage = image.data();
        const CUptiResult r = cuptiProfilerHostGetNumOfPasses(&p);
        if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error(r, "cuptiProfilerHostGetNumOfPasses"));
        c.passes = static_cast<int64_t>(p.numOfPasses);
    } catch (const std::exception& e) {
        c.error = e.what();
    }
    return c;
}

}  // namespace moecast::kernels::profile

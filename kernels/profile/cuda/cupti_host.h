// CUPTI Profiler Host API: metric names and pass counts for a chip, computed on the host alone
// (no GPU, no driver needed; verified on the build machine), so the counter set the Range Profiler
// uses can be checked in CI. On a device, pass the counter-availability image for exact passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moecast::kernels::profile {

// A zeroed CUPTI parameter struct with its structSize set (every CUPTI call takes one).
template <class P> P cupti_params(size_t struct_size) {
    P p{};
    p.structSize = struct_size;
    return p;
}

// The one-pass set the range profiler collects on Hopper (metrics and pass counts:
// docs/references.md, CUPTI): duration, DRAM bytes read and written, BF16 tensor-pipe ops.
const std::vector<std::string>& counter_metrics();
// The names those metrics are stored under in a sample's [counters] table, in the same order.
const std::vector<std::string>& counter_keys();

struct MetricCheck {
    std::string chip;
    std::vector<std::string> missing;  // names the chip does not know
    int64_t passes = 0;                // replay passes the whole set needs (0 if not computed)
    std::string error;                 // non-empty if the Host API failed
};

// Chips the local CUPTI knows (e.g. "GH100"); empty with `error` set if the Host API fails.
std::vector<std::string> cupti_supported_chips(std::string* error = nullptr);

// Checks `metrics` for `chip`; availability image optional (nullptr offline).
MetricCheck cupti_check_metrics(const std::string& chip, const std::vector<std::string>& metrics,
                                const uint8_t* counter_availability = nullptr);

// A Profiler Host object for one chip (throws std::runtime_error naming the CUPTI error): the
// configuration image for the Range Profiler, and evaluation of decoded counter data.
class CuptiHost {
public:
    CuptiHost(const std::string& chip, const uint8_t* counter_availability);
    ~CuptiHost();
    CuptiHost(const CuptiHost&) = delete;
    CuptiHost& operator=(const CuptiHost&) = delete;

    std::vector<uint8_t> config_image(const std::vector<std::string>& metrics);
    // Values of `metrics` for range `range` of a decoded counter-data image.
    std::vector<double> evaluate(const std::vector<uint8_t>& counter_data, size_t range,
                                 const std::vector<std::string>& metrics);
    bool has_metric(const std::string& metric);

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace moecast::kernels::profile

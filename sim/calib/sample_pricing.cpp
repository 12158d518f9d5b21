// Pricing a measured sample through the op registry (see sample_pricing.h).
#include "sim/calib/sample_pricing.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "sim/core/error.h"
#include "sim/cost/op_registry.h"

namespace moecast::sim {
namespace {

int64_t dim(const KernelSample& s, const char* key, int64_t fallback = 0) {
    auto it = s.dims.find(key);
    return it == s.dims.end() ? fallback : it->second;
}

// An op the cost model lists as several kernels, each priced as the step prices it.
std::vector<SampleKernel> part_kernels(const KernelSample& s, std::span<const OpId> parts, const OpShape& shape,
                                       int64_t elem, const HardwareProfile& hw, Precision p) {
    std::vector<SampleKernel> out;
    double others = 0;  // launches of every part but the first
    for (OpId id : parts) {
        const OpInfo& part = op_info(id);
        SampleKernel k;
        k.cls = part.cls;
        k.router_gemm = part.router_gemm;
        k.cost = part.cost(shape, elem);
        if (part.router_gemm)
            k.shape = router_gemm_shape(shape.t, static_cast<double>(shape.e), p, hw);
        else
            k.shape.precision = Precision::fp32;
        k.shape.launches = part.launches;
        if (!out.empty()) others += part.launches;
        out.push_back(k);
    }
    if (!s.device_kernels.empty())
        out.front().shape.launches = std::max(1.0, static_cast<double>(s.device_kernels.size()) - others);
    return out;
}

}  // namespace

KernelClass kernel_class_from_string(const std::string& name, const std::string& source) {
    if (name == "memory") return KernelClass::elementwise;
    std::string names;
    for (int i = 0; i < kKernelClassCount; ++i) {
        const auto c = static_cast<KernelClass>(i);
        if (name == to_string(c)) return c;
        names += (i ? ", " : "") + std::string(to_string(c));
    }
    throw InputError(source, 0, "class", "unknown kernel class \"" + name + "\" (expected " + names + ")");
}

KernelClass sample_class(const KernelSample& s, const std::string& source) {
    const KernelClass c = kernel_class_from_string(s.kernel_class, source);
    if (c != KernelClass::elementwise) return c;
    const OpInfo* op = find_op(s.kernel);
    return op && falls_back_to_elementwise(op->cls) ? op->cls : c;
}

double sample_launches(const KernelSample& s) {
    if (!s.device_kernels.empty()) return static_cast<double>(s.device_kernels.size());
    const OpInfo* op = find_op(s.kernel);
    return op ? op->launches : 1;
}

SampleKernel sample_kernel(const KernelSample& s, KernelClass cls, const Efficiency& e, Precision p) {
    SampleKernel k;
    k.cls = cls;
    k.cost = OpCost{s.flops, s.bytes, s.matmul};
    k.shape.precision = p;
    const double bm = static_cast<double>(std::max<int64_t>(e.tile_m, 1));
    const double bn = static_cast<double>(std::max<int64_t>(e.tile_n, 1));
    if (s.tokens_per_expert.empty()) k.shape.launches = sample_launches(s);
    const int64_t n = dim(s, "N"), kd = dim(s, "Kd");
    if (!s.matmul || n <= 0 || kd <= 0) return k;
    if (!s.tokens_per_expert.empty()) {
        // Exact per-expert tiles: M-grouped rows of each expert, or (wgrad) a fixed (Kd, N) output
        // per active expert.
        const OpInfo* op = find_op(s.kernel);
        const bool wgrad = op && is_weight_gradient(op->id);
        double tiles = 0, useful = 0, active = 0;
        for (int64_t te : s.tokens_per_expert) {
            if (te <= 0) continue;
            ++active;
            const double rows = wgrad ? static_cast<double>(kd) : static_cast<double>(te);
            tiles += std::ceil(rows / bm) * std::ceil(static_cast<double>(n) / bn);
            useful += rows * static_cast<double>(n);
        }
        k.shape.tiles = tiles;
        k.shape.useful_fraction = tiles > 0 ? std::min(1.0, useful / (tiles * bm * bn)) : 1.0;
        k.shape.launches = e.launch_per_group ? std::max(1.0, active) : 1.0;
    } else {
        const double m = static_cast<double>(dim(s, "M", dim(s, "T")));
        if (m <= 0) return k;
        k.shape.tiles = std::ceil(m / bm) * std::ceil(static_cast<double>(n) / bn);
        k.shape.useful_fraction = std::min(1.0, m * static_cast<double>(n) / (k.shape.tiles * bm * bn));
    }
    return k;
}

std::vector<SampleKernel> sample_kernels(const KernelSample& s, KernelClass cls, const HardwareProfile& hw,
                                         Precision p) {
    const OpInfo* op = find_op(s.kernel);
    // The generic class fitted on every memory-bound sample prices the other classes' ops by their
    // stored counts.
    if (!op || op->cls != cls) return {sample_kernel(s, cls, hw.eff(cls), p)};
    // Attention is priced as the backend's kernel runs it (Efficiency::backward_recomputes), not
    // in the form the profiler stored (the recomputing one).
    const std::optional<OpShape> shape = shape_from_dims(*op, s.dims, hw.eff(cls).backward_recomputes);
    if (!shape) return {sample_kernel(s, cls, hw.eff(cls), p)};
    const int64_t elem = s.dtype == "bf16" ? 2 : 4;
    const std::span<const OpId> parts = op_parts(op->id);
    if (!parts.empty()) return part_kernels(s, parts, *shape, elem, hw, p);
    SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
    k.cost = op->cost(*shape, elem);
    if (cls == KernelClass::router) k.shape.precision = Precision::fp32;  // the auxiliary losses
    return {k};
}

double predict_sample_s(const KernelSample& s, KernelClass cls, const HardwareProfile& hw, Precision p) {
    KernelTimeParts parts;
    for (const SampleKernel& k : sample_kernels(s, cls, hw, p))
        parts += kernel_time_parts(k.router_gemm ? router_gemm_efficiency(hw) : hw.eff(k.cls), k.cost, k.shape, hw);
    return op_time_s(parts, hw.eff(cls).launch_overlap) * hw.eff(cls).scale_of(s.kernel);
}

}  // namespace moecast::sim

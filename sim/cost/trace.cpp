// Chrome trace of one predicted step (see trace.h).
#include "sim/cost/trace.h"

#include <cerrno>
#include <cstring>
#include <cmath>
#include <fstream>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

constexpr int kCompute = 0;
constexpr int kComm = 1;

class Timeline {
public:
    Timeline(nlohmann::json& events, int max_events) : events_(events), max_events_(max_events) {}

    void event(const std::string& name, const char* cat, int tid, double dur_s, nlohmann::json args = {}) {
        if (dur_s <= 0) return;
        nlohmann::json e = {{"name", name}, {"cat", cat},         {"ph", "X"},         {"pid", 0},
                            {"tid", tid},   {"ts", now_s_ * 1e6}, {"dur", dur_s * 1e6}};
        if (!args.is_null()) e["args"] = std::move(args);
        events_.push_back(std::move(e));
        now_s_ += dur_s;
    }
    bool full() const { return static_cast<int>(events_.size()) >= max_events_; }
    double now_s() const { return now_s_; }

private:
    nlohmann::json& events_;
    int max_events_;
    double now_s_ = 0;
};

nlohmann::json kernel_args(const Kernel& k) {
    return {{"class", to_string(k.cls)},
            {"part", to_string(k.part)},
            {"flops", k.cost.flops},
            {"bytes", k.cost.bytes},
            {"precision", to_string(k.shape.precision)}};
}

bool in_layer(const Kernel& k, bool moe) {
    return k.scope == Scope::layer || (moe ? k.scope == Scope::moe_layer : k.scope == Scope::dense_layer);
}

// One micro-batch's forward (or backward) on this stage, layer by layer.
void micro_batch(Timeline& tl, const CostPrediction& p, bool forward) {
    const KernelList& ks = p.kernels;
    const StepShape& s = p.shape;
    const CommBreakdown& c = p.comm;
    const int layers = static_cast<int>(std::ceil(s.layers - 1e-9));
    const int moe_layers = static_cast<int>(std::lround(s.moe_layers));
    const int dense_layers = layers - moe_layers;
    const double fwd_repeats = p.layout.recompute == Recompute::full ? 2.0 : 1.0;
    // Exposed collectives per layer (the comm model gives per-micro-batch totals).
    const double a2a = s.moe_layers > 0 ? c.ep_bwd_exposed_s / (2.0 * s.moe_layers) : 0.0;
    const double tp_layer =
        s.layers > 0 ? (forward ? c.tp_fwd_exposed_s / fwd_repeats : c.tp_bwd_exposed_s) / s.layers : 0.0;
    auto stage_kernels = [&](Pass pass) {
        for (int i = 0; i < ks.size; ++i) {
            const Kernel& k = ks.items[static_cast<size_t>(i)];
            if (k.scope == Scope::stage && k.pass == pass)
                tl.event(k.name, "kernel", kCompute, k.time_s * k.per_micro, kernel_args(k));
        }
    };
    if (!forward) stage_kernels(Pass::backward);
    for (int j = 0; j < layers; ++j) {
        const int layer = forward ? j : layers - 1 - j;
        const bool moe = layer >= dense_layers;
        const std::string suffix = " L" + std::to_string(layer);
        if (!forward) {
            for (int i = 0; i < ks.size; ++i) {
                const Kernel& k = ks.items[static_cast<size_t>(i)];
                if (k.pass == Pass::recompute && in_layer(k, moe))
                    tl.event(std::string(k.name) + " (recompute)" + suffix, "recompute", kCompute, k.time_s,
                             kernel_args(k));
            }
            if (fwd_repeats > 1) {  // full recompute repeats the layer's forward collectives
                if (moe) tl.event("ep_a2a (recompute)" + suffix, "comm", kComm, 2.0 * a2a);
                tl.event("tp_collectives (recompute)" + suffix, "comm", kComm,
                         s.layers > 0 ? c.tp_fwd_exposed_s / fwd_repeats / s.layers : 0.0);
            }
        }
        for (int i = 0; i < ks.size; ++i) {
            const Kernel& k = ks.items[static_cast<size_t>(i)];
            if (k.pass != (forward ? Pass::forward : Pass::backward) || !in_layer(k, moe)) continue;
            tl.event(std::string(k.name) + suffix, "kernel", kCompute, k.time_s, kernel_args(k));
            // The all-to-alls follow dispatch and the expert GEMMs in each direction.
            const bool dispatch = k.op == OpId::permute || k.op == OpId::combine_bwd;
            if (moe && (dispatch || k.op == OpId::fc2 || k.op == OpId::fc1_wgrad))
                tl.event((dispatch ? "ep_dispatch_a2a" : "ep_combine_a2a") + suffix, "comm", kComm, a2a);
        }
        tl.event("tp_collectives" + suffix, "comm", kComm, tp_layer);
    }
    if (forward) stage_kernels(Pass::forward);
    tl.event("pp_send", "comm", kComm, 0.5 * c.pp_exposed_s);
}

}  // namespace

nlohmann::json chrome_trace(const CostPrediction& p, const std::string& title, int max_events) {
    nlohmann::json events = nlohmann::json::array();
    Timeline tl(events, max_events);
    const StepBreakdown& t = p.time;
    const ParallelLayout& l = p.layout;
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0}, {"args", {{"name", title}}}});
    events.push_back(
        {{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", kCompute}, {"args", {{"name", "compute"}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 0},
                      {"tid", kComm},
                      {"args", {{"name", "exposed communication"}}}});
    const double fill = l.pp > 1 ? static_cast<double>(l.pp - 1) / static_cast<double>(l.vp) * t.forward_s : 0.0;
    tl.event("pipeline fill (bubble)", "bubble", kCompute, fill);
    const int64_t micro = p.shape.micro_batches;
    for (int64_t i = 0; i < micro; ++i) {
        if (tl.full()) {
            tl.event("micro-batches " + std::to_string(i) + ".." + std::to_string(micro - 1) + " (forward + backward)",
                     "micro_batch", kCompute, static_cast<double>(micro - i) * (t.forward_s + t.backward_s));
            break;
        }
        micro_batch(tl, p, true);
        micro_batch(tl, p, false);
    }
    tl.event("pipeline drain (bubble)", "bubble", kCompute, t.bubble_s - fill);
    tl.event("dp_grad_reduce_scatter + param_all_gather (exposed)", "comm", kComm, t.dp_comm_s);
    for (int i = 0; i < p.kernels.size; ++i) {
        const Kernel& k = p.kernels.items[static_cast<size_t>(i)];
        if (k.pass == Pass::step) tl.event(k.name, "kernel", kCompute, k.time_s * k.per_micro, kernel_args(k));
    }
    return {
        {"traceEvents", events},
        {"displayTimeUnit", "ms"},
        {"otherData", {{"step_s", t.step_s}, {"note", "predicted by moecast; one GPU of the busiest pipeline stage"}}}};
}

void write_chrome_trace(const CostPrediction& p, const std::string& title, const std::string& path) {
    std::ofstream out(path);
    if (!out) throw IoError("cannot write the trace " + path + ": " + std::strerror(errno));
    out << chrome_trace(p, title).dump() << '\n';
    if (!out) throw IoError("cannot write the trace " + path + ": " + std::strerror(errno));
}

}  // namespace moecast::sim

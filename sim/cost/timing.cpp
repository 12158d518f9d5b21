// The step-time breakdown from the step's kernel list and its communication, and the layout search
// (see timing.h). Kernel times and the kernel list are step_kernels.cpp's.
#include "sim/cost/timing.h"

#include <algorithm>
#include <cmath>

#include "sim/cost/step_kernels.h"

namespace moecast::sim {

const char* to_string(StepPart p) {
    switch (p) {
    case StepPart::attention: return "attention";
    case StepPart::dense_gemm: return "dense_gemm";
    case StepPart::elementwise: return "elementwise";
    case StepPart::router: return "router";
    case StepPart::dispatch: return "dispatch";
    case StepPart::expert_gemm: return "expert_gemm";
    case StepPart::combine: return "combine";
    case StepPart::optimizer: return "optimizer";
    }
    return "?";
}

double part_seconds(const StepBreakdown& b, StepPart p) {
    switch (p) {
    case StepPart::attention: return b.attention_s;
    case StepPart::dense_gemm: return b.dense_gemm_s;
    case StepPart::elementwise: return b.elementwise_s;
    case StepPart::router: return b.router_s;
    case StepPart::dispatch: return b.dispatch_s;
    case StepPart::expert_gemm: return b.expert_gemm_s;
    case StepPart::combine: return b.combine_s;
    case StepPart::optimizer: return b.optimizer_s;
    }
    return 0;
}

namespace {

// EP all-to-all overlapped by the 1F1B schedule: a steady-state micro-batch's forward all-to-all
// hides behind another micro-batch's backward compute and its backward all-to-all behind that
// forward's compute. The first stage's warmup (pp - 1 micro-batches; interleaved: 2 (pp - 1) +
// (vp - 1) pp chunks; one without a pipeline) and the matching cooldown have no partner.
// While an all-to-all runs beside compute, its kernels hold comm_sms of the device's SMs: the
// compute loses that share of the hidden time, which is added to the exposure.
void expose_overlapped_a2a(const ParallelLayout& l, const StepShape& s, const HardwareProfile& hw, double fwd_compute,
                           double bwd_compute, CommBreakdown& c) {
    const double pp = static_cast<double>(l.pp), vp = static_cast<double>(l.vp);
    const double warmup = l.pp == 1 ? 1.0 : (l.vp > 1 ? 2.0 * (pp - 1) + (vp - 1) * pp : pp - 1);
    const double unpaired = std::min(1.0, warmup / (static_cast<double>(s.micro_batches) * vp));
    const double lost = std::min(1.0, static_cast<double>(l.comm_sms) / static_cast<double>(hw.compute_units));
    const auto exposed = [&](double comm, double beside) {
        const double hidden = std::min(comm, beside);
        return comm - hidden + lost * hidden;
    };
    c.ep_fwd_exposed_s = unpaired * c.ep_fwd_s + (1 - unpaired) * exposed(c.ep_fwd_s, bwd_compute);
    c.ep_bwd_exposed_s = unpaired * c.ep_bwd_s + (1 - unpaired) * exposed(c.ep_bwd_s, fwd_compute);
    const double step_exposed = static_cast<double>(s.micro_batches) * (c.ep_fwd_exposed_s + c.ep_bwd_exposed_s);
    const double total = c.ep_dispatch.time_s + c.ep_combine.time_s;
    c.ep_dispatch.exposed_s = total > 0 ? step_exposed * c.ep_dispatch.time_s / total : 0.0;
    c.ep_combine.exposed_s = total > 0 ? step_exposed * c.ep_combine.time_s / total : 0.0;
}

// DP collectives overlapped by the schedule (ParallelLayout::overlap_grad_reduce and
// overlap_param_gather): each hides behind the compute it runs beside, all but its last bucket.
void expose_dp_by_schedule(const ParallelLayout& l, const StepShape& s, double fwd_compute, double bwd_compute,
                           CommBreakdown& c) {
    const double params = s.dense_params + s.end_params + s.expert_params;
    const double bucket = std::max(40e6, 1e6 * static_cast<double>(l.dp));
    const double last = params > 0 ? std::min(1.0, bucket / params) : 1.0;
    const auto exposed = [&](double comm, double beside) { return std::max(comm - beside, last * comm); };
    c.dp_grad.exposed_s = l.overlap_grad_reduce ? exposed(c.dp_grad.time_s, bwd_compute) : c.dp_grad.time_s;
    if (!l.overlap_param_gather) {
        c.dp_param.exposed_s = c.dp_param.time_s;
    } else if (l.zero >= 3) {  // gathered for each micro-batch's forward and backward
        const double micro = static_cast<double>(s.micro_batches);
        const double each = c.dp_param.time_s / (2 * micro);
        c.dp_param.exposed_s = micro * (exposed(each, fwd_compute) + exposed(each, bwd_compute));
    } else {
        c.dp_param.exposed_s = exposed(c.dp_param.time_s, fwd_compute);
    }
}

}  // namespace

void predict_cost(const ModelConfig& m, const ParamCounts& params, const FlopsPerToken& flops,
                  const HardwareProfile& hw, const ParallelLayout& l, double train_tokens, CostPrediction& out) {
    out.layout = l;
    out.shape = step_shape(m, params, l);
    const StepShape& s = out.shape;
    out.memory = memory_per_gpu(m, l, s, hw);
    out.comm = communication_per_step(m, l, s, hw);
    build_kernels(m, flops, hw, l, s, out.kernels);

    StepBreakdown& t = out.time;
    t = StepBreakdown{};
    const double micro = static_cast<double>(s.micro_batches);
    std::array<double, kStepPartCount> part{};
    double fwd = 0, bwd = 0, recompute = 0, step_once = 0;
    double gemm_fwd = 0, gemm_bwd = 0;  // dense GEMMs, beside which TP collectives can run
    for (int i = 0; i < out.kernels.size; ++i) {
        const Kernel& k = out.kernels.items[static_cast<size_t>(i)];
        const double time = k.time_s * k.per_micro;
        const bool gemm = k.part == StepPart::dense_gemm;
        switch (k.pass) {
        case Pass::forward:
            fwd += time;
            if (gemm) gemm_fwd += time;
            part[static_cast<size_t>(k.part)] += time;
            break;
        case Pass::backward:
            bwd += time;
            if (gemm) gemm_bwd += time;
            part[static_cast<size_t>(k.part)] += time;
            break;
        case Pass::recompute:
            recompute += time;
            if (gemm) gemm_fwd += time;
            break;
        case Pass::step: step_once += time; break;
        }
    }
    CommBreakdown& c = out.comm;
    if (l.ep_a2a_overlap && c.ep_fwd_s + c.ep_bwd_s > 0) expose_overlapped_a2a(l, s, hw, fwd, bwd + recompute, c);
    if (l.overlap.dp < 0) expose_dp_by_schedule(l, s, fwd, bwd + recompute, c);
    if (l.tp_comm_overlap && l.tp > 1) {
        // Split into tp chunks, a collective hides behind the GEMMs beside it but for one chunk.
        const double tp = static_cast<double>(l.tp);
        const auto exposed = [&](double comm, double gemm) { return std::max(comm - gemm, comm / tp); };
        c.tp_fwd_exposed_s = exposed(c.tp_fwd_s, gemm_fwd);
        c.tp_bwd_exposed_s = exposed(c.tp_bwd_s, gemm_bwd);
        c.tp.exposed_s = micro * (c.tp_fwd_exposed_s + c.tp_bwd_exposed_s);
    }
    t.forward_s = fwd + c.ep_fwd_exposed_s + c.tp_fwd_exposed_s + 0.5 * c.pp_exposed_s;
    t.backward_s = bwd + recompute + c.ep_bwd_exposed_s + c.tp_bwd_exposed_s + 0.5 * c.pp_exposed_s;
    const double per_micro = t.forward_s + t.backward_s;

    t.attention_s = micro * part[static_cast<size_t>(StepPart::attention)];
    t.dense_gemm_s = micro * part[static_cast<size_t>(StepPart::dense_gemm)];
    t.elementwise_s = micro * part[static_cast<size_t>(StepPart::elementwise)];
    t.router_s = micro * part[static_cast<size_t>(StepPart::router)];
    t.dispatch_s = micro * part[static_cast<size_t>(StepPart::dispatch)] + c.ep_dispatch.exposed_s;
    t.expert_gemm_s = micro * part[static_cast<size_t>(StepPart::expert_gemm)];
    t.combine_s = micro * part[static_cast<size_t>(StepPart::combine)] + c.ep_combine.exposed_s;
    t.recompute_s = micro * recompute;
    t.tp_comm_s = c.tp.exposed_s;
    t.pp_comm_s = c.pp.exposed_s;
    t.dp_comm_s = c.dp_grad.exposed_s + c.dp_param.exposed_s;
    t.bubble_s = l.pp > 1 ? static_cast<double>(l.pp - 1) / static_cast<double>(l.vp) * per_micro : 0.0;
    t.optimizer_s = step_once;
    t.step_s = micro * per_micro + t.bubble_s + t.dp_comm_s + t.optimizer_s;

    const double gpus = static_cast<double>(l.gpus);
    out.tokens_per_step = static_cast<double>(l.global_batch) * static_cast<double>(l.seq_len);
    out.tokens_per_s_per_gpu = out.tokens_per_step / (t.step_s * gpus);
    out.model_flops_per_token = flops.training;
    out.model_tflops_per_gpu = flops.training * out.tokens_per_s_per_gpu / 1e12;
    out.mfu = flops.training * out.tokens_per_s_per_gpu / hw.matmul_peak(l.precision);
    out.train_tokens = train_tokens;
    out.train_time_s = train_tokens > 0 ? train_tokens / (out.tokens_per_s_per_gpu * gpus) : 0.0;
    out.gpu_hours = out.train_time_s * gpus / 3600.0;
    out.usd = out.gpu_hours * hw.usd_per_device_hour;
}

BestLayout best_layout(const ModelConfig& m, const HardwareProfile& hw, int64_t gpus, double train_tokens,
                       const SearchOptions& opt) {
    BestLayout best;
    ModelConfig model = m;
    if (opt.seq_len > 0) model.seq_len = opt.seq_len;
    const ParamCounts params = count_params(model);
    const FlopsPerToken flops = count_flops(model);
    CostPrediction work;
    double best_time = 0;  // seconds per token
    int64_t best_model_parallel = 0;
    const int64_t experts = is_moe(model) ? model.moe.experts : 1;
    for (int64_t tp = 1; tp <= std::min<int64_t>(8, hw.devices_per_node); tp *= 2) {
        for (int64_t pp = 1; pp <= model.layers && tp * pp <= gpus; pp *= 2) {
            if (gpus % (tp * pp) != 0) continue;
            for (int64_t vp : {1, 2, 4}) {
                if (vp > 1 && pp == 1) break;
                for (int64_t ep = 1; ep <= experts; ++ep) {
                    if (experts % ep != 0) continue;
                    for (int64_t mb = 1; mb <= opt.max_micro_batch; mb *= 2) {
                        for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
                            ParallelLayout l;
                            l.gpus = gpus;
                            l.tp = tp;
                            l.pp = pp;
                            l.vp = vp;
                            l.ep = ep;
                            l.micro_batch = mb;
                            l.seq_len = model.seq_len;
                            l.precision = opt.precision;
                            l.recompute = rc;
                            l.routing = opt.routing;
                            const int64_t dp = gpus / (tp * pp);
                            l.global_batch = opt.global_batch > 0 ? opt.global_batch : dp * mb * (vp > 1 ? pp : 1);
                            if (!check_layout(l, model, hw).empty()) continue;
                            predict_cost(model, params, flops, hw, l, train_tokens, work);
                            ++best.evaluated;
                            if (!work.memory.fits) continue;
                            const int64_t model_parallel = tp * pp * ep;
                            const double per_token = work.time.step_s / work.tokens_per_step;
                            if (!best.found || per_token < best_time * (1 - 1e-9) ||
                                (per_token <= best_time * (1 + 1e-9) && model_parallel < best_model_parallel)) {
                                best.found = true;
                                best_time = per_token;
                                best_model_parallel = model_parallel;
                                best.prediction = work;
                            }
                            break;  // it fits: more recompute would only cost time
                        }
                    }
                }
            }
        }
    }
    return best;
}

}  // namespace moecast::sim

// Table and JSON of the hardware part of predictions (memory, communication, step time,
// throughput, MFU, cost), and the request that builds them from command-line options.
#include <cmath>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/report/report.h"
#include "sim/study/backtest.h"

namespace moecast::sim {
namespace {

nlohmann::json cost_json(const CollectiveCost& c) {
    return {{"bytes", c.bytes}, {"time_s", c.time_s}, {"exposed_s", c.exposed_s}};
}

nlohmann::json activations_json(const LayerActivations& a) {
    return {{"attention", a.attention}, {"router", a.router}, {"dispatch", a.dispatch},   {"experts", a.experts},
            {"combine", a.combine},     {"shared", a.shared}, {"dense_ffn", a.dense_ffn}, {"total", a.total()}};
}

std::string gb(double bytes) { return fmt::format("{:.2f} GB", bytes / 1e9); }

std::string seconds(double s) {
    if (s >= 1.0) return fmt::format("{:.3f} s", s);
    if (s >= 1e-3) return fmt::format("{:.2f} ms", s * 1e3);
    return fmt::format("{:.1f} us", s * 1e6);
}

BacktestError backtest_error(const std::string& profile, const std::string& model) {
    const std::vector<std::string> files = bundled_backtest_files();
    if (files.empty()) return {};
    const BacktestReport rep = run_backtest(load_backtest_files(files));
    BacktestError e{rep.overall.rows, 0, 0, rep.overall.mape, 0, 0};
    for (const auto& [gpu, s] : rep.by_gpu)
        if (profile_for_gpu(gpu) == profile) e.gpu_rows = s.rows, e.gpu_mape = s.mape;
    if (const auto it = rep.by_model.find(model); it != rep.by_model.end())
        e.model_rows = it->second.rows, e.model_mape = it->second.mape;
    return e;
}

}  // namespace

ParallelLayout request_layout(const CostRequest& r, const ModelConfig& model, const HardwareProfile& hw) {
    ParallelLayout l;
    apply_framework(l, parse_framework(r.framework));
    l.states = parse_states(r.states, l.states);
    if (r.fused_cross_entropy) l.fused_cross_entropy = true;
    l.offload = parse_offload_modules(r.offload_modules);
    if (!r.dispatcher.empty()) apply_dispatcher(l, r.dispatcher);
    if (!r.grouped_gemm.empty()) l.grouped_launch = parse_grouped_launch(r.grouped_gemm);
    l.ep_a2a_overlap = r.ep_overlap;
    l.tp_comm_overlap = r.tp_overlap;
    l.gpus = r.gpus;
    l.micro_batch = r.micro_batch;
    l.global_batch = r.global_batch;
    l.precision = parse_precision(r.precision);
    l.recompute = parse_recompute(r.recompute);
    if (!r.recompute_modules.empty()) {
        if (l.recompute != Recompute::selective)
            throw InputError("--recompute-modules", 0, "recompute", "modules need --recompute selective");
        l.modules = parse_recompute_modules(r.recompute_modules);
    }
    l.cuda_graphs = r.cuda_graphs;
    l.routing = parse_routing(r.routing, "--routing", "routing");
    if (!(r.capacity_factor >= 0 && r.capacity_factor <= 100))
        throw InputError("--capacity-factor", 0, "capacity_factor", "expected a factor in [0, 100] (0 = dropless)");
    if (!(r.tokens >= 0 && r.tokens <= 1e30))
        throw InputError("--tokens", 0, "tokens", "expected a token count in [0, 1e30]");
    l.routing.capacity_factor = r.capacity_factor;
    l.overlap = parse_overlap(r.overlap, l.overlap);
    l = parse_parallel(r.parallel, l);
    if (r.gpus < 1) throw InputError("--gpus", 0, "gpus", "expected >= 1");
    resolve_layout(l, model, hw, "--parallel");
    return l;
}

CostReport predict_cost_request(const ModelPrediction& p, const CostRequest& r) {
    CostReport out;
    out.hardware = load_hardware(r.hardware);
    const ParallelLayout l = request_layout(r, p.loaded.model, out.hardware);
    predict_cost(p.loaded.model, p.params, p.flops, out.hardware, l, r.tokens, out.cost);
    out.backtest = backtest_error(out.hardware.name, p.loaded.model.name);
    return out;
}

nlohmann::json to_json(const ModelPrediction& p, const CostReport& r) {
    nlohmann::json j = to_json(p);
    const HardwareProfile& hw = r.hardware;
    const CostPrediction& c = r.cost;
    const ParallelLayout& l = c.layout;
    const MemoryBreakdown& m = c.memory;
    const StepBreakdown& t = c.time;
    j["hardware"] = {{"name", hw.name},
                     {"source", hw.source},
                     {"kind", to_string(hw.kind)},
                     {"provenance",
                      {{"type", hw.provenance.type},
                       {"device", hw.provenance.device},
                       {"date", hw.provenance.date},
                       {"source", hw.provenance.source}}},
                     {"matmul_flops_per_s", hw.matmul_peak(l.precision)},
                     {"memory_bandwidth_bytes_per_s", hw.memory_bandwidth_bytes_per_s},
                     {"memory_bytes", hw.memory_bytes},
                     {"usd_per_device_hour", hw.usd_per_device_hour}};
    nlohmann::json values = nlohmann::json::array();
    for (const ProfileValue& v : hw.values)
        values.push_back({{"key", v.key},
                          {"value", v.value},
                          {"type", v.provenance.type},
                          {"device", v.provenance.device},
                          {"date", v.provenance.date},
                          {"source", v.provenance.source}});
    j["hardware"]["values"] = values;
    j["layout"] = {{"gpus", l.gpus},
                   {"tp", l.tp},
                   {"pp", l.pp},
                   {"vp", l.vp},
                   {"ep", l.ep},
                   {"etp", l.etp},
                   {"cp", l.cp},
                   {"dp", l.dp},
                   {"zero", l.zero},
                   {"sequence_parallel", l.sequence_parallel},
                   {"micro_batch", l.micro_batch},
                   {"global_batch", l.global_batch},
                   {"seq_len", l.seq_len},
                   {"micro_batches", c.shape.micro_batches},
                   {"precision", to_string(l.precision)},
                   {"recompute", to_string(l.recompute)},
                   {"recompute_modules", l.recompute == Recompute::selective ? to_string(l.modules) : ""},
                   {"cuda_graphs", l.cuda_graphs},
                   {"framework", to_string(l.framework)},
                   {"grouped_gemm", to_string(l.grouped_launch)},
                   {"states", to_string(l.states)},
                   {"fused_cross_entropy", l.fused_cross_entropy},
                   {"offload_modules", to_string(l.offload)},
                   {"hierarchical_a2a", l.hierarchical_a2a},
                   {"comm_sms", l.comm_sms},
                   {"ep_a2a_overlap", l.ep_a2a_overlap},
                   {"pp_embedding", l.embedding_in_split},
                   {"pp_loss", l.loss_in_split},
                   {"overlap",
                    {{"ep", l.ep_a2a_overlap ? nlohmann::json("schedule") : nlohmann::json(l.overlap.ep)},
                     {"tp", l.tp_comm_overlap ? nlohmann::json("with GEMMs") : nlohmann::json(l.overlap.tp)},
                     {"dp", l.overlap.dp >= 0 ? nlohmann::json(l.overlap.dp) : nlohmann::json("schedule")},
                     {"pp", l.overlap.pp}}}};
    const RoutingLoad& rl = c.shape.routing;
    j["routing"] = {{"kind", routing_name(l.routing)},
                    {"capacity_factor", l.routing.capacity_factor},
                    {"load_cv", rl.load_cv},
                    {"mean_rank_rows", rl.mean_rank_rows},
                    {"max_rank_rows", rl.max_rank_rows},
                    {"mean_expert_rows", rl.mean_expert_rows},
                    {"max_expert_rows", rl.max_expert_rows},
                    {"imbalance", rl.imbalance()},
                    {"drop_fraction", rl.drop_fraction},
                    {"padding_fraction", rl.padding_fraction}};
    j["memory"] = {
        {"per_gpu_bytes", m.total_bytes},
        {"capacity_bytes", m.capacity_bytes},
        {"fits", m.fits},
        {"params_per_gpu", m.params},
        {"breakdown",
         {{"weights", m.weights_bytes},
          {"gradients", m.gradients_bytes},
          {"optimizer", {{"master", m.master_bytes}, {"adam_m", m.adam_m_bytes}, {"adam_v", m.adam_v_bytes}}},
          {"gathered", m.gathered_bytes},
          {"activations", m.activations_bytes},
          {"logits", m.logits_bytes}}},
        {"in_flight_micro_batches", m.in_flight_micro_batches},
        {"moe_layer_activations", activations_json(m.moe_layer)},
        {"dense_layer_activations", activations_json(m.dense_layer)}};
    const CommBreakdown& cm = c.comm;
    j["comm"] = {{"ep_dispatch", cost_json(cm.ep_dispatch)},
                 {"ep_combine", cost_json(cm.ep_combine)},
                 {"tp", cost_json(cm.tp)},
                 {"cp", cost_json(cm.cp)},
                 {"dp_grad", cost_json(cm.dp_grad)},
                 {"dp_param", cost_json(cm.dp_param)},
                 {"pp", cost_json(cm.pp)},
                 {"total_bytes", cm.total_bytes()}};
    j["time"] = {{"step_s", t.step_s},
                 {"forward_s", t.forward_s},
                 {"backward_s", t.backward_s},
                 {"breakdown",
                  {{"attention_s", t.attention_s},
                   {"dense_gemm_s", t.dense_gemm_s},
                   {"elementwise_s", t.elementwise_s},
                   {"router_s", t.router_s},
                   {"dispatch_s", t.dispatch_s},
                   {"expert_gemm_s", t.expert_gemm_s},
                   {"combine_s", t.combine_s},
                   {"recompute_s", t.recompute_s},
                   {"tp_comm_s", t.tp_comm_s},
                   {"pp_comm_s", t.pp_comm_s},
                   {"dp_comm_s", t.dp_comm_s},
                   {"bubble_s", t.bubble_s},
                   {"optimizer_s", t.optimizer_s}}}};
    nlohmann::json kernels = nlohmann::json::array();
    for (int i = 0; i < c.kernels.size; ++i) {
        const Kernel& k = c.kernels.items[static_cast<size_t>(i)];
        static const char* passes[] = {"forward", "backward", "recompute", "step"};
        kernels.push_back({{"name", k.name},
                           {"class", to_string(k.cls)},
                           {"part", to_string(k.part)},
                           {"pass", passes[static_cast<int>(k.pass)]},
                           {"flops", k.cost.flops},
                           {"bytes", k.cost.bytes},
                           {"time_s", k.time_s},
                           {"per_micro_batch", k.per_micro}});
    }
    j["time"]["kernels"] = kernels;
    j["throughput"] = {{"tokens_per_s_per_gpu", c.tokens_per_s_per_gpu},
                       {"tokens_per_step", c.tokens_per_step},
                       {"model_tflops_per_gpu", c.model_tflops_per_gpu},
                       {"model_flops_per_token", c.model_flops_per_token}};
    j["mfu"] = c.mfu;
    j["training"] = {
        {"tokens", c.train_tokens}, {"time_s", c.train_time_s}, {"gpu_hours", c.gpu_hours}, {"usd", c.usd}};
    const BacktestError& b = r.backtest;
    j["uncertainty"] = {{"source", "moecast backtest: tokens/s/GPU of published runs (configs/validation)"},
                        {"runs", b.rows},
                        {"mape", b.mape},
                        {"gpu_runs", b.gpu_rows},
                        {"gpu_mape", b.gpu_mape},
                        {"model_runs", b.model_rows},
                        {"model_mape", b.model_mape}};
    return j;
}

std::string to_table(const ModelPrediction& p, const CostReport& r) {
    std::string s = to_table(p);
    const HardwareProfile& hw = r.hardware;
    const CostPrediction& c = r.cost;
    const ParallelLayout& l = c.layout;
    const MemoryBreakdown& m = c.memory;
    const StepBreakdown& t = c.time;
    s += fmt::format("\nHardware  {} ({}, {} {})  x {} GPUs\n", hw.name, hw.source, hw.provenance.type,
                     hw.provenance.date, l.gpus);
    int assumed = 0;
    for (const ProfileValue& v : hw.values) assumed += v.provenance.type == "assumed";
    s +=
        fmt::format("  {} profile values, {} of them assumed (not datasheet or measured; see --json hardware.values)\n",
                    hw.values.size(), assumed);
    s += fmt::format("  layout tp={} pp={} vp={} ep={} etp={} cp={} dp={} zero={}  micro-batch {} x {} per step, "
                     "global batch {}, seq {}, {} GEMMs, recompute {}\n",
                     l.tp, l.pp, l.vp, l.ep, l.etp, l.cp, l.dp, l.zero, l.micro_batch, c.shape.micro_batches,
                     l.global_batch, l.seq_len, to_string(l.precision), to_string(l.recompute));
    const RoutingLoad& rl = c.shape.routing;
    s += fmt::format(
        "  routing {}: busiest EP rank {:.0f} rows vs mean {:.0f} (x{:.3f}); drop {:.2f} %, padding {:.2f} %\n",
        l.routing.kind == RoutingKind::trained ? fmt::format("trained (expert-load CV {:.2f})", rl.load_cv)
                                               : std::string(routing_name(l.routing)),
        rl.max_rank_rows, rl.mean_rank_rows, rl.imbalance(), 100 * rl.drop_fraction, 100 * rl.padding_fraction);
    s += fmt::format("\nMemory per GPU {:>12}  of {}  {}\n", gb(m.total_bytes), gb(m.capacity_bytes),
                     m.fits ? "fits" : "DOES NOT FIT");
    s += fmt::format("  weights {}  gradients {}  optimizer {} (master {}, Adam m {}, v {})\n", gb(m.weights_bytes),
                     gb(m.gradients_bytes), gb(m.optimizer_bytes()), gb(m.master_bytes), gb(m.adam_m_bytes),
                     gb(m.adam_v_bytes));
    s += fmt::format("  states as {} keeps them: {}\n", to_string(l.framework), to_string(l.states));
    if (m.gathered_bytes > 0) s += fmt::format("  gathered for compute (ZeRO 3) {}\n", gb(m.gathered_bytes));
    s += fmt::format("  activations {} ({:.2f} micro-batches in flight), logits {}{}\n", gb(m.activations_bytes),
                     m.in_flight_micro_batches, gb(m.logits_bytes), l.fused_cross_entropy ? " (bf16, fused loss)" : "");
    const CommBreakdown& cm = c.comm;
    s += "\nCommunication per step      bytes/GPU        time      exposed\n";
    auto comm_row = [&](const char* name, const CollectiveCost& cc) {
        if (cc.bytes > 0)
            s += fmt::format("  {:<22}{:>12}  {:>10}  {:>10}\n", name, gb(cc.bytes), seconds(cc.time_s),
                             seconds(cc.exposed_s));
    };
    comm_row("EP dispatch a2a", cm.ep_dispatch);
    comm_row("EP combine a2a", cm.ep_combine);
    comm_row("TP", cm.tp);
    comm_row("CP ring", cm.cp);
    comm_row("DP grad reduce", cm.dp_grad);
    comm_row("DP param gather", cm.dp_param);
    comm_row("PP send/recv", cm.pp);
    s += fmt::format("\nStep time {}  (forward {} + backward {} per micro-batch)\n", seconds(t.step_s),
                     seconds(t.forward_s), seconds(t.backward_s));
    auto part = [&](const char* name, double v) {
        s += fmt::format("  {:<24}{:>12}  {:5.1f} %\n", name, seconds(v), t.step_s > 0 ? 100 * v / t.step_s : 0.0);
    };
    part("attention", t.attention_s);
    part("dense GEMMs", t.dense_gemm_s);
    part("expert GEMMs", t.expert_gemm_s);
    part("router", t.router_s);
    part("dispatch (permute+a2a)", t.dispatch_s);
    part("combine (a2a+unpermute)", t.combine_s);
    part("norms/elementwise", t.elementwise_s);
    part("recompute", t.recompute_s);
    part("TP comm exposed", t.tp_comm_s);
    part("PP comm exposed", t.pp_comm_s);
    part("DP comm exposed", t.dp_comm_s);
    part("pipeline bubble", t.bubble_s);
    part("optimizer", t.optimizer_s);
    s += fmt::format("\nThroughput {:.0f} tokens/s/GPU, {:.1f} model TFLOP/s/GPU, MFU {:.1f} % of {} peak\n",
                     c.tokens_per_s_per_gpu, c.model_tflops_per_gpu, 100 * c.mfu, to_string(l.precision));
    if (c.train_tokens > 0)
        s += fmt::format("Training {} tokens: {:.1f} days, {:.0f} GPU-hours, ${:.0f} at ${:.2f}/GPU-hour ({})\n",
                         human_count(c.train_tokens), c.train_time_s / 86400, c.gpu_hours, c.usd,
                         hw.usd_per_device_hour, "price provenance in the profile");
    const BacktestError& b = r.backtest;
    if (b.rows > 0) {
        s += fmt::format("Uncertainty: tokens/s of {} published runs predicted within {:.0f} % (mean absolute error)",
                         b.rows, 100 * b.mape);
        if (b.gpu_rows > 0) s += fmt::format("; {:.0f} % on {} runs on {}", 100 * b.gpu_mape, b.gpu_rows, hw.name);
        if (b.model_rows > 0) s += fmt::format("; {:.0f} % on {} runs of this model", 100 * b.model_mape, b.model_rows);
        s += b.gpu_rows > 0 ? " (moecast backtest)\n" : "; none on this hardware (moecast backtest)\n";
    }
    return s;
}

}  // namespace moecast::sim

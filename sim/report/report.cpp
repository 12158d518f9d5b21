// Table and JSON output of model predictions.
#include "sim/report/report.h"

#include <cmath>

#include <fmt/format.h>

namespace moecast::sim {

ModelPrediction predict_model(const LoadedModel& loaded) {
    return {loaded, count_params(loaded.model), count_flops(loaded.model)};
}

std::string human_count(double x) {
    const double a = std::fabs(x);
    if (a >= 1e15) return fmt::format("{:.2f} P", x / 1e15);
    if (a >= 1e12) return fmt::format("{:.2f} T", x / 1e12);
    if (a >= 1e9) return fmt::format("{:.2f} B", x / 1e9);
    if (a >= 1e6) return fmt::format("{:.2f} M", x / 1e6);
    if (a >= 1e3) return fmt::format("{:.2f} K", x / 1e3);
    return fmt::format("{:.0f}", x);
}

nlohmann::json to_json(const ModelPrediction& p) {
    const ModelConfig& m = p.loaded.model;
    const ParamCounts& c = p.params;
    const FlopsPerToken& f = p.flops;
    nlohmann::json j;
    j["model"] = {{"name", m.name},       {"source", p.loaded.source}, {"format", p.loaded.format},
                  {"seq_len", m.seq_len}, {"layers", m.layers},        {"moe_layers", moe_layer_count(m)},
                  {"d_model", m.d_model}, {"vocab", m.vocab}};
    if (is_moe(m))
        j["model"]["moe"] = {{"experts", m.moe.experts},
                             {"top_k", m.moe.top_k},
                             {"expert_ffn", m.moe.expert_ffn},
                             {"shared_experts", m.moe.shared_experts}};
    j["params"] = {{"total", c.total},
                   {"active", c.active},
                   {"embedding", c.embedding},
                   {"lm_head", c.lm_head},
                   {"non_embedding", c.non_embedding},
                   {"active_non_embedding", c.active_non_embedding},
                   {"attention", c.attention},
                   {"norms", c.norms},
                   {"dense_ffn", c.dense_ffn},
                   {"router", c.router},
                   {"routed_experts", c.routed_experts},
                   {"active_routed_experts", c.active_routed_experts},
                   {"shared_experts", c.shared_experts},
                   {"mtp", c.mtp},
                   {"mtp_active", c.mtp_active},
                   {"convention", "every stored weight once; tied embeddings counted once as "
                                  "'embedding'; active includes embedding and LM head"}};
    j["sparsity"] = sparsity(m);
    j["granularity"] = granularity(m);
    j["flops_per_token"] = {{"forward", f.forward},
                            {"training", f.training},
                            {"paper_eq9", f.paper_eq9},
                            {"six_n_active", f.six_n_active},
                            {"mtp", f.mtp},
                            {"forward_parts",
                             {{"attention_proj", f.attention_proj},
                              {"attention_scores", f.attention_scores},
                              {"indexer_scores", f.indexer_scores},
                              {"linear_state", f.linear_state},
                              {"dense_ffn", f.dense_ffn},
                              {"router", f.router},
                              {"experts", f.experts},
                              {"shared_experts", f.shared_experts},
                              {"lm_head", f.lm_head}}},
                            {"convention", "matmul FLOPs, 2mnk; causal attention at seq_len; "
                                           "training = 3 x forward"}};
    if (p.loaded.reference) {
        const auto& r = *p.loaded.reference;
        j["reference"] = {{"total_params", r.total_params},
                          {"active_params", r.active_params},
                          {"active_convention", r.active_convention},
                          {"computed_active_same_convention", active_under_convention(c, r)},
                          {"total_convention", r.total_convention},
                          {"computed_total_same_convention", total_under_convention(c, m.mtp_layers, r)},
                          {"source", r.source}};
    }
    return j;
}

namespace {

std::string row(const std::string& name, double value, const std::string& note = "") {
    return fmt::format("  {:<28}{:>18}  {:>10}  {}\n", name, fmt::format("{:.0f}", value), human_count(value), note);
}

std::string pct(double part, double whole) { return whole > 0 ? fmt::format("{:5.1f} %", 100.0 * part / whole) : ""; }

}  // namespace

std::string to_table(const ModelPrediction& p) {
    const ModelConfig& m = p.loaded.model;
    const ParamCounts& c = p.params;
    const FlopsPerToken& f = p.flops;
    std::string s;
    s += fmt::format("{}  ({}, {})\n", m.name, p.loaded.source, p.loaded.format);
    s += fmt::format("  L={} D={} H={} KV={} V={} seq_len={} attention={}", m.layers, m.d_model, m.attention.heads,
                     m.attention.kv_heads, m.vocab, m.seq_len, to_string(m.attention.kind));
    if (is_moe(m))
        s += fmt::format("  E={} K={} F={} shared={} moe_layers={}  S={:.4f} G={:.3g}", m.moe.experts, m.moe.top_k,
                         m.moe.expert_ffn, m.moe.shared_experts, moe_layer_count(m), sparsity(m), granularity(m));
    else
        s += fmt::format("  dense ffn={}  S=0", m.ffn);
    s += "\n\nParameters                              count       human\n";
    s += row("total", static_cast<double>(c.total));
    s += row("active per token", static_cast<double>(c.active), pct(c.active, c.total) + " of total");
    s += row("embedding", static_cast<double>(c.embedding), m.tied_embeddings ? "(tied with LM head)" : "");
    s += row("lm head", static_cast<double>(c.lm_head));
    s += row("non-embedding", static_cast<double>(c.non_embedding));
    s += row("active non-embedding", static_cast<double>(c.active_non_embedding));
    s += row("  attention", static_cast<double>(c.attention));
    s += row("  routed experts", static_cast<double>(c.routed_experts));
    s += row("  shared experts", static_cast<double>(c.shared_experts));
    s += row("  dense ffn", static_cast<double>(c.dense_ffn));
    s += row("  router", static_cast<double>(c.router));
    s += row("  norms", static_cast<double>(c.norms));
    if (m.mtp_layers > 0)
        s += row("MTP modules (apart)", static_cast<double>(c.mtp),
                 fmt::format("{} module(s), {} active", m.mtp_layers, human_count(static_cast<double>(c.mtp_active))));
    if (p.loaded.reference) {
        const auto& r = *p.loaded.reference;
        s += fmt::format("  official: total {} active {} ({}; computed under it: {})\n  source: {}\n",
                         human_count(r.total_params), human_count(r.active_params), r.active_convention,
                         human_count(static_cast<double>(active_under_convention(c, r))), r.source);
        if (r.total_convention != "model")
            s += fmt::format("  official total is the {} count; computed under it: {}\n", r.total_convention,
                             human_count(static_cast<double>(total_under_convention(c, m.mtp_layers, r))));
    }
    s += "\nFLOPs per token (matmuls, 2mnk)\n";
    s += row("forward", f.forward);
    s += row("training (fwd + bwd)", f.training);
    s += row("paper Eq. 9", f.paper_eq9, pct(f.paper_eq9, f.training) + " of exact training");
    s += row("6 N_a", f.six_n_active, pct(f.six_n_active, f.training) + " of exact training");
    s += row("  attention projections", f.attention_proj, pct(f.attention_proj, f.forward));
    s += row("  attention scores", f.attention_scores, pct(f.attention_scores, f.forward));
    if (f.indexer_scores > 0)
        s += row("    sparse-attention indexer", f.indexer_scores, pct(f.indexer_scores, f.forward));
    if (f.linear_state > 0) s += row("    linear-attention state", f.linear_state, pct(f.linear_state, f.forward));
    s += row("  routed experts", f.experts, pct(f.experts, f.forward));
    s += row("  shared experts", f.shared_experts, pct(f.shared_experts, f.forward));
    s += row("  dense ffn", f.dense_ffn, pct(f.dense_ffn, f.forward));
    s += row("  router", f.router, pct(f.router, f.forward));
    s += row("  lm head", f.lm_head, pct(f.lm_head, f.forward));
    if (f.mtp > 0) s += row("MTP modules (apart)", f.mtp, pct(f.mtp, f.forward) + " of forward");
    return s;
}

}  // namespace moecast::sim

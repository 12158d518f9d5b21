// Layout parsing, validation and the derived per-GPU step shape (see parallel.h).
#include "sim/cost/parallel.h"

#include <algorithm>
#include <cstdlib>

#include "sim/core/error.h"

namespace moecast::sim {

const char* to_string(Recompute r) {
    switch (r) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::full: return "full";
    }
    return "?";
}

std::vector<KeyValue> split_key_values(const std::string& spec) {
    std::vector<KeyValue> out;
    size_t pos = 0;
    while (pos < spec.size()) {
        size_t end = spec.find(',', pos);
        if (end == std::string::npos) end = spec.size();
        const std::string item = spec.substr(pos, end - pos);
        pos = end + 1;
        if (item.empty()) continue;
        const size_t eq = item.find('=');
        out.push_back(
            {item.substr(0, eq), eq == std::string::npos ? "" : item.substr(eq + 1), eq != std::string::npos});
    }
    return out;
}

std::vector<KeyValue> split_list(const std::string& spec) {
    std::string list = spec;  // Megatron's own spelling separates by spaces
    std::replace(list.begin(), list.end(), ' ', ',');
    return split_key_values(list);
}

int64_t pipeline_slots(const ModelConfig& m, const ParallelLayout& l) {
    return m.layers + (l.embedding_in_split ? 1 : 0) + (l.loss_in_split ? 1 : 0);
}

ParallelLayout parse_parallel(const std::string& spec, ParallelLayout l) {
    if (spec.find(",,") != std::string::npos || (!spec.empty() && (spec.front() == ',' || spec.back() == ',')))
        throw InputError("--parallel", 0, "parallel", "an empty item in \"" + spec + "\" (expected tp=2,pp=4,...)");
    std::vector<std::string> seen;
    for (const auto& [key, text, has_value] : split_key_values(spec)) {
        if (std::find(seen.begin(), seen.end(), key) != seen.end())
            throw InputError("--parallel", 0, key, "given twice in \"" + spec + "\"");
        seen.push_back(key);
        if (!has_value) throw InputError("--parallel", 0, key, "expected key=value (e.g. tp=2,pp=4,ep=8)");
        char* stop = nullptr;
        const long long v = std::strtoll(text.c_str(), &stop, 10);
        if (text.empty() || *stop != '\0' || v < 0)
            throw InputError("--parallel", 0, key, "expected a non-negative integer, got \"" + text + "\"");
        if (key == "tp")
            l.tp = v;
        else if (key == "pp")
            l.pp = v;
        else if (key == "vp")
            l.vp = v;
        else if (key == "ep")
            l.ep = v;
        else if (key == "etp")
            l.etp = v;
        else if (key == "cp")
            l.cp = v;
        else if (key == "dp")
            l.dp = v;
        else if (key == "zero")
            l.zero = static_cast<int>(v);
        else if (key == "sp")
            l.sequence_parallel = v != 0;
        else if (key == "pp_embedding")
            l.embedding_in_split = v != 0;
        else if (key == "pp_loss")
            l.loss_in_split = v != 0;
        else
            throw InputError(
                "--parallel", 0, key,
                "unknown key; expected one of tp, pp, vp, ep, etp, cp, dp, zero, sp, pp_embedding, pp_loss");
    }
    return l;
}

std::string check_layout(ParallelLayout& l, const ModelConfig& m, const HardwareProfile& hw) {
    auto bad = [](const char* key, const std::string& why) { return std::string(key) + ": " + why; };
    for (auto [key, v] : {std::pair{"tp", l.tp},
                          {"pp", l.pp},
                          {"vp", l.vp},
                          {"ep", l.ep},
                          {"etp", l.etp},
                          {"cp", l.cp},
                          {"micro_batch", l.micro_batch},
                          {"gpus", l.gpus}})
        if (v < 1) return bad(key, "must be >= 1");
    if (l.zero < 0 || l.zero > 3) return bad("zero", "ZeRO stage must be 0, 1, 2 or 3");
    if (l.framework == Framework::fsdp2 && l.zero != 3)
        return bad("zero", "fsdp2 shards weights, gradients and optimizer states (zero=3)");
    const int64_t model_parallel = l.tp * l.pp * l.cp;
    if (model_parallel > l.gpus)
        return bad("gpus", "tp*pp*cp = " + std::to_string(model_parallel) + " is larger than the GPU count " +
                               std::to_string(l.gpus));
    if (l.gpus % model_parallel != 0)
        return bad("gpus",
                   std::to_string(l.gpus) + " GPUs are not a multiple of tp*pp*cp = " + std::to_string(model_parallel));
    const int64_t dp = l.gpus / model_parallel;
    if (l.dp != 0 && l.dp != dp)
        return bad("dp", "dp=" + std::to_string(l.dp) + " but gpus/(tp*pp*cp) = " + std::to_string(dp));
    l.dp = dp;
    if (l.seq_len == 0) l.seq_len = m.seq_len;
    if (l.seq_len < 1) return bad("seq_len", "must be >= 1");
    if (l.global_batch == 0) l.global_batch = l.dp * l.micro_batch;
    const auto& a = m.attention;
    if (a.heads % l.tp != 0)
        return bad("tp",
                   "attention heads " + std::to_string(a.heads) + " are not divisible by tp=" + std::to_string(l.tp));
    if (a.kind != AttentionKind::mla && a.kv_heads % l.tp != 0 && l.tp % a.kv_heads != 0)
        return bad("tp", "kv heads " + std::to_string(a.kv_heads) + " and tp=" + std::to_string(l.tp) +
                             " do not divide one another");
    // The embedding and the loss may each take a layer's slot in the pipeline split (Megatron's
    // --account-for-embedding/loss-in-pipeline-split); then the slots must split evenly.
    const int64_t slots = pipeline_slots(m, l);
    const std::string counted = slots > m.layers ? " (layers, embedding and loss)" : "";
    if (l.pp > slots)
        return bad("pp", "pp=" + std::to_string(l.pp) + " exceeds the layer count " + std::to_string(slots) + counted);
    if (l.vp > 1 && l.pp == 1) return bad("vp", "virtual stages need pp > 1");
    if (l.pp * l.vp > slots)
        return bad("vp", "pp*vp = " + std::to_string(l.pp * l.vp) + " exceeds the layer count " +
                             std::to_string(slots) + counted);
    if (slots > m.layers && slots % (l.pp * l.vp) != 0)
        return bad("pp", std::to_string(slots) + " pipeline slots" + counted +
                             " do not split evenly into pp*vp = " + std::to_string(l.pp * l.vp));
    if (l.seq_len % l.cp != 0) return bad("cp", "seq_len is not divisible by cp=" + std::to_string(l.cp));
    if (l.global_batch % (l.dp * l.micro_batch) != 0)
        return bad("global_batch",
                   "global batch " + std::to_string(l.global_batch) +
                       " is not a multiple of dp*micro_batch = " + std::to_string(l.dp * l.micro_batch));
    const int64_t micro = l.global_batch / (l.dp * l.micro_batch);
    if (l.vp > 1 && micro % l.pp != 0)
        return bad("vp", "the interleaved schedule needs micro-batches (" + std::to_string(micro) +
                             ") to be a multiple of pp=" + std::to_string(l.pp));
    if (is_moe(m)) {
        if (l.ep > m.moe.experts)
            return bad("ep",
                       "ep=" + std::to_string(l.ep) + " exceeds the expert count " + std::to_string(m.moe.experts));
        if (m.moe.experts % l.ep != 0)
            return bad("ep",
                       "experts " + std::to_string(m.moe.experts) + " are not divisible by ep=" + std::to_string(l.ep));
        if ((l.tp * l.cp * l.dp) % (l.ep * l.etp) != 0)
            return bad("ep", "ep*etp = " + std::to_string(l.ep * l.etp) +
                                 " must divide tp*cp*dp = " + std::to_string(l.tp * l.cp * l.dp));
        if (m.moe.expert_ffn % l.etp != 0) return bad("etp", "expert width is not divisible by etp");
    } else if (l.ep > 1 || l.etp > 1) {
        return bad("ep", "a dense model has no experts to shard");
    }
    if (m.ffn > 0 && m.ffn % l.tp != 0) return bad("tp", "dense FFN width is not divisible by tp");
    if (hw.matmul_peak(l.precision) <= 0)
        return bad("precision", std::string(to_string(l.precision)) + " GEMMs are not supported by " + hw.name);
    for (double f : {l.overlap.ep, l.overlap.tp, l.overlap.pp})
        if (f < 0 || f > 1) return bad("overlap", "overlap fractions must be in [0, 1]");
    if (l.overlap.dp > 1) return bad("overlap", "overlap fractions must be in [0, 1]");
    if (l.gpus > 1 && l.gpus > hw.devices_per_node && hw.inter_node.bandwidth_bytes_per_s <= 0)
        return bad("gpus", "profile " + hw.name + " has no inter-node link for " + std::to_string(l.gpus) + " devices");
    if (l.gpus > 1 && hw.intra_node.bandwidth_bytes_per_s <= 0 && hw.inter_node.bandwidth_bytes_per_s <= 0)
        return bad("gpus", "profile " + hw.name + " has no links between devices");
    return "";
}

void resolve_layout(ParallelLayout& l, const ModelConfig& m, const HardwareProfile& hw, const std::string& source) {
    const std::string why = check_layout(l, m, hw);
    if (!why.empty()) {
        const size_t colon = why.find(':');
        throw InputError(source, 0, why.substr(0, colon), "invalid parallel layout: " + why.substr(colon + 2));
    }
}

StepShape step_shape(const ModelConfig& m, const ParamCounts& p, const ParallelLayout& l) {
    StepShape s;
    const double tp = static_cast<double>(l.tp), pp = static_cast<double>(l.pp);
    s.micro_batches = l.global_batch / (l.dp * l.micro_batch);
    s.seq_len = static_cast<double>(l.seq_len);
    s.tokens_mb = static_cast<double>(l.micro_batch) * s.seq_len / static_cast<double>(l.cp);
    s.tokens_moe = l.sequence_parallel || l.tp == 1 ? s.tokens_mb / tp : s.tokens_mb;
    const double moe_layers = static_cast<double>(moe_layer_count(m));
    s.layers = static_cast<double>(m.layers) / pp;
    s.moe_layers = moe_layers / pp;
    const int64_t slots = pipeline_slots(m, l);
    if (slots > m.layers && l.pp > 1) {
        // A middle stage holds a full share of slots, all of them layers: the busiest stage.
        s.layers = std::min(static_cast<double>(m.layers), static_cast<double>(slots) / pp);
        s.moe_layers = moe_layers * s.layers / static_cast<double>(m.layers);
    }
    s.dense_layers = s.layers - s.moe_layers;
    if (is_moe(m)) {
        s.experts_per_rank = m.moe.experts / l.ep;
        const auto tokens = static_cast<int64_t>(s.tokens_moe + 0.5);
        RoutingSpec spec = l.routing;
        if (spec.load_cv < 0) spec.load_cv = m.moe.router_load_cv > 0 ? m.moe.router_load_cv : kTrainedRouterLoadCv;
        s.routing = routing_load(spec, tokens, m.moe.top_k, m.moe.experts, l.ep);
    }
    const double non_expert = static_cast<double>(p.attention + p.norms + p.dense_ffn + p.router + p.shared_experts);
    s.dense_params = non_expert / (tp * pp);
    s.expert_params = static_cast<double>(p.routed_experts) / (static_cast<double>(l.ep * l.etp) * pp);
    if (slots > m.layers && l.pp > 1) {
        const double share = s.layers / static_cast<double>(m.layers);
        s.dense_params = non_expert * share / tp;
        s.expert_params = static_cast<double>(p.routed_experts) * share / static_cast<double>(l.ep * l.etp);
    }
    s.end_params = static_cast<double>(std::max(p.embedding, p.lm_head)) / tp;
    if (l.pp == 1) s.end_params = static_cast<double>(p.embedding + p.lm_head) / tp;
    // Megatron-Core rank order: dense tp-cp-dp-pp; experts etp-ep-edp-pp.
    s.tp_group = {l.tp, 1};
    s.cp_group = {l.cp, l.tp};
    s.dp_group = {l.dp, l.tp * l.cp};
    s.ep_group = {l.ep, l.etp};
    s.edp_group = {l.tp * l.cp * l.dp / (l.ep * l.etp), l.ep * l.etp};
    s.pp_group = {l.pp, l.tp * l.cp * l.dp};
    return s;
}

Precision parse_precision(const std::string& s, const std::string& source, int line) {
    if (s == "bf16") return Precision::bf16;
    if (s == "fp8") return Precision::fp8;
    if (s == "tf32") return Precision::tf32;
    if (s == "fp32") return Precision::fp32;
    throw InputError(source, line, "precision", "expected bf16, fp8, tf32 or fp32, got \"" + s + "\"");
}

namespace {

double dtype_bytes(const std::string& dtype) {
    if (dtype == "fp32") return 4;
    if (dtype == "bf16" || dtype == "fp16") return 2;
    if (dtype == "fp8") return 1;
    return 0;
}

const char* dtype_name(double bytes) {
    if (bytes == 4) return "fp32";
    if (bytes == 2) return "bf16";
    if (bytes == 1) return "fp8";
    return bytes == 0 ? "none" : "custom";
}

}  // namespace

StateBytes parse_states(const std::string& spec, StateBytes s, const std::string& source, int line) {
    for (const auto& [key, value, has_value] : split_list(spec)) {
        const double bytes = dtype_bytes(value);
        if (!has_value || bytes == 0)
            throw InputError(source, line, key, "expected key=dtype with dtype fp32, bf16, fp16 or fp8");
        if (key == "weights")
            s.weights = bytes;
        else if (key == "grads")
            s.grads = bytes;
        else if (key == "master")
            s.master = bytes;
        else if (key == "moments")
            s.moments = 2 * bytes;
        else
            throw InputError(source, line, key, "unknown state; expected weights, grads, master or moments");
    }
    return s;
}

std::string to_string(const StateBytes& s) {
    return std::string("weights=") + dtype_name(s.weights) + ",grads=" + dtype_name(s.grads) +
           ",master=" + dtype_name(s.master) + ",moments=" + dtype_name(s.moments / 2);
}

const char* to_string(Framework f) {
    switch (f) {
    case Framework::megatron: return "megatron";
    case Framework::megatron_bridge: return "megatron-bridge";
    case Framework::fsdp2: return "fsdp2";
    }
    return "?";
}

Framework parse_framework(const std::string& s, const std::string& source, int line) {
    for (Framework f : {Framework::megatron, Framework::megatron_bridge, Framework::fsdp2})
        if (s == to_string(f)) return f;
    throw InputError(source, line, "framework", "expected megatron, megatron-bridge or fsdp2, got \"" + s + "\"");
}

void apply_dispatcher(ParallelLayout& l, const std::string& name, const std::string& source, int line) {
    if (name == "alltoall" || name == "allgather") {
        l.hierarchical_a2a = false;
        l.comm_sms = 0;  // NCCL's SM use is not modelled
    } else if (name == "deepep" || name == "hybridep" || name == "flex") {
        l.hierarchical_a2a = true;
        l.comm_sms = name == "deepep" ? 20 : 32;  // Megatron-Core moe_deepep_num_sms, moe_hybridep_num_sms
    } else {
        throw InputError(source, line, "dispatcher",
                         "expected alltoall, allgather, deepep, hybridep or flex, got \"" + name + "\"");
    }
}

void apply_framework(ParallelLayout& l, Framework f) {
    l.framework = f;
    l.states = StateBytes{};
    l.fused_cross_entropy = false;
    l.grouped_launch = GroupedLaunch::profile;
    switch (f) {
    case Framework::megatron: break;
    case Framework::megatron_bridge:
        // scripts/performance: grad_reduce_in_fp32 = False, cross_entropy_fusion_impl = "te"
        l.states.grads = 2;
        l.fused_cross_entropy = true;
        break;
    case Framework::fsdp2:
        // The fp32 shard is both the parameter and the optimizer's master; layers gather a
        // bf16 copy only while they run (memory_per_gpu counts that working set).
        l.states.weights = 0;
        l.zero = 3;
        // NeMo Automodel's GroupedExpertsDeepEP: grouped_gemm.ops.gmm (or torch._grouped_mm), one
        // CUTLASS grouped GEMM for all local experts.
        l.grouped_launch = GroupedLaunch::single;
        break;
    }
}

const char* to_string(GroupedLaunch g) {
    switch (g) {
    case GroupedLaunch::profile: return "profile";
    case GroupedLaunch::per_expert: return "per-expert";
    case GroupedLaunch::single: return "single";
    }
    return "?";
}

GroupedLaunch parse_grouped_launch(const std::string& s, const std::string& source, int line) {
    if (s == "profile") return GroupedLaunch::profile;
    if (s == "per-expert") return GroupedLaunch::per_expert;
    if (s == "single") return GroupedLaunch::single;
    throw InputError(source, line, "grouped-gemm", "expected profile, per-expert or single, got \"" + s + "\"");
}

Recompute parse_recompute(const std::string& s, const std::string& source, int line) {
    if (s == "none") return Recompute::none;
    if (s == "selective") return Recompute::selective;
    if (s == "full") return Recompute::full;
    throw InputError(source, line, "recompute", "expected none, selective or full, got \"" + s + "\"");
}

Overlap parse_overlap(const std::string& spec, Overlap o, const std::string& source, int line) {
    for (const auto& [key, text, has_value] : split_key_values(spec)) {
        char* stop = nullptr;
        const double v = std::strtod(text.c_str(), &stop);
        if (text.empty() || *stop != '\0' || !(v >= 0 && v <= 1))
            throw InputError(source, line, key, "expected key=fraction in [0, 1] (e.g. ep=0.5,dp=0.9)");
        if (key == "ep")
            o.ep = v;
        else if (key == "tp")
            o.tp = v;
        else if (key == "dp")
            o.dp = v;
        else if (key == "pp")
            o.pp = v;
        else
            throw InputError(source, line, key, "unknown key; expected ep, tp, dp or pp");
    }
    return o;
}

namespace {

struct ModuleName {
    const char* name;
    bool RecomputeModules::*flag;
};
constexpr ModuleName kRecomputeModules[] = {
    {"core_attn", &RecomputeModules::core_attn},
    {"moe_act", &RecomputeModules::moe_act},
    {"layernorm", &RecomputeModules::layernorm},
    {"mla_up_proj", &RecomputeModules::mla_up_proj},
    {"mlp", &RecomputeModules::mlp},
    {"moe", &RecomputeModules::moe},
    {"shared_experts", &RecomputeModules::shared_experts},
};

}  // namespace

RecomputeModules parse_recompute_modules(const std::string& spec, const std::string& source, int line) {
    RecomputeModules r = RecomputeModules::none();
    for (const KeyValue& item : split_list(spec)) {
        const ModuleName* found = nullptr;
        for (const ModuleName& m : kRecomputeModules)
            if (item.key == m.name && !item.has_value) found = &m;
        if (!found)
            throw InputError(source, line, item.key,
                             "unknown recompute module; expected core_attn, moe_act, layernorm, mla_up_proj, mlp, "
                             "moe or shared_experts");
        r.*found->flag = true;
    }
    return r;
}

OffloadModules parse_offload_modules(const std::string& spec, const std::string& source, int line) {
    OffloadModules o;
    for (const KeyValue& item : split_list(spec)) {
        if (item.key == "expert_fc1" && !item.has_value)
            o.expert_fc1 = true;
        else if (item.key == "moe_act" && !item.has_value)
            o.moe_act = true;
        else
            throw InputError(source, line, item.key, "unknown offload module; expected expert_fc1 or moe_act");
    }
    return o;
}

std::string to_string(const OffloadModules& o) {
    if (o.expert_fc1 && o.moe_act) return "expert_fc1,moe_act";
    if (o.expert_fc1) return "expert_fc1";
    return o.moe_act ? "moe_act" : "";
}

std::string to_string(const RecomputeModules& r) {
    std::string s;
    for (const ModuleName& m : kRecomputeModules)
        if (r.*m.flag) s += (s.empty() ? "" : ",") + std::string(m.name);
    return s;
}

}  // namespace moecast::sim

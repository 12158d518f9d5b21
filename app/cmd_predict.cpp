// `moecast predict MODEL [--seq-len N] [--set key=value]... [--json]`: parameters and FLOPs; with
// `--hardware PROFILE --gpus N [--parallel tp=..,pp=..,ep=..] ...` also memory per GPU,
// communication, step time (breakdown), tokens/s, MFU and the cost of --tokens; `--trace FILE`
// writes the predicted kernel timeline of one step as Chrome trace JSON; `--plot FILE.svg|FILE.html` the
// step-time breakdown and memory per GPU as stacked bars (sim/report/predict_plot.h).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/report/predict_plot.h"
#include "sim/report/report.h"
#include "sim/cost/trace.h"
#include "train/atomic_file.h"

namespace moecast::app {

namespace {

struct PredictArgs {
    std::string model = "mixtral-8x7b";
    std::vector<std::string> overrides;
    long long seq_len = 0;
    bool json = false;
    sim::CostRequest cost;
    long long gpus = 0;
    long long micro_batch = 1;
    long long global_batch = 0;
    std::string trace;
    std::string plot;
};

}  // namespace

void register_predict(CLI::App& app) {
    auto args = std::make_shared<PredictArgs>();
    CLI::App* cmd = app.add_subcommand("predict", "Parameters, FLOPs (and with --hardware, cost) of a model");
    cmd->add_option("model", args->model,
                    "Model: a moecast TOML, a HuggingFace config.json, or a bundled name (configs/models)")
        ->capture_default_str();
    cmd->add_option("--set", args->overrides, "Override a config key: --set moe.experts=64 (repeatable)");
    cmd->add_option("--seq-len", args->seq_len, "Sequence length for attention FLOPs (default: the config's)")
        ->check(kPositive);
    cmd->add_flag("--json", args->json, "Print one JSON object instead of the table");
    cmd->add_option("--hardware", args->cost.hardware,
                    "Hardware profile: a bundled name (profiles/: a100-sxm-80gb, h100-sxm, h200, b200) or a TOML path");
    cmd->add_option("--gpus", args->gpus, "Number of GPUs (default 1)")->check(kPositive);
    cmd->add_option("--parallel", args->cost.parallel,
                    "ParallelLayout: tp=,pp=,vp=,ep=,etp=,cp=,zero=,sp= (dp follows from --gpus)");
    cmd->add_option("--micro-batch", args->micro_batch, "Sequences per micro-batch (default 1)")->check(kPositive);
    cmd->add_option("--global-batch", args->global_batch, "Sequences per step (default dp x micro-batch)")
        ->check(kPositive);
    cmd->add_option("--precision", args->cost.precision, "GEMM precision: bf16, fp8, tf32, fp32")
        ->capture_default_str();
    cmd->add_option("--recompute", args->cost.recompute, "Activation recompute: none, selective, full")
        ->capture_default_str();
    cmd->add_flag("--cuda-graphs", args->cost.cuda_graphs,
                  "Replay the layers' fixed-shape kernels from CUDA graphs (the profile's graph_launch_us per kernel)");
    cmd->add_option("--recompute-modules", args->cost.recompute_modules,
                    "With --recompute selective: core_attn,moe_act,layernorm,mla_up_proj,mlp,moe,shared_experts");
    cmd->add_option("--framework", args->cost.framework,
                    "Training framework, for the buffers it keeps: megatron, megatron-bridge, fsdp2")
        ->capture_default_str();
    cmd->add_option("--states", args->cost.states,
                    "State precisions over the framework's: weights=,grads=,master=,moments= (fp32, bf16, fp8)");
    cmd->add_flag("--fused-cross-entropy", args->cost.fused_cross_entropy,
                  "The loss keeps bf16 logits (fused cross-entropy) instead of an fp32 copy");
    cmd->add_option("--offload-modules", args->cost.offload_modules,
                    "Activations offloaded to host memory until backward: expert_fc1,moe_act");
    cmd->add_option("--dispatcher", args->cost.dispatcher,
                    "MoE token dispatcher: alltoall, allgather (NCCL), deepep, hybridep (once per destination node)");
    cmd->add_option("--grouped-gemm", args->cost.grouped_gemm,
                    "Expert GEMM launches: per-expert (Transformer Engine's GroupedLinear), single (one CUTLASS "
                    "grouped GEMM: grouped_gemm.ops.gmm, torch._grouped_mm), profile (the profile's class); "
                    "default: the framework's (fsdp2: single), else the profile's");
    cmd->add_flag("--ep-overlap", args->cost.ep_overlap,
                  "Overlap the EP all-to-all with another micro-batch's compute (Megatron's "
                  "--overlap-moe-expert-parallel-comm); replaces --overlap ep=");
    cmd->add_flag("--tp-overlap", args->cost.tp_overlap,
                  "Overlap TP collectives with the GEMMs beside them (Megatron's --tp-comm-overlap)");
    cmd->add_option(
           "--routing", args->cost.routing,
           "Tokens per expert: balanced (forced), uniform, trained[:CV] (a trained router; CV default: the "
           "model's moe.router_load_cv), zipf:S, or an expert-load file (expert_load.json, or a JSON array of weights)")
        ->capture_default_str();
    cmd->add_option("--capacity-factor", args->cost.capacity_factor, "Expert capacity factor (0 = dropless)");
    cmd->add_option(
        "--overlap", args->cost.overlap,
        "Fixed fraction of each collective hidden by compute, over the schedules: ep=,tp=,dp=,pp= "
        "(defaults: ep 0 or --ep-overlap, tp 0, dp by Megatron's overlapped grad reduce and param gather, pp 1)");
    cmd->add_option("--tokens", args->cost.tokens, "Training tokens D: prints time, GPU-hours and dollars");
    cmd->add_option("--trace", args->trace, "Write the predicted kernel timeline of one step (Chrome trace JSON)");
    cmd->add_option("--plot", args->plot,
                    "Write the step-time breakdown and memory per GPU as stacked bars: FILE.svg, or FILE.html (a page "
                    "with the numbers)");
    cmd->callback([args, cmd] {
        std::vector<std::string> overrides = args->overrides;
        if (args->seq_len > 0) overrides.push_back("seq_len=" + std::to_string(args->seq_len));
        const sim::LoadedModel loaded = sim::load_model(args->model, overrides);
        for (const std::string& w : loaded.warnings) std::fprintf(stderr, "moecast: warning: %s\n", w.c_str());
        const sim::ModelPrediction p = sim::predict_model(loaded);
        if (args->cost.hardware.empty()) {
            for (const char* opt : {"--gpus",
                                    "--parallel",
                                    "--micro-batch",
                                    "--global-batch",
                                    "--precision",
                                    "--recompute",
                                    "--recompute-modules",
                                    "--cuda-graphs",
                                    "--framework",
                                    "--states",
                                    "--fused-cross-entropy",
                                    "--offload-modules",
                                    "--dispatcher",
                                    "--grouped-gemm",
                                    "--ep-overlap",
                                    "--tp-overlap",
                                    "--routing",
                                    "--capacity-factor",
                                    "--overlap",
                                    "--tokens",
                                    "--trace",
                                    "--plot"})
                if (cmd->count(opt) > 0)
                    throw sim::InputError(opt, 0, "hardware", std::string(opt) + " needs --hardware PROFILE");
            const nlohmann::json j = sim::checked_finite(sim::to_json(p), "predict");
            if (args->json)
                std::printf("%s\n", j.dump(2).c_str());
            else
                std::printf("%s", sim::to_table(p).c_str());
            return;
        }
        sim::CostRequest req = args->cost;
        req.gpus = args->gpus > 0 ? args->gpus : 1;
        req.micro_batch = args->micro_batch;
        req.global_batch = args->global_batch;
        const sim::CostReport c = sim::predict_cost_request(p, req);
        if (!args->trace.empty())
            sim::write_chrome_trace(
                c.cost, p.loaded.model.name + " on " + std::to_string(req.gpus) + " x " + c.hardware.name, args->trace);
        const nlohmann::json j = sim::checked_finite(sim::to_json(p, c), "predict");
        if (!args->plot.empty()) {
            const bool html = args->plot.size() >= 5 && args->plot.substr(args->plot.size() - 5) == ".html";
            train::write_file_atomic(args->plot, html ? sim::predict_plot_html(p, c) : sim::predict_plot_svg(p, c));
        }
        if (args->json)
            std::printf("%s\n", j.dump(2).c_str());
        else
            std::printf("%s%s", sim::to_table(p, c).c_str(),
                        args->plot.empty() ? "" : ("wrote " + args->plot + "\n").c_str());
    });
}

}  // namespace moecast::app

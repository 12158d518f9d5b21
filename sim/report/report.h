// Presentation of predictions: the human table and the JSON object of `moecast predict`.
// Numbers are formatted here, never computed here.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/cost/timing.h"

namespace moecast::sim {

struct ModelPrediction {
    LoadedModel loaded;
    ParamCounts params;
    FlopsPerToken flops;
};

ModelPrediction predict_model(const LoadedModel& loaded);

nlohmann::json to_json(const ModelPrediction& p);
std::string to_table(const ModelPrediction& p);

// The hardware part of `moecast predict --hardware ...`: options as given on the command line.
struct CostRequest {
    std::string hardware;  // profile name or path
    int64_t gpus = 1;
    std::string parallel;  // "tp=2,pp=4,ep=8,..."
    int64_t micro_batch = 1;
    int64_t global_batch = 0;            // 0 = dp * micro_batch
    std::string precision = "bf16";      // GEMM precision: bf16, fp8, tf32, fp32
    std::string recompute = "none";      // none, selective, full
    std::string recompute_modules;       // with selective: "core_attn,moe_act,layernorm,..." (empty: default)
    bool cuda_graphs = false;            // fixed-shape kernels replayed from CUDA graphs
    std::string framework = "megatron";  // megatron, megatron-bridge, fsdp2: the buffers it keeps
    std::string states;                  // "grads=bf16,moments=bf16": over the framework's precisions
    bool fused_cross_entropy = false;    // bf16 logits (on where the framework fuses it anyway)
    std::string offload_modules;         // activations kept in host memory: "expert_fc1,moe_act"
    std::string dispatcher;              // alltoall, allgather, deepep, hybridep (empty: hierarchical, no SMs)
    std::string grouped_gemm;            // per-expert, single, profile (empty: the framework's)
    bool ep_overlap = false;             // EP all-to-all overlapped by the 1F1B schedule
    bool tp_overlap = false;             // TP collectives overlapped with GEMMs (--tp-comm-overlap)
    std::string routing = "trained";     // balanced, uniform, trained[:CV], zipf:S
    double capacity_factor = 0;          // 0 = dropless
    std::string overlap;                 // "ep=0.5,tp=0,dp=0.9,pp=1"
    double tokens = 0;                   // training tokens D for time, GPU-hours and dollars
};

// The cost model's error on published runs (sim/study/backtest.h, the bundled configs/validation):
// MAPE of tokens/s/GPU over every run, over the runs on this profile's GPU and over this model's.
struct BacktestError {
    int rows = 0, gpu_rows = 0, model_rows = 0;
    double mape = 0, gpu_mape = 0, model_mape = 0;
};

struct CostReport {
    HardwareProfile hardware;
    CostPrediction cost;
    BacktestError backtest;
};

// The layout a request describes on this model and hardware, built and validated (InputError
// naming the option on bad input).
ParallelLayout request_layout(const CostRequest& r, const ModelConfig& model, const HardwareProfile& hw);

// Loads the profile, builds and validates the layout (InputError naming the option on bad
// input) and predicts memory, communication and step time at the model's seq_len.
CostReport predict_cost_request(const ModelPrediction& p, const CostRequest& r);

nlohmann::json to_json(const ModelPrediction& p, const CostReport& c);
std::string to_table(const ModelPrediction& p, const CostReport& c);

// 46702792704 -> "46.70 B"; 1.2e12 -> "1.20 T".
std::string human_count(double x);

}  // namespace moecast::sim

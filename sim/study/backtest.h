// The published-runs backtest: measured training throughputs of real clusters (configs/validation/
// *.csv, every row with its source) priced by the cost model, with the signed error per row and
// the mean absolute percentage error (MAPE) overall, per source, per model and per GPU. What users
// read as the cost model's error bar on predictions like theirs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/cost/timing.h"

namespace moecast::sim {

// One published, measured run: the model (a bundled name), the cluster and layout as the source
// states them, and the measured throughput.
struct BacktestRow {
    std::string file;  // where the row was read, for messages
    int line = 0;
    std::string id;
    std::string model;  // configs/models/<model>.toml
    std::string gpu;    // profiles/<lower-case gpu>.toml
    int64_t gpus = 0;
    int64_t tp = 1, pp = 1, vp = 1, ep = 1, etp = 1, cp = 1;
    bool fsdp = false;                 // weights, gradients and optimizer states sharded over data parallel (ZeRO-3)
    std::string framework;             // megatron (empty), megatron-bridge, fsdp2: the buffers it keeps
    std::string states;                // state precisions over the framework's ("grads=fp32 moments=bf16")
    bool fused_cross_entropy = false;  // bf16 logits (set where the framework's default is unfused)
    std::string offload_modules;       // activations offloaded to the host ("expert_fc1 moe_act")
    int64_t micro_batch = 1, global_batch = 0, seq_len = 0;
    std::string precision = "bf16";
    std::string recompute = "none";   // none, selective, full
    std::string recompute_modules;    // with selective: Megatron's names (empty: the default set)
    bool sequence_parallel = true;    // with tp > 1
    bool embedding_in_split = false;  // the embedding and the loss take a pipeline slot each
    bool loss_in_split = false;
    bool cuda_graphs = false;  // the layers' fixed-shape kernels replayed from CUDA graphs
    std::string dispatcher;    // alltoall, allgather (every row sent per expert) or deepep,
                               // flex (once per destination node); empty: ParallelLayout's default
    std::string routing;       // balanced (forced), dropless (a trained router), empty (not stated: uniform)
    bool ep_overlap = false;   // EP all-to-all overlapped with the other micro-batch's compute
    bool tp_overlap = false;   // TP collectives overlapped with the GEMMs beside them (--tp-comm-overlap)
    double measured_tokens_per_s_per_gpu = 0;
    std::string source;  // URL or repository path of the measurement
};

// Reads a backtest CSV (columns: configs/validation/README.md); InputError names file, line, column.
std::vector<BacktestRow> load_backtest_rows(const std::string& path);
// The bundled backtest files (configs/validation/*.csv), sorted by name.
std::vector<std::string> bundled_backtest_files();
// The rows of several files in order (default: the bundled ones); InputError if there are none.
std::vector<BacktestRow> load_backtest_files(std::vector<std::string> files = {});
// The bundled profile that prices a row's GPU: its name in lower case ("H100-SXM" -> "h100-sxm").
std::string profile_for_gpu(const std::string& gpu);

// The `moecast predict` command line that prices `row` as the backtest does: a user reruns a
// published run and reads its full breakdown (memory, communication, step-time parts).
std::string predict_command(const BacktestRow& row);

struct BacktestResult {
    BacktestRow row;
    bool priced = false;
    std::string skipped;  // why a row was not priced (no bundled profile for its GPU, ...)
    double predicted_tokens_per_s_per_gpu = 0;
    double error = 0;   // predicted / measured - 1 (positive: predicted too fast)
    double step_s = 0;  // predicted
    double memory_bytes = 0, capacity_bytes = 0;
    bool fits = false;  // predicted to fit in memory (every published run trained)
    StepBreakdown time;
};

struct ErrorSummary {
    int rows = 0;
    double mape = 0;        // mean |error|
    double mean_error = 0;  // signed: the bias
    double max_abs_error = 0;
};

struct BacktestReport {
    std::vector<BacktestResult> results;
    ErrorSummary overall;
    std::map<std::string, ErrorSummary> by_source, by_model, by_gpu;
    int not_fitting = 0;  // rows that trained but are predicted not to fit
    int skipped = 0;
};

// Constants that no datasheet gives and that real training stacks set, the same on every GPU:
// what a framework's kernels reach of the device's peaks, and its host cost per kernel. Fitted on
// published runs (fit_backtest); each replaces the profile's value for every row.
struct StackConstants {
    double gemm_compute = 0;          // dense GEMMs: asymptotic fraction of the bf16 matmul peak
    double grouped_gemm_compute = 0;  // expert GEMMs: the same for grouped GEMMs
    double attention_compute = 0;     // fused attention: fraction of the matmul peak
    double network_efficiency = 0;    // achieved fraction of the inter-node NIC line rate
    double launch_us = 0;             // host and launch time per kernel
    double graph_launch_us = 0;       // per kernel replayed from a CUDA graph
};
// Sets the constants in a profile; fp8 fractions keep their ratio to the bf16 ones.
void apply_stack_constants(const StackConstants& c, HardwareProfile& hw);
// The values a profile carries today (a starting point, and the unfitted baseline).
StackConstants stack_constants_of(const HardwareProfile& hw);

BacktestReport run_backtest(const std::vector<BacktestRow>& rows, const StackConstants* constants = nullptr);

// The trained router's expert-load CV (RoutingSpec::load_cv), fitted on pairs of rows that differ
// only in routing (learned dropless against forced balance): least squares on the log of the
// throughput ratio, which the stack constants nearly cancel from.
struct RouterFit {
    std::string model;  // empty: every pair
    int pairs = 0;
    double load_cv = 0;      // fitted
    double uniform_rms = 0;  // RMS error of log(ratio) with uniform multinomial routing
    double fitted_rms = 0;   // with the fitted CV
    double default_rms = 0;  // with the model's moe.router_load_cv or kTrainedRouterLoadCv
};
// The first entry pools every pair; one entry per model with pairs follows.
std::vector<RouterFit> fit_router_load_cv(const std::vector<BacktestRow>& rows);

// Fits the constants on rows (least squares on log(predicted / measured)) and judges them on rows
// they did not see: each model's (and each source's) rows predicted by constants fitted on the
// others; and fits the trained router's CV (fit_router_load_cv).
struct BacktestFit {
    StackConstants start;               // the profiles' values
    StackConstants fitted;              // on every row
    BacktestReport in_sample;           // rows priced with `fitted`
    ErrorSummary leave_one_model_out;   // each row priced with constants fitted without its model
    ErrorSummary leave_one_source_out;  // ... without its source (publication)
    std::map<std::string, StackConstants> by_held_out_model;
    std::vector<RouterFit> router;
    int evaluations = 0;
};
BacktestFit fit_backtest(const std::vector<BacktestRow>& rows);
std::string backtest_fit_table(const BacktestFit& f);
nlohmann::json backtest_fit_json(const BacktestFit& f);

std::string backtest_table(const BacktestReport& r);
nlohmann::json backtest_json(const BacktestReport& r);

// `moecast backtest [FILES] [--fit]`: the rows priced, and with fit the stack constants fitted;
// JSON (its "fit" object with fit) and table.
struct BacktestOutput {
    nlohmann::json json;
    std::string text;
};
BacktestOutput backtest_output(const std::vector<std::string>& files, bool fit);

}  // namespace moecast::sim

// The moecast command end to end: output formats and exit codes.
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli.h"

namespace {

using Result = moecast::test::CliResult;
using moecast::test::write_temp;

Result run(const std::string& args) { return moecast::test::run_cli(args); }

TEST(Cli, PredictJsonHasRequiredFields) {
    const Result r = run("predict mixtral-8x7b --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["params"]["total"].get<int64_t>(), 46'702'792'704);
    EXPECT_EQ(j["params"]["active"].get<int64_t>(), 12'879'925'248);
    for (const char* k : {"embedding", "lm_head", "non_embedding"}) EXPECT_TRUE(j["params"].contains(k)) << k;
    EXPECT_DOUBLE_EQ(j["sparsity"].get<double>(), 0.75);
    for (const char* k : {"forward", "training", "paper_eq9", "six_n_active"})
        EXPECT_GT(j["flops_per_token"][k].get<double>(), 0) << k;
}

TEST(Cli, PredictSetOverride) {
    const Result r = run("predict mixtral-8x7b --set moe.experts=16 --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["sparsity"].get<double>(), 14.0 / 16);
}

TEST(Cli, PredictTableByDefault) {
    const Result r = run("predict");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("46702792704"), std::string::npos) << r.out;
}

TEST(Cli, BadInputExitsTwoWithFileAndKey) {
    const std::string bad = write_temp("bad_topk.toml", "vocab = 10\nd_model = 8\nlayers = 1\n[attention]\nheads = 2\n"
                                                        "[moe]\nexperts = 2\ntop_k = 3\nexpert_ffn = 4\n");
    Result r = run("predict " + bad);
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("bad_topk.toml"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("moe.top_k"), std::string::npos) << r.out;

    r = run("predict no-such-model");
    EXPECT_EQ(r.rc, 2) << r.out;
    r = run("predict mixtral-8x7b --set moe.top_k=0");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("moe.top_k"), std::string::npos) << r.out;
}

// Sizes whose counts would overflow 64 bits, JSON numbers beyond a double, and out-of-range
// numeric flags are refused with exit 2 and the key, never printed as negative or non-finite figures.
TEST(Cli, OverflowingAndNonFiniteInputsAreRefused) {
    Result r = run("predict mixtral-8x7b --set moe.experts=4000000000 --set moe.expert_ffn=4000000000");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("moe.expert_ffn"), std::string::npos) << r.out;
    r = run("predict " + write_temp("huge.json", "{\"model_type\": \"mixtral\", \"hidden_size\": 1e999}"));
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("huge.json"), std::string::npos) << r.out;
    for (const char* flag : {"--tokens -5", "--tokens nan", "--capacity-factor 1e300", "--capacity-factor nan",
                             "--parallel ep=8,ep=4", "--parallel ep=8,,tp=1"}) {
        r = run(std::string("predict mixtral-8x7b --hardware h100-sxm --gpus 8 ") + flag);
        EXPECT_EQ(r.rc, 2) << flag << ": " << r.out;
    }
    // TOML's nan literal in a model file's official figure.
    std::string model = moecast::test::read_source_file("configs/models/mixtral-8x7b.toml");
    model.replace(model.find("total_params = "), std::string("total_params = ").size(), "total_params = nan #");
    r = run("predict " + write_temp("nan_official.toml", model));
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("reference.total_params"), std::string::npos) << r.out;
    // A law whose loss is non-finite over the sizes searched is refused when read, naming where.
    std::string law = moecast::test::read_source_file("configs/laws/chinchilla-hoffmann2022.toml");
    law.replace(law.find("\nalpha = "), std::string("\nalpha = ").size(), "\nalpha = -50.0 #");
    r = run("optimize --law " + write_temp("bad_law.toml", law));
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("key 'coefficients': the coefficients give a loss of inf at N = 1e+09"), std::string::npos)
        << r.out;
    // A range message is short: no 309-digit bound.
    r = run("optimize --max-params nan");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("expected a finite number > 0"), std::string::npos) << r.out;
    EXPECT_LT(r.out.size(), 300u) << r.out;
    // A deeply nested JSON value is named by its kind, never serialised into the message.
    std::string deep = "{\"model_type\": \"mixtral\", \"vocab_size\": 32000, \"hidden_size\": ";
    deep += std::string(20000, '[') + std::string(20000, ']') + "}";
    r = run("predict " + write_temp("deep.json", deep));
    EXPECT_EQ(r.rc, 2) << r.out.substr(0, 300);
    EXPECT_NE(r.out.find("got an array"), std::string::npos) << r.out.substr(0, 300);
    EXPECT_LT(r.out.size(), 400u);
}

// A file the environment will not let us write is exit 4 with the path and the OS's reason.
TEST(Cli, UnwritableOutputExitsFour) {
    const std::string path = testing::TempDir() + "no-such-folder/step.json";
    const Result r = run("predict mixtral-8x7b --hardware h100-sxm --trace " + path);
    EXPECT_EQ(r.rc, 4) << r.out;
    EXPECT_NE(r.out.find(path), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("No such file"), std::string::npos) << r.out;
}

TEST(Cli, MalformedJsonAndUnknownModelType) {
    Result r = run("predict " + write_temp("broken.json", "{\"model_type\": \"mixtral\", "));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("broken.json"), std::string::npos) << r.out;
    r = run("predict " + write_temp("unknown.json", "{\"model_type\": \"llama99\"}"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("supported"), std::string::npos) << r.out;
}

TEST(Cli, PredictHuggingFaceConfig) {
    const Result r = run("predict " + std::string(MOECAST_SOURCE_DIR) + "/tests/data/hf/deepseek-v3.json --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["params"]["total"].get<int64_t>(), 671'026'419'200);
}

// A 2025 family imports and is priced; an unknown model_type imports by its keys with a warning on
// stderr; a failing value is named as the file writes it.
TEST(Cli, NewFamiliesUnknownTypesAndKeysAsWritten) {
    const std::string hf = std::string(MOECAST_SOURCE_DIR) + "/tests/data/hf/";
    Result r = run("predict " + hf + "qwen3-next-80b-a3b.json --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["params"]["total"].get<int64_t>(), 79'674'391'296);
    r = run("predict " + write_temp("renamed.json", "{\"model_type\": \"my_mixtral\", \"vocab_size\": 10, "
                                                    "\"hidden_size\": 8, \"num_hidden_layers\": 1, "
                                                    "\"num_attention_heads\": 2, \"num_local_experts\": 4, "
                                                    "\"num_experts_per_tok\": 2, \"intermediate_size\": 16}"));
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("moecast: warning: model_type \"my_mixtral\""), std::string::npos) << r.out;
    r = run("predict " + write_temp("k_above_e.json", "{\"model_type\": \"mixtral\", \"vocab_size\": 10, "
                                                      "\"hidden_size\": 8, \"num_hidden_layers\": 1, "
                                                      "\"num_attention_heads\": 2, \"num_local_experts\": 4, "
                                                      "\"num_experts_per_tok\": 5, \"intermediate_size\": 16}"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("key 'num_experts_per_tok'"), std::string::npos) << r.out;
    r = run("predict " + write_temp("unknown_key.json", "{\"model_type\": \"my_mixtral\", \"vocab_size\": 10, "
                                                        "\"hidden_size\": 8, \"num_hidden_layers\": 1, "
                                                        "\"num_attention_heads\": 2, \"num_local_experts\": 4, "
                                                        "\"num_experts_per_tok\": 2, \"intermediate_size\": 16, "
                                                        "\"num_memory_slots\": 8}"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("key 'num_memory_slots'"), std::string::npos) << r.out;
}

TEST(Cli, MalformedJsonNamesLineAndMissingKeyNamesKey) {
    Result r = run("predict " + write_temp("bad_line.json", "{\n  \"model_type\": \"mixtral\",\n  \"x\": 1,,\n}\n"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("bad_line.json:3:"), std::string::npos) << r.out;
    r = run("predict " + write_temp("no_experts.json",
                                    "{\"model_type\": \"mixtral\", \"vocab_size\": 10, \"hidden_size\": 8, "
                                    "\"num_hidden_layers\": 1, \"num_attention_heads\": 2}"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("no_experts.json"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("num_local_experts"), std::string::npos) << r.out;
}

TEST(Cli, ImportWritesTomlThatPredictReads) {
    const std::string out = testing::TempDir() + "imported-olmoe.toml";
    Result r = run("import " + std::string(MOECAST_SOURCE_DIR) + "/tests/data/hf/olmoe-1b-7b.json -o " + out);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = run("predict " + out + " --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["params"]["total"].get<int64_t>(), 6'919'161'856);
    r = run("import " + write_temp("import_bad.json", "{\"model_type\": \"nope\"}"));
    EXPECT_EQ(r.rc, 2) << r.out;
}

}  // namespace

// `moecast optimize` and `moecast fit` (scaling-law issue).
namespace {

TEST(Cli, OptimizeDefaultPrintsTableAndOptimum) {
    const Result r = run("optimize");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("law abnar2025, family paper, budget 1e+21 flops"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("optimum: S = 0.9800"), std::string::npos) << r.out;
}

TEST(Cli, OptimizeJsonAndPlot) {
    const std::string svg = testing::TempDir() + "optimize.svg";
    const Result r = run("optimize --budget 3e19 --json --plot " + svg);
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["by_sparsity"].size(), 7u);
    EXPECT_DOUBLE_EQ(j["optimum"]["sparsity"].get<double>(), 0.98);
    EXPECT_LT(j["by_sparsity"][6]["active_params"].get<double>(), j["by_sparsity"][0]["active_params"].get<double>());
    EXPECT_GT(j["by_sparsity"][6]["params"].get<double>(), j["by_sparsity"][0]["params"].get<double>());
    std::ifstream f(svg);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.rfind("<svg", 0), 0u);
    EXPECT_NE(text.find("IsoFLOP curves"), std::string::npos);
    EXPECT_NE(text.find("Lowest loss against training cost"), std::string::npos);
    EXPECT_NE(text.find("chosen: S = 0.98"), std::string::npos);  // the optimum above, marked
    EXPECT_NE(text.find("</svg>"), std::string::npos);
}

TEST(Cli, PredictPlotStepTimeAndMemoryBars) {
    const std::string svg = testing::TempDir() + "predict.svg", html = testing::TempDir() + "predict.html";
    const std::string args = "predict mixtral-8x7b --hardware h100-sxm --gpus 8 --parallel ep=8 --global-batch 64 ";
    const Result j = run(args + "--json");
    ASSERT_EQ(j.rc, 0) << j.out;
    const auto pred = nlohmann::json::parse(j.out);
    ASSERT_EQ(run(args + "--plot " + svg).rc, 0);
    ASSERT_EQ(run(args + "--plot " + html).rc, 0);
    std::ifstream f(svg);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.rfind("<svg", 0), 0u);
    // The charts' titles carry the prediction's own numbers.
    const double step_s = pred["time"]["step_s"].get<double>(), mem = pred["memory"]["per_gpu_bytes"].get<double>();
    char step[64], memory[64];
    if (step_s < 1)
        std::snprintf(step, sizeof step, "Step time %.4g ms per step", 1e3 * step_s);
    else
        std::snprintf(step, sizeof step, "Step time %.4g s per step", step_s);
    std::snprintf(memory, sizeof memory, "Memory per GPU %.1f of 80 GB", mem / 1e9);
    EXPECT_NE(text.find(step), std::string::npos) << step;
    EXPECT_NE(text.find(memory), std::string::npos) << memory;
    EXPECT_NE(text.find("capacity 80 GB"), std::string::npos);
    std::ifstream g(html);
    const std::string page((std::istreambuf_iterator<char>(g)), std::istreambuf_iterator<char>());
    EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_LT(page.find("<section id=\"summary\">"), page.find("<svg"));
    // Without hardware there is nothing to plot: a clear error, exit 2.
    const Result bad = run("predict mixtral-8x7b --plot " + svg);
    EXPECT_EQ(bad.rc, 2) << bad.out;
    EXPECT_NE(bad.out.find("--plot needs --hardware PROFILE"), std::string::npos) << bad.out;
}

TEST(Cli, OptimizeCostBudgetNeedsHardware) {
    const Result r = run("optimize --budget 1000 --budget-unit gpu-hours");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("requires the cost model"), std::string::npos) << r.out;
    EXPECT_EQ(run("optimize --law no-such-law").rc, 2);
}

TEST(Cli, FitChinchillaReproducesEpoch) {
    const std::string law = testing::TempDir() + "fitted-chinchilla.toml";
    const Result r = run("fit " + std::string(MOECAST_SOURCE_DIR) +
                         "/tests/data/chinchilla-epoch.csv --law chinchilla --drop-highest 5 --json -o " + law);
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["data"]["n_fit"].get<int>(), 240);
    EXPECT_EQ(j["bootstrap_resamples"].get<int>(), 1000);
    EXPECT_LE(j["objective"].get<double>(), 1.01828e-3);
    const auto& c = j["coefficients"];
    EXPECT_NEAR(c["alpha"]["value"].get<double>(), 0.3473, 1e-3);
    EXPECT_NEAR(c["beta"]["value"].get<double>(), 0.3672, 1e-3);
    EXPECT_NEAR(c["E"]["value"].get<double>(), 1.8172, 0.005);
    EXPECT_LE(c["alpha"]["ci95"][0].get<double>(), 0.373);  // overlaps Epoch's (0.317, 0.373)
    EXPECT_GE(c["alpha"]["ci95"][1].get<double>(), 0.317);
    // The saved law is usable by optimize (Chinchilla ignores S).
    const Result o = run("optimize --law " + law + " --budget 1e20");
    EXPECT_EQ(o.rc, 0) << o.out;
}

TEST(Cli, FitHoldoutAndBadInput) {
    const std::string csv = write_temp("runs.csv", "N,D,S,loss\n1e8,2e9,0,3.4\n1e9,2e10,0,2.6\n");
    Result r = run("fit " + csv + " --law chinchilla");
    EXPECT_EQ(r.rc, 2) << r.out;  // fewer runs than coefficients
    r = run("fit " + write_temp("bad_runs.csv", "N,D,loss\n1e8,x,3\n") + " --law chinchilla");
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("bad_runs.csv:2"), std::string::npos) << r.out;
    r = run("fit " + csv + " --law kaplan");
    EXPECT_EQ(r.rc, 2);
    r = run("fit " + std::string(MOECAST_SOURCE_DIR) +
            "/tests/data/chinchilla-epoch.csv --drop-highest 5 --bootstrap 0 --holdout 'C>=1e21' --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["data"]["n_heldout"].get<int>(), 0);
    EXPECT_GT(j["quality"]["heldout_mse"].get<double>(), 0);
}

TEST(Cli, PredictHardwareJsonTraceAndInvalidLayout) {
    const std::string trace = testing::TempDir() + "qwen_trace.json";
    Result r = run("predict qwen3-30b-a3b --hardware h100-sxm --gpus 16 --parallel tp=1,pp=2,vp=12,ep=8 "
                   "--global-batch 1024 --precision fp8 --routing balanced --tokens 1e12 --json --trace " +
                   trace);
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["params"]["total"].get<int64_t>(), 30'532'122'624);  // counts unchanged by --hardware
    EXPECT_GT(j["memory"]["per_gpu_bytes"].get<double>(), 0);
    EXPECT_TRUE(j["memory"]["fits"].get<bool>());
    for (const char* k : {"weights", "gradients", "optimizer", "activations"})
        EXPECT_TRUE(j["memory"]["breakdown"].contains(k)) << k;
    EXPECT_GT(j["comm"]["ep_dispatch"]["bytes"].get<double>(), 0);
    EXPECT_GT(j["time"]["step_s"].get<double>(), 0);
    EXPECT_GT(j["time"]["breakdown"]["expert_gemm_s"].get<double>(), 0);
    EXPECT_GT(j["throughput"]["tokens_per_s_per_gpu"].get<double>(), 0);
    EXPECT_GT(j["mfu"].get<double>(), 0);
    EXPECT_GT(j["training"]["usd"].get<double>(), 0);
    const auto t = nlohmann::json::parse(std::ifstream(trace));
    EXPECT_GT(t["traceEvents"].size(), 100u);

    r = run("predict qwen3-30b-a3b --hardware h100-sxm --gpus 8 --parallel ep=256");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("ep"), std::string::npos) << r.out;
    r = run("predict qwen3-30b-a3b --hardware h100-sxm --gpus 8 --parallel tp=16");
    EXPECT_EQ(r.rc, 2) << r.out;
    r = run("predict qwen3-30b-a3b --hardware no-such-gpu");
    EXPECT_EQ(r.rc, 2) << r.out;
    r = run("predict qwen3-30b-a3b --gpus 8");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("--hardware"), std::string::npos) << r.out;
    r = run("predict mixtral-8x7b --hardware a100-sxm-80gb --precision fp8");
    EXPECT_EQ(r.rc, 2) << r.out;
    r = run("predict mixtral-8x7b --hardware h100-sxm --gpus 8 --parallel ep=8 --routing zipf:x");
    EXPECT_EQ(r.rc, 2) << r.out;
}

// Every bundled backtest row's `--command` line, run as a user would, predicts exactly the
// throughput the backtest printed for that row: one pricing path, reproducible row by row.
TEST(Cli, BacktestCommandReproducesEveryRow) {
    Result r = run("backtest --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto rows = nlohmann::json::parse(r.out)["rows"];
    int checked = 0;
    for (const auto& row : rows) {
        if (!row["priced"].get<bool>()) continue;
        const std::string id = row["id"].get<std::string>();
        r = run("backtest --command " + id);
        ASSERT_EQ(r.rc, 0) << id << ": " << r.out;
        const std::string prefix = "moecast predict ";
        ASSERT_EQ(r.out.rfind(prefix, 0), 0u) << r.out;
        std::string args = r.out.substr(prefix.size());
        args.erase(args.find_last_not_of('\n') + 1);
        const Result p = run("predict " + args + " --json");
        ASSERT_EQ(p.rc, 0) << id << ": " << p.out;
        EXPECT_DOUBLE_EQ(nlohmann::json::parse(p.out)["throughput"]["tokens_per_s_per_gpu"].get<double>(),
                         row["predicted_tokens_per_s_per_gpu"].get<double>())
            << id;
        ++checked;
    }
    EXPECT_GE(checked, 80);
    r = run("backtest --command NO-SUCH-ROW");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("NO-SUCH-ROW"), std::string::npos) << r.out;
}

}  // namespace

namespace {

// `moecast study` run from the source tree with a shell prefix (environment variables).
Result study(const std::string& env, const std::string& args) {
    return moecast::test::run_cli_in(std::string(MOECAST_SOURCE_DIR), env, "study configs/studies/smoke.toml " + args);
}

// `train --device cuda` where there is no GPU (this machine) or no CUDA in the build: a clear
// message and the environment's exit code 4, before any step runs. Skipped where a GPU is present
// (there it trains: tests/train/cuda_engine_test.cpp).
TEST(Cli, TrainOnCudaWithoutAGpuIsAnEnvironmentError) {
    if (std::ifstream("/dev/nvidia0").good()) GTEST_SKIP() << "an NVIDIA device is present";
    const std::string out = ::testing::TempDir() + "moecast_cli_train_cuda";
    const Result r = run("train --device cuda --steps 1 --no-progress --out " + out + " --data " +
                         std::string(MOECAST_SOURCE_DIR) + "/tests/data/emma-excerpt.txt");
    EXPECT_EQ(r.rc, 4) << r.out;
    EXPECT_NE(r.out.find("--device cuda"), std::string::npos) << r.out;
}

}  // namespace

TEST(Cli, StudyShardFromSlurmArrayVariables) {
    const std::string out = "--dry-run --out " + testing::TempDir() + "slurm-shard-runs";
    const Result env = study("SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3", out);
    const Result flag = study("", out + " --shard 1/3");
    ASSERT_EQ(env.rc, 0) << env.out;
    EXPECT_EQ(env.out, flag.out);
    EXPECT_NE(env.out.find("shard 1/3"), std::string::npos) << env.out;
    // Slurm's ids start where --array starts: task 3 of --array=2-4 is shard 1/3.
    EXPECT_EQ(study("SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=2", out).out, flag.out);
    // --shard wins over the environment.
    EXPECT_EQ(study("SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=3", out + " --shard 1/3").out, flag.out);
    const Result bad = study("SLURM_ARRAY_TASK_ID=one SLURM_ARRAY_TASK_COUNT=3", out);
    EXPECT_EQ(bad.rc, 2);
    EXPECT_NE(bad.out.find("SLURM_ARRAY_TASK_ID"), std::string::npos) << bad.out;
    const Result no_slurm = study("", out + " --partition gpu");
    EXPECT_EQ(no_slurm.rc, 2);
    EXPECT_NE(no_slurm.out.find("--partition needs --slurm"), std::string::npos) << no_slurm.out;
}

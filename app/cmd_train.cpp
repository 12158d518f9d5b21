// `moecast train [CONFIG] [--budget F] [--steps N] [--data FILE...] [--val FILE...] [--set k=v]...
// [--out DIR] [--resume] [--threads N] [--seed N] [--device cpu|cuda] [--no-progress]`. Trains a
// byte-level MoE LM to a FLOP budget (train/trainer.h) and prints its summary. Exit 3 when a
// non-finite loss or gradient stopped the run (the last good checkpoint is kept); exit 4 for
// --device cuda without CUDA in this build or without a usable GPU.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "train/trainer.h"
#ifdef MOECAST_TRAIN_CUDA
#include "train/cuda_engine.h"
#endif

namespace moecast::app {
namespace {

struct TrainArgs {
    std::string config;
    std::vector<std::string> overrides, data, val;
    double budget = 0;
    long long steps = 0, seed = -1;
    int threads = 0;
    std::string out, device = "cpu";
    bool resume = false, no_progress = false;
};

std::string toml_quote(const std::string& v) {
    std::string q = "\"";
    for (char ch : v) q += (ch == '"' || ch == '\\') ? std::string("\\") + ch : std::string(1, ch);
    return q + "\"";
}

std::string toml_string_array(const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + toml_quote(v[i]);
    return s + "]";
}

void run(const TrainArgs& a) {
    std::vector<std::string> o = a.overrides;
    if (a.budget > 0) o.push_back("train.budget_flops=" + std::to_string(a.budget));
    if (a.steps > 0) o.push_back("train.steps=" + std::to_string(a.steps));
    if (a.threads > 0) o.push_back("train.threads=" + std::to_string(a.threads));
    if (a.seed >= 0) o.push_back("train.seed=" + std::to_string(a.seed));
    if (!a.out.empty()) o.push_back("data.out_dir=" + toml_quote(a.out));
    if (!a.data.empty()) {
        o.push_back("data.train=" + toml_string_array(a.data));
        o.push_back("data.val=" + toml_string_array(a.val));  // empty: hold out the tail
        o.push_back("data.literary=[]");
    } else if (!a.val.empty()) {
        o.push_back("data.val=" + toml_string_array(a.val));
    }
    const std::string path = a.config.empty() ? sim::configs_dir() + "/train/default.toml" : a.config;
    const train::TrainConfig c = train::load_train_config(path, o);
    const sim::ParamCounts pc = sim::count_params(c.model);
    const int64_t steps = train::planned_steps(c);
    std::printf("moecast train: %s  N %.4g  N_a %.4g  S %.3f  E %lld  K %lld\n", c.model.name.c_str(),
                static_cast<double>(pc.total), static_cast<double>(pc.active), sim::sparsity(c.model),
                static_cast<long long>(c.model.moe.experts), static_cast<long long>(c.model.moe.top_k));
    std::printf(
        "budget %.4g FLOPs = %lld steps x %lld tokens x %.4g FLOPs/token (sim/model/count, training)\n",
        c.steps > 0 ? train::training_flops_per_token(c) * double(c.batch_tokens) * double(steps) : c.budget_flops,
        static_cast<long long>(steps), static_cast<long long>(c.batch_tokens), train::training_flops_per_token(c));
    std::fflush(stdout);
    train::RunOptions opt;
    opt.resume = a.resume;
    opt.device = a.device;
#ifdef MOECAST_TRAIN_CUDA
    train::register_cuda_engine();
#endif
    opt.progress = !a.no_progress && ::isatty(STDERR_FILENO);
    const train::RunSummary r = train::run_training(c, opt);
    if (r.status == "non-finite") {
        std::fprintf(stderr, "moecast train: stopped: %s\n  run folder: %s (failure.json)\n", r.message.c_str(),
                     r.run_dir.c_str());
        std::exit(3);
    }
    std::printf("run %s\n", r.run_dir.c_str());
    std::printf("D %.4g tokens  FLOPs %.4g of %.4g budget (%lld steps%s)\n", double(r.steps) * double(c.batch_tokens),
                r.flops, r.budget_flops, static_cast<long long>(r.steps),
                r.resumed_from >= 0 ? (", resumed at step " + std::to_string(r.resumed_from)).c_str() : "");
    std::printf("final train loss %.4f nats/byte  val %.4f nats/byte (%.4f bits/byte)",
                r.losses.empty() ? NAN : r.losses.back(), r.val_loss, r.val_loss / std::log(2.0));
    if (r.literary_loss >= 0)
        std::printf("  literary %.4f nats/byte (%.4f bits/byte)", r.literary_loss, r.literary_loss / std::log(2.0));
    std::printf("\n%.0f tokens/s  %.3g FLOP/s (model FLOPs, this session)\n", r.tokens_per_s, r.flops_per_s);
}

}  // namespace

void register_train(CLI::App& app) {
    auto a = std::make_shared<TrainArgs>();
    CLI::App* cmd = app.add_subcommand("train", "Train a byte-level MoE language model to a FLOP budget");
    cmd->add_option("config", a->config, "Training config TOML (default: configs/train/default.toml)");
    cmd->add_option("--budget", a->budget, "Training FLOP budget (sim/model/count training FLOPs), e.g. 1e12")
        ->check(kPositive);
    cmd->add_option("--steps", a->steps, "Train this many steps instead of a budget")->check(kPositive);
    cmd->add_option("--data", a->data, "Train on these text files (default: the config's; scripts/get-corpus)");
    cmd->add_option("--val", a->val, "Validation text files (default with --data: the last 10 % of the text)");
    cmd->add_option("--set", a->overrides, "Override a config key: --set model.moe.experts=16 (repeatable)");
    cmd->add_option("--out", a->out, "Folder for run folders (default: runs)");
    cmd->add_option("--threads", a->threads, "Worker threads (results are bitwise reproducible per count)")
        ->check(CLI::Range(1, 256));
    cmd->add_option("--seed", a->seed, "Random seed (initialisation and data order)")->check(kNonNegative);
    cmd->add_option("--device", a->device, "cpu (default) or cuda (one GPU, fp32; same run folder and checkpoints)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->add_flag("--resume", a->resume, "Continue from the run folder's checkpoint if there is one");
    cmd->add_flag("--no-progress", a->no_progress, "No progress bar");
    cmd->callback([a] { run(*a); });
}

}  // namespace moecast::app

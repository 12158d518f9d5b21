// `moecast predict MODEL [--seq-len N] [--set key=value]... [--json]`.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "sim/report.h"

namespace moecast::app {

namespace {

struct PredictArgs {
    std::string model = "mixtral-8x7b";
    std::vector<std::string> overrides;
    long long seq_len = 0;
    bool json = false;
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
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--json", args->json, "Print one JSON object instead of the table");
    cmd->callback([args] {
        std::vector<std::string> overrides = args->overrides;
        if (args->seq_len > 0) overrides.push_back("seq_len=" + std::to_string(args->seq_len));
        const sim::ModelPrediction p = sim::predict_model(sim::load_model(args->model, overrides));
        if (args->json)
            std::printf("%s\n", sim::to_json(p).dump(2).c_str());
        else
            std::printf("%s", sim::to_table(p).c_str());
    });
}

}  // namespace moecast::app

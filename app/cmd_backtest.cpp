// `moecast backtest [FILE...] [--json] [--fit] [--command ID]`: published, measured training runs priced by the cost
// model, with the error per row and summarised (sim/study/backtest). Without files it runs the
// bundled configs/validation/*.csv.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/study/backtest.h"

namespace moecast::app {

namespace {

struct BacktestArgs {
    std::vector<std::string> files;
    bool json = false;
    bool fit = false;
    std::string command;  // a row id: print its `moecast predict` command line
};

}  // namespace

void register_backtest(CLI::App& app) {
    auto args = std::make_shared<BacktestArgs>();
    CLI::App* cmd = app.add_subcommand("backtest", "Price published, measured training runs and report the error");
    cmd->add_option("files", args->files, "Backtest CSV files (default: the bundled configs/validation/*.csv)");
    cmd->add_flag("--json", args->json, "Print one JSON object instead of the table");
    cmd->add_flag("--fit", args->fit,
                  "Also fit the stack constants (GEMM, grouped GEMM and attention efficiency, network "
                  "efficiency, launch time) and report their leave-one-model-out error");
    cmd->add_option("--command", args->command,
                    "Print the `moecast predict` command line that prices the row with this id (its breakdown)");
    cmd->callback([args] {
        if (!args->command.empty()) {
            for (const sim::BacktestRow& row : sim::load_backtest_files(args->files))
                if (row.id == args->command) {
                    std::printf("%s\n", sim::predict_command(row).c_str());
                    return;
                }
            throw sim::InputError("--command", 0, "id", "no backtest row has id \"" + args->command + "\"");
        }
        const sim::BacktestOutput out = sim::backtest_output(args->files, args->fit);
        sim::checked_finite(out.json, "backtest");  // the table prints the same figures
        std::printf("%s", args->json ? (out.json.dump(2) + "\n").c_str() : out.text.c_str());
    });
}

}  // namespace moecast::app

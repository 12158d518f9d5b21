// One registration function per subcommand; each adds its options to the CLI11 app and sets a
// callback that calls into the libraries. No logic lives in app/.
#pragma once

#include <CLI/CLI.hpp>

namespace moecast::app {

void register_predict(CLI::App& app);
void register_train(CLI::App& app);
void register_corpus(CLI::App& app);
void register_import(CLI::App& app);
void register_profile(CLI::App& app);
void register_calibrate(CLI::App& app);
void register_fit(CLI::App& app);
void register_optimize(CLI::App& app);
void register_study(CLI::App& app);
void register_validate(CLI::App& app);
void register_report(CLI::App& app);
void register_backtest(CLI::App& app);

}  // namespace moecast::app

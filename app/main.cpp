// moecast command-line entry point. Exit codes: 0 success, 1 internal failure (a bug), 2 bad input
// (with a message naming file, key and what was expected), 3 a training run diverged or failed
// (train, study), 4 the environment failed (a path and the OS's reason).
#include <cstdio>
#include <exception>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "sim/core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"moecast — performance simulator and cost model for Mixture-of-Experts models"};
    app.require_subcommand(1);
    moecast::app::register_predict(app);
    moecast::app::register_train(app);
    moecast::app::register_corpus(app);
    moecast::app::register_import(app);
    moecast::app::register_profile(app);
    moecast::app::register_calibrate(app);
    moecast::app::register_fit(app);
    moecast::app::register_optimize(app);
    moecast::app::register_study(app);
    moecast::app::register_validate(app);
    moecast::app::register_report(app);
    moecast::app::register_backtest(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    } catch (const moecast::sim::InputError& e) {
        std::fprintf(stderr, "moecast: error: %s\n", e.what());
        return 2;
    } catch (const moecast::sim::IoError& e) {
        std::fprintf(stderr, "moecast: error: %s\n", e.what());
        return 4;
    } catch (const std::filesystem::filesystem_error& e) {
        std::fprintf(stderr, "moecast: error: %s\n", e.what());
        return 4;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moecast: internal error: %s\n", e.what());
        return 1;
    }
    return 0;
}

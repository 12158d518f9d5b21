// One registration function per subcommand; each adds its options to the CLI11 app and sets a
// callback that calls into the libraries. No logic lives in app/.
#pragma once

#include <cmath>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace moecast::app {

// Numeric flag checks with a readable message (CLI11's own print the double range's 309 digits):
// finite and > 0, or finite and >= 0.
inline CLI::Validator finite_at_least(double floor, bool strict) {
    return CLI::Validator(
        [floor, strict](std::string& text) -> std::string {
            char* stop = nullptr;
            const double v = std::strtod(text.c_str(), &stop);
            const bool number = !text.empty() && stop && *stop == '\0' && std::isfinite(v);
            if (number && (strict ? v > floor : v >= floor)) return {};
            return std::string("expected a finite number ") + (strict ? "> " : ">= ") + CLI::detail::to_string(floor) +
                   ", got \"" + text + "\"";
        },
        strict ? "POSITIVE" : "NON-NEGATIVE");
}
inline const CLI::Validator kPositive = finite_at_least(0, true);
inline const CLI::Validator kNonNegative = finite_at_least(0, false);

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

// `moecast fit` as a function (the command and the Python module's moecast.fit both call it): the
// law fitted to runs the Chinchilla way (sim/laws/fit), with its JSON object, its table and the
// TOML that `-o` writes.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/laws/fit.h"

namespace moecast::sim {

struct FitRequest {
    std::string law = "chinchilla";  // the form to fit (law_form)
    int bootstrap = 1000;            // resamples for 95% CIs (0: none)
    std::string holdout;             // "S>=0.98", "C>=1e21", "largest-budget" or "" (parse_holdout)
    int drop_highest = 0;            // drop the k highest-loss runs first
    int threads = 2;
    double huber_delta = 1e-3;
    uint64_t seed = 20240417;  // bootstrap seed
    bool isoflop = false;      // also the IsoFLOP surface of each budget with >= 4 runs
    std::string law_name;      // the fitted law's name ("" = "fitted-FORM")
};

// "fitted-FORM-STEM": the name `moecast fit DATA` gives the law it fits.
std::string fitted_law_name(const std::string& form, const std::string& data_path);

struct FitReport {
    FitResult result;
    nlohmann::json json;  // what `moecast fit --json` prints
    std::string text;     // the table it prints otherwise
};

// InputError naming the option for a bad request (an unknown form, a bad hold-out, negative counts).
FitReport fit_report(const FitData& all, const FitRequest& r);

// The fitted law as TOML (usable by optimize --law), its header naming the data it was fitted to.
std::string fitted_law_toml(const FitReport& r, const std::string& data);

// Runs from CSV text (columns and aliases as load_fit_data), `source` naming them in errors.
FitData fit_data_from_csv_text(const std::string& text, const std::string& source);

}  // namespace moecast::sim

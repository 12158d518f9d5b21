// `moecast optimize` as a function (the command and the Python module's moecast.optimize both call
// it): the loss-optimal sparsity, size and token count for a budget over a family's real
// architectures (sim/laws/search), priced on hardware when one is given, with its JSON object, its
// table and, on request, the SVG of its plots.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace moecast::sim {

struct OptimizeRequest {
    std::string law = "abnar2025";  // bundled name or TOML
    double budget = 1e21;           // in `unit`
    std::string unit = "flops";     // flops, gpu-hours, usd
    std::string hardware;           // "" = FLOPs only
    int64_t gpus = 8;               // with hardware
    std::string family = "paper";   // bundled name or TOML
    double max_params = 0;          // 0 = no limit
    double max_inference_flops = 0;
    double max_memory_gb = 0;  // needs hardware
    bool plot = false;         // also render the SVG
};

struct OptimizeReport {
    nlohmann::json json;  // what `moecast optimize --json` prints
    std::string text;     // the table it prints otherwise
    std::string svg;      // with plot and a feasible optimum: IsoFLOP curves, loss vs S, optimum vs budget
};

// InputError naming the option for a bad request.
OptimizeReport optimize_report(const OptimizeRequest& r);

}  // namespace moecast::sim

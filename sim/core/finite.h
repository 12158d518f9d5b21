// The last guard before output: no NaN or infinity is ever printed or written. Inputs that could
// lead there are refused when read (exit 2); a non-finite figure that still reaches an output is a
// bug, reported as one (std::logic_error: the CLI's exit 1) with the figure's place in the output.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace moecast::sim {

// Returns `j` when every number in it is finite; else throws std::logic_error naming `what` (the
// output: "predict", "backtest", ...) and the JSON path of the first non-finite number.
const nlohmann::json& checked_finite(const nlohmann::json& j, const std::string& what);

}  // namespace moecast::sim

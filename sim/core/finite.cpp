// The output guard against non-finite figures (finite.h).
#include "sim/core/finite.h"

#include <cmath>
#include <stdexcept>

namespace moecast::sim {
namespace {

// The path of the first non-finite number under `j` ("" when there is none), "$" for the root.
bool find_non_finite(const nlohmann::json& j, std::string& path) {
    if (j.is_number_float()) return !std::isfinite(j.get<double>());
    if (j.is_object()) {
        for (const auto& [key, value] : j.items())
            if (find_non_finite(value, path)) {
                path.insert(0, std::string(1, '.').append(key));
                return true;
            }
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i)
            if (find_non_finite(j[i], path)) {
                path.insert(0, std::string(1, '[').append(std::to_string(i)).append(1, ']'));
                return true;
            }
    }
    return false;
}

}  // namespace

const nlohmann::json& checked_finite(const nlohmann::json& j, const std::string& what) {
    std::string path;
    if (find_non_finite(j, path))
        throw std::logic_error(what + " computed a non-finite figure at " + (path.empty() ? "$" : "$" + path) +
                               " (a bug: the inputs passed their checks; please report it with the command line)");
    return j;
}

}  // namespace moecast::sim

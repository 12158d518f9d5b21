// Formats input errors as "file:line: key: what".
#include "sim/core/error.h"

namespace moecast::sim {
namespace {

std::string format(const std::string& source, int line, const std::string& key, const std::string& what) {
    std::string s;
    s.append(source);
    if (line > 0) s.append(":").append(std::to_string(line));
    s.append(": ");
    if (!key.empty()) s.append("key '").append(key).append("': ");
    s.append(what);
    return s;
}

}  // namespace

InputError::InputError(std::string source, int line, std::string key, const std::string& what)
    : std::runtime_error(format(source, line, key, what)), source_(std::move(source)), line_(line),
      key_(std::move(key)) {}

InputError::InputError(Formatted, const std::string& message, std::string source, int line, std::string key)
    : std::runtime_error(message), source_(std::move(source)), line_(line), key_(std::move(key)) {}

InputError InputError::with_context(const std::string& context) const {
    return InputError(Formatted{}, std::string(what()) + " (" + context + ")", source_, line_, key_);
}

}  // namespace moecast::sim

// Errors for bad input (exit code 2) and for a failing environment (exit code 4). Every bad-input
// message names the file, the key (and line where the format has one) and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace moecast::sim {

class InputError : public std::runtime_error {
public:
    // source: file path (or "--set", "<builtin>"); line: 1-based, 0 when unknown.
    InputError(std::string source, int line, std::string key, const std::string& what);

    const std::string& source() const { return source_; }
    int line() const { return line_; }
    const std::string& key() const { return key_; }

    // The same error with where it happened appended: "... (context)".
    InputError with_context(const std::string& context) const;

private:
    struct Formatted {};
    InputError(Formatted, const std::string& message, std::string source, int line, std::string key);

    std::string source_;
    int line_;
    std::string key_;
};

// A config that parsed but does not describe a buildable model (K > E, D % H != 0, ...).
using ConfigError = InputError;

// The environment failed an operation (a file that cannot be created, written or renamed: a
// read-only folder, a full disk): the path and the OS's reason. The CLI turns it into exit code 4.
class IoError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace moecast::sim

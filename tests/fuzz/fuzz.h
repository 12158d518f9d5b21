// Fuzz targets for moecast's readers: each target takes any bytes as a file of its format and
// must either read it (and then print only finite, non-negative figures) or refuse it with
// sim::InputError / sim::IoError, as the CLI's exit 2 / exit 4 do. Anything else (a crash, a
// sanitizer report, another exception: the CLI's exit 1 "internal error") is a finding.
//
// Each target defines LLVMFuzzerTestOneInput, libFuzzer's entry point; driver.cpp runs it over a
// seed corpus and deterministic mutations of it (tests/fuzz/README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace moecast::fuzz {

// Writes the input to this target's scratch file (`name` carries the extension the reader
// expects) and returns its path. The file stays after a failure: it reproduces the finding.
std::string write_input(const std::string& name, const uint8_t* data, size_t size);

// Runs `read` and accepts a successful read or a refusal (InputError, IoError); anything else
// aborts with the exception's text and the input's path.
void expect_read_or_refusal(const std::string& path, void (*read)(const std::string& path));

// Aborts naming `what`, the JSON path and the input when a number anywhere in `j` is non-finite
// or negative.
void expect_finite_figures(const nlohmann::json& j, const std::string& what, const std::string& path);

}  // namespace moecast::fuzz

// Test helpers for running the moecast binary end to end (MOECAST_BIN is defined by the test
// target's CMakeLists) and writing input files into the test's temporary directory.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace moecast::test {

struct CliResult {
    int rc;
    std::string out;  // stdout and stderr together
};

// Runs a shell command line and returns its exit code and output.
inline CliResult run_cli_command(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf{};
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    return {WEXITSTATUS(status), out};
}

// Runs `moecast ARGS` through the shell and returns its exit code and output.
inline CliResult run_cli(const std::string& args) {
    return run_cli_command(std::string(MOECAST_BIN) + " " + args + " 2>&1");
}

// The command run in `dir` with `env` ("NAME=value ...") before it.
inline CliResult run_cli_in(const std::string& dir, const std::string& env, const std::string& args) {
    return run_cli_command("cd '" + dir + "' && " + env + " " + std::string(MOECAST_BIN) + " " + args + " 2>&1");
}

inline std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

// A file of the source tree (path relative to the repository root), whole.
inline std::string read_source_file(const std::string& relative) {
    std::ifstream in(std::string(MOECAST_SOURCE_DIR) + "/" + relative);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace moecast::test

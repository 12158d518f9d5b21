// Shared checks of the fuzz targets (fuzz.h).
#include "tests/fuzz/fuzz.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>

#include "sim/core/error.h"

namespace moecast::fuzz {

std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
    const char* tmp = std::getenv("TMPDIR");
    const std::filesystem::path dir = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                                      ("moecast-fuzz-" + std::to_string(static_cast<long>(getpid())));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path;
}

void expect_read_or_refusal(const std::string& path, void (*read)(const std::string& path)) {
    try {
        read(path);
    } catch (const sim::InputError&) {
    } catch (const sim::IoError&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz: FINDING: %s reading %s (input kept there)\n", e.what(), path.c_str());
        std::abort();
    }
}

namespace {

void walk(const nlohmann::json& j, const std::string& at, const std::string& what, const std::string& path) {
    if (j.is_object()) {
        for (const auto& [k, v] : j.items()) walk(v, at + "." + k, what, path);
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) walk(j[i], at + "[" + std::to_string(i) + "]", what, path);
    } else if (j.is_number()) {
        const double x = j.get<double>();
        if (!std::isfinite(x) || x < 0) {
            std::fprintf(stderr, "fuzz: FINDING: %s prints %s = %g for %s (input kept there)\n", what.c_str(),
                         at.c_str(), x, path.c_str());
            std::abort();
        }
    }
}

}  // namespace

void expect_finite_figures(const nlohmann::json& j, const std::string& what, const std::string& path) {
    walk(j, "", what, path);
}

}  // namespace moecast::fuzz

// Fuzz target: a study TOML (configs/studies), as `moecast study` reads it.
#include "tests/fuzz/fuzz.h"
#include "train/study.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("study.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { train::load_study(p); });
    return 0;
}

// Fuzz target: a training recipe TOML (configs/train), as `moecast train` reads it.
#include "tests/fuzz/fuzz.h"
#include "train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("train.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { train::load_train_config(p); });
    return 0;
}

// Fuzz target: an architecture family TOML (configs/families), as `optimize --family` reads it.
#include "sim/model/family.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("family.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { sim::load_family(p); });
    return 0;
}

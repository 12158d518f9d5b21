// Fuzz target: a moecast model TOML (configs/models), read, counted and priced.
#include "sim/cost/hardware.h"
#include "sim/model/config_toml.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/price.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("model.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) {
        static const sim::HardwareProfile hw = sim::load_hardware("h100-sxm");
        fuzz::price_and_check(sim::load_model(p), hw, p);
    });
    return 0;
}

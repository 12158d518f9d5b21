// Fuzz target: a hardware profile TOML (profiles/), read and used to price a bundled model.
#include "sim/cost/hardware.h"
#include "sim/model/config_toml.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/price.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("hardware.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) {
        static const sim::LoadedModel model = sim::load_model("mixtral-8x7b");
        fuzz::price_and_check(model, sim::load_hardware_file(p), p);
    });
    return 0;
}

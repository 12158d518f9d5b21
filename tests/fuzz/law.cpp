// Fuzz target: a scaling-law TOML (configs/laws), read and evaluated where laws are used.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sim/laws/law.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("law.toml", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) {
        const sim::Law law = sim::load_law(p);
        // A law that loads gives a finite, positive loss over the sizes moecast searches.
        for (const double n : {1e6, 1e9, 1e12})
            for (const double d : {1e9, 1e12})
                for (const double s : {0.0, 0.5, 0.98}) {
                    const double loss = law.loss(n, d, s, n * (1 - s));
                    if (!std::isfinite(loss) || loss < 0) {
                        std::fprintf(stderr, "fuzz: FINDING: law loss %g at N=%g D=%g S=%g for %s\n", loss, n, d, s,
                                     p.c_str());
                        std::abort();
                    }
                }
    });
    return 0;
}

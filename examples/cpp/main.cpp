// The cost of a model on 8 GPUs with expert parallelism, through the installed libraries: prints
// what `moecast predict MODEL --hardware PROFILE --gpus 8 --parallel ep=8 --json` prints.
// Usage: moecast_example [MODEL] [PROFILE]   (bundled names need MOECAST_HOME=<prefix>/share/moecast)
#include <cstdio>
#include <string>

#include "sim/core/error.h"
#include "sim/report/report.h"

int main(int argc, char** argv) {
    using namespace moecast;
    try {
        const sim::ModelPrediction p = sim::predict_model(sim::load_model(argc > 1 ? argv[1] : "mixtral-8x7b"));
        sim::CostRequest r;
        r.hardware = argc > 2 ? argv[2] : "h100-sxm";
        r.gpus = 8;
        r.parallel = "ep=8";
        std::printf("%s\n", sim::to_json(p, sim::predict_cost_request(p, r)).dump(2).c_str());
    } catch (const sim::InputError& e) {
        std::fprintf(stderr, "moecast_example: error: %s\n", e.what());
        return 2;
    }
    return 0;
}

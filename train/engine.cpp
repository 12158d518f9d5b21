// The Cpu engine (StepRunner over the run's host vectors) and the registry of the CUDA one (see
// engine.h).
#include "train/engine.h"

#include "sim/core/error.h"

namespace moecast::train {
namespace {

class CpuEngine : public TrainEngine {
public:
    CpuEngine(const Model& model, const TrainConfig& c, std::vector<float>& params, AdamW& adam)
        : params_(params), adam_(adam), runner_(model, c.threads, c.batch_tokens, c.micro_batch_tokens) {
        runner_.set_part_timing(true);  // where the step time goes; ~0.19 us per op, 0.2 % of a d_model-16 step
    }
    std::string device() const override { return "cpu"; }
    void load(const std::vector<float>& params, const std::vector<float>& m, const std::vector<float>& v) override {
        if (&params != &params_) params_ = params;
        if (&m != &adam_.m()) adam_.m() = m;
        if (&v != &adam_.v()) adam_.v() = v;
    }
    void store(std::vector<float>& params, std::vector<float>& m, std::vector<float>& v) override {
        if (&params != &params_) params = params_;
        if (&m != &adam_.m()) m = adam_.m();
        if (&v != &adam_.v()) v = adam_.v();
    }
    StepResult step(double lr, double grad_clip, int64_t step, const int32_t* tokens, const int32_t* targets) override {
        return runner_.step(params_.data(), adam_, lr, grad_clip, step, tokens, targets);
    }
    double evaluate(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets) override {
        return runner_.evaluate(params_.data(), inputs, targets);
    }
    bool has_part_times() const override { return true; }
    double part_seconds_per_step(sim::StepPart part, int64_t steps) const override {
        return runner_.part_seconds_per_step(part, steps);
    }

private:
    std::vector<float>& params_;
    AdamW& adam_;
    StepRunner runner_;
};

CudaEngineFactory& cuda_factory() {
    static CudaEngineFactory factory = nullptr;
    return factory;
}

}  // namespace

void set_cuda_engine_factory(CudaEngineFactory factory) { cuda_factory() = factory; }
bool cuda_engine_available() { return cuda_factory() != nullptr; }

std::unique_ptr<TrainEngine> make_engine(const std::string& device, const Model& model, const TrainConfig& c,
                                         std::vector<float>& params, AdamW& adam) {
    if (device == "cpu") return std::make_unique<CpuEngine>(model, c, params, adam);
    if (device != "cuda") throw sim::InputError("--device", 0, "device", "\"cpu\" or \"cuda\", got \"" + device + "\"");
    if (!cuda_factory())
        throw sim::IoError("--device cuda: this moecast carries no CUDA training engine (the engine, library "
                           "moecast_train_cuda, is built with CUDA but not yet part of the CUDA backend module the "
                           "command line opens; train/README.md, \"On a GPU\")");
    return cuda_factory()(model, c);
}

}  // namespace moecast::train

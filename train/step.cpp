// Data-parallel optimizer step and evaluation (see step.h).
#include "train/step.h"

#include <cmath>
#include <stdexcept>

namespace moecast::train {

struct StepRunner::Lane {
    kernels::CpuContext ctx{1};
    Workspace* ws = nullptr;
    std::vector<float> grads;  // lane 0 uses the runner's buffer
    PassStats stats;
    PartTimer timer;
    double ce = 0;
    int64_t tokens = 0;
};

std::string non_finite_failure(const StepResult& r) {
    if (std::isfinite(r.loss) && std::isfinite(r.aux_loss) && std::isfinite(r.grad_norm)) return "";
    return std::string("non-finite ") +
           (!std::isfinite(r.loss)       ? "loss"
            : !std::isfinite(r.aux_loss) ? "router loss"
                                         : "gradient norm") +
           " (loss " + std::to_string(r.loss) + ", grad norm " + std::to_string(r.grad_norm) + ")";
}

StepRunner::StepRunner(const Model& model, int threads, int64_t batch_tokens, int64_t micro_batch_tokens)
    : model_(model), threads_(threads), batch_(batch_tokens), micro_(micro_batch_tokens), pool_(threads),
      grads_(static_cast<size_t>(model.layout().total)) {
    for (int i = 0; i < threads; ++i) {
        auto* lane = new Lane;
        lane->ws = model.make_workspace(micro_);
        if (i > 0) lane->grads.resize(grads_.size());
        lanes_.push_back(lane);
    }
}

StepRunner::~StepRunner() {
    for (Lane* lane : lanes_) {
        Model::delete_workspace(lane->ws);
        delete lane;
    }
}

StepResult StepRunner::step(float* params, AdamW& adam, double lr, double grad_clip, int64_t step,
                            const int32_t* tokens, const int32_t* targets) {
    const int64_t n = model_.layout().total, n_micro = batch_ / micro_;
    StepResult r;
    PartTimer* opt = timing_ ? &optimizer_timer_ : nullptr;
    if (opt) opt->start(sim::StepPart::optimizer);
    std::fill(grads_.begin(), grads_.end(), 0.0f);
    for (Lane* lane : lanes_) {
        lane->stats = PassStats{};
        std::fill(lane->grads.begin(), lane->grads.end(), 0.0f);
    }
    if (opt) opt->stop();
    try {
        pool_.parallel_for(threads_, [&](int64_t b, int64_t e) {
            for (int64_t li = b; li < e; ++li) {
                Lane& lane = *lanes_[static_cast<size_t>(li)];
                float* g = li == 0 ? grads_.data() : lane.grads.data();
                for (int64_t mb = li; mb < n_micro; mb += threads_)
                    model_.forward_backward(lane.ctx, *lane.ws, params, tokens + mb * micro_, targets + mb * micro_,
                                            1.0 / static_cast<double>(batch_), 1.0 / static_cast<double>(n_micro), g,
                                            &lane.stats, timing_ ? &lane.timer : nullptr);
            }
        });
    } catch (const std::invalid_argument& e) {  // the router refuses NaN logits
        r.failure = std::string("non-finite activations: ") + e.what();
        return r;
    }
    if (opt) opt->start(sim::StepPart::optimizer);
    for (size_t li = 0; li < lanes_.size(); ++li) {
        r.stats.add(lanes_[li]->stats);
        if (li == 0) continue;
        float* g = grads_.data();
        const float* h = lanes_[li]->grads.data();
        for (int64_t i = 0; i < n; ++i) g[i] += h[i];
    }
    r.loss = r.stats.ce_sum / static_cast<double>(r.stats.tokens);
    r.aux_loss = r.stats.aux_loss / static_cast<double>(n_micro);
    r.grad_norm = clip_grad_norm(grads_.data(), n, grad_clip);
    r.failure = non_finite_failure(r);
    if (!r.failure.empty()) {
        if (opt) opt->stop();
        return r;
    }
    adam.update(params, grads_.data(), lr, step + 1);
    if (opt) opt->stop();
    return r;
}

PartTimer StepRunner::part_times() const {
    PartTimer sum = optimizer_timer_;
    for (const Lane* lane : lanes_) sum.add(lane->timer);
    return sum;
}

double StepRunner::part_seconds_per_step(sim::StepPart part, int64_t steps) const {
    const double lanes = part == sim::StepPart::optimizer ? 1.0 : static_cast<double>(threads_);
    return part_times().seconds(part) / static_cast<double>(steps) / lanes;
}

void StepRunner::clear_part_times() {
    optimizer_timer_.clear();
    for (Lane* lane : lanes_) lane->timer.clear();
}

double StepRunner::evaluate(const float* params, const std::vector<int32_t>& inputs,
                            const std::vector<int32_t>& targets) {
    const int64_t chunks = static_cast<int64_t>(inputs.size()) / micro_;
    for (Lane* lane : lanes_) {
        lane->ce = 0;
        lane->tokens = 0;
    }
    pool_.parallel_for(threads_, [&](int64_t b, int64_t e) {
        for (int64_t li = b; li < e; ++li) {
            Lane& lane = *lanes_[static_cast<size_t>(li)];
            for (int64_t ch = li; ch < chunks; ch += threads_) {
                PassStats ps;
                model_.forward_backward(lane.ctx, *lane.ws, params, inputs.data() + ch * micro_,
                                        targets.data() + ch * micro_, 1.0, 0.0, nullptr, &ps);
                lane.ce += ps.ce_sum;
                lane.tokens += ps.tokens;
            }
        }
    });
    double ce = 0;
    int64_t tokens = 0;
    for (const Lane* lane : lanes_) {
        ce += lane->ce;
        tokens += lane->tokens;
    }
    return ce / static_cast<double>(tokens);
}

StepDriver::StepDriver(const TrainConfig& c)
    : config_(c), model_(c.model, c.model_options), params_(static_cast<size_t>(model_.layout().total)),
      adam_(model_.layout(), {c.beta1, c.beta2, c.eps, c.weight_decay}),
      runner_(model_, c.threads, c.batch_tokens, c.micro_batch_tokens), text_(read_texts(c.train_files)),
      sampler_(text_, c.model.seq_len, c.seed), tokens_(static_cast<size_t>(c.batch_tokens)), targets_(tokens_.size()) {
    init_params(c.model, model_.layout(), c.model_options, c.seed, params_.data());
}

StepResult StepDriver::step(double lr, double grad_clip) {
    sampler_.batch(step_, config_.batch_tokens / config_.model.seq_len, tokens_.data(), targets_.data());
    const StepResult r = runner_.step(params_.data(), adam_, lr, grad_clip, step_, tokens_.data(), targets_.data());
    ++step_;
    return r;
}

}  // namespace moecast::train

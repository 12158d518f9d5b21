// The CUDA training engine (see cuda_engine.h): the Cuda instantiation of the model's wiring
// (model_pass.h) over device buffers, and the optimizer step on the device. One micro-batch after
// another into one gradient buffer (the CPU engine sums per-thread buffers), so the losses match
// the CPU's to fp32 rounding, not bit for bit; on one GPU and toolkit a run repeats its own bits
// (every Cuda op the pass uses is reproducible: kernels/dense.h, kernels/moe.h).
// Host synchronisations per micro-batch: the router losses and expert counts of each MoE layer and
// the cross-entropy are read back for the run's metrics.
#include "train/cuda_engine.h"

#include <cuda_runtime_api.h>

#include <string>
#include <utility>

#include "kernels/cuda/context.h"
#include "kernels/optimizer.h"
#include "sim/core/error.h"
#include "train/engine.h"
#include "train/model_pass.h"

namespace moecast::train {
namespace wiring {

inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("moecast train (cuda): ") + what + ": " + cudaGetErrorString(err));
}

// A device array of n T, zero-filled on allocation; move-only.
template <class T> class DeviceVec {
public:
    DeviceVec() = default;
    DeviceVec(const DeviceVec&) = delete;
    DeviceVec& operator=(const DeviceVec&) = delete;
    DeviceVec(DeviceVec&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceVec& operator=(DeviceVec&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }
    ~DeviceVec() {
        if (p_) cudaFree(p_);  // a destructor must not throw
    }
    void resize(size_t n) {
        if (n == n_) return;
        if (p_) check(cudaFree(p_), "cudaFree");
        p_ = nullptr;
        n_ = n;
        if (n == 0) return;
        check(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMalloc");
        check(cudaMemset(p_, 0, n * sizeof(T)), "cudaMemset");
    }
    size_t size() const { return n_; }
    T* data() { return p_; }
    const T* data() const { return p_; }
    void upload(const T* host, size_t n, cudaStream_t stream) {
        check(cudaMemcpyAsync(p_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync to device");
    }
    void download(T* host, size_t n, cudaStream_t stream) const {
        check(cudaMemcpyAsync(host, p_, n * sizeof(T), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync to host");
        check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

template <> struct Bufs<k::Cuda> {
    using F = DeviceVec<float>;
    using I = DeviceVec<int32_t>;
    using D = DeviceVec<double>;
    static void assign(I& dst, const std::vector<int32_t>& src) {
        dst.resize(src.size());
        check(cudaMemcpy(dst.data(), src.data(), src.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    static void copy_cols(k::Context<k::Cuda>& ctx, float* src, int64_t ld, int64_t c0, int64_t w, int64_t t,
                          float* dst, bool to_src) {
        const size_t fs = sizeof(float);
        if (to_src)
            check(cudaMemcpy2DAsync(src + c0, ld * fs, dst, w * fs, w * fs, t, cudaMemcpyDeviceToDevice, ctx.stream()),
                  "cudaMemcpy2DAsync");
        else
            check(cudaMemcpy2DAsync(dst, w * fs, src + c0, ld * fs, w * fs, t, cudaMemcpyDeviceToDevice, ctx.stream()),
                  "cudaMemcpy2DAsync");
    }
    template <class T> static void read(k::Context<k::Cuda>& ctx, const T* p, int64_t n, T* out) {
        check(cudaMemcpyAsync(out, p, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()),
              "cudaMemcpyAsync to host");
        ctx.synchronize();
    }
};

}  // namespace wiring

namespace {

namespace k = moecast::kernels;
using wiring::DeviceVec;
using CudaWorkspace = wiring::WorkspaceT<k::Cuda>;

class CudaEngine : public TrainEngine {
public:
    CudaEngine(const Model& model, const TrainConfig& c)
        : model_(model), config_(c), adam_{c.beta1, c.beta2, c.eps, c.weight_decay}, ctx_(open_device()) {
        const auto n = static_cast<size_t>(model.layout().total);
        for (DeviceVec<float>* v : {&params_, &m_, &v_, &grads_}) v->resize(n);
        tokens_.resize(static_cast<size_t>(c.batch_tokens));
        targets_.resize(static_cast<size_t>(c.batch_tokens));
        wiring::init_workspace<k::Cuda>(model, c.micro_batch_tokens, &ws_);
        cudaDeviceProp prop{};
        wiring::check(cudaGetDeviceProperties(&prop, ctx_->device()), "cudaGetDeviceProperties");
        name_ = prop.name;
    }

    std::string device() const override { return "cuda: " + name_; }

    void load(const std::vector<float>& params, const std::vector<float>& m, const std::vector<float>& v) override {
        params_.upload(params.data(), params.size(), ctx_->stream());
        m_.upload(m.data(), m.size(), ctx_->stream());
        v_.upload(v.data(), v.size(), ctx_->stream());
        ctx_->synchronize();
    }
    void store(std::vector<float>& params, std::vector<float>& m, std::vector<float>& v) override {
        params_.download(params.data(), params.size(), ctx_->stream());
        m_.download(m.data(), m.size(), ctx_->stream());
        v_.download(v.data(), v.size(), ctx_->stream());
    }

    StepResult step(double lr, double grad_clip, int64_t step, const int32_t* tokens, const int32_t* targets) override {
        const int64_t n = model_.layout().total, batch = config_.batch_tokens, micro = config_.micro_batch_tokens;
        const int64_t n_micro = batch / micro;
        StepResult r;
        tokens_.upload(tokens, static_cast<size_t>(batch), ctx_->stream());
        targets_.upload(targets, static_cast<size_t>(batch), ctx_->stream());
        wiring::check(cudaMemsetAsync(grads_.data(), 0, static_cast<size_t>(n) * sizeof(float), ctx_->stream()),
                      "cudaMemsetAsync");
        for (int64_t mb = 0; mb < n_micro; ++mb)
            wiring::forward_backward_impl<k::Cuda>(
                model_, *ctx_, ws_, params_.data(), tokens_.data() + mb * micro, targets_.data() + mb * micro,
                1.0 / static_cast<double>(batch), 1.0 / static_cast<double>(n_micro), grads_.data(), &r.stats, nullptr);
        r.loss = r.stats.ce_sum / static_cast<double>(r.stats.tokens);
        r.aux_loss = r.stats.aux_loss / static_cast<double>(n_micro);
        r.grad_norm = k::clip_grad_norm<k::Cuda>(*ctx_, grads_.data(), n, grad_clip);
        r.failure = non_finite_failure(r);
        if (!r.failure.empty()) return r;
        k::AdamWStep s = adamw_step(adam_, lr, step + 1);
        const float decay = s.decay;
        for (const ParamTensor& t : model_.layout().tensors) {
            s.decay = t.decay ? decay : 1.0f;
            k::adamw_update<k::Cuda>(*ctx_, params_.data() + t.offset, m_.data() + t.offset, v_.data() + t.offset,
                                     grads_.data() + t.offset, t.size(), s);
        }
        return r;
    }

    double evaluate(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets) override {
        const int64_t micro = config_.micro_batch_tokens, chunks = static_cast<int64_t>(inputs.size()) / micro;
        if (eval_tokens_.size() < inputs.size()) {
            eval_tokens_.resize(inputs.size());
            eval_targets_.resize(inputs.size());
        }
        eval_tokens_.upload(inputs.data(), inputs.size(), ctx_->stream());
        eval_targets_.upload(targets.data(), targets.size(), ctx_->stream());
        PassStats ps;
        for (int64_t ch = 0; ch < chunks; ++ch)
            wiring::forward_backward_impl<k::Cuda>(model_, *ctx_, ws_, params_.data(), eval_tokens_.data() + ch * micro,
                                                   eval_targets_.data() + ch * micro, 1.0, 0.0, nullptr, &ps, nullptr);
        return ps.ce_sum / static_cast<double>(ps.tokens);
    }

    // Step parts are CPU thread times on the Cpu engine; the device's would need CUDA events per
    // part (not measured yet): result.json has no step_parts_s for a cuda run.
    bool has_part_times() const override { return false; }
    double part_seconds_per_step(sim::StepPart, int64_t) const override { return 0.0; }

private:
    static std::unique_ptr<k::CudaContext> open_device() {
        std::string why;
        if (k::cuda_device_count(&why) == 0) throw sim::IoError("--device cuda: no usable CUDA device (" + why + ")");
        return std::make_unique<k::CudaContext>(0);
    }

    const Model& model_;
    const TrainConfig& config_;
    AdamWConfig adam_;
    std::unique_ptr<k::CudaContext> ctx_;
    std::string name_;
    DeviceVec<float> params_, m_, v_, grads_;        // (layout.total)
    DeviceVec<int32_t> tokens_, targets_;            // (batch_tokens)
    DeviceVec<int32_t> eval_tokens_, eval_targets_;  // (evaluation slice)
    CudaWorkspace ws_;                               // one micro-batch's activations
};

std::unique_ptr<TrainEngine> make_cuda_engine(const Model& model, const TrainConfig& c) {
    return std::make_unique<CudaEngine>(model, c);
}

}  // namespace

void register_cuda_engine() { set_cuda_engine_factory(&make_cuda_engine); }

}  // namespace moecast::train

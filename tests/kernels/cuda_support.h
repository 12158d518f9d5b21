// Helpers of the CUDA op tests: bf16 rounding as the device stores it, device buffers filled from
// and read into host vectors, and the fixture that skips every test with a message when no CUDA
// device is present (GPU tests run under the ctest label gpu).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/cuda/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {

#define CHECK_CUDA(x) ASSERT_EQ((x), cudaSuccess)

inline bf16 to_bf16(float f) {  // round to nearest even
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return bf16{static_cast<uint16_t>(u >> 16)};
}
inline float from_bf16(bf16 b) {
    const uint32_t u = static_cast<uint32_t>(b.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline VecF round_bf16(const VecF& v) {
    VecF r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = from_bf16(to_bf16(v[i]));
    return r;
}

// Device buffer of T filled from / read into host vectors of float (T = float or bf16) or int32.
template <class T> class Buf {
public:
    explicit Buf(size_t n) : n_(n) {
        if (cudaMalloc(reinterpret_cast<void**>(&p_), sizeof(T) * std::max<size_t>(n, 1)) != cudaSuccess)
            throw std::runtime_error("cudaMalloc");
        cudaMemset(p_, 0xff, sizeof(T) * std::max<size_t>(n, 1));  // poison: NaN for float/bf16, -1 for int
    }
    template <class H> explicit Buf(const std::vector<H>& h) : Buf(h.size()) { upload(h); }
    ~Buf() { cudaFree(p_); }
    T* get() { return p_; }
    template <class H> void upload(const std::vector<H>& h) {
        std::vector<T> tmp(h.size());
        for (size_t i = 0; i < h.size(); ++i) tmp[i] = convert(h[i]);
        cudaMemcpy(p_, tmp.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice);
    }
    template <class H = std::conditional_t<std::is_same_v<T, int32_t>, int32_t, float>>
    std::vector<H> download() const {
        std::vector<T> tmp(n_);
        cudaMemcpy(tmp.data(), p_, sizeof(T) * n_, cudaMemcpyDeviceToHost);
        std::vector<H> h(n_);
        for (size_t i = 0; i < n_; ++i) h[i] = back(tmp[i]);
        return h;
    }

private:
    template <class H> static T convert(H x) {
        if constexpr (std::is_same_v<T, bf16>)
            return to_bf16(static_cast<float>(x));
        else
            return static_cast<T>(x);
    }
    static auto back(T x) {
        if constexpr (std::is_same_v<T, bf16>)
            return from_bf16(x);
        else
            return x;
    }
    T* p_ = nullptr;
    size_t n_;
};

class CudaOps : public ::testing::Test {
protected:
    void SetUp() override {
        std::string why;
        if (cuda_device_count(&why) == 0) GTEST_SKIP() << "no CUDA device (" << why << "): GPU test skipped";
        gpu_ = std::make_unique<CudaContext>(0);
    }
    void sync() { gpu_->synchronize(); }
    std::unique_ptr<CudaContext> gpu_;
    CpuContext cpu_{2};
    Rng rng_;
};

}  // namespace moecast::kernels::test

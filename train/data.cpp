// Byte-level text loading, batch order and validation windows (see data.h).
#include "train/data.h"

#include <array>
#include <cmath>
#include <stdexcept>

#include "sim/core/error.h"
#include "train/atomic_file.h"
#include "train/rng.h"

namespace moecast::train {

std::string read_texts(const std::vector<std::string>& paths) {
    std::string out;
    for (const auto& p : paths) {
        std::string t = read_file(p);
        if (t.empty()) throw sim::InputError(p, 0, "", "a non-empty text file");
        out += t;
        if (out.back() != '\n') out += '\n';
    }
    return out;
}

std::pair<std::string, std::string> split_tail(const std::string& text, double fraction) {
    size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * fraction);
    cut = text.find('\n', cut);
    cut = cut == std::string::npos ? text.size() : cut + 1;
    return {text.substr(0, cut), text.substr(cut)};
}

double unigram_entropy_nats(const std::string& text) {
    std::array<int64_t, 256> counts{};
    for (unsigned char c : text) ++counts[c];
    double h = 0;
    const double n = static_cast<double>(text.size());
    for (int64_t c : counts)
        if (c > 0) h -= static_cast<double>(c) / n * std::log(static_cast<double>(c) / n);
    return h;
}

BatchSampler::BatchSampler(const std::string& text, int64_t seq_len, uint64_t seed)
    : text_(text), seq_len_(seq_len), seed_(seed), windows_(static_cast<int64_t>(text.size() - 1) / seq_len) {
    if (text.size() < 2 || windows_ < 1)
        throw std::invalid_argument("training text shorter than one sequence of " + std::to_string(seq_len) + " bytes");
}

const std::vector<int64_t>& BatchSampler::permutation(int64_t epoch) {
    if (epoch == cached_epoch_) return perm_;
    perm_.resize(static_cast<size_t>(windows_));
    for (int64_t i = 0; i < windows_; ++i) perm_[static_cast<size_t>(i)] = i;
    Rng rng(seed_ * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch) + 0x5eed);
    for (int64_t i = windows_ - 1; i > 0; --i)  // Fisher-Yates
        std::swap(perm_[static_cast<size_t>(i)], perm_[rng.below(static_cast<uint64_t>(i + 1))]);
    cached_epoch_ = epoch;
    return perm_;
}

void BatchSampler::batch(int64_t step, int64_t sequences, int32_t* tokens, int32_t* targets) {
    for (int64_t i = 0; i < sequences; ++i) {
        const int64_t g = step * sequences + i;
        const int64_t w = permutation(g / windows_)[static_cast<size_t>(g % windows_)];
        const auto* src = reinterpret_cast<const unsigned char*>(text_.data()) + w * seq_len_;
        for (int64_t j = 0; j < seq_len_; ++j) {
            tokens[i * seq_len_ + j] = src[j];
            targets[i * seq_len_ + j] = src[j + 1];
        }
    }
}

double BatchSampler::epochs(int64_t sequences_seen) const {
    return static_cast<double>(sequences_seen) / static_cast<double>(windows_);
}

void eval_windows(const std::string& text, int64_t seq_len, int64_t tokens, std::vector<int32_t>* inputs,
                  std::vector<int32_t>* targets) {
    inputs->clear();
    targets->clear();
    const int64_t span = static_cast<int64_t>(text.size()) - seq_len - 1;
    if (span < 0) return;
    const int64_t fit = span / seq_len + 1;
    const int64_t n = std::min(tokens / seq_len, fit);
    const auto* src = reinterpret_cast<const unsigned char*>(text.data());
    for (int64_t j = 0; j < n; ++j) {
        const int64_t start = n > 1 ? j * span / (n - 1) : 0;
        for (int64_t i = 0; i < seq_len; ++i) {
            inputs->push_back(src[start + i]);
            targets->push_back(src[start + i + 1]);
        }
    }
}

}  // namespace moecast::train

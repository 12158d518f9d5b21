// Byte-level data: text files are read as raw bytes (token = byte, vocabulary 256). Training
// batches walk a seeded permutation of the non-overlapping seq_len windows of the training text,
// one epoch after another, so a run sees distinct text until it has used it all (the paper's
// single pass) and any step's batch is a pure function of (seed, step): resume needs no state.
// Validation slices are fixed, evenly spaced windows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moecast::train {

// Concatenation of the files' bytes (each file ends with a newline, added if missing).
std::string read_texts(const std::vector<std::string>& paths);
// Splits text into (head, tail) at the first newline after `fraction` of its bytes (documents
// stay whole when they are lines or paragraphs).
std::pair<std::string, std::string> split_tail(const std::string& text, double fraction);

// Unigram (byte) entropy of a text in nats per byte.
double unigram_entropy_nats(const std::string& text);

class BatchSampler {
public:
    BatchSampler(const std::string& text, int64_t seq_len, uint64_t seed);

    int64_t windows() const { return windows_; }
    // tokens, targets (sequences * seq_len): window g = step * sequences + i of the data order.
    void batch(int64_t step, int64_t sequences, int32_t* tokens, int32_t* targets);
    // Epochs (passes over the windows) completed after `sequences_seen` sequences.
    double epochs(int64_t sequences_seen) const;

private:
    const std::vector<int64_t>& permutation(int64_t epoch);

    const std::string& text_;
    int64_t seq_len_;
    uint64_t seed_;
    int64_t windows_;
    int64_t cached_epoch_ = -1;
    std::vector<int64_t> perm_;
};

// Fixed evaluation windows: n = tokens / seq_len windows evenly spaced over the text (fewer if
// the text is short). tokens/targets are filled (n * seq_len each).
void eval_windows(const std::string& text, int64_t seq_len, int64_t tokens, std::vector<int32_t>* inputs,
                  std::vector<int32_t>* targets);

}  // namespace moecast::train

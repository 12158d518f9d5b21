// Checkpoint file format: "MOECKPT1", uint64 header length, header JSON, uint64 float count n,
// params (n), m (n), v (n) as little-endian fp32, then 64 hex chars of sha256 over all of it.
#include "train/checkpoint.h"

#include <cstring>

#include "sim/core/error.h"
#include "train/atomic_file.h"
#include "train/sha256.h"

namespace moecast::train {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'C', 'K', 'P', 'T', '1'};

void put_u64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_u64(const std::string& in, size_t at) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[at + i])) << (8 * i);
    return v;
}
void put_floats(std::string& out, const std::vector<float>& v) {
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
    const std::string header = c.header.dump();
    std::string out(kMagic, 8);
    put_u64(out, header.size());
    out += header;
    put_u64(out, c.params.size());
    put_floats(out, c.params);
    put_floats(out, c.m);
    put_floats(out, c.v);
    out += sha256_hex(out);
    write_file_atomic(path, out);
}

Checkpoint load_checkpoint(const std::string& path) {
    const std::string in = read_file(path);
    auto bad = [&](const std::string& what) { return sim::InputError(path, 0, "", "a moecast checkpoint: " + what); };
    if (in.size() < 8 + 8 + 8 + 64 || std::memcmp(in.data(), kMagic, 8) != 0) throw bad("wrong magic or too short");
    const std::string body = in.substr(0, in.size() - 64);
    if (sha256_hex(body) != in.substr(in.size() - 64)) throw bad("checksum mismatch (corrupt or truncated)");
    Checkpoint c;
    const uint64_t hlen = get_u64(in, 8);
    if (16 + hlen + 8 > body.size()) throw bad("header length");
    c.header = nlohmann::json::parse(in.substr(16, hlen));
    const uint64_t n = get_u64(in, 16 + hlen);
    const size_t at = 24 + hlen;
    if (at + 3 * n * sizeof(float) != body.size()) throw bad("array sizes");
    for (auto [vec, k] : {std::pair{&c.params, 0}, std::pair{&c.m, 1}, std::pair{&c.v, 2}}) {
        vec->resize(n);
        std::memcpy(vec->data(), in.data() + at + k * n * sizeof(float), n * sizeof(float));
    }
    return c;
}

}  // namespace moecast::train

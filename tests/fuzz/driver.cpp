// A deterministic mutation driver for the fuzz targets (LLVMFuzzerTestOneInput): runs every seed
// of a corpus folder, then mutations of them drawn from a fixed-seed generator, so that a CI run is
// reproducible run for run. Usage:
//   fuzz_<target> --corpus DIR... [--ext .toml] [--runs N] [--seconds S] [--seed X]
//       every seed (the files of each DIR, with that extension), then N mutations of them
//   fuzz_<target> FILE...                                           replay inputs (a finding)
// A finding aborts (the target's message names the input file, kept for replay).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::string;

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

// xorshift64*: small, fast and the same on every platform.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

// Tokens that readers of numbers, strings, tables and arrays must refuse well.
const std::vector<Bytes>& dictionary() {
    static const std::vector<Bytes> d = {"nan",
                                         "inf",
                                         "-inf",
                                         "NaN",
                                         "-1",
                                         "0",
                                         "-0",
                                         "1e308",
                                         "1e309",
                                         "-1e309",
                                         "1e-400",
                                         "4.9e-324",
                                         "2147483648",
                                         "9223372036854775807",
                                         "9223372036854775808",
                                         "-9223372036854775809",
                                         "18446744073709551616",
                                         "1" + Bytes(400, '0'),
                                         "0x7fffffff",
                                         "0b1",
                                         "1_000",
                                         "true",
                                         "false",
                                         "\"\"",
                                         "\"x\"",
                                         "[]",
                                         "{}",
                                         "[",
                                         "]",
                                         "{",
                                         "}",
                                         "\"",
                                         "'",
                                         "=",
                                         ",",
                                         ":",
                                         ".",
                                         "\n",
                                         "\r\n",
                                         "\t",
                                         "#",
                                         "[[",
                                         "]]",
                                         "[[[[[[[[[[",
                                         Bytes(3000, '['),
                                         Bytes(3000, '{'),
                                         "\\u0000",
                                         Bytes(1, '\0'),
                                         "\xff\xfe",
                                         Bytes(5000, 'a'),
                                         "null",
                                         "-",
                                         "+",
                                         "e",
                                         "E",
                                         "1e",
                                         "1.",
                                         ".5",
                                         "\"\\",
                                         "\\n"};
    return d;
}

Bytes mutate(const Bytes& in, const std::vector<Bytes>& seeds, Rng& rng) {
    Bytes b = in;
    const int edits = 1 + static_cast<int>(rng.below(4));
    for (int e = 0; e < edits; ++e) {
        const size_t at = rng.below(b.size() + 1);
        switch (rng.below(8)) {
        case 0:  // one byte changed
            if (!b.empty()) b[rng.below(b.size())] = static_cast<char>(rng.next() & 0xff);
            break;
        case 1:  // a range deleted
            if (!b.empty()) b.erase(at, 1 + rng.below(std::min<size_t>(64, b.size())));
            break;
        case 2:  // a range repeated
            if (!b.empty()) {
                const size_t from = rng.below(b.size()), n = 1 + rng.below(std::min<size_t>(64, b.size() - from));
                b.insert(at, b.substr(from, n));
            }
            break;
        case 3:  // a dictionary token inserted
            b.insert(at, dictionary()[rng.below(dictionary().size())]);
            break;
        case 4:  // a number replaced by a dictionary token
        case 5: {
            size_t p = b.find_first_of("0123456789", at);
            if (p == Bytes::npos) p = b.find_first_of("0123456789");
            if (p == Bytes::npos) break;
            size_t q = b.find_first_not_of("0123456789.eE+-_", p);
            if (q == Bytes::npos) q = b.size();
            b.replace(p, q - p, dictionary()[rng.below(dictionary().size())]);
            break;
        }
        case 6: {  // a line dropped or duplicated
            const size_t start = b.rfind('\n', at == 0 ? 0 : at - 1);
            const size_t s0 = start == Bytes::npos ? 0 : start + 1;
            size_t end = b.find('\n', s0);
            end = end == Bytes::npos ? b.size() : end + 1;
            if (rng.below(2) == 0)
                b.erase(s0, end - s0);
            else
                b.insert(s0, b.substr(s0, end - s0));
            break;
        }
        default: {  // spliced with another seed
            const Bytes& other = seeds[rng.below(seeds.size())];
            if (!other.empty()) b = b.substr(0, at) + other.substr(rng.below(other.size()));
            break;
        }
        }
    }
    return b;
}

void run_one(const Bytes& b) { LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(b.data()), b.size()); }

int usage() {
    std::fprintf(stderr, "usage: fuzz_TARGET --corpus DIR [--runs N] [--seconds S] [--seed X] | FILE...\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> corpora;
    std::string ext;
    long runs = 2000;
    double seconds = 60;
    uint64_t seed = 1;
    std::vector<std::string> replay;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--corpus")
            corpora.push_back(value());
        else if (a == "--ext")
            ext = value();
        else if (a == "--runs")
            runs = std::atol(value().c_str());
        else if (a == "--seconds")
            seconds = std::atof(value().c_str());
        else if (a == "--seed")
            seed = std::strtoull(value().c_str(), nullptr, 10);
        else if (!a.empty() && a[0] == '-')
            return usage();
        else
            replay.push_back(a);
    }
    if (!replay.empty()) {
        for (const std::string& f : replay) run_one(read_bytes(f));
        std::printf("fuzz: %zu input(s) replayed, no finding\n", replay.size());
        return 0;
    }
    if (corpora.empty() || runs < 0 || !(seconds > 0)) return usage();
    std::vector<std::string> names;
    for (const std::string& dir : corpora) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec))
            if (e.is_regular_file() && (ext.empty() || e.path().extension() == ext)) names.push_back(e.path().string());
        if (ec) {
            std::fprintf(stderr, "fuzz: %s: %s\n", dir.c_str(), ec.message().c_str());
            return 2;
        }
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) {
        std::fprintf(stderr, "fuzz: no seeds\n");
        return 2;
    }
    std::vector<Bytes> seeds;
    for (const std::string& n : names) seeds.push_back(read_bytes(n));
    for (const Bytes& s : seeds) run_one(s);

    const auto t0 = std::chrono::steady_clock::now();
    Rng rng{seed * 0x9E3779B97F4A7C15ull + 1};
    long done = 0;
    for (; done < runs; ++done) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) break;
        run_one(mutate(seeds[rng.below(seeds.size())], seeds, rng));
    }
    std::printf("fuzz: %zu seeds and %ld mutations, no finding (%.1f s)\n", seeds.size(), done,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
}

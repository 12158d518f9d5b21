// SHA-256 (FIPS 180-4) of a byte string, as lowercase hex. Used for the corpus MANIFEST and for
// run hashes (runs/<hash>/); small and dependency-free so the trainer needs no crypto library.
#pragma once

#include <string>
#include <string_view>

namespace moecast::train {

std::string sha256_hex(std::string_view bytes);

}  // namespace moecast::train

// SHA-256 (OpenSSL EVP) and the 32-byte Hash that names chunks and manifests.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "result.h"

namespace shoal {

using Hash = std::array<uint8_t, 32>;

std::string hash_hex(const Hash& h);
// Parses 64 hex digits.
Result<Hash> hash_from_hex(std::string_view s);

// One-shot digest.
Hash sha256(const void* data, size_t len);

// Incremental digest; reusable after final() (it resets).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len);
  Hash final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// For unordered containers keyed by Hash: a SHA-256 is uniform already, so
// its first 8 bytes do.
struct HashHasher {
  size_t operator()(const Hash& h) const {
    uint64_t v = 0;
    std::memcpy(&v, h.data(), sizeof v);
    return static_cast<size_t>(v);
  }
};

}  // namespace shoal

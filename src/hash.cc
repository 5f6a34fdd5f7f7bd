#include "hash.h"

#include <openssl/evp.h>

#include <cstdlib>

#include "parse.h"

namespace shoal {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

std::string hash_hex(const Hash& h) { return hex_encode(h.data(), h.size()); }

Result<Hash> hash_from_hex(std::string_view s) {
  if (s.size() != 64) return make_error(Errc::invalid, "hash must be 64 hex digits");
  auto raw = hex_decode(s);
  if (!raw) return raw.error();
  Hash h{};
  for (size_t i = 0; i < h.size(); i++) h[i] = static_cast<uint8_t>((*raw)[i]);
  return h;
}

Hash sha256(const void* data, size_t len) {
  Hash h{};
  unsigned int n = 0;
  if (EVP_Digest(data, len, h.data(), &n, EVP_sha256(), nullptr) != 1) std::abort();
  return h;
}

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

void Sha256::update(const void* data, size_t len) {
  if (EVP_DigestUpdate(ctx_->md, data, len) != 1) std::abort();
}

Hash Sha256::final() {
  Hash h{};
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx_->md, h.data(), &n) != 1) std::abort();
  if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) std::abort();
  return h;
}

}  // namespace shoal

#include "crypto.h"

#include <cstdlib>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log.h"

namespace shoal {

namespace detail {
void CipherCtxFree::operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
void KdfCtxFree::operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
}  // namespace detail

namespace {

// OpenSSL 3 loads its error strings (about 450 KiB of RSS) at first use
// unless told not to before; shoal never prints them, and a daemon's whole
// RSS budget is 16 MiB. Runs at load time, before any other OpenSSL call.
[[maybe_unused]] const bool kNoErrorStrings =
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr) == 1;

constexpr char kSalt[] = "shoal v1";  // 8 bytes, no NUL on the wire
constexpr size_t kSaltLen = sizeof(kSalt) - 1;

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

void store_le(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

detail::KdfCtxPtr new_hkdf() {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return nullptr;
  detail::KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  EVP_KDF_free(kdf);  // the context holds its own reference
  return ctx;
}

// HKDF-SHA256(ikm, salt "shoal v1", info) -> out[0..len).
bool hkdf(EVP_KDF_CTX* ctx, const uint8_t* ikm, const uint8_t* info, size_t info_len,
          uint8_t* out, size_t len) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm),
                                        kShareKeyLen),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt),
                                        kSaltLen),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info),
                                        info_len),
      OSSL_PARAM_construct_end(),
  };
  return ctx != nullptr && EVP_KDF_derive(ctx, out, len, params) == 1;
}

// info for a sender key: "data" || sender_id LE || epoch LE.
constexpr size_t kSenderInfoLen = 4 + 8 + 4;
void sender_info(uint64_t sender_id, uint32_t epoch, uint8_t* info) {
  std::memcpy(info, "data", 4);
  store_le(info + 4, sender_id, 8);
  store_le(info + 12, epoch, 4);
}

bool derive_key(EVP_KDF_CTX* kdf, const uint8_t* share_key, uint64_t sender_id, uint32_t epoch,
                Key* out) {
  uint8_t info[kSenderInfoLen];
  sender_info(sender_id, epoch, info);
  return hkdf(kdf, share_key, info, sizeof(info), out->data(), out->size());
}

// Creates (if needed) and keys an AES-256-GCM context; the IV is set per packet.
bool key_gcm(detail::CipherCtxPtr* ctx, const Key& key, bool encrypt) {
  if (!*ctx) ctx->reset(EVP_CIPHER_CTX_new());
  if (!*ctx) return false;
  EVP_CIPHER_CTX* c = ctx->get();
  return EVP_CipherInit_ex(c, EVP_aes_256_gcm(), nullptr, key.data(), nullptr,
                           encrypt ? 1 : 0) == 1;
}

#ifdef SHOAL_BENCH_NULL_AEAD
// Bench-only build: "sealing" copies the body and appends this tag, so
// packets keep their sizes and the rest of the path its work, and the
// AEAD's share of the cost can be measured (docs/BENCHMARKS.md).
constexpr uint8_t kNullTag[kTagLen] = {'N', 'U', 'L', 'L', '-', 'A', 'E', 'A',
                                       'D', '-', 'B', 'E', 'N', 'C', 'H', '!'};
#endif

Error share_key_error() {
  return make_error(Errc::invalid, "share key must be " + std::to_string(kShareKeyLen) + " bytes");
}

}  // namespace

Status check_aead_build() {
#ifdef SHOAL_BENCH_NULL_AEAD
  const char* ok = std::getenv("SHOAL_BENCH_UNSAFE");
  if (ok == nullptr || std::strcmp(ok, "1") != 0)
    return make_error(Errc::invalid,
                      "this shoald is the bench-only build WITHOUT ENCRYPTION (SHOAL_BENCH_NULL_AEAD); "
                      "it runs only with SHOAL_BENCH_UNSAFE=1 and never outside a benchmark");
  for (int i = 0; i < 3; i++)
    LOG_WARN("*** BENCH-ONLY BUILD: NO ENCRYPTION, NO AUTHENTICATION (SHOAL_BENCH_NULL_AEAD) ***");
#endif
  return {};
}

// --- random, derivations -------------------------------------------------------

Status random_bytes(void* buf, size_t n) {
  if (n > INT32_MAX) return make_error(Errc::invalid, "random_bytes: too many bytes");
  if (RAND_bytes(static_cast<unsigned char*>(buf), static_cast<int>(n)) != 1)
    return make_error(Errc::internal, "RAND_bytes failed");
  return {};
}

Result<uint64_t> random_u64() {
  uint8_t b[8];
  if (Status s = random_bytes(b, sizeof(b)); !s) return s.error();
  return load_le(b, 8);
}

Result<uint64_t> new_sender_id() {
  for (;;) {
    Result<uint64_t> r = random_u64();
    if (!r || *r != 0) return r;
  }
}

Result<uint32_t> derive_share_id(std::string_view share_key) {
  if (share_key.size() != kShareKeyLen) return share_key_error();
  detail::KdfCtxPtr kdf = new_hkdf();
  static constexpr char kInfo[] = "share-id";
  uint8_t out[4];
  if (!hkdf(kdf.get(), reinterpret_cast<const uint8_t*>(share_key.data()),
            reinterpret_cast<const uint8_t*>(kInfo), sizeof(kInfo) - 1, out, sizeof(out)))
    return make_error(Errc::internal, "HKDF failed (share id)");
  return static_cast<uint32_t>(load_le(out, 4));
}

Result<Key> derive_sender_key(std::string_view share_key, uint64_t sender_id, uint32_t epoch) {
  if (share_key.size() != kShareKeyLen) return share_key_error();
  detail::KdfCtxPtr kdf = new_hkdf();
  Key key;
  if (!derive_key(kdf.get(), reinterpret_cast<const uint8_t*>(share_key.data()), sender_id, epoch,
                  &key))
    return make_error(Errc::internal, "HKDF failed (sender key)");
  return key;
}

// --- Sealer ------------------------------------------------------------------------

Sealer::Sealer() = default;

Sealer::~Sealer() { OPENSSL_cleanse(share_key_.data(), share_key_.size()); }

Status Sealer::init(std::string_view share_key, uint64_t sender_id, uint32_t epoch) {
  if (share_key.size() != kShareKeyLen) return share_key_error();
  if (sender_id == 0 || epoch == 0) return make_error(Errc::invalid, "sender id and epoch must not be 0");
  std::memcpy(share_key_.data(), share_key.data(), kShareKeyLen);
  sender_id_ = sender_id;
  epoch_ = epoch;
  return key_ctx();
}

Status Sealer::rekey(uint32_t new_epoch) {
  if (sender_id_ == 0) return make_error(Errc::invalid, "sealer not initialised");
  if (new_epoch <= epoch_) return make_error(Errc::invalid, "rekey needs a newer epoch");
  epoch_ = new_epoch;
  return key_ctx();
}

Status Sealer::new_identity(uint64_t sender_id, uint32_t epoch) {
  if (sender_id_ == 0) return make_error(Errc::invalid, "sealer not initialised");
  if (sender_id == 0 || epoch == 0) return make_error(Errc::invalid, "sender id and epoch must not be 0");
  sender_id_ = sender_id;
  epoch_ = epoch;
  return key_ctx();
}

void Sealer::set_rekey_counter(uint64_t rekey_counter) {
  rekey_counter_ = rekey_counter == 0 ? 1 : rekey_counter;
  max_counter_ = 2 * rekey_counter_;
}

Status Sealer::key_ctx() {
  ready_ = false;
  counter_ = 0;
  bytes_ = 0;
  Key key;
  Result<Key> k = derive_sender_key(
      std::string_view(reinterpret_cast<const char*>(share_key_.data()), share_key_.size()),
      sender_id_, epoch_);
  if (!k) return k.error();
  key = *k;
  OPENSSL_cleanse(k->data(), k->size());
  bool ok = key_gcm(&ctx_, key, true);
  OPENSSL_cleanse(key.data(), key.size());
  if (!ok) return make_error(Errc::internal, "AES-256-GCM init failed");
  ready_ = true;
  return {};
}

Result<size_t> Sealer::seal(std::span<uint8_t> buf, size_t body_len,
                            std::span<const uint8_t> extra) {
  size_t total = kHeaderLen + body_len + extra.size() + kTagLen;
  if (!ready_) return make_error(Errc::invalid, "sealer not initialised");
  if (total > buf.size() || total > kMaxDatagram)
    return make_error(Errc::invalid, "datagram does not fit its buffer");
  uint8_t* p = buf.data();
  if (load_le(p + kHeaderSenderOff, 8) != sender_id_ || load_le(p + kHeaderEpochOff, 4) != epoch_)
    return make_error(Errc::invalid, "header sender/epoch do not match the sealer");
  if (counter_ >= max_counter_ || bytes_ >= kMaxSealBytes)
    return make_error(Errc::busy, "key usage limit reached: rekey first");
  // The counter is spent even if sealing fails below: never reuse a nonce.
  store_le(p + kHeaderCounterOff, counter_, 8);
  counter_++;
  bytes_ += body_len + extra.size();

  uint8_t* body = p + kHeaderLen;
#ifdef SHOAL_BENCH_NULL_AEAD
  if (!extra.empty()) std::memcpy(body + body_len, extra.data(), extra.size());
  std::memcpy(body + body_len + extra.size(), kNullTag, kTagLen);
  return total;
#endif
  EVP_CIPHER_CTX* c = ctx_.get();
  int n = 0;
  bool ok = EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, p + kHeaderEpochOff) == 1 &&
            EVP_EncryptUpdate(c, nullptr, &n, p, static_cast<int>(kHeaderLen)) == 1;
  if (ok && body_len > 0)
    ok = EVP_EncryptUpdate(c, body, &n, body, static_cast<int>(body_len)) == 1;
  if (ok && !extra.empty())
    ok = EVP_EncryptUpdate(c, body + body_len, &n, extra.data(), static_cast<int>(extra.size())) == 1;
  uint8_t* tag = body + body_len + extra.size();
  ok = ok && EVP_EncryptFinal_ex(c, tag, &n) == 1 &&
       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagLen), tag) == 1;
  if (!ok) return make_error(Errc::internal, "AES-256-GCM seal failed");
  return total;
}

// --- Opener ------------------------------------------------------------------------

Opener::Opener(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

Opener::~Opener() { OPENSSL_cleanse(share_key_.data(), share_key_.size()); }

Status Opener::init(std::string_view share_key) {
  if (share_key.size() != kShareKeyLen) return share_key_error();
  std::memcpy(share_key_.data(), share_key.data(), kShareKeyLen);
  slots_.clear();
  map_.clear();
  head_ = tail_ = kNil;
  slots_.reserve(capacity_);
  map_.reserve(capacity_);
  kdf_ = new_hkdf();
  if (!kdf_) return make_error(Errc::internal, "HKDF unavailable");
  ready_ = true;
  return {};
}

Drop Opener::open(const Header& h, std::span<uint8_t> datagram) {
  if (!ready_ || datagram.size() < kMinDatagram || datagram.size() > kMaxDatagram)
    return Drop::auth;
  auto it = map_.find({h.sender_id, h.epoch});
  if (it != map_.end()) {
    uint32_t i = it->second;
    if (i != head_) {
      lru_unlink(i);
      lru_push_front(i);
    }
    return open_with(slots_[i].ctx.get(), datagram);
  }
  if (!key_scratch(h.sender_id, h.epoch)) return Drop::auth;
  Drop d = open_with(scratch_.get(), datagram);
  if (d == Drop::none) cache_scratch(h.sender_id, h.epoch);
  return d;
}

Drop Opener::open_with(EVP_CIPHER_CTX* c, std::span<uint8_t> datagram) {
  uint8_t* p = datagram.data();
  size_t body_len = datagram.size() - kHeaderLen - kTagLen;
  uint8_t* body = p + kHeaderLen;
#ifdef SHOAL_BENCH_NULL_AEAD
  (void)c;
  return std::memcmp(body + body_len, kNullTag, kTagLen) == 0 ? Drop::none : Drop::auth;
#endif
  int n = 0;
  bool ok = EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, p + kHeaderEpochOff) == 1 &&
            EVP_DecryptUpdate(c, nullptr, &n, p, static_cast<int>(kHeaderLen)) == 1;
  if (ok && body_len > 0)
    ok = EVP_DecryptUpdate(c, body, &n, body, static_cast<int>(body_len)) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagLen),
                                 body + body_len) == 1 &&
       EVP_DecryptFinal_ex(c, body + body_len, &n) == 1;
  return ok ? Drop::none : Drop::auth;
}

bool Opener::key_scratch(uint64_t sender, uint32_t epoch) {
  Key key;
  bool ok = derive_key(kdf_.get(), share_key_.data(), sender, epoch, &key) &&
            key_gcm(&scratch_, key, false);
  OPENSSL_cleanse(key.data(), key.size());
  derivations_++;
  return ok;
}

// The scratch context just authenticated a datagram: it becomes the most
// recent cache entry, taking the least recent one's place when full (the
// evicted context turns into the next scratch, so a full cache never allocates).
void Opener::cache_scratch(uint64_t sender, uint32_t epoch) {
  uint32_t i;
  if (slots_.size() < capacity_) {
    i = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    i = tail_;
    lru_unlink(i);
    map_.erase({slots_[i].sender, slots_[i].epoch});
  }
  Slot& s = slots_[i];
  std::swap(s.ctx, scratch_);
  s.sender = sender;
  s.epoch = epoch;
  map_.emplace(std::make_pair(sender, epoch), i);
  lru_push_front(i);
}

void Opener::lru_unlink(uint32_t i) {
  Slot& s = slots_[i];
  if (s.prev != kNil) slots_[s.prev].next = s.next; else head_ = s.next;
  if (s.next != kNil) slots_[s.next].prev = s.prev; else tail_ = s.prev;
  s.prev = s.next = kNil;
}

void Opener::lru_push_front(uint32_t i) {
  Slot& s = slots_[i];
  s.prev = kNil;
  s.next = head_;
  if (head_ != kNil) slots_[head_].prev = i;
  head_ = i;
  if (tail_ == kNil) tail_ = i;
}

// --- replay ------------------------------------------------------------------------

bool ReplayWindow::check(uint64_t counter) const {
  if (empty_ || counter > highest_) return true;
  if (highest_ - counter > kReplayWindow) return false;
  uint64_t bit = uint64_t{1} << (counter & 63);
  return (words_[(counter >> 6) % kWords] & bit) == 0;
}

bool ReplayWindow::accept(uint64_t counter) {
  if (!check(counter)) return false;
  uint64_t block = counter >> 6;
  if (empty_) {
    words_.fill(0);
    highest_ = counter;
    empty_ = false;
  } else if (counter > highest_) {
    // Clear the words the window slides over (all of them on a big jump).
    uint64_t cur = highest_ >> 6;
    uint64_t steps = block - cur < kWords ? block - cur : kWords;
    for (uint64_t k = 1; k <= steps; k++) words_[(cur + k) % kWords] = 0;
    highest_ = counter;
  }
  words_[block % kWords] |= uint64_t{1} << (counter & 63);
  return true;
}

bool ReplayWindow::seen(uint64_t counter) const {
  if (empty_ || counter > highest_ || highest_ - counter > kReplayWindow) return false;
  return (words_[(counter >> 6) % kWords] & (uint64_t{1} << (counter & 63))) != 0;
}

void ReplayWindow::reset() {
  words_.fill(0);
  highest_ = 0;
  empty_ = true;
}

Drop SenderReplay::check(uint32_t epoch, uint64_t counter, uint64_t now_ms) const {
  if (epoch < epoch_) {
    if (epoch != prev_epoch_ || !in_grace(now_ms)) return Drop::stale_epoch;
    return prev_->check(counter) ? Drop::none : Drop::replay;
  }
  if (epoch > epoch_) return Drop::none;
  return window_.check(counter) ? Drop::none : Drop::replay;
}

bool SenderReplay::seen(uint32_t epoch, uint64_t counter) const {
  if (epoch_ != 0 && epoch == epoch_) return window_.seen(counter);
  return prev_ && epoch == prev_epoch_ && prev_->seen(counter);
}

bool SenderReplay::stale(uint32_t epoch, uint64_t now_ms) const {
  return epoch < epoch_ && (epoch != prev_epoch_ || !in_grace(now_ms));
}

Drop SenderReplay::accept(uint32_t epoch, uint64_t counter, uint64_t now_ms) {
  Drop d = check(epoch, counter, now_ms);
  if (d != Drop::none) return d;
  if (prev_ && !in_grace(now_ms) && epoch >= epoch_) prev_.reset();
  if (epoch < epoch_) {  // the previous epoch, within its grace
    prev_->accept(counter);
    return Drop::none;
  }
  if (epoch > epoch_) {
    if (epoch_ != 0 && now_ms != 0) {
      if (!prev_) prev_ = std::make_unique<ReplayWindow>();
      *prev_ = window_;
      prev_epoch_ = epoch_;
      prev_until_ = now_ms + kEpochGraceMs;
    } else {
      prev_.reset();
    }
    epoch_ = epoch;
    window_.reset();
  }
  window_.accept(counter);
  return Drop::none;
}

Drop PeerReplay::check(Path p, uint32_t epoch, uint64_t counter, uint64_t now_ms) const {
  if (Drop d = path_[p].check(epoch, counter, now_ms); d != Drop::none) return d;
  const SenderReplay& other = path_[1 - p];
  if (other.stale(epoch, now_ms)) return Drop::stale_epoch;
  return other.seen(epoch, counter) ? Drop::replay : Drop::none;
}

Drop PeerReplay::accept(Path p, uint32_t epoch, uint64_t counter, uint64_t now_ms) {
  if (Drop d = check(p, epoch, counter, now_ms); d != Drop::none) return d;
  return path_[p].accept(epoch, counter, now_ms);
}

}  // namespace shoal

// Keys, authenticated encryption and replay protection for the packet layer
// (docs/PROTOCOL.md section 4), on OpenSSL 3 EVP.
//
// Every datagram body is AES-256-GCM sealed under a per-(sender, epoch) key
// derived with HKDF-SHA256 from the share key; the 28-byte header is the AAD
// and header bytes 16..27 (epoch || counter) are the nonce. The per-packet
// paths (Sealer::seal, an Opener cache hit, SenderReplay) do not allocate.
// None of these classes is thread-safe: one per event loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <openssl/types.h>

#include "result.h"
#include "wire.h"

namespace shoal {

constexpr size_t kShareKeyLen = 32;
using Key = std::array<uint8_t, 32>;

// Key usage limits: rekey (move to a new epoch) at these; seal() refuses
// beyond the hard limits. AES-GCM's confidentiality bound is on the 16-byte
// blocks sealed under one key: RFC 9001 (QUIC-TLS) appendix B.1.1 derives
// q <= 2^35 / l packets of l blocks for an attacker advantage of 2^-57,
// i.e. 2^28 packets of up to 2^11 bytes, and RFC 8446 section 5.5 sets
// TLS 1.3's rekey at 2^24.5 16 KiB records from the same analysis. Hence:
// rekey at 2^28 datagrams or 2^38 bytes (2^34 blocks, half the bound at any
// MTU), refuse at 2^39 bytes (the bound itself). NIST SP 800-38D's 2^32
// invocations limit is for random IVs; ours are deterministic (epoch ||
// counter) and never repeat.
constexpr uint64_t kRekeyCounter = uint64_t{1} << 28;
constexpr uint64_t kMaxCounter = uint64_t{1} << 29;
constexpr uint64_t kRekeyBytes = uint64_t{1} << 38;
constexpr uint64_t kMaxSealBytes = uint64_t{1} << 39;
// After a sender moves to a new epoch, its previous epoch's datagrams still
// in flight are taken this long (each once, against that epoch's window).
constexpr uint64_t kEpochGraceMs = 2000;

constexpr size_t kReplayWindowBits = 8192;
constexpr uint64_t kReplayWindow = kReplayWindowBits - 64;  // always tracked: 8128
constexpr size_t kDefaultOpenerCache = 4096;

// Fills buf[0..n) from the OpenSSL CSPRNG (RAND_bytes).
Status random_bytes(void* buf, size_t n);
// A uniformly random 64-bit value.
Result<uint64_t> random_u64();
// A fresh random sender id (never 0). The caller persists it.
Result<uint64_t> new_sender_id();

// u32 LE of HKDF(share key, salt "shoal v1", info "share-id", 4 bytes).
// Needs a kShareKeyLen-byte key.
Result<uint32_t> derive_share_id(std::string_view share_key);
// HKDF(share key, salt "shoal v1", info "data" || sender_id LE || epoch LE, 32).
// Needs a kShareKeyLen-byte key.
Result<Key> derive_sender_key(std::string_view share_key, uint64_t sender_id, uint32_t epoch);

namespace detail {
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const;
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* p) const;
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;
}  // namespace detail

// Seals this node's datagrams for one share. Owns the counter, so a counter
// is never handed out twice for one key.
// Ok in a normal build. In the bench-only build without encryption
// (make build-bench-noaead, -DSHOAL_BENCH_NULL_AEAD) an error unless the
// environment has SHOAL_BENCH_UNSAFE=1, and a loud warning when it has.
// shoald calls it before anything else.
Status check_aead_build();

class Sealer {
 public:
  Sealer();
  ~Sealer();
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // Keys the sealer for (sender_id, epoch) with the counter at 0. The epoch
  // must already be persisted (PROTOCOL.md 4.2). Keeps a copy of the key.
  Status init(std::string_view share_key, uint64_t sender_id, uint32_t epoch);
  // Moves to a new, already persisted epoch (> current): new key, counter 0.
  Status rekey(uint32_t new_epoch);
  // A new identity (a sender id clash, PROTOCOL.md 11.3): new sender id and
  // already persisted epoch, new key, counter 0. Both must not be 0.
  Status new_identity(uint64_t sender_id, uint32_t epoch);
  // Tests only: rekey after `rekey_counter` datagrams (>= 1), hard stop at
  // twice that; the byte limits stay.
  void set_rekey_counter(uint64_t rekey_counter);

  // Seals one datagram in place. buf[0..28) holds the encoded header, whose
  // sender_id and epoch must be this sealer's; seal() writes the next counter
  // into it. The body buf[28..28+body_len) is encrypted in place, then
  // `extra` (DATA payload, read from the caller's memory, no copy) is
  // encrypted into the bytes after it, then the 16-byte tag is appended.
  // Returns the datagram length 28 + body_len + extra.size() + 16.
  // Fails (nothing sent) if buf is too small, the header does not match, or
  // the hard counter/byte limit is reached.
  Result<size_t> seal(std::span<uint8_t> buf, size_t body_len,
                      std::span<const uint8_t> extra = {});

  // True once the owner should persist a new epoch and call rekey().
  bool needs_rekey() const { return counter_ >= rekey_counter_ || bytes_ >= kRekeyBytes; }
  // The counter the next seal() will use (= datagrams sealed this epoch).
  uint64_t next_counter() const { return counter_; }
  uint32_t epoch() const { return epoch_; }
  uint64_t sender_id() const { return sender_id_; }

 private:
  Status key_ctx();
  std::array<uint8_t, kShareKeyLen> share_key_{};
  uint64_t sender_id_ = 0;
  uint32_t epoch_ = 0;
  uint64_t counter_ = 0;
  uint64_t bytes_ = 0;
  uint64_t rekey_counter_ = kRekeyCounter, max_counter_ = kMaxCounter;
  bool ready_ = false;
  detail::CipherCtxPtr ctx_;
};

// Opens datagrams of one share from any sender. Keeps a bounded LRU cache of
// keyed cipher contexts per (sender_id, epoch); a context enters the cache
// only after a datagram under it authenticated, so forgeries cannot evict.
class Opener {
 public:
  // capacity >= 1 cached (sender, epoch) contexts.
  explicit Opener(size_t capacity = kDefaultOpenerCache);
  ~Opener();
  Opener(const Opener&) = delete;
  Opener& operator=(const Opener&) = delete;

  // Sets the share key (kShareKeyLen bytes). Clears the cache.
  Status init(std::string_view share_key);

  // Verifies and decrypts `datagram` in place: on Drop::none its body (see
  // body_of) holds the plaintext. `h` must be decode_header(datagram). On
  // Drop::auth the body bytes are garbage and must not be used. Does not
  // touch replay state (use SenderReplay around it).
  [[nodiscard]] Drop open(const Header& h, std::span<uint8_t> datagram);

  size_t cached() const { return map_.size(); }
  // Key derivations done so far (cache misses), for metrics and tests.
  uint64_t derivations() const { return derivations_; }

 private:
  struct Slot {
    detail::CipherCtxPtr ctx;
    uint64_t sender = 0;
    uint32_t epoch = 0;
    uint32_t prev = 0, next = 0;  // LRU list, kNil-terminated
  };
  struct SlotKeyHash {
    size_t operator()(const std::pair<uint64_t, uint32_t>& k) const {
      return std::hash<uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second);
    }
  };
  static constexpr uint32_t kNil = UINT32_MAX;

  static Drop open_with(EVP_CIPHER_CTX* ctx, std::span<uint8_t> datagram);
  bool key_scratch(uint64_t sender, uint32_t epoch);
  void cache_scratch(uint64_t sender, uint32_t epoch);
  void lru_unlink(uint32_t i);
  void lru_push_front(uint32_t i);

  std::array<uint8_t, kShareKeyLen> share_key_{};
  bool ready_ = false;
  size_t capacity_;
  std::vector<Slot> slots_;
  std::unordered_map<std::pair<uint64_t, uint32_t>, uint32_t, SlotKeyHash> map_;
  uint32_t head_ = kNil, tail_ = kNil;
  detail::CipherCtxPtr scratch_;
  detail::KdfCtxPtr kdf_;
  uint64_t derivations_ = 0;
};

// RFC 6479 sliding window over 64-bit counters: 8192 bits in 64-bit words,
// the newest kReplayWindow (8128) counters below the highest always tracked.
class ReplayWindow {
 public:
  // True if `counter` is new and not too old. No state change.
  bool check(uint64_t counter) const;
  // check() and, if true, records `counter`. Call only for authenticated
  // datagrams, so forgeries cannot move the window.
  bool accept(uint64_t counter);
  // True only if `counter` is inside the window and was accepted (unlike
  // !check(), a counter too old to tell is not "seen").
  bool seen(uint64_t counter) const;
  // Forgets everything (a new epoch).
  void reset();
  // Highest counter accepted; meaningless while empty().
  uint64_t highest() const { return highest_; }
  bool empty() const { return empty_; }

 private:
  static constexpr size_t kWords = kReplayWindowBits / 64;
  std::array<uint64_t, kWords> words_{};
  uint64_t highest_ = 0;
  bool empty_ = true;
};

// Replay state of one sender: its newest authenticated epoch and that epoch's
// window (PROTOCOL.md 4.3), plus for kEpochGraceMs after a move to a newer
// epoch the previous epoch's window, so its datagrams still in flight are
// taken (once each). `now_ms` is a monotonic clock; 0 means "no clock": no
// grace, an older epoch is always stale.
class SenderReplay {
 public:
  SenderReplay() = default;
  SenderReplay(SenderReplay&&) = default;
  SenderReplay& operator=(SenderReplay&&) = default;
  // Drop::none if (epoch, counter) would be accepted, else Drop::stale_epoch
  // (older epoch, past its grace) or Drop::replay (seen or too old). No state change.
  Drop check(uint32_t epoch, uint64_t counter, uint64_t now_ms = 0) const;
  // Same verdict, and on Drop::none records it; a newer epoch starts a new
  // window (the current one becomes the previous one). Call only after
  // Opener::open succeeded.
  Drop accept(uint32_t epoch, uint64_t counter, uint64_t now_ms = 0);
  // Newest epoch accepted (0 = none yet).
  uint32_t epoch() const { return epoch_; }
  const ReplayWindow& window() const { return window_; }
  // Whether the previous epoch is still in its grace period at `now_ms`.
  bool in_grace(uint64_t now_ms) const { return prev_ && now_ms < prev_until_; }
  // Whether (epoch, counter) was accepted here and is still tracked.
  bool seen(uint32_t epoch, uint64_t counter) const;
  // Whether `epoch` is older than the newest one, past the grace.
  bool stale(uint32_t epoch, uint64_t now_ms) const;

 private:
  uint32_t epoch_ = 0;
  ReplayWindow window_;
  // Allocated only around an epoch change, so idle senders cost one window.
  std::unique_ptr<ReplayWindow> prev_;
  uint32_t prev_epoch_ = 0;
  uint64_t prev_until_ = 0;
};

// Replay state of a sender that reaches us by two paths, its multicast flow
// and unicast to us (PROTOCOL.md 4.3). One counter sequence is spread over
// both, and each path is read from its own socket: a busy receiver can read
// a second's worth of multicast (more than a window) after a unicast
// datagram sealed later, which would then make all of it "too old". So each
// path has its own window; a datagram is also refused if the other path
// accepted it and still tracks it, or if its epoch is stale there.
class PeerReplay {
 public:
  enum Path : int { kMulticast = 0, kUnicast = 1 };
  Drop check(Path p, uint32_t epoch, uint64_t counter, uint64_t now_ms = 0) const;
  Drop accept(Path p, uint32_t epoch, uint64_t counter, uint64_t now_ms = 0);
  const SenderReplay& path(Path p) const { return path_[p]; }

 private:
  SenderReplay path_[2];
};

}  // namespace shoal

#include "crypto.h"
#include "wire.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

using Bytes = std::vector<uint8_t>;

std::string key_bytes(uint8_t start) {
  std::string k(kShareKeyLen, '\0');
  for (size_t i = 0; i < k.size(); i++) k[i] = static_cast<char>(start + i);
  return k;
}

const std::string kKey = key_bytes(0);  // 00 01 .. 1f, as in the pinned vectors

Header header_for(uint64_t sender, uint32_t epoch, PacketType t = PacketType::ping) {
  Header h;
  h.type = t;
  h.share_id = 0x59b9d57b;
  h.sender_id = sender;
  h.epoch = epoch;
  return h;
}

// Builds and seals a datagram whose body is `body`.
Bytes seal_body(Sealer& s, const Header& h, const Bytes& body) {
  Bytes d(datagram_len(body.size()));
  CHECK_EQUAL(kHeaderLen, encode_header(h, d));
  if (!body.empty()) std::memcpy(d.data() + kHeaderLen, body.data(), body.size());
  Result<size_t> n = s.seal(d, body.size());
  CHECK_TEXT(n.ok(), n.ok() ? "" : n.error().msg.c_str());
  CHECK_EQUAL(d.size(), *n);
  return d;
}

Drop open_datagram(Opener& o, Bytes& d) {
  Header h;
  Drop r = decode_header(d, &h);
  if (r != Drop::none) return r;
  return o.open(h, d);
}

Bytes sample_body() {
  Bytes b(100);
  for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<uint8_t>(i * 13 + 1);
  return b;
}

}  // namespace

TEST_GROUP(Crypto){};

TEST(Crypto, HkdfVectorsArePinned) {
  // Computed independently (openssl kdf CLI and a Python RFC 5869 HKDF):
  // changing them breaks interop with every deployed node.
  CHECK_EQUAL(0x59b9d57bu, derive_share_id(kKey).value());
  Key k = derive_sender_key(kKey, 0x0102030405060708ull, 7).value();
  const uint8_t want[32] = {0x1a, 0x2b, 0xc5, 0xcb, 0xd6, 0x67, 0x8a, 0xc2, 0x4b, 0x9d, 0x4b,
                            0x8c, 0x28, 0x0b, 0x7f, 0xd6, 0x5b, 0xbf, 0x58, 0x98, 0x16, 0x2b,
                            0x75, 0x77, 0xd5, 0x79, 0xbf, 0xd0, 0x97, 0xff, 0x73, 0x04};
  MEMCMP_EQUAL(want, k.data(), k.size());
}

TEST(Crypto, HkdfIsDeterministicAndSeparatesInputs) {
  Key a = derive_sender_key(kKey, 42, 1).value();
  CHECK(a == derive_sender_key(kKey, 42, 1).value());
  CHECK(a != derive_sender_key(kKey, 43, 1).value());
  CHECK(a != derive_sender_key(kKey, 42, 2).value());
  CHECK(a != derive_sender_key(key_bytes(1), 42, 1).value());
  CHECK_EQUAL(derive_share_id(kKey).value(), derive_share_id(kKey).value());
  CHECK(derive_share_id(kKey).value() != derive_share_id(key_bytes(1)).value());

  CHECK_FALSE(derive_share_id(std::string(31, 'k')).ok());
  CHECK_FALSE(derive_sender_key(std::string(33, 'k'), 1, 1).ok());
  CHECK(derive_share_id("").error().code == Errc::invalid);
}

TEST(Crypto, RandomHelpers) {
  uint8_t a[32] = {}, b[32] = {};
  CHECK(random_bytes(a, sizeof(a)).ok());
  CHECK(random_bytes(b, sizeof(b)).ok());
  CHECK(std::memcmp(a, b, sizeof(a)) != 0);
  CHECK(random_u64().value() != random_u64().value());
  for (int i = 0; i < 100; i++) CHECK(new_sender_id().value() != 0);
}

TEST(Crypto, SealOpenRoundTrip) {
  Sealer s;
  CHECK(s.init(kKey, 0xabcdef, 9).ok());
  Opener o;
  CHECK(o.init(kKey).ok());
  Bytes body = sample_body();
  for (uint64_t i = 0; i < 3; i++) {
    Bytes d = seal_body(s, header_for(0xabcdef, 9), body);
    Header h;
    CHECK(decode_header(d, &h) == Drop::none);
    CHECK_EQUAL(i, h.counter);  // the sealer stamps consecutive counters
    // Encrypted: the body on the wire is not the plaintext.
    CHECK(std::memcmp(d.data() + kHeaderLen, body.data(), body.size()) != 0);
    CHECK(o.open(h, d) == Drop::none);
    MEMCMP_EQUAL(body.data(), body_of(std::span<uint8_t>(d)).data(), body.size());
  }
  CHECK_EQUAL(3u, s.next_counter());

  // Empty body: header + tag only.
  Bytes d = seal_body(s, header_for(0xabcdef, 9), {});
  CHECK_EQUAL(kMinDatagram, d.size());
  CHECK(open_datagram(o, d) == Drop::none);
}

// The library the tests and the installed daemon link is the real AEAD, not
// the bench-only null build (make build-bench-noaead).
TEST(Crypto, ThisBuildEncrypts) {
  CHECK(check_aead_build().ok());
  Sealer s;
  CHECK(s.init(kKey, 0xabcdef, 9).ok());
  Bytes body = sample_body();
  Bytes d = seal_body(s, header_for(0xabcdef, 9), body);
  CHECK(std::search(d.begin(), d.end(), body.begin(), body.begin() + 16) == d.end());
}

TEST(Crypto, SameBodyTwiceGivesDifferentCiphertext) {
  Sealer s;
  CHECK(s.init(kKey, 5, 1).ok());
  Bytes a = seal_body(s, header_for(5, 1), sample_body());
  Bytes b = seal_body(s, header_for(5, 1), sample_body());
  CHECK(std::memcmp(a.data() + kHeaderLen, b.data() + kHeaderLen, a.size() - kHeaderLen) != 0);
}

TEST(Crypto, SealsDataPayloadFromCallerMemory) {
  Sealer s;
  CHECK(s.init(kKey, 77, 2).ok());
  Opener o;
  CHECK(o.init(kKey).ok());
  Bytes chunk(65536);
  for (size_t i = 0; i < chunk.size(); i++) chunk[i] = static_cast<uint8_t>(i ^ (i >> 8));
  const Bytes before = chunk;
  Data dt;
  dt.object_len = static_cast<uint32_t>(chunk.size());
  dt.offset = 1408;
  dt.flow_seq = 4;
  dt.payload = std::span<const uint8_t>(chunk.data() + dt.offset, max_data_payload(1500));

  Bytes pkt(1500 - kIpUdpOverhead);
  CHECK_EQUAL(kHeaderLen, encode_header(header_for(77, 2, PacketType::data), pkt));
  size_t fl = encode_data_fields(dt, std::span<uint8_t>(pkt).subspan(kHeaderLen));
  CHECK_EQUAL(kDataFixedLen, fl);
  Result<size_t> n = s.seal(pkt, fl, dt.payload);
  CHECK(n.ok());
  CHECK_EQUAL(pkt.size(), *n);  // a full-size DATA datagram fills the MTU exactly
  CHECK(chunk == before);        // the source is only read

  CHECK(open_datagram(o, pkt) == Drop::none);
  Data got;
  CHECK(decode_data(body_of(std::span<const uint8_t>(pkt)), &got) == Drop::none);
  CHECK_EQUAL(dt.offset, got.offset);
  CHECK_EQUAL(dt.payload.size(), got.payload.size());
  MEMCMP_EQUAL(dt.payload.data(), got.payload.data(), got.payload.size());
}

TEST(Crypto, AnyFlippedByteFailsToOpen) {
  Sealer s;
  CHECK(s.init(kKey, 1234, 3).ok());
  Opener o;
  CHECK(o.init(kKey).ok());
  const Bytes good = seal_body(s, header_for(1234, 3), sample_body());
  for (size_t i = 0; i < good.size(); i++) {
    Bytes d = good;
    d[i] ^= 0x01;
    Drop r = open_datagram(o, d);
    // Header bytes may already fail parsing (magic, version, type); every
    // other change (share id, sender, epoch, counter, body, tag) fails auth.
    if (r == Drop::none) FAIL(("flip at byte " + std::to_string(i) + " opened").c_str());
  }
  Bytes d = good;
  CHECK(open_datagram(o, d) == Drop::none);
  // Truncated by one byte: the tag no longer matches.
  Bytes t(good.begin(), good.end() - 1);
  CHECK(open_datagram(o, t) == Drop::auth);
}

TEST(Crypto, WrongKeyFails) {
  Sealer s;
  CHECK(s.init(kKey, 99, 1).ok());
  Opener other;
  CHECK(other.init(key_bytes(1)).ok());
  Bytes d = seal_body(s, header_for(99, 1), sample_body());
  CHECK(open_datagram(other, d) == Drop::auth);
  Opener uninit;
  d = seal_body(s, header_for(99, 1), sample_body());
  CHECK(open_datagram(uninit, d) == Drop::auth);
}

TEST(Crypto, SealerRefusesMisuse) {
  Sealer s;
  Bytes d(200);
  CHECK(encode_header(header_for(5, 1), d) > 0);
  CHECK_FALSE(s.seal(d, 10).ok());  // not initialised
  CHECK_FALSE(s.init(kKey, 0, 1).ok());
  CHECK_FALSE(s.init(kKey, 5, 0).ok());
  CHECK_FALSE(s.init("short", 5, 1).ok());
  CHECK(s.init(kKey, 5, 1).ok());
  CHECK_FALSE(s.seal(d, 200 - kHeaderLen - kTagLen + 1).ok());  // no room for the tag
  CHECK(s.seal(d, 200 - kHeaderLen - kTagLen).ok());

  Bytes other(100);
  CHECK(encode_header(header_for(6, 1), other) > 0);  // someone else's sender id
  CHECK_FALSE(s.seal(other, 10).ok());
  CHECK(encode_header(header_for(5, 2), other) > 0);  // wrong epoch
  CHECK_FALSE(s.seal(other, 10).ok());
  CHECK_FALSE(s.needs_rekey());
}

TEST(Crypto, RekeyStartsANewEpochWithANewKey) {
  Sealer s;
  CHECK(s.init(kKey, 5, 1).ok());
  Opener o;
  CHECK(o.init(kKey).ok());
  Bytes a = seal_body(s, header_for(5, 1), sample_body());
  CHECK_FALSE(s.rekey(1).ok());  // must move forward
  CHECK(s.rekey(2).ok());
  CHECK_EQUAL(0u, s.next_counter());
  CHECK_EQUAL(2u, s.epoch());
  Bytes b = seal_body(s, header_for(5, 2), sample_body());
  CHECK(open_datagram(o, a) == Drop::none);
  CHECK(open_datagram(o, b) == Drop::none);

  // Same counter, new epoch: a datagram sealed under epoch 2 but relabelled
  // epoch 1 does not open (the key depends on the epoch).
  Bytes c = seal_body(s, header_for(5, 2), sample_body());
  c[kHeaderEpochOff] = 1;
  CHECK(open_datagram(o, c) == Drop::auth);
}

TEST(Crypto, OpenerCacheIsBoundedAndForgeriesDoNotEvict) {
  Opener o(2);
  CHECK(o.init(kKey).ok());
  Sealer s1, s2, s3;
  CHECK(s1.init(kKey, 1, 1).ok());
  CHECK(s2.init(kKey, 2, 1).ok());
  CHECK(s3.init(kKey, 3, 1).ok());

  Bytes d = seal_body(s1, header_for(1, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  d = seal_body(s2, header_for(2, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(2u, o.cached());
  CHECK_EQUAL(2u, o.derivations());

  // Hits derive nothing.
  d = seal_body(s1, header_for(1, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(2u, o.derivations());

  // A forgery under an unknown sender costs one derivation, evicts nothing.
  d = seal_body(s3, header_for(3, 1), sample_body());
  d[d.size() - 1] ^= 1;
  CHECK(open_datagram(o, d) == Drop::auth);
  CHECK_EQUAL(3u, o.derivations());
  d = seal_body(s2, header_for(2, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(3u, o.derivations());

  // A real third sender evicts the least recently used (1); 2 stays cached.
  d = seal_body(s3, header_for(3, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(2u, o.cached());
  CHECK_EQUAL(4u, o.derivations());
  d = seal_body(s2, header_for(2, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(4u, o.derivations());
  d = seal_body(s1, header_for(1, 1), sample_body());
  CHECK(open_datagram(o, d) == Drop::none);
  CHECK_EQUAL(5u, o.derivations());

  // Many senders through a small cache: everything still opens.
  for (uint64_t id = 10; id < 60; id++) {
    Sealer s;
    CHECK(s.init(kKey, id, 1).ok());
    d = seal_body(s, header_for(id, 1), sample_body());
    CHECK(open_datagram(o, d) == Drop::none);
    CHECK(o.cached() <= 2);
  }
}

TEST(Crypto, ReplayWindowBasics) {
  ReplayWindow w;
  CHECK(w.empty());
  CHECK(w.check(0));
  CHECK(w.accept(0));
  CHECK_FALSE(w.accept(0));  // duplicate
  CHECK(w.accept(5));
  CHECK(w.accept(3));        // out of order, inside the window
  CHECK_FALSE(w.accept(3));
  CHECK(w.accept(1));
  CHECK_EQUAL(5u, w.highest());

  // check() alone changes nothing.
  CHECK(w.check(4));
  CHECK(w.check(4));
  CHECK(w.accept(4));
  CHECK_FALSE(w.check(4));
}

TEST(Crypto, ReplayWindowEdgesAndJumps) {
  ReplayWindow w;
  const uint64_t top = 100000;
  CHECK(w.accept(top));
  CHECK(w.accept(top - kReplayWindow));       // oldest still tracked
  CHECK_FALSE(w.accept(top - kReplayWindow)); // and remembered
  CHECK_FALSE(w.accept(top - kReplayWindow - 1));  // too old to tell
  CHECK_FALSE(w.check(0));

  // A big jump forward is accepted and clears the whole old window.
  CHECK(w.accept(top + 1000000));
  CHECK_FALSE(w.accept(top));  // now far too old
  CHECK(w.accept(top + 1000000 - 1));
  CHECK(w.accept(top + 1000000 - kReplayWindow));
  // A jump of exactly one window of words keeps nothing stale behind.
  uint64_t h = w.highest();
  CHECK(w.accept(h + kReplayWindowBits));
  for (uint64_t c = h + kReplayWindowBits - kReplayWindow; c < h + kReplayWindowBits; c += 97)
    CHECK(w.accept(c));

  // The largest counters work too.
  ReplayWindow m;
  CHECK(m.accept(UINT64_MAX));
  CHECK(m.accept(UINT64_MAX - 1));
  CHECK_FALSE(m.accept(UINT64_MAX));
}

TEST(Crypto, ReplayWindowJumpsLeaveNoStaleBits) {
  // Every counter in a full window seen, then a jump: exactly the old
  // counters still in range are refused, every new one is accepted.
  const uint64_t base = 9000;
  for (uint64_t jump : {1u, 63u, 64u, 65u, 127u, 8128u, 8191u, 8192u, 8193u, 8256u, 16384u, 100000u}) {
    ReplayWindow w;
    for (uint64_t c = 0; c <= base; c++) CHECK(w.accept(c));
    uint64_t top = base + jump;
    CHECK(w.accept(top));
    for (uint64_t c = top - kReplayWindow; c < top; c++) {
      bool want = c > base;
      if (w.check(c) != want)
        FAIL(("jump " + std::to_string(jump) + ": counter " + std::to_string(c)).c_str());
    }
    CHECK_FALSE(w.check(top - kReplayWindow - 1));
  }
}

TEST(Crypto, ReplayWindowMatchesAModel) {
  // Random counters around a drifting front, checked against a set model.
  std::mt19937_64 rng(7);
  ReplayWindow w;
  std::set<uint64_t> seen;
  uint64_t highest = 0;
  uint64_t front = 1000;
  for (int i = 0; i < 60000; i++) {
    switch (rng() % 8) {
      case 0: front += rng() % 20000; break;  // occasional jumps, some past the window
      case 1: front += 1; break;
      default: break;
    }
    uint64_t c = front - (rng() % 9000);
    bool model = seen.empty() || c > highest || (highest - c <= kReplayWindow && !seen.count(c));
    bool got = w.accept(c);
    if (got != model) FAIL(("mismatch at counter " + std::to_string(c)).c_str());
    if (got) {
      seen.insert(c);
      if (c > highest || seen.size() == 1) highest = c;
    }
  }
}

TEST(Crypto, SequentialCountersAcrossManyWraps) {
  ReplayWindow w;
  for (uint64_t c = 0; c < 40000; c++) {
    CHECK(w.accept(c));
    CHECK_FALSE(w.accept(c));
    if (c >= 8000) CHECK_FALSE(w.check(c - 8000));
  }
}

TEST(Crypto, SenderReplayEpochs) {
  SenderReplay r;
  CHECK_EQUAL(0u, r.epoch());
  CHECK(r.accept(2, 5) == Drop::none);
  CHECK(r.accept(2, 5) == Drop::replay);
  CHECK(r.check(1, 100) == Drop::stale_epoch);  // older epoch
  CHECK(r.accept(1, 100) == Drop::stale_epoch);
  CHECK(r.check(3, 5) == Drop::none);
  CHECK_EQUAL(2u, r.epoch());  // check() did not move it
  CHECK(r.accept(3, 5) == Drop::none);  // new epoch: fresh window
  CHECK_EQUAL(3u, r.epoch());
  CHECK(r.accept(3, 5) == Drop::replay);
  CHECK(r.accept(3, 4) == Drop::none);
  CHECK(r.accept(2, 6) == Drop::stale_epoch);
}

// A sender moves to a new epoch: its previous epoch's datagrams still in
// flight pass once each for kEpochGraceMs, then the old epoch is stale.
TEST(Crypto, SenderReplayGraceAfterEpochChange) {
  SenderReplay r;
  const uint64_t t0 = 1000000;
  for (uint64_t c = 0; c < 10; c++) CHECK(r.accept(1, c, t0) == Drop::none);
  CHECK(r.accept(2, 0, t0 + 5) == Drop::none);
  CHECK_EQUAL(2u, r.epoch());
  CHECK_TRUE(r.in_grace(t0 + 5));
  CHECK(r.accept(1, 10, t0 + 6) == Drop::none);     // late, never seen: taken
  CHECK(r.accept(1, 10, t0 + 7) == Drop::replay);   // but only once
  CHECK(r.accept(1, 3, t0 + 7) == Drop::replay);    // seen before the switch
  CHECK(r.accept(2, 0, t0 + 7) == Drop::replay);
  CHECK(r.accept(2, 1, t0 + 7) == Drop::none);
  uint64_t end = t0 + 5 + kEpochGraceMs;
  CHECK(r.check(1, 11, end - 1) == Drop::none);
  CHECK(r.check(1, 11, end) == Drop::stale_epoch);  // grace over
  CHECK(r.accept(1, 11, end) == Drop::stale_epoch);
  CHECK_FALSE(r.in_grace(end));
  // Only the epoch just before the current one has a grace.
  CHECK(r.accept(3, 0, end + 10) == Drop::none);
  CHECK(r.accept(1, 12, end + 11) == Drop::stale_epoch);
  CHECK(r.accept(2, 2, end + 11) == Drop::none);
  CHECK(r.accept(2, 1, end + 11) == Drop::replay);
  // Without a clock there is no grace.
  SenderReplay n;
  CHECK(n.accept(1, 0) == Drop::none);
  CHECK(n.accept(2, 0) == Drop::none);
  CHECK(n.accept(1, 1) == Drop::stale_epoch);
}

// One sender, two paths: multicast read a second late behind a unicast
// datagram sealed later still passes (a single window called it too old),
// but nothing passes twice, whichever path it comes back on.
TEST(Crypto, PeerReplayPathsLagEachOther) {
  PeerReplay r;
  const auto M = PeerReplay::kMulticast, U = PeerReplay::kUnicast;
  const uint64_t t = 1000;
  CHECK(r.accept(M, 1, 0, t) == Drop::none);
  CHECK(r.accept(U, 1, 30000, t) == Drop::none);  // sealed after 30k multicast datagrams
  for (uint64_t c = 1; c < 30000; c++) {
    if (r.accept(M, 1, c, t) != Drop::none) {
      FAIL("a lagging multicast datagram was refused");
      break;
    }
  }
  CHECK(r.accept(M, 1, 29999, t) == Drop::replay);
  CHECK(r.accept(U, 1, 29999, t) == Drop::replay);  // seen on the other path
  CHECK(r.accept(M, 1, 30000, t) == Drop::replay);
  CHECK(r.accept(U, 1, 30000, t) == Drop::replay);
  CHECK(r.accept(U, 1, 30001, t) == Drop::none);
  CHECK(r.accept(M, 1, 30001, t) == Drop::replay);
  CHECK(r.check(U, 1, 30001 - 9000, t) == Drop::replay);  // too old on its own path
  CHECK_EQUAL(30001u, r.path(U).window().highest());
  CHECK_EQUAL(29999u, r.path(M).window().highest());
  // A new epoch on one path makes the old one stale on both, after the grace.
  CHECK(r.accept(U, 2, 0, t) == Drop::none);
  CHECK_EQUAL(2u, r.path(U).epoch());
  CHECK_EQUAL(1u, r.path(M).epoch());
  CHECK(r.accept(M, 1, 30002, t + 1) == Drop::none);  // in flight, within the grace
  CHECK(r.accept(M, 1, 30003, t + kEpochGraceMs + 1) == Drop::stale_epoch);
  CHECK(r.accept(M, 2, 1, t + kEpochGraceMs + 1) == Drop::none);
  CHECK(r.accept(M, 2, 0, t + kEpochGraceMs + 1) == Drop::replay);  // taken by unicast
}

// The injected limit: needs_rekey() at N datagrams, seal() refuses at 2N,
// and after rekey() sealing goes on under the new epoch from counter 0.
TEST(Crypto, SealerRekeyLimitAndRollOver) {
  Sealer s;
  CHECK(s.init(kKey, 5, 1).ok());
  s.set_rekey_counter(4);
  Opener o;
  CHECK(o.init(kKey).ok());
  SenderReplay r;
  std::vector<Bytes> old;
  for (int i = 0; i < 4; i++) {
    CHECK_FALSE(s.needs_rekey());
    old.push_back(seal_body(s, header_for(5, 1), sample_body()));
  }
  CHECK_TRUE(s.needs_rekey());
  for (int i = 0; i < 4; i++) old.push_back(seal_body(s, header_for(5, 1), sample_body()));
  Bytes d(200);
  CHECK(encode_header(header_for(5, 1), d) > 0);
  Result<size_t> refused = s.seal(d, 10);
  CHECK_FALSE(refused.ok());
  CHECK_TRUE(Errc::busy == refused.error().code);
  CHECK(s.rekey(2).ok());
  CHECK_FALSE(s.needs_rekey());
  Bytes fresh = seal_body(s, header_for(5, 2), sample_body());
  Header h;
  // Receiver: the old epoch's datagrams, then the new one, then old replays.
  uint64_t now = 5000;
  for (Bytes& b : old) {
    CHECK(decode_header(b, &h) == Drop::none);
    CHECK(r.check(h.epoch, h.counter, now) == Drop::none);
    Bytes copy = b;
    CHECK(o.open(h, copy) == Drop::none);
    CHECK(r.accept(h.epoch, h.counter, now) == Drop::none);
  }
  CHECK(decode_header(fresh, &h) == Drop::none);
  CHECK_EQUAL(2u, h.epoch);
  CHECK_EQUAL(0u, h.counter);
  CHECK(o.open(h, fresh) == Drop::none);
  CHECK(r.accept(h.epoch, h.counter, now) == Drop::none);
  CHECK(decode_header(old[2], &h) == Drop::none);
  CHECK(r.check(h.epoch, h.counter, now + 1) == Drop::replay);
  CHECK(r.check(h.epoch, h.counter, now + kEpochGraceMs) == Drop::stale_epoch);

  CHECK(s.new_identity(77, 9).ok());
  CHECK_EQUAL(77u, s.sender_id());
  CHECK_EQUAL(9u, s.epoch());
  CHECK_EQUAL(0u, s.next_counter());
  Bytes id = seal_body(s, header_for(77, 9), sample_body());
  CHECK(open_datagram(o, id) == Drop::none);
  CHECK_FALSE(s.new_identity(0, 9).ok());
}

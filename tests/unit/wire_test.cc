#include "wire.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "fec.h"

// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

using Bytes = std::vector<uint8_t>;

Hash make_hash(uint8_t seed) {
  Hash h;
  for (size_t i = 0; i < h.size(); i++) h[i] = static_cast<uint8_t>(seed + i * 7);
  return h;
}

Announce sample_announce() {
  Announce a;
  a.port = 7788;
  a.caps = kCapMcast | kCapSend | kCapRecv;
  a.interval_ms = 20800;
  a.peers = 1000;
  a.grtt_us = 350;
  a.catalog_head = 123456789012ull;
  a.catalog_digest = 0xfeedfacecafebeefull;
  a.name = "box-17.lab";
  return a;
}

Catalog sample_catalog() {
  Catalog c;
  c.after_seq = 10;
  c.head = 99;
  c.flags = kCatalogLast;
  for (uint64_t s : {11u, 15u, 99u}) {
    CatalogItem e;
    e.seq = s;
    e.manifest = make_hash(static_cast<uint8_t>(s));
    e.file_size = s * 1000003;
    e.manifest_len = static_cast<uint32_t>(100 + s);
    e.flags = s == 15 ? 1u : 0u;
    c.entries.push_back(e);
  }
  return c;
}

Want sample_want() {
  Want w;
  w.id = make_hash(3);
  w.object_len = 200000;
  w.target = 0x1122334455667788ull;
  w.flags = kWantMore;
  w.ranges = {{0, 1408}, {1408, 1408}, {50000, 100}, {199900, 100}};
  return w;
}

Have sample_have() {
  Have h;
  h.manifest = make_hash(9);
  h.chunk_count = 1000;
  h.ranges = {{0, 10}, {10, 5}, {500, 499}};
  return h;
}

Report sample_report() {
  Report r;
  r.highest_counter = 0x0102030405060708ull;
  r.sender_epoch = 42;
  r.highest_seq = 777777;
  r.received = 5000;
  r.lost = 12;
  r.interval_ms = 250;
  r.flow = Flow::unicast;
  return r;
}

const Bytes& sample_payload() {
  static Bytes p = [] {
    Bytes b(1408);
    for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<uint8_t>(i * 31 + 5);
    return b;
  }();
  return p;
}

Stream sample_stream() {
  Stream s;
  s.stream = 0x0102030405060708ull;
  s.file_size = 10ull << 30;  // 10 GiB: offsets beyond 32 bits
  s.first_offset = 5ull << 30;
  s.first_index = 70000;
  s.path = "videos/2024/day one.mkv";
  for (uint32_t len : {65536u, 1u, kMaxStreamChunkLen, 123457u})
    s.chunks.push_back({make_hash(static_cast<uint8_t>(len)), len});
  return s;
}

Data sample_data() {
  Data d;
  d.prefix = id_prefix(make_hash(5));
  d.object_len = 65536;
  d.offset = 1408 * 3;
  d.mcast = true;
  d.flow_seq = 123456;
  d.payload = sample_payload();
  return d;
}

Parity sample_parity() {
  Parity p;
  p.prefix = id_prefix(make_hash(6));
  p.object_len = 5000;
  p.mcast = true;
  p.flow_seq = 77;
  p.cell = 1000;
  p.index = 9;
  p.payload = std::span<const uint8_t>(sample_payload()).first(1000);
  return p;
}

template <typename T>
Bytes enc(size_t (*f)(const T&, std::span<uint8_t>), const T& v) {
  Bytes out(4096);
  size_t n = f(v, out);
  CHECK(n > 0);
  out.resize(n);
  return out;
}

// Every body type: a valid encoding and a decoder that re-encodes what it
// accepted (decoding is canonical: accepted bytes re-encode identically).
struct BodyKind {
  const char* name;
  Bytes valid;
  std::function<Drop(std::span<const uint8_t>, Bytes*)> decode_reencode;
};

template <typename T>
std::function<Drop(std::span<const uint8_t>, Bytes*)> codec(
    Drop (*dec)(std::span<const uint8_t>, T*), size_t (*encf)(const T&, std::span<uint8_t>)) {
  return [dec, encf](std::span<const uint8_t> in, Bytes* re) {
    T v;
    Drop d = dec(in, &v);
    if (d == Drop::none) {
      re->assign(in.size() + 64, 0);
      re->resize(encf(v, *re));
    }
    return d;
  };
}

std::vector<BodyKind> kinds() {
  return {
      {"announce", enc(encode_announce, sample_announce()), codec(decode_announce, encode_announce)},
      {"catalog_req", enc(encode_catalog_req, CatalogReq{77, 256}),
       codec(decode_catalog_req, encode_catalog_req)},
      {"catalog", enc(encode_catalog, sample_catalog()), codec(decode_catalog, encode_catalog)},
      {"want", enc(encode_want, sample_want()), codec(decode_want, encode_want)},
      {"data", enc(encode_data, sample_data()), codec(decode_data, encode_data)},
      {"have", enc(encode_have, sample_have()), codec(decode_have, encode_have)},
      {"report", enc(encode_report, sample_report()), codec(decode_report, encode_report)},
      {"ping", enc(encode_ping, Ping{0xabcdef0123456789ull}), codec(decode_ping, encode_ping)},
      {"stream", enc(encode_stream, sample_stream()), codec(decode_stream, encode_stream)},
      {"parity", enc(encode_parity, sample_parity()), codec(decode_parity, encode_parity)},
  };
}

Bytes datagram(const Header& h, size_t body_len) {
  Bytes d(datagram_len(body_len), 0xaa);
  CHECK_EQUAL(kHeaderLen, encode_header(h, d));
  return d;
}

Header sample_header() {
  Header h;
  h.type = PacketType::want;
  h.share_id = 0x59b9d57b;
  h.sender_id = 0x8877665544332211ull;
  h.epoch = 3;
  h.counter = 1000;
  return h;
}

void put_le(Bytes& b, size_t off, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put16(Bytes& b, size_t off, uint16_t v) { put_le(b, off, v, 2); }
void put32(Bytes& b, size_t off, uint32_t v) { put_le(b, off, v, 4); }
void put64(Bytes& b, size_t off, uint64_t v) { put_le(b, off, v, 8); }

}  // namespace

TEST_GROUP(Wire){};

TEST(Wire, HeaderLayoutIsPinned) {
  Bytes d = datagram(sample_header(), 0);
  // "SH", version 2, type 4, then little-endian share/sender/epoch/counter.
  const uint8_t want[kHeaderLen] = {0x53, 0x48, 2,    4,    0x7b, 0xd5, 0xb9, 0x59, 0x11, 0x22,
                                    0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 3,    0,    0,    0,
                                    0xe8, 0x03, 0,    0,    0,    0,    0,    0};
  MEMCMP_EQUAL(want, d.data(), kHeaderLen);
  Header h;
  CHECK(decode_header(d, &h) == Drop::none);
  CHECK(h.type == PacketType::want);
  CHECK_EQUAL(0x59b9d57bu, h.share_id);
  CHECK_EQUAL(0x8877665544332211ull, h.sender_id);
  CHECK_EQUAL(3u, h.epoch);
  CHECK_EQUAL(1000u, h.counter);
}

TEST(Wire, HeaderRejectsEachBadField) {
  Header h;
  Bytes d = datagram(sample_header(), 10);
  for (size_t n = 0; n < kMinDatagram; n++)
    CHECK(decode_header(std::span<const uint8_t>(d.data(), n), &h) == Drop::short_packet);
  CHECK(decode_header(std::span<const uint8_t>(d.data(), kMinDatagram), &h) == Drop::none);

  Bytes b = d;
  b[0] = 0x48, b[1] = 0x53;  // byte-swapped magic
  CHECK(decode_header(b, &h) == Drop::bad_magic);
  for (int v : {0, 1, 3, 255}) {  // 1: before WANTS carried heard
    b = d;
    b[2] = static_cast<uint8_t>(v);
    CHECK(decode_header(b, &h) == Drop::bad_version);
  }
  for (int t : {0, kMaxPacketType + 1, 255}) {
    b = d;
    b[3] = static_cast<uint8_t>(t);
    CHECK(decode_header(b, &h) == Drop::unknown_type);
  }
  for (uint8_t t = 1; t <= kMaxPacketType; t++) {
    b = d;
    b[3] = t;
    CHECK(decode_header(b, &h) == Drop::none);
    CHECK(strcmp("unknown", packet_type_name(h.type)) != 0);
  }
}

TEST(Wire, HeaderFieldLimits) {
  Header h = sample_header();
  Bytes out(kHeaderLen);
  h.sender_id = 0;
  CHECK_EQUAL(0u, encode_header(h, out));
  h = sample_header();
  h.epoch = 0;
  CHECK_EQUAL(0u, encode_header(h, out));
  CHECK_EQUAL(0u, encode_header(sample_header(), std::span<uint8_t>(out.data(), kHeaderLen - 1)));

  Header mx = sample_header();
  mx.share_id = UINT32_MAX, mx.sender_id = UINT64_MAX, mx.epoch = UINT32_MAX, mx.counter = UINT64_MAX;
  Bytes d = datagram(mx, 0);
  Header got;
  CHECK(decode_header(d, &got) == Drop::none);
  CHECK_EQUAL(UINT64_MAX, got.sender_id);
  CHECK_EQUAL(UINT32_MAX, got.epoch);
  CHECK_EQUAL(UINT64_MAX, got.counter);

  // Zero sender or epoch put on the wire by someone else: malformed.
  Bytes b = d;
  std::memset(b.data() + kHeaderSenderOff, 0, 8);
  CHECK(decode_header(b, &got) == Drop::malformed);
  b = d;
  std::memset(b.data() + kHeaderEpochOff, 0, 4);
  CHECK(decode_header(b, &got) == Drop::malformed);
}

TEST(Wire, SizesAtCommonMtus) {
  CHECK_EQUAL(1428u, max_body(1500));
  CHECK_EQUAL(1408u, max_data_payload(1500));
  CHECK_EQUAL(8908u, max_data_payload(9000));
  CHECK_EQUAL(484u, max_data_payload(kMinMtu));
  CHECK_EQUAL(172u, max_want_ranges(1500));
  CHECK_EQUAL(173u, max_have_ranges(1500));
  CHECK_EQUAL(25u, max_catalog_entries(1500));
  CHECK_EQUAL(255u, max_want_ranges(9000));
  CHECK_EQUAL(159u, max_catalog_entries(9000));

  // A full-size DATA datagram is exactly the UDP payload an MTU allows.
  Data d = sample_data();
  Bytes body(max_body(1500));
  CHECK_EQUAL(max_body(1500), encode_data(d, body));
  CHECK_EQUAL(1500u - kIpUdpOverhead, datagram_len(body.size()));

  // The largest WANT fits; one more range does not fit the same buffer.
  Want w = sample_want();
  w.object_len = kMaxObjectLen;
  w.ranges.clear();
  for (uint32_t i = 0; i < max_want_ranges(1500); i++) w.ranges.push_back({i * 100, 10});
  CHECK(encode_want(w, body) > 0);
  w.ranges.push_back({1000000, 1});
  CHECK_EQUAL(0u, encode_want(w, body));
}

TEST(Wire, RoundTripAnnounce) {
  Announce a = sample_announce(), b;
  Bytes e = enc(encode_announce, a);
  CHECK_EQUAL(kAnnounceFixedLen + a.name.size(), e.size());
  CHECK(decode_announce(e, &b) == Drop::none);
  CHECK_EQUAL(a.port, b.port);
  CHECK_EQUAL(a.caps, b.caps);
  CHECK_EQUAL(a.interval_ms, b.interval_ms);
  CHECK_EQUAL(a.peers, b.peers);
  CHECK_EQUAL(a.grtt_us, b.grtt_us);
  CHECK_EQUAL(a.catalog_head, b.catalog_head);
  CHECK_EQUAL(a.catalog_digest, b.catalog_digest);
  STRCMP_EQUAL(a.name.c_str(), b.name.c_str());
  // UTF-8 names are fine, 64 bytes is the limit.
  a.name = std::string(62, 'x') + "\xc3\xa9";
  CHECK(decode_announce(enc(encode_announce, a), &b) == Drop::none);
  CHECK(a.name == b.name);
}

TEST(Wire, AnnounceFieldRules) {
  Bytes out(256);
  Announce a = sample_announce();
  a.port = 0;
  CHECK_EQUAL(0u, encode_announce(a, out));
  for (uint32_t ms : {0u, kMinAnnounceMs - 1, kMaxAnnounceMs + 1}) {
    a = sample_announce();
    a.interval_ms = ms;
    CHECK_EQUAL(0u, encode_announce(a, out));
  }
  for (const char* name : {"", "tab\there", "del\x7f", "nl\n"}) {
    a = sample_announce();
    a.name = name;
    CHECK_EQUAL(0u, encode_announce(a, out));
  }
  a = sample_announce();
  a.name = std::string(65, 'n');
  CHECK_EQUAL(0u, encode_announce(a, out));

  // The decoder enforces the same rules on bytes someone else encoded.
  Announce got;
  Bytes e = enc(encode_announce, sample_announce());
  Bytes b = e;
  b[0] = b[1] = 0;  // port 0
  CHECK(decode_announce(b, &got) == Drop::malformed);
  b = e;
  put32(b, 4, 999);
  CHECK(decode_announce(b, &got) == Drop::malformed);
  b = e;
  b[kAnnounceFixedLen] = '\x01';
  CHECK(decode_announce(b, &got) == Drop::malformed);
  b = e;
  b[32] = 0;  // name_len 0, name bytes become trailing garbage
  CHECK(decode_announce(b, &got) == Drop::malformed);
  b = Bytes(e.begin(), e.begin() + kAnnounceFixedLen);
  b[32] = 0;  // name_len 0 and nothing after it
  CHECK(decode_announce(b, &got) == Drop::malformed);
}

TEST(Wire, RoundTripCatalog) {
  CatalogReq r{UINT64_MAX - 1, 1}, r2;
  CHECK(decode_catalog_req(enc(encode_catalog_req, r), &r2) == Drop::none);
  CHECK_EQUAL(r.after_seq, r2.after_seq);
  CHECK_EQUAL(1u, r2.max_entries);
  Bytes out(64);
  CHECK_EQUAL(0u, encode_catalog_req(CatalogReq{5, 0}, out));

  Catalog c = sample_catalog(), c2;
  Bytes e = enc(encode_catalog, c);
  CHECK_EQUAL(kCatalogFixedLen + 3 * kCatalogEntryLen, e.size());
  CHECK(decode_catalog(e, &c2) == Drop::none);
  CHECK_EQUAL(c.after_seq, c2.after_seq);
  CHECK_EQUAL(c.head, c2.head);
  CHECK_EQUAL(c.flags, c2.flags);
  CHECK(c.entries == c2.entries);

  Catalog empty;
  empty.after_seq = empty.head = 50;
  empty.flags = kCatalogLast;
  CHECK(decode_catalog(enc(encode_catalog, empty), &c2) == Drop::none);
  CHECK(c2.entries.empty());
  // Answer to a cursor beyond the responder's head (it lost its database).
  empty.after_seq = 500;
  empty.head = 3;
  CHECK(decode_catalog(enc(encode_catalog, empty), &c2) == Drop::none);
  CHECK_EQUAL(3u, c2.head);
}

TEST(Wire, CatalogFieldRules) {
  Bytes out(4096);
  Catalog c = sample_catalog();
  c.entries[1].seq = c.entries[0].seq;  // not strictly increasing
  CHECK_EQUAL(0u, encode_catalog(c, out));
  c = sample_catalog();
  c.after_seq = 11;  // first seq must be > after_seq
  CHECK_EQUAL(0u, encode_catalog(c, out));
  c = sample_catalog();
  c.head = 98;  // last seq above head
  CHECK_EQUAL(0u, encode_catalog(c, out));
  c = sample_catalog();
  c.entries[2].manifest_len = 0;
  CHECK_EQUAL(0u, encode_catalog(c, out));
  c.entries[2].manifest_len = kMaxObjectLen + 1;
  CHECK_EQUAL(0u, encode_catalog(c, out));
  c = sample_catalog();
  c.entries.clear();
  c.flags = kCatalogPush;  // empty only with LAST
  CHECK_EQUAL(0u, encode_catalog(c, out));

  Catalog got;
  Bytes e = enc(encode_catalog, sample_catalog());
  Bytes b = e;
  b[17] = 4;  // count says 4, 3 present
  CHECK(decode_catalog(b, &got) == Drop::malformed);
  b = e;
  b[17] = 2;  // count says 2, 3 present
  CHECK(decode_catalog(b, &got) == Drop::malformed);
  b = e;
  b[8] = 1;  // head 1 (< entries)
  CHECK(decode_catalog(b, &got) == Drop::malformed);
}

TEST(Wire, RoundTripWant) {
  Want w = sample_want(), w2;
  Bytes e = enc(encode_want, w);
  CHECK_EQUAL(kWantFixedLen + 4 * kRangeLen, e.size());
  CHECK(decode_want(e, &w2) == Drop::none);
  CHECK(w.id == w2.id);
  CHECK_EQUAL(w.object_len, w2.object_len);
  CHECK_EQUAL(w.target, w2.target);
  CHECK_EQUAL(w.flags, w2.flags);
  CHECK(w.ranges == w2.ranges);

  w.ranges.clear();  // whole object
  w.flags = kWantManifest;
  w.target = 0;
  w.object_len = kMaxObjectLen;
  CHECK(decode_want(enc(encode_want, w), &w2) == Drop::none);
  CHECK(w2.ranges.empty());
  CHECK_EQUAL(kWantManifest, w2.flags);
}

TEST(Wire, WantFieldRules) {
  Bytes out(4096);
  auto bad = [&](std::function<void(Want&)> f) {
    Want w = sample_want();
    f(w);
    return encode_want(w, out) == 0;
  };
  CHECK(bad([](Want& w) { w.object_len = 0; }));
  CHECK(bad([](Want& w) { w.object_len = kMaxObjectLen + 1; }));
  CHECK(bad([](Want& w) { w.ranges[1].len = 0; }));
  CHECK(bad([](Want& w) { w.ranges[1].start = 1000; }));        // overlaps the first
  CHECK(bad([](Want& w) { std::swap(w.ranges[0], w.ranges[3]); }));  // unsorted
  CHECK(bad([](Want& w) { w.ranges[3] = {199900, 101}; }));     // past object_len
  CHECK(bad([](Want& w) { w.ranges[3] = {UINT32_MAX, 2}; }));   // would wrap in 32 bits
  CHECK(bad([](Want& w) { w.ranges.assign(256, Range{}); }));   // over the u8 count
  CHECK_FALSE(bad([](Want&) {}));

  Want got;
  Bytes e = enc(encode_want, sample_want());
  Bytes b = e;
  put32(b, kWantFixedLen + 3 * kRangeLen + 4, 0xffffffff);  // last range length
  CHECK(decode_want(b, &got) == Drop::malformed);
  b = e;
  b[45] = 5;  // count beyond the bytes present
  CHECK(decode_want(b, &got) == Drop::malformed);
  b = e;
  put32(b, 32, 100);  // object shorter than the ranges
  CHECK(decode_want(b, &got) == Drop::malformed);
}

TEST(Wire, RoundTripData) {
  Data d = sample_data(), d2;
  Bytes e = enc(encode_data, d);
  CHECK_EQUAL(kDataFixedLen + d.payload.size(), e.size());
  CHECK(decode_data(e, &d2) == Drop::none);
  CHECK(d.prefix == d2.prefix);
  CHECK_EQUAL(d.object_len, d2.object_len);
  CHECK_EQUAL(d.offset, d2.offset);
  CHECK(d2.mcast);
  CHECK_EQUAL(d.flow_seq, d2.flow_seq);
  CHECK_EQUAL(d.payload.size(), d2.payload.size());
  MEMCMP_EQUAL(d.payload.data(), d2.payload.data(), d.payload.size());
  // The payload is a view into the body, not a copy.
  CHECK(d2.payload.data() == e.data() + kDataFixedLen);

  // Unicast flow, highest seq, last fragment ending exactly at object_len.
  d.mcast = false;
  d.flow_seq = kMaxFlowSeq;
  d.offset = d.object_len - static_cast<uint32_t>(d.payload.size());
  CHECK(decode_data(enc(encode_data, d), &d2) == Drop::none);
  CHECK_FALSE(d2.mcast);
  CHECK_EQUAL(kMaxFlowSeq, d2.flow_seq);

  // encode_data_fields writes the same 20 bytes without touching the payload.
  Bytes fields(kDataFixedLen);
  CHECK_EQUAL(kDataFixedLen, encode_data_fields(d, fields));
  Bytes full = enc(encode_data, d);
  MEMCMP_EQUAL(full.data(), fields.data(), kDataFixedLen);
}

TEST(Wire, DataFieldRules) {
  Bytes out(4096);
  Data d = sample_data();
  d.offset = d.object_len - static_cast<uint32_t>(d.payload.size()) + 1;
  CHECK_EQUAL(0u, encode_data(d, out));
  d = sample_data();
  d.payload = {};
  CHECK_EQUAL(0u, encode_data(d, out));
  d = sample_data();
  d.flow_seq = kMaxFlowSeq + 1;
  CHECK_EQUAL(0u, encode_data(d, out));
  d = sample_data();
  d.object_len = kMaxObjectLen + 1;
  CHECK_EQUAL(0u, encode_data(d, out));
  d = sample_data();
  CHECK_EQUAL(0u, encode_data(d, std::span<uint8_t>(out.data(), kDataFixedLen + 10)));

  Data got;
  Bytes e = enc(encode_data, sample_data());
  Bytes b = e;
  put32(b, 12, UINT32_MAX);  // offset + payload wraps 32 bits
  CHECK(decode_data(b, &got) == Drop::malformed);
  b = e;
  put32(b, 8, 0);  // object_len 0
  CHECK(decode_data(b, &got) == Drop::malformed);
}

TEST(Wire, RoundTripHave) {
  Have h = sample_have(), h2;
  CHECK(decode_have(enc(encode_have, h), &h2) == Drop::none);
  CHECK(h.manifest == h2.manifest);
  CHECK_EQUAL(h.chunk_count, h2.chunk_count);
  CHECK_EQUAL(0u, h2.flags);
  CHECK(h.ranges == h2.ranges);

  h.ranges.clear();
  h.flags = kHaveComplete;
  h.chunk_count = 0;  // an empty file has no chunks
  CHECK(decode_have(enc(encode_have, h), &h2) == Drop::none);
  CHECK_EQUAL(kHaveComplete, h2.flags);
  CHECK(h2.ranges.empty());
}

TEST(Wire, HaveFieldRules) {
  Bytes out(4096);
  Have h = sample_have();
  h.flags = kHaveComplete;  // complete must not list ranges
  CHECK_EQUAL(0u, encode_have(h, out));
  h = sample_have();
  h.ranges.clear();  // partial must list some
  CHECK_EQUAL(0u, encode_have(h, out));
  h = sample_have();
  h.ranges.back() = {500, 501};  // past chunk_count
  CHECK_EQUAL(0u, encode_have(h, out));

  Have got;
  Bytes e = enc(encode_have, sample_have());
  Bytes b = e;
  put32(b, 32, 998);  // chunk_count below the last range's end (999)
  CHECK(decode_have(b, &got) == Drop::malformed);
  b = e;
  b[36] = kHaveComplete;
  CHECK(decode_have(b, &got) == Drop::malformed);
}

TEST(Wire, RoundTripReportAndPing) {
  Report r = sample_report(), r2;
  Bytes e = enc(encode_report, r);
  CHECK_EQUAL(kReportLen, e.size());
  CHECK(decode_report(e, &r2) == Drop::none);
  CHECK_EQUAL(r.highest_counter, r2.highest_counter);
  CHECK_EQUAL(r.sender_epoch, r2.sender_epoch);
  CHECK_EQUAL(r.highest_seq, r2.highest_seq);
  CHECK_EQUAL(r.received, r2.received);
  CHECK_EQUAL(r.lost, r2.lost);
  CHECK_EQUAL(r.interval_ms, r2.interval_ms);
  CHECK(r2.flow == Flow::unicast);
  CHECK_FALSE(r2.has_queue);
  {  // With the queue byte: 28 bytes, what a kCapQueue sender takes.
    Report q = sample_report(), q2;
    q.has_queue = true;
    q.queue_pct = 63;
    Bytes eq = enc(encode_report, q);
    CHECK_EQUAL(kReportQueueLen, eq.size());
    CHECK_EQUAL(63, eq[27]);
    CHECK(decode_report(eq, &q2) == Drop::none);
    CHECK_TRUE(q2.has_queue);
    CHECK_EQUAL(63, q2.queue_pct);
    CHECK_EQUAL(q.lost, q2.lost);
    eq[27] = 101;  // a percentage
    CHECK(decode_report(eq, &q2) == Drop::malformed);
    Bytes small27(kReportLen);
    CHECK_EQUAL(0u, encode_report(q, small27));
  }

  Bytes out(64);
  r.interval_ms = 0;
  CHECK_EQUAL(0u, encode_report(r, out));
  r = sample_report();
  r.highest_seq = kMaxFlowSeq + 1;
  CHECK_EQUAL(0u, encode_report(r, out));
  Bytes b = e;
  b[26] = 2;  // no such flow
  CHECK(decode_report(b, &r2) == Drop::malformed);

  Ping p{0x0123456789abcdefull}, p2;
  Bytes pe = enc(encode_ping, p);
  CHECK_EQUAL(kPingLen, pe.size());
  CHECK(decode_ping(pe, &p2) == Drop::none);
  CHECK_EQUAL(p.token, p2.token);
}

TEST(Wire, PongCarriesTheClockOnlyWhenAsked) {
  Bytes plain = enc(encode_pong, Pong{0x0123456789abcdefull, 0});
  CHECK_EQUAL(kPingLen, plain.size());  // what nodes without kCapClock accept
  Ping as_ping;
  CHECK(decode_ping(plain, &as_ping) == Drop::none);
  CHECK_EQUAL(0x0123456789abcdefull, as_ping.token);
  Pong got;
  CHECK(decode_pong(plain, &got) == Drop::none);
  CHECK_EQUAL(0u, got.wall_us);

  Bytes timed = enc(encode_pong, Pong{7, 1700000000123456ull});
  CHECK_EQUAL(kPongClockLen, timed.size());
  const uint8_t want[kPongClockLen] = {7, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x22, 0x20, 0x18, 0x24, 0x0a, 0x06, 0};
  MEMCMP_EQUAL(want, timed.data(), kPongClockLen);
  CHECK(decode_pong(timed, &got) == Drop::none);
  CHECK_EQUAL(7u, got.token);
  CHECK_EQUAL(1700000000123456ull, got.wall_us);

  for (size_t n : {0, 7, 9, 15, 17}) {
    Bytes b(n, 1);
    CHECK(decode_pong(b, &got) == Drop::malformed);
  }
  Bytes zero_clock = timed;
  std::fill(zero_clock.begin() + 8, zero_clock.end(), 0);
  CHECK(decode_pong(zero_clock, &got) == Drop::malformed);
  Bytes small(8);
  CHECK_EQUAL(0u, encode_pong(Pong{1, 2}, small));
}

TEST(Wire, EveryTruncationAndExtensionIsMalformed) {
  for (const BodyKind& k : kinds()) {
    Bytes re;
    CHECK(k.decode_reencode(k.valid, &re) == Drop::none);
    CHECK(re == k.valid);
    // DATA's payload is "the rest": any cut that keeps one payload byte is a valid, shorter DATA.
    size_t valid_from = std::strcmp(k.name, "data") == 0 ? kDataFixedLen + 1 : k.valid.size();
    for (size_t n = 0; n < k.valid.size(); n++) {
      Drop d = k.decode_reencode(std::span<const uint8_t>(k.valid.data(), n), &re);
      if (n >= valid_from)
        CHECK(d == Drop::none);
      else if (d != Drop::malformed)
        FAIL((std::string(k.name) + " accepted a prefix of " + std::to_string(n)).c_str());
    }
    if (std::strcmp(k.name, "data") == 0) continue;
    Bytes longer = k.valid;
    longer.push_back(0);
    // REPORT may carry one more byte, the queue (to a kCapQueue sender).
    if (std::strcmp(k.name, "report") == 0) longer.push_back(0);
    CHECK(k.decode_reencode(longer, &re) == Drop::malformed);
  }
}

// Random mutations of valid bodies never crash a decoder (run under ASan in
// make SAN=1), and whatever a decoder accepts re-encodes to the same bytes.
TEST(Wire, MutationFuzz) {
  std::mt19937 rng(20240607);
  std::vector<BodyKind> ks = kinds();
  size_t accepted = 0;
  for (int iter = 0; iter < 4000; iter++) {
    const BodyKind& k = ks[rng() % ks.size()];
    Bytes b = k.valid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; e++) {
      switch (rng() % 5) {
        case 0: if (!b.empty()) b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: if (!b.empty()) b[rng() % b.size()] = static_cast<uint8_t>(rng()); break;
        case 2: b.resize(rng() % (b.size() + 1)); break;
        case 3: b.push_back(static_cast<uint8_t>(rng())); break;
        case 4: if (b.size() > 40) b[32 + rng() % 8] = static_cast<uint8_t>(rng() % 4); break;
      }
    }
    // Feed the mutated bytes to every decoder, not only the matching one.
    for (const BodyKind& any : ks) {
      Bytes re;
      if (any.decode_reencode(b, &re) == Drop::none) {
        accepted++;
        if (re != b) FAIL((std::string(any.name) + " accepted bytes it re-encodes differently").c_str());
      }
    }
    // And as a whole datagram header.
    Header h;
    Bytes dg = b;
    dg.insert(dg.begin(), {0x53, 0x48, kWireVersion, static_cast<uint8_t>(rng() % (kMaxPacketType + 2))});
    (void)decode_header(dg, &h);
  }
  CHECK(accepted > 0);  // the fuzz also reaches the accepting paths
}

TEST(Wire, DropNamesAreDistinct) {
  std::vector<std::string> names;
  for (size_t i = 0; i < kDropCount; i++) names.push_back(drop_name(static_cast<Drop>(i)));
  STRCMP_EQUAL("short", drop_name(Drop::short_packet));
  STRCMP_EQUAL("auth", drop_name(Drop::auth));
  STRCMP_EQUAL("unknown", drop_name(static_cast<Drop>(kDropCount)));
  for (size_t i = 0; i < names.size(); i++)
    for (size_t j = i + 1; j < names.size(); j++) CHECK(names[i] != names[j]);
  STRCMP_EQUAL("pong", packet_type_name(PacketType::pong));
}

TEST_GROUP(Wants){};

TEST(Wants, RoundTripAndTruncation) {
  Wants ws;
  ws.target = 42;
  Want a;
  a.id = sha256("a", 1);
  a.object_len = 65536;
  Want b;
  b.id = sha256("b", 1);
  b.object_len = 1000;
  b.flags = kWantManifest;
  b.ranges = {{0, 10}, {500, 100}};
  ws.items = {a, b};
  std::vector<uint8_t> buf(1500);
  size_t n = encode_wants(ws, buf);
  CHECK_EQUAL(kWantsFixedLen + 2 * kWantsEntryLen + 2 * kRangeLen, n);
  Wants out;
  CHECK(Drop::none == decode_wants({buf.data(), n}, &out));
  CHECK_EQUAL(42u, out.target);
  CHECK_EQUAL(2u, out.items.size());
  CHECK(out.items[0].id == a.id);
  CHECK(out.items[1].ranges == b.ranges);
  CHECK_EQUAL(kWantManifest, out.items[1].flags);
  CHECK_EQUAL(0u, out.heard);
  CHECK_EQUAL(0u, out.items[1].heard);
  for (size_t len = 0; len < n; len++) CHECK(Drop::malformed == decode_wants({buf.data(), len}, &out));
  buf[n] = 0;
  CHECK(Drop::malformed == decode_wants({buf.data(), n + 1}, &out));
}

// heard (how far the asker read the target's multicast flow) sits after the
// target and reaches every item; without the valid bit it must be 0.
TEST(Wants, HeardSeqRoundTripsAndIsChecked) {
  Wants ws;
  ws.target = 7;
  ws.heard = kHeardValid | 0x12345u;
  Want a;
  a.id = sha256("a", 1);
  a.object_len = 4096;
  ws.items = {a, a};
  std::vector<uint8_t> buf(1500);
  size_t n = encode_wants(ws, buf);
  CHECK_EQUAL(kWantsFixedLen + 2 * kWantsEntryLen, n);
  CHECK_EQUAL(0x80u, buf[11]);  // u32 little-endian at offset 8: the valid bit is the top one
  CHECK_EQUAL(0x45u, buf[8]);
  Wants out;
  CHECK(Drop::none == decode_wants({buf.data(), n}, &out));
  CHECK_EQUAL(kHeardValid | 0x12345u, out.heard);
  for (const Want& w : out.items) CHECK_EQUAL(kHeardValid | 0x12345u, w.heard);
  buf[11] = 0x00;  // a seq without the valid bit
  CHECK(Drop::malformed == decode_wants({buf.data(), n}, &out));
}

TEST(Wants, RefusesBadItems) {
  Wants ws;
  std::vector<uint8_t> buf(1500);
  CHECK_EQUAL(0u, encode_wants(ws, buf));  // empty
  Want w;
  w.id = sha256("x", 1);
  w.object_len = 100;
  w.ranges = {{90, 20}};  // past the end
  ws.items = {w};
  CHECK_EQUAL(0u, encode_wants(ws, buf));
  w.ranges = {{10, 5}, {12, 5}};  // overlapping
  ws.items = {w};
  CHECK_EQUAL(0u, encode_wants(ws, buf));
}

TEST_GROUP(Stream){};

namespace {

// Byte offsets in a STREAM body (wire.h).
constexpr size_t kStreamFileSizeOff = 8;
constexpr size_t kStreamFirstOffsetOff = 16;
constexpr size_t kStreamFlagsOff = 28;
constexpr size_t kStreamCountOff = 29;
constexpr size_t kStreamPathLenOff = 30;
constexpr size_t kChunkIdLen = std::tuple_size_v<Hash>;

// Offset of entry i's len field in the encoding of s.
size_t stream_len_off(const Stream& s, size_t i) {
  return kStreamFixedLen + s.path.size() + i * kStreamEntryLen + kChunkIdLen;
}

uint64_t stream_end(const Stream& s) {
  uint64_t end = s.first_offset;
  for (const StreamChunk& c : s.chunks) end += c.len;
  return end;
}

// Decodes b and checks it is refused; `what` names the case on failure.
void check_refused(const Bytes& b, const char* what) {
  Stream got;
  if (decode_stream(b, &got) != Drop::malformed)
    FAIL((std::string("decode_stream accepted ") + what).c_str());
}

void check_accepted(const Bytes& b, const char* what) {
  Stream got;
  if (decode_stream(b, &got) != Drop::none)
    FAIL((std::string("decode_stream refused ") + what).c_str());
}

}  // namespace

TEST(Stream, RoundTrip) {
  Stream s = sample_stream();
  Bytes e = enc(encode_stream, s);
  CHECK_EQUAL(kStreamFixedLen + s.path.size() + s.chunks.size() * kStreamEntryLen, e.size());
  // Reused output holding more chunks and a longer path than the packet.
  Stream got = sample_stream();
  got.path = std::string(500, 'z');
  got.chunks.resize(9, StreamChunk{make_hash(99), 5});
  CHECK(decode_stream(e, &got) == Drop::none);
  CHECK_EQUAL(s.stream, got.stream);
  CHECK_EQUAL(s.file_size, got.file_size);
  CHECK_EQUAL(s.first_offset, got.first_offset);
  CHECK_EQUAL(s.first_index, got.first_index);
  STRCMP_EQUAL(s.path.c_str(), got.path.c_str());
  CHECK_EQUAL(s.chunks.size(), got.chunks.size());
  CHECK(s.chunks == got.chunks);

  // Layout: little-endian fixed fields, then path, then (id, len) entries.
  const uint8_t head[kStreamFixedLen] = {8, 7, 6, 5, 4,    3,    2, 1, 0, 0, 0, 0x80, 2, 0, 0, 0,
                                         0, 0, 0, 0x40, 1, 0, 0, 0, 0x70, 0x11, 1, 0, 0, 4, 23, 0};
  MEMCMP_EQUAL(head, e.data(), kStreamFixedLen);
  MEMCMP_EQUAL(s.path.data(), e.data() + kStreamFixedLen, s.path.size());
  size_t last = kStreamFixedLen + s.path.size() + 3 * kStreamEntryLen;
  MEMCMP_EQUAL(s.chunks[3].id.data(), e.data() + last, kChunkIdLen);
  const uint8_t len3[4] = {0x41, 0xe2, 0x01, 0};  // 123457
  MEMCMP_EQUAL(len3, e.data() + last + kChunkIdLen, 4);
}

TEST(Stream, EdgesThatAreValid) {
  Stream s = sample_stream(), got;
  // The chunks end exactly at file_size, their index range exactly at UINT32_MAX.
  s.file_size = stream_end(s);
  s.first_index = UINT32_MAX - static_cast<uint32_t>(s.chunks.size());
  s.path = std::string(kMaxStreamPath, 'p');
  CHECK(decode_stream(enc(encode_stream, s), &got) == Drop::none);
  CHECK_EQUAL(s.file_size, got.file_size);
  CHECK_EQUAL(kMaxStreamPath, got.path.size());
  CHECK(s.chunks == got.chunks);
  // No chunks (yet), first_offset at file_size.
  s.chunks.clear();
  s.first_offset = s.file_size;
  s.path = "a";
  CHECK(decode_stream(enc(encode_stream, s), &got) == Drop::none);
  CHECK(got.chunks.empty());
  STRCMP_EQUAL("a", got.path.c_str());
}

TEST(Stream, MaxEntriesFitOneDatagram) {
  for (size_t path_len : {size_t{1}, size_t{23}, size_t{400}}) {
    size_t n = max_stream_entries(kDefaultMtu, path_len);
    CHECK_EQUAL((max_body(kDefaultMtu) - kStreamFixedLen - path_len) / kStreamEntryLen, n);
    CHECK(n > 0);
    Stream s = sample_stream();
    s.path = std::string(path_len, 'q');
    s.chunks.assign(n, StreamChunk{make_hash(1), 1000});
    s.file_size = s.first_offset + (n + 1) * 1000;
    Bytes body(max_body(kDefaultMtu));
    size_t len = encode_stream(s, body);
    CHECK(len > 0);
    CHECK(len <= max_body(kDefaultMtu));
    CHECK(max_body(kDefaultMtu) - len < kStreamEntryLen);  // no room left for another
    Stream got;
    CHECK(decode_stream(std::span<const uint8_t>(body.data(), len), &got) == Drop::none);
    CHECK_EQUAL(n, got.chunks.size());
    s.chunks.push_back({make_hash(2), 1000});
    CHECK_EQUAL(0u, encode_stream(s, body));
    Bytes bigger(4096);
    CHECK_EQUAL(len + kStreamEntryLen, encode_stream(s, bigger));  // only the size was wrong
  }
  CHECK_EQUAL(38u, max_stream_entries(1500, 20));  // (1428 - 32 - 20) / 36
  CHECK_EQUAL(247u, max_stream_entries(kMaxMtu, 1));  // (8928 - 32 - 1) / 36
  CHECK_EQUAL(0u, max_stream_entries(1500, 0));
  CHECK_EQUAL(0u, max_stream_entries(1500, kMaxStreamPath + 1));
}

TEST(Stream, EncodeRefusesWhatDecodeRefuses) {
  Bytes out(16384);  // room for 256 entries: size is not what refuses them
  auto bad = [&](std::function<void(Stream&)> f) {
    Stream s = sample_stream();
    f(s);
    return encode_stream(s, out) == 0;
  };
  CHECK_FALSE(bad([](Stream&) {}));
  CHECK(bad([](Stream& s) { s.stream = 0; }));
  CHECK(bad([](Stream& s) { s.file_size = 0, s.first_offset = 0, s.chunks.clear(); }));
  CHECK(bad([](Stream& s) { s.path.clear(); }));
  CHECK(bad([](Stream& s) { s.path.assign(kMaxStreamPath + 1, 'p'); }));
  CHECK(bad([](Stream& s) { s.chunks[1].len = 0; }));
  CHECK(bad([](Stream& s) { s.chunks[1].len = kMaxStreamChunkLen + 1; }));
  CHECK(bad([](Stream& s) { s.file_size = stream_end(s) - 1; }));
  CHECK(bad([](Stream& s) { s.chunks.clear(), s.first_offset = s.file_size + 1; }));
  CHECK(bad([](Stream& s) { s.first_offset = s.file_size = UINT64_MAX; }));  // would wrap
  CHECK(bad([](Stream& s) { s.chunks.assign(256, StreamChunk{make_hash(1), 1}); }));
  CHECK(bad([](Stream& s) { s.first_index = UINT32_MAX; }));  // indices past u32
  Stream s = sample_stream();
  size_t len = encode_stream(s, out);
  CHECK_EQUAL(0u, encode_stream(s, std::span<uint8_t>(out.data(), len - 1)));
}

TEST(Stream, DecodeRefusesBadFields) {
  const Stream s = sample_stream();
  const Bytes e = enc(encode_stream, s);
  check_accepted(e, "the valid sample");
  Bytes b = e;
  put64(b, 0, 0);
  check_refused(b, "stream 0");
  for (int f : {1, 2, 0x80, 0xff}) {
    b = e;
    b[kStreamFlagsOff] = static_cast<uint8_t>(f);
    check_refused(b, "flags != 0");
  }
  b = e;
  put32(b, stream_len_off(s, 1), 0);
  check_refused(b, "a chunk len 0");
  b = e;
  put32(b, stream_len_off(s, 1), kMaxStreamChunkLen + 1);
  check_refused(b, "a chunk len of 256 KiB + 1");
  b = e;
  put32(b, stream_len_off(s, 1), UINT32_MAX);
  check_refused(b, "a chunk len of 4 GiB - 1");
  b = e;
  put64(b, kStreamFileSizeOff, stream_end(s) - 1);
  check_refused(b, "chunks ending one byte beyond file_size");
  put64(b, kStreamFileSizeOff, stream_end(s));
  check_accepted(b, "chunks ending at file_size");
  b = e;
  put64(b, kStreamFirstOffsetOff, s.file_size - 1000);
  check_refused(b, "chunks starting near the end of the file");
}

TEST(Stream, DecodeRefusesFileSizeZero) {
  Stream s = sample_stream();
  s.chunks.clear();
  s.first_offset = 0;  // so that file_size 0 breaks no other rule
  Bytes e = enc(encode_stream, s);
  check_accepted(e, "an empty stream of a non-empty file");
  put64(e, kStreamFileSizeOff, 0);
  check_refused(e, "file_size 0");
  // Offset beyond the end, with no chunks to overrun it.
  e = enc(encode_stream, s);
  put64(e, kStreamFirstOffsetOff, s.file_size + 1);
  check_refused(e, "first_offset beyond file_size");
}

TEST(Stream, DecodeRefusesChunksThatWrapPastFileSize) {
  // first_offset + len wraps 64 bits to a small end, which a lax check
  // would take for "within file_size".
  Stream s = sample_stream();
  s.chunks = {{make_hash(1), 100}};
  s.file_size = UINT64_MAX;
  s.first_offset = UINT64_MAX - 100;
  Bytes e = enc(encode_stream, s);  // ends exactly at UINT64_MAX: valid
  check_accepted(e, "a chunk ending at UINT64_MAX");
  for (uint64_t off : {UINT64_MAX - 99, UINT64_MAX}) {
    Bytes b = e;
    put64(b, kStreamFirstOffsetOff, off);
    check_refused(b, "chunks wrapping past UINT64_MAX");
  }
}

TEST(Stream, DecodeRefusesBadPaths) {
  Stream s = sample_stream();
  Bytes e = enc(encode_stream, s);
  // Path length 0, path bytes cut out so every other field still adds up.
  Bytes b = e;
  auto path_at = b.begin() + kStreamFixedLen;
  b.erase(path_at, path_at + static_cast<long>(s.path.size()));
  put16(b, kStreamPathLenOff, 0);
  check_refused(b, "an empty path");

  s.path.assign(kMaxStreamPath, 'p');
  e = enc(encode_stream, s);
  check_accepted(e, "a path of kMaxStreamPath bytes");
  b = e;
  b.insert(b.begin() + kStreamFixedLen, 'p');
  put16(b, kStreamPathLenOff, static_cast<uint16_t>(kMaxStreamPath + 1));
  check_refused(b, "a path of kMaxStreamPath + 1 bytes");
  b = e;
  b.insert(b.begin() + kStreamFixedLen, 1000, 'p');
  put16(b, kStreamPathLenOff, static_cast<uint16_t>(kMaxStreamPath + 1000));
  check_refused(b, "a path of 2024 bytes");
}

TEST(Stream, DecodeRefusesWrongLengths) {
  const Stream s = sample_stream();
  const Bytes e = enc(encode_stream, s);
  Bytes b = e;
  b.push_back(0);
  check_refused(b, "a trailing byte");
  b = e;
  b.insert(b.end(), e.end() - static_cast<long>(kStreamEntryLen), e.end());
  check_refused(b, "a whole extra entry the count does not list");
  for (size_t n = 0; n < e.size(); n++) {
    Stream got;
    if (decode_stream(std::span<const uint8_t>(e.data(), n), &got) != Drop::malformed)
      FAIL(("decode_stream accepted a prefix of " + std::to_string(n)).c_str());
  }
  b = e;
  b.resize(e.size() - kStreamEntryLen);  // a whole entry missing
  check_refused(b, "a missing last entry");
  for (int count : {0, 3, 5, 255}) {
    b = e;
    b[kStreamCountOff] = static_cast<uint8_t>(count);  // 4 present
    check_refused(b, "a count disagreeing with the bytes");
  }
  for (int plen : {22, 24}) {
    b = e;
    put16(b, kStreamPathLenOff, static_cast<uint16_t>(plen));  // 23 present
    check_refused(b, "a path_len disagreeing with the bytes");
  }
}

TEST(Stream, TypeName) {
  STRCMP_EQUAL("stream", packet_type_name(PacketType::stream));
  CHECK_EQUAL(11, static_cast<int>(PacketType::stream));
}

TEST(Wire, RoundTripParity) {
  Parity p = sample_parity(), p2;
  Bytes e = enc(encode_parity, p);
  CHECK_EQUAL(kParityFixedLen + p.payload.size(), e.size());
  CHECK(decode_parity(e, &p2) == Drop::none);
  CHECK(p.prefix == p2.prefix);
  CHECK_EQUAL(p.object_len, p2.object_len);
  CHECK(p2.mcast);
  CHECK_EQUAL(p.flow_seq, p2.flow_seq);
  CHECK_EQUAL(p.cell, p2.cell);
  CHECK_EQUAL(p.index, p2.index);
  CHECK(p2.payload.data() == e.data() + kParityFixedLen);
  MEMCMP_EQUAL(p.payload.data(), p2.payload.data(), p.payload.size());
  Bytes fields(kParityFixedLen);
  CHECK_EQUAL(kParityFixedLen, encode_parity_fields(p, fields));
  MEMCMP_EQUAL(e.data(), fields.data(), kParityFixedLen);
  STRCMP_EQUAL("parity", packet_type_name(PacketType::parity));
  CHECK_EQUAL(12, static_cast<int>(PacketType::parity));
  CHECK_EQUAL(12, static_cast<int>(kMaxPacketType));
}

TEST(Wire, ParityFieldRules) {
  Bytes out(4096);
  Parity p = sample_parity();  // 5000 bytes in cells of 1000: 5 cells, indexes 0..250
  p.index = 250;
  CHECK(encode_parity(p, out) > 0);
  p.index = 251;
  CHECK_EQUAL(0u, encode_parity(p, out));
  p = sample_parity();
  p.payload = p.payload.first(999);  // not one cell
  CHECK_EQUAL(0u, encode_parity(p, out));
  p = sample_parity();
  p.object_len = 1000 * (kMaxParityCells + 1);  // too many cells for parity
  CHECK_EQUAL(0u, encode_parity(p, out));
  p = sample_parity();
  p.flow_seq = kMaxFlowSeq + 1;
  CHECK_EQUAL(0u, encode_parity(p, out));

  Parity got;
  Bytes e = enc(encode_parity, sample_parity());
  Bytes b = e;
  b[19] = 1;  // reserved flags
  CHECK(decode_parity(b, &got) == Drop::malformed);
  b = e;
  b[16] = 0;  // cell 0
  b[17] = 0;
  CHECK(decode_parity(b, &got) == Drop::malformed);
  b = e;
  b.pop_back();  // payload shorter than a cell
  CHECK(decode_parity(b, &got) == Drop::malformed);
  b = e;
  put32(b, 8, 0);  // object_len 0
  CHECK(decode_parity(b, &got) == Drop::malformed);
  b = e;
  b[18] = 255;  // index past the last one
  CHECK(decode_parity(b, &got) == Drop::malformed);
}

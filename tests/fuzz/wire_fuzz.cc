// libFuzzer target for the packet layer (src/wire.h) and the AEAD opener.
//
// The first input byte picks what the rest is fed to: 1..11 (kMaxPacketType)
// the body decoder of that packet type; 0 (and 13..15) the datagram path
// (decode_header, then Opener::open under a fixed key, which must fail
// authentication); 12 (kMaxPacketType + 1) the sealed path (the rest, as a
// body of the type its first byte names, is sealed and must open again to
// the same plaintext and decode as before);
// anything else every decoder in turn. Whatever decodes must re-encode to the same
// bytes, or the decoder accepted something the encoder would never send.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "crypto.h"
#include "wire.h"

using namespace shoal;

namespace {

using Bytes = std::span<const uint8_t>;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "wire_fuzz: %s\n", what);
  std::abort();
}

void expect_same(Bytes in, const std::vector<uint8_t>& buf, size_t n, const char* type) {
  if (n != in.size() || std::memcmp(buf.data(), in.data(), n) != 0) {
    std::fprintf(stderr, "wire_fuzz: %s decoded but re-encodes to %zu bytes, not %zu\n", type, n,
                 in.size());
    std::abort();
  }
}

// Decodes `b` as a body of type t; on success re-encodes into a buffer of
// exactly the input's size and compares.
template <typename T, typename Dec, typename Enc>
void round_trip(Bytes b, Dec dec, Enc enc, const char* type) {
  T v;
  if (dec(b, &v) != Drop::none) return;
  std::vector<uint8_t> buf(b.size() + 1);  // +1: never a 0-byte span's data()
  expect_same(b, buf, enc(v, std::span<uint8_t>(buf.data(), b.size())), type);
}

void data_body(Bytes b) {
  Data d;
  if (decode_data(b, &d) != Drop::none) return;
  if (d.payload.data() != b.data() + kDataFixedLen) fail("data payload does not point into body");
  std::vector<uint8_t> buf(b.size());
  expect_same(b, buf, encode_data(d, buf), "data");
  if (encode_data_fields(d, buf) != kDataFixedLen) fail("data fields do not encode");
}

void body(uint8_t type, Bytes b) {
  switch (static_cast<PacketType>(type)) {
    case PacketType::announce:
      return round_trip<Announce>(b, decode_announce, encode_announce, "announce");
    case PacketType::catalog_req:
      return round_trip<CatalogReq>(b, decode_catalog_req, encode_catalog_req, "catalog_req");
    case PacketType::catalog:
      return round_trip<Catalog>(b, decode_catalog, encode_catalog, "catalog");
    case PacketType::want: return round_trip<Want>(b, decode_want, encode_want, "want");
    case PacketType::data: return data_body(b);
    case PacketType::have: return round_trip<Have>(b, decode_have, encode_have, "have");
    case PacketType::report: return round_trip<Report>(b, decode_report, encode_report, "report");
    case PacketType::ping: return round_trip<Ping>(b, decode_ping, encode_ping, "ping");
    case PacketType::pong: return round_trip<Pong>(b, decode_pong, encode_pong, "pong");
    case PacketType::wants: return round_trip<Wants>(b, decode_wants, encode_wants, "wants");
    case PacketType::stream: return round_trip<Stream>(b, decode_stream, encode_stream, "stream");
    case PacketType::parity: return round_trip<Parity>(b, decode_parity, encode_parity, "parity");
  }
}

constexpr std::string_view kKey("0123456789abcdef0123456789abcdef", kShareKeyLen);
constexpr uint64_t kSealSender = 0x5eed;

// Process-lifetime singletons (never freed: libFuzzer exits without unwinding).
Opener& opener() {
  static Opener* o = [] {
    auto* op = new Opener(4);
    if (!op->init(kKey)) fail("opener init");
    return op;
  }();
  return *o;
}

Sealer& sealer() {
  static Sealer* s = [] {
    auto* se = new Sealer();
    if (!se->init(kKey, kSealSender, 1)) fail("sealer init");
    return se;
  }();
  return *s;
}

bool is_forgery(const Header& h) { return h.sender_id != kSealSender || h.epoch != 1; }

void datagram(Bytes d) {
  Header h;
  if (decode_header(d, &h) != Drop::none) return;
  std::vector<uint8_t> hdr(kHeaderLen);
  expect_same(d.first(kHeaderLen), hdr, encode_header(h, hdr), "header");
  body(static_cast<uint8_t>(h.type), body_of(d));  // as if it were plaintext
  std::vector<uint8_t> copy(d.begin(), d.end());
  size_t cached = opener().cached();
  if (opener().open(h, copy) != Drop::auth && is_forgery(h))
    fail("a forged datagram did not fail authentication");
  if (is_forgery(h) && opener().cached() != cached) fail("a forgery entered the opener cache");
}

void sealed(Bytes in) {
  if (in.empty() || datagram_len(in.size() - 1) > kMaxDatagram) return;
  auto type = static_cast<PacketType>(in[0] % kMaxPacketType + 1);
  Bytes plain = in.subspan(1);
  std::vector<uint8_t> d(datagram_len(plain.size()));
  Header h{type, 1, kSealSender, 1, 0};
  if (encode_header(h, d) != kHeaderLen) fail("header did not encode");
  std::copy(plain.begin(), plain.end(), d.begin() + kHeaderLen);
  Result<size_t> n = sealer().seal(d, plain.size());
  if (!n || *n != d.size()) fail("seal failed");
  Header got;
  if (decode_header(d, &got) != Drop::none || got.type != type) fail("sealed header did not decode");
  if (opener().open(got, d) != Drop::none) fail("a sealed datagram did not open");
  Bytes opened = body_of(std::span<const uint8_t>(d));
  if (!std::equal(opened.begin(), opened.end(), plain.begin(), plain.end()))
    fail("opened body differs from the sealed plaintext");
  body(static_cast<uint8_t>(type), opened);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > kMaxDatagram) return 0;
  uint8_t sel = data[0];
  Bytes rest(data + 1, size - 1);
  if (sel >= 1 && sel <= kMaxPacketType) {
    body(sel, rest);
  } else if (sel == kMaxPacketType + 1) {
    sealed(rest);
  } else if (sel < 16) {
    datagram(rest);
  } else {
    for (uint8_t t = 1; t <= kMaxPacketType; ++t) body(t, rest);
    datagram(rest);
  }
  return 0;
}

// Packet layer of the replication protocol (docs/PROTOCOL.md): the plaintext
// header and the body of every packet type, encoded into caller-provided
// buffers and decoded by bounded parsers that never read past their input.
//
// A datagram is header (kHeaderLen, the AEAD's AAD) + body + tag (kTagLen).
// This file knows layouts and field rules; sealing and opening are crypto.h.
// Decoders return a Drop reason (Drop::none on success) and fill an output
// struct the caller may reuse, so steady-state decoding does not allocate.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hash.h"
#include "manifest.h"

namespace shoal {

// --- layout constants (PROTOCOL.md sections 2, 3, 5) ----------------------
constexpr uint16_t kMagic = 0x4853;  // bytes 53 48: "SH"
constexpr uint8_t kWireVersion = 2;  // 2: WANTS carry heard (PROTOCOL.md 12)
constexpr size_t kHeaderLen = 28;
constexpr size_t kHeaderShareOff = 4;
constexpr size_t kHeaderSenderOff = 8;
constexpr size_t kHeaderEpochOff = 16;    // the nonce is header[16..28)
constexpr size_t kHeaderCounterOff = 20;
constexpr size_t kNonceLen = 12;
constexpr size_t kTagLen = 16;
constexpr size_t kMinDatagram = kHeaderLen + kTagLen;
constexpr size_t kMaxDatagram = 65507;    // largest IPv4 UDP payload
constexpr size_t kIpUdpOverhead = 28;     // IPv4 (20) + UDP (8)
constexpr size_t kMinMtu = 576;
constexpr size_t kMaxMtu = 9000;
constexpr size_t kDefaultMtu = 1500;
constexpr uint32_t kMaxObjectLen = 16u * 1024 * 1024;  // manifests; chunks are smaller
constexpr size_t kIdPrefixLen = 8;
constexpr size_t kMaxNodeNameLen = 64;
constexpr uint32_t kMinAnnounceMs = 1000;
constexpr uint32_t kMaxAnnounceMs = 3600 * 1000;
constexpr size_t kMaxListCount = 255;     // u8 count of ranges / entries
constexpr uint32_t kFlowMcastBit = 0x80000000u;
constexpr uint32_t kMaxFlowSeq = 0x7fffffffu;

constexpr size_t kAnnounceFixedLen = 33;
constexpr size_t kCatalogReqLen = 10;
constexpr size_t kCatalogFixedLen = 18;
constexpr size_t kCatalogEntryLen = 56;
constexpr size_t kWantFixedLen = 46;
constexpr size_t kDataFixedLen = 20;
constexpr size_t kParityFixedLen = 20;
constexpr size_t kHaveFixedLen = 38;
constexpr size_t kRangeLen = 8;
constexpr size_t kReportLen = 27;       // without the queue byte
constexpr size_t kReportQueueLen = 28;  // with it (to a kCapQueue sender)
constexpr size_t kPingLen = 8;

enum class PacketType : uint8_t {
  announce = 1,
  catalog_req = 2,
  catalog = 3,
  want = 4,
  data = 5,
  have = 6,
  report = 7,
  ping = 8,
  pong = 9,
  wants = 10,
  stream = 11,
  parity = 12,
};
constexpr uint8_t kMaxPacketType = 12;
// Stable lower-case name ("announce", ...), "unknown" for other values.
const char* packet_type_name(PacketType t);

// Why a datagram was dropped (PROTOCOL.md 3.2); names are metric labels.
enum class Drop : uint8_t {
  none = 0,
  oversize,       // truncated by the socket
  short_packet,   // "short": shorter than header + tag
  bad_magic,
  bad_version,
  unknown_type,
  malformed,      // header or body field out of range, wrong length
  unknown_share,
  self,           // our own sender_id
  stale_epoch,
  replay,
  auth,           // AEAD open failed
  rate_limited,
};
constexpr size_t kDropCount = 13;
// Stable name of a drop reason ("short", "bad_magic", ...); "none" for none.
const char* drop_name(Drop d);

// --- sizes -----------------------------------------------------------------
// Largest body a sender may seal at this MTU: mtu - 28 - 28 - 16.
// Needs kMinMtu <= mtu <= kMaxMtu (callers validate config first).
constexpr size_t max_body(size_t mtu) { return mtu - kIpUdpOverhead - kHeaderLen - kTagLen; }
// DATA payload per datagram: mtu - 92 (1408 at 1500).
constexpr size_t max_data_payload(size_t mtu) { return max_body(mtu) - kDataFixedLen; }
// How many WANT ranges / HAVE ranges / CATALOG entries fit one datagram.
size_t max_want_ranges(size_t mtu);
size_t max_have_ranges(size_t mtu);
size_t max_catalog_entries(size_t mtu);
// Datagram length for a body of n bytes (header + body + tag).
constexpr size_t datagram_len(size_t body) { return kHeaderLen + body + kTagLen; }

// --- header ----------------------------------------------------------------
struct Header {
  PacketType type = PacketType::announce;
  uint32_t share_id = 0;
  uint64_t sender_id = 0;  // never 0 on the wire
  uint32_t epoch = 0;      // never 0 on the wire
  uint64_t counter = 0;
};

// Writes the 28-byte header into out[0..28). Needs out.size() >= kHeaderLen.
// Returns kHeaderLen, or 0 if out is too small or sender_id/epoch is 0.
size_t encode_header(const Header& h, std::span<uint8_t> out);
// Parses the header of a whole datagram (header + body + tag). Checks length
// (short), magic, version, type, sender_id != 0 and epoch != 0 (malformed).
[[nodiscard]] Drop decode_header(std::span<const uint8_t> datagram, Header* out);
// The body bytes of a datagram that passed decode_header (between header and tag).
inline std::span<uint8_t> body_of(std::span<uint8_t> d) {
  return d.subspan(kHeaderLen, d.size() - kHeaderLen - kTagLen);
}
inline std::span<const uint8_t> body_of(std::span<const uint8_t> d) {
  return d.subspan(kHeaderLen, d.size() - kHeaderLen - kTagLen);
}

// --- bodies ------------------------------------------------------------------
// Every encode_<type> writes the body into `out` and returns its length, or 0
// if it does not fit or a field breaks a rule a receiver checks (so we never
// send what peers would drop). Every decode_<type> parses exactly one body
// (no trailing bytes), checks every field rule of PROTOCOL.md section 5, and
// returns Drop::none or Drop::malformed; on failure *out is unspecified.

enum AnnounceCaps : uint16_t {
  kCapMcast = 1u << 0,    // receives the multicast group
  kCapSend = 1u << 1,     // publishes local changes
  kCapRecv = 1u << 2,     // accepts remote changes
  kCapLeaving = 1u << 3,  // last announce before shutdown
  kCapClock = 1u << 4,    // takes PONGs carrying the responder's wall clock (Pong::wall_us)
  kCapParity = 1u << 5,   // takes PARITY (repairs by parity fragments)
  kCapQueue = 1u << 6,    // takes REPORTs with the reporter's socket queue (5.7)
};

struct Announce {
  uint16_t port = 0;          // 1..65535
  uint16_t caps = 0;          // AnnounceCaps; unknown bits ignored
  uint32_t interval_ms = 0;   // kMinAnnounceMs..kMaxAnnounceMs
  uint32_t peers = 0;         // active peers known, self included
  uint32_t grtt_us = 0;       // 0 = not measured yet
  uint64_t catalog_head = 0;
  uint64_t catalog_digest = 0;
  std::string name;           // 1..64 bytes, no control bytes
};
size_t encode_announce(const Announce& a, std::span<uint8_t> out);
[[nodiscard]] Drop decode_announce(std::span<const uint8_t> body, Announce* out);

struct CatalogReq {
  uint64_t after_seq = 0;
  uint16_t max_entries = 0;  // >= 1
};
size_t encode_catalog_req(const CatalogReq& r, std::span<uint8_t> out);
[[nodiscard]] Drop decode_catalog_req(std::span<const uint8_t> body, CatalogReq* out);

enum CatalogFlags : uint8_t {
  kCatalogPush = 1u << 0,  // unsolicited multicast of new local versions
  kCatalogLast = 1u << 1,  // last packet of a reply
};

struct CatalogItem {
  uint64_t seq = 0;
  Hash manifest{};
  uint64_t file_size = 0;
  uint32_t manifest_len = 0;  // 1..kMaxObjectLen
  uint32_t flags = 0;         // ManifestFlags
  bool operator==(const CatalogItem&) const = default;
};

struct Catalog {
  uint64_t after_seq = 0;  // < first entry's seq
  uint64_t head = 0;       // >= last entry's seq
  uint8_t flags = 0;       // CatalogFlags
  std::vector<CatalogItem> entries;  // <= 255, seq strictly increasing; empty only with kCatalogLast
};
size_t encode_catalog(const Catalog& c, std::span<uint8_t> out);
[[nodiscard]] Drop decode_catalog(std::span<const uint8_t> body, Catalog* out);

// A byte range of an object (WANT) or an index range of chunks (HAVE).
struct Range {
  uint32_t start = 0;  // byte offset (WANT) or first chunk index (HAVE)
  uint32_t len = 0;    // >= 1
  bool operator==(const Range&) const = default;
};

enum WantFlags : uint8_t {
  kWantMore = 1u << 0,      // more bytes missing than the ranges list
  kWantManifest = 1u << 1,  // the object is a manifest
};

struct Want {
  Hash id{};
  uint32_t object_len = 0;  // 1..kMaxObjectLen
  uint64_t target = 0;      // provider's sender_id; 0 = the unicast recipient
  uint8_t flags = 0;        // WantFlags
  std::vector<Range> ranges;  // empty = whole object; sorted, disjoint, within object_len
  uint32_t heard = 0;       // from the WANTS that carried it (WANT: 0)
};
size_t encode_want(const Want& w, std::span<uint8_t> out);
[[nodiscard]] Drop decode_want(std::span<const uint8_t> body, Want* out);

// WANTS (10): several WANTs to one provider in one datagram, so a receiver's
// requests and NACKs for many objects cost one packet (PROTOCOL.md 5.9).
// Body: target u64, heard u32, count u8 (1..255), then per entry: object_id
// 32, object_len u32, flags u8 (WantFlags), n u8, n x (offset u32, len u32).
constexpr size_t kWantsFixedLen = 13;
constexpr size_t kWantsEntryLen = 38;
// heard: kHeardValid | the highest multicast flow seq the asker has read
// from the target, or 0 when it has read none (lets the target tell a
// request that crossed its DATA from a loss, PROTOCOL.md 8.2).
constexpr uint32_t kHeardValid = 0x80000000u;
struct Wants {
  uint64_t target = 0;
  uint32_t heard = 0;
  std::vector<Want> items;  // each item's own target and heard are ignored
};
// Bytes an item takes in a WANTS body.
constexpr size_t wants_item_len(const Want& w) { return kWantsEntryLen + w.ranges.size() * kRangeLen; }
size_t encode_wants(const Wants& w, std::span<uint8_t> out);
[[nodiscard]] Drop decode_wants(std::span<const uint8_t> body, Wants* out);

using IdPrefix = std::array<uint8_t, kIdPrefixLen>;
// First 8 bytes of an object id, as DATA carries it.
IdPrefix id_prefix(const Hash& id);

struct Data {
  IdPrefix prefix{};
  uint32_t object_len = 0;  // 1..kMaxObjectLen
  uint32_t offset = 0;      // offset + payload.size() <= object_len
  bool mcast = false;       // multicast flow (else the receiver's unicast flow)
  uint32_t flow_seq = 0;    // <= kMaxFlowSeq
  std::span<const uint8_t> payload;  // not owned: the caller's chunk or the received datagram
};
// Writes only the 20 fixed bytes, for sealing the payload straight from the
// object's memory (Sealer::seal's `extra`). Checks the whole packet's rules
// with payload.size() as the payload length. Returns kDataFixedLen or 0.
size_t encode_data_fields(const Data& d, std::span<uint8_t> out);
// Fixed fields then a copy of the payload.
size_t encode_data(const Data& d, std::span<uint8_t> out);
// out->payload points into `body` (no copy).
[[nodiscard]] Drop decode_data(std::span<const uint8_t> body, Data* out);

// One parity fragment of an object (fec.h): the object cut in cells of
// `cell` bytes, fragment `index` of them. Repairs any one lost cell.
struct Parity {
  IdPrefix prefix{};
  uint32_t object_len = 0;  // 1..kMaxObjectLen
  bool mcast = false;
  uint32_t flow_seq = 0;    // the flow's seq, as DATA's (it counts in the flow)
  uint16_t cell = 0;        // >= 1; the object has parity_cells(object_len, cell) <= kMaxParityCells cells
  uint8_t index = 0;        // < parity_indexes(cells)
  std::span<const uint8_t> payload;  // exactly `cell` bytes; not owned
};
// The 20 fixed bytes only (the payload is sealed from the caller's buffer);
// checks the whole packet with payload.size(). Returns kParityFixedLen or 0.
size_t encode_parity_fields(const Parity& p, std::span<uint8_t> out);
// Fixed fields then a copy of the payload.
size_t encode_parity(const Parity& p, std::span<uint8_t> out);
// out->payload points into `body` (no copy).
[[nodiscard]] Drop decode_parity(std::span<const uint8_t> body, Parity* out);

enum HaveFlags : uint8_t {
  kHaveComplete = 1u << 0,  // the manifest and every chunk
};

struct Have {
  Hash manifest{};
  uint32_t chunk_count = 0;
  uint8_t flags = 0;          // HaveFlags
  std::vector<Range> ranges;  // chunk index ranges; empty iff kHaveComplete
};
size_t encode_have(const Have& h, std::span<uint8_t> out);
[[nodiscard]] Drop decode_have(std::span<const uint8_t> body, Have* out);

enum class Flow : uint8_t { multicast = 0, unicast = 1 };

struct Report {
  uint64_t highest_counter = 0;
  uint32_t sender_epoch = 0;
  uint32_t highest_seq = 0;  // <= kMaxFlowSeq
  uint32_t received = 0;
  uint32_t lost = 0;
  uint16_t interval_ms = 0;  // >= 1
  Flow flow = Flow::multicast;
  // How full the reporter's receive socket for the flow got in the interval,
  // percent of its buffer (0..100); sent only if has_queue.
  bool has_queue = false;
  uint8_t queue_pct = 0;
};
size_t encode_report(const Report& r, std::span<uint8_t> out);
[[nodiscard]] Drop decode_report(std::span<const uint8_t> body, Report* out);

// PING and PONG share one body: an 8-byte token (PONG echoes PING's).
struct Ping {
  uint64_t token = 0;
};
size_t encode_ping(const Ping& p, std::span<uint8_t> out);
[[nodiscard]] Drop decode_ping(std::span<const uint8_t> body, Ping* out);

// PONG: the PING's token and, only to a pinger that announced kCapClock
// (older nodes drop a longer body), the responder's wall clock when it
// answered, for clock-offset checks (PROTOCOL.md 5.8).
constexpr size_t kPongClockLen = 16;
struct Pong {
  uint64_t token = 0;
  uint64_t wall_us = 0;  // Unix time in microseconds; 0: not carried (8-byte body)
};
// 8 bytes when wall_us is 0, else 16.
size_t encode_pong(const Pong& p, std::span<uint8_t> out);
// Accepts the 8-byte (wall_us = 0) and the 16-byte body; a 16-byte body with
// wall_us 0 is malformed.
[[nodiscard]] Drop decode_pong(std::span<const uint8_t> body, Pong* out);

// STREAM (11): the origin of a large file lists its chunks while it is
// still cutting and hashing it, so receivers can take the file's DATA before
// the version exists (PROTOCOL.md 5.10, 8.7). Hints only: the version's
// manifest decides what the file is.
// Body: stream u64 (!= 0), file_size u64 (>= 1), first_offset u64,
// first_index u32, flags u8 (0), count u8, path_len u16 (1..kMaxStreamPath),
// path, then count x (chunk id 32, len u32 in [1, 256 KiB]); the chunks lie
// back to back from first_offset and end within file_size.
constexpr size_t kStreamFixedLen = 32;
constexpr size_t kStreamEntryLen = 36;
constexpr size_t kMaxStreamPath = 1024;
constexpr uint32_t kMaxStreamChunkLen = static_cast<uint32_t>(kMaxChunkLen);  // as in a manifest
struct StreamChunk {
  Hash id{};
  uint32_t len = 0;
  bool operator==(const StreamChunk&) const = default;
};
struct Stream {
  uint64_t stream = 0;
  uint64_t file_size = 0;
  uint64_t first_offset = 0;
  uint32_t first_index = 0;
  std::string path;
  std::vector<StreamChunk> chunks;  // <= 255
};
// Entries that fit in a STREAM body with a path of `path_len` bytes (0: none).
size_t max_stream_entries(size_t mtu, size_t path_len);
size_t encode_stream(const Stream& s, std::span<uint8_t> out);
[[nodiscard]] Drop decode_stream(std::span<const uint8_t> body, Stream* out);

}  // namespace shoal

#include "wire.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "fec.h"
#include "reader.h"

namespace shoal {

namespace {

// Writes little-endian fields into a buffer whose size the caller checked
// beforehand, so the hot path (DATA) needs no per-field bounds test.
class Put {
 public:
  explicit Put(uint8_t* p) : p_(p) {}
  void u8(uint8_t v) { *p_++ = v; }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void bytes(const void* src, size_t n) {
    if (n == 0) return;
    std::memcpy(p_, src, n);
    p_ += n;
  }

 private:
  void le(uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) *p_++ = static_cast<uint8_t>(v >> (8 * i));
  }
  uint8_t* p_;
};

std::string_view as_view(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

bool valid_object_len(uint32_t len) { return len >= 1 && len <= kMaxObjectLen; }

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > kMaxNodeNameLen) return false;
  for (char c : n) {
    auto b = static_cast<uint8_t>(c);
    if (b < 0x20 || b == 0x7f) return false;
  }
  return true;
}

// Ranges must be non-empty, sorted, disjoint (touching is fine) and end
// within `limit`. 64-bit sums: start + len cannot wrap.
bool valid_ranges(const std::vector<Range>& rs, uint64_t limit) {
  uint64_t prev_end = 0;
  for (const Range& r : rs) {
    uint64_t end = uint64_t{r.start} + r.len;
    if (r.len == 0 || r.start < prev_end || end > limit) return false;
    prev_end = end;
  }
  return true;
}

bool read_ranges(ByteReader& rd, size_t count, uint64_t limit, std::vector<Range>* out) {
  out->clear();
  if (count * kRangeLen != rd.remaining()) return false;
  out->reserve(count);
  for (size_t i = 0; i < count; i++) {
    Range r;
    r.start = rd.u32();
    r.len = rd.u32();
    out->push_back(r);
  }
  return rd.done() && valid_ranges(*out, limit);
}

void put_ranges(Put& w, const std::vector<Range>& rs) {
  for (const Range& r : rs) {
    w.u32(r.start);
    w.u32(r.len);
  }
}

size_t list_fit(size_t mtu, size_t fixed, size_t each) {
  size_t n = (max_body(mtu) - fixed) / each;
  return n < kMaxListCount ? n : kMaxListCount;
}

}  // namespace

const char* packet_type_name(PacketType t) {
  switch (t) {
    case PacketType::announce: return "announce";
    case PacketType::catalog_req: return "catalog_req";
    case PacketType::catalog: return "catalog";
    case PacketType::want: return "want";
    case PacketType::data: return "data";
    case PacketType::have: return "have";
    case PacketType::report: return "report";
    case PacketType::ping: return "ping";
    case PacketType::pong: return "pong";
    case PacketType::wants: return "wants";
    case PacketType::stream: return "stream";
    case PacketType::parity: return "parity";
  }
  return "unknown";
}

const char* drop_name(Drop d) {
  switch (d) {
    case Drop::none: return "none";
    case Drop::oversize: return "oversize";
    case Drop::short_packet: return "short";
    case Drop::bad_magic: return "bad_magic";
    case Drop::bad_version: return "bad_version";
    case Drop::unknown_type: return "unknown_type";
    case Drop::malformed: return "malformed";
    case Drop::unknown_share: return "unknown_share";
    case Drop::self: return "self";
    case Drop::stale_epoch: return "stale_epoch";
    case Drop::replay: return "replay";
    case Drop::auth: return "auth";
    case Drop::rate_limited: return "rate_limited";
  }
  return "unknown";
}

size_t max_want_ranges(size_t mtu) { return list_fit(mtu, kWantFixedLen, kRangeLen); }
size_t max_have_ranges(size_t mtu) { return list_fit(mtu, kHaveFixedLen, kRangeLen); }
size_t max_catalog_entries(size_t mtu) {
  return list_fit(mtu, kCatalogFixedLen, kCatalogEntryLen);
}

// --- header ------------------------------------------------------------------

size_t encode_header(const Header& h, std::span<uint8_t> out) {
  if (out.size() < kHeaderLen || h.sender_id == 0 || h.epoch == 0) return 0;
  Put w(out.data());
  w.u16(kMagic);
  w.u8(kWireVersion);
  w.u8(static_cast<uint8_t>(h.type));
  w.u32(h.share_id);
  w.u64(h.sender_id);
  w.u32(h.epoch);
  w.u64(h.counter);
  return kHeaderLen;
}

Drop decode_header(std::span<const uint8_t> datagram, Header* out) {
  if (datagram.size() < kMinDatagram) return Drop::short_packet;
  ByteReader rd(as_view(datagram.first(kHeaderLen)));
  if (rd.u16() != kMagic) return Drop::bad_magic;
  if (rd.u8() != kWireVersion) return Drop::bad_version;
  uint8_t type = rd.u8();
  if (type == 0 || type > kMaxPacketType) return Drop::unknown_type;
  out->type = static_cast<PacketType>(type);
  out->share_id = rd.u32();
  out->sender_id = rd.u64();
  out->epoch = rd.u32();
  out->counter = rd.u64();
  if (!rd.done() || out->sender_id == 0 || out->epoch == 0) return Drop::malformed;
  return Drop::none;
}

// --- ANNOUNCE ------------------------------------------------------------------

size_t encode_announce(const Announce& a, std::span<uint8_t> out) {
  size_t len = kAnnounceFixedLen + a.name.size();
  if (len > out.size() || a.port == 0 || !valid_name(a.name) ||
      a.interval_ms < kMinAnnounceMs || a.interval_ms > kMaxAnnounceMs)
    return 0;
  Put w(out.data());
  w.u16(a.port);
  w.u16(a.caps);
  w.u32(a.interval_ms);
  w.u32(a.peers);
  w.u32(a.grtt_us);
  w.u64(a.catalog_head);
  w.u64(a.catalog_digest);
  w.u8(static_cast<uint8_t>(a.name.size()));
  w.bytes(a.name.data(), a.name.size());
  return len;
}

Drop decode_announce(std::span<const uint8_t> body, Announce* out) {
  ByteReader rd(as_view(body));
  out->port = rd.u16();
  out->caps = rd.u16();
  out->interval_ms = rd.u32();
  out->peers = rd.u32();
  out->grtt_us = rd.u32();
  out->catalog_head = rd.u64();
  out->catalog_digest = rd.u64();
  size_t n = rd.u8();
  std::string_view name = rd.bytes(n);
  if (!rd.done() || out->port == 0 || !valid_name(name) ||
      out->interval_ms < kMinAnnounceMs || out->interval_ms > kMaxAnnounceMs)
    return Drop::malformed;
  out->name.assign(name);
  return Drop::none;
}

// --- CATALOG_REQ / CATALOG -------------------------------------------------------

size_t encode_catalog_req(const CatalogReq& r, std::span<uint8_t> out) {
  if (out.size() < kCatalogReqLen || r.max_entries == 0) return 0;
  Put w(out.data());
  w.u64(r.after_seq);
  w.u16(r.max_entries);
  return kCatalogReqLen;
}

Drop decode_catalog_req(std::span<const uint8_t> body, CatalogReq* out) {
  ByteReader rd(as_view(body));
  out->after_seq = rd.u64();
  out->max_entries = rd.u16();
  if (!rd.done() || out->max_entries == 0) return Drop::malformed;
  return Drop::none;
}

namespace {

// Entry rules shared by encoder and decoder: strictly increasing seqs after
// after_seq, at most head, manifest lengths in range.
bool valid_catalog(const Catalog& c) {
  if (c.entries.size() > kMaxListCount) return false;
  // An empty reply may have after_seq > head: the requester's cursor is
  // ahead of a responder that lost its database (PROTOCOL.md 7.1).
  if (c.entries.empty()) return (c.flags & kCatalogLast) != 0;
  uint64_t prev = c.after_seq;
  for (const CatalogItem& e : c.entries) {
    if (e.seq <= prev || !valid_object_len(e.manifest_len)) return false;
    prev = e.seq;
  }
  return prev <= c.head;
}

}  // namespace

size_t encode_catalog(const Catalog& c, std::span<uint8_t> out) {
  size_t len = kCatalogFixedLen + c.entries.size() * kCatalogEntryLen;
  if (len > out.size() || !valid_catalog(c)) return 0;
  Put w(out.data());
  w.u64(c.after_seq);
  w.u64(c.head);
  w.u8(c.flags);
  w.u8(static_cast<uint8_t>(c.entries.size()));
  for (const CatalogItem& e : c.entries) {
    w.u64(e.seq);
    w.bytes(e.manifest.data(), e.manifest.size());
    w.u64(e.file_size);
    w.u32(e.manifest_len);
    w.u32(e.flags);
  }
  return len;
}

Drop decode_catalog(std::span<const uint8_t> body, Catalog* out) {
  ByteReader rd(as_view(body));
  out->after_seq = rd.u64();
  out->head = rd.u64();
  out->flags = rd.u8();
  size_t n = rd.u8();
  out->entries.clear();
  if (!rd.ok() || rd.remaining() != n * kCatalogEntryLen) return Drop::malformed;
  out->entries.resize(n);
  for (CatalogItem& e : out->entries) {
    e.seq = rd.u64();
    rd.copy(e.manifest.data(), e.manifest.size());
    e.file_size = rd.u64();
    e.manifest_len = rd.u32();
    e.flags = rd.u32();
  }
  if (!rd.done() || !valid_catalog(*out)) return Drop::malformed;
  return Drop::none;
}

// --- WANT ------------------------------------------------------------------------

size_t encode_want(const Want& wt, std::span<uint8_t> out) {
  size_t len = kWantFixedLen + wt.ranges.size() * kRangeLen;
  if (len > out.size() || wt.ranges.size() > kMaxListCount || !valid_object_len(wt.object_len) ||
      !valid_ranges(wt.ranges, wt.object_len))
    return 0;
  Put w(out.data());
  w.bytes(wt.id.data(), wt.id.size());
  w.u32(wt.object_len);
  w.u64(wt.target);
  w.u8(wt.flags);
  w.u8(static_cast<uint8_t>(wt.ranges.size()));
  put_ranges(w, wt.ranges);
  return len;
}

Drop decode_want(std::span<const uint8_t> body, Want* out) {
  ByteReader rd(as_view(body));
  rd.copy(out->id.data(), out->id.size());
  out->object_len = rd.u32();
  out->target = rd.u64();
  out->flags = rd.u8();
  size_t n = rd.u8();
  if (!rd.ok() || !valid_object_len(out->object_len) ||
      !read_ranges(rd, n, out->object_len, &out->ranges))
    return Drop::malformed;
  return Drop::none;
}

// --- WANTS -------------------------------------------------------------------------

size_t encode_wants(const Wants& ws, std::span<uint8_t> out) {
  if (ws.items.empty() || ws.items.size() > kMaxListCount) return 0;
  size_t len = kWantsFixedLen;
  for (const Want& wt : ws.items) {
    if (wt.ranges.size() > kMaxListCount || !valid_object_len(wt.object_len) ||
        !valid_ranges(wt.ranges, wt.object_len))
      return 0;
    len += wants_item_len(wt);
  }
  if (len > out.size()) return 0;
  Put w(out.data());
  w.u64(ws.target);
  w.u32(ws.heard);
  w.u8(static_cast<uint8_t>(ws.items.size()));
  for (const Want& wt : ws.items) {
    w.bytes(wt.id.data(), wt.id.size());
    w.u32(wt.object_len);
    w.u8(wt.flags);
    w.u8(static_cast<uint8_t>(wt.ranges.size()));
    put_ranges(w, wt.ranges);
  }
  return len;
}

Drop decode_wants(std::span<const uint8_t> body, Wants* out) {
  ByteReader rd(as_view(body));
  out->target = rd.u64();
  out->heard = rd.u32();
  size_t n = rd.u8();
  if (!rd.ok() || n == 0 || (out->heard != 0 && (out->heard & kHeardValid) == 0) || rd.remaining() < n * kWantsEntryLen) return Drop::malformed;
  out->items.resize(n);
  for (Want& wt : out->items) {
    rd.copy(wt.id.data(), wt.id.size());
    wt.object_len = rd.u32();
    wt.flags = rd.u8();
    wt.target = out->target;
    wt.heard = out->heard;
    size_t k = rd.u8();
    if (!rd.ok() || !valid_object_len(wt.object_len) || rd.remaining() < k * kRangeLen)
      return Drop::malformed;
    wt.ranges.resize(k);
    for (Range& r : wt.ranges) {
      r.start = rd.u32();
      r.len = rd.u32();
    }
    if (!valid_ranges(wt.ranges, wt.object_len)) return Drop::malformed;
  }
  if (!rd.done()) return Drop::malformed;
  return Drop::none;
}

// --- DATA ------------------------------------------------------------------------

IdPrefix id_prefix(const Hash& id) {
  IdPrefix p;
  std::memcpy(p.data(), id.data(), p.size());
  return p;
}

namespace {

bool valid_data(const Data& d) {
  return valid_object_len(d.object_len) && !d.payload.empty() && d.flow_seq <= kMaxFlowSeq &&
         uint64_t{d.offset} + d.payload.size() <= d.object_len;
}

}  // namespace

size_t encode_data_fields(const Data& d, std::span<uint8_t> out) {
  if (out.size() < kDataFixedLen || !valid_data(d)) return 0;
  Put w(out.data());
  w.bytes(d.prefix.data(), d.prefix.size());
  w.u32(d.object_len);
  w.u32(d.offset);
  w.u32(d.flow_seq | (d.mcast ? kFlowMcastBit : 0u));
  return kDataFixedLen;
}

size_t encode_data(const Data& d, std::span<uint8_t> out) {
  if (out.size() < kDataFixedLen + d.payload.size()) return 0;
  size_t n = encode_data_fields(d, out);
  if (n == 0) return 0;
  std::memcpy(out.data() + n, d.payload.data(), d.payload.size());
  return n + d.payload.size();
}

Drop decode_data(std::span<const uint8_t> body, Data* out) {
  if (body.size() < kDataFixedLen) return Drop::malformed;
  ByteReader rd(as_view(body.first(kDataFixedLen)));
  rd.copy(out->prefix.data(), out->prefix.size());
  out->object_len = rd.u32();
  out->offset = rd.u32();
  uint32_t flow = rd.u32();
  out->mcast = (flow & kFlowMcastBit) != 0;
  out->flow_seq = flow & kMaxFlowSeq;
  out->payload = body.subspan(kDataFixedLen);
  return valid_data(*out) ? Drop::none : Drop::malformed;
}

// --- PARITY ----------------------------------------------------------------------

namespace {

bool valid_parity(const Parity& p) {
  if (!valid_object_len(p.object_len) || p.cell == 0 || p.flow_seq > kMaxFlowSeq ||
      p.payload.size() != p.cell)
    return false;
  return p.index < parity_indexes(parity_cells(p.object_len, p.cell));
}

}  // namespace

size_t encode_parity_fields(const Parity& p, std::span<uint8_t> out) {
  if (out.size() < kParityFixedLen || !valid_parity(p)) return 0;
  Put w(out.data());
  w.bytes(p.prefix.data(), p.prefix.size());
  w.u32(p.object_len);
  w.u32(p.flow_seq | (p.mcast ? kFlowMcastBit : 0u));
  w.u16(p.cell);
  w.u8(p.index);
  w.u8(0);
  return kParityFixedLen;
}

size_t encode_parity(const Parity& p, std::span<uint8_t> out) {
  if (out.size() < kParityFixedLen + p.payload.size()) return 0;
  size_t n = encode_parity_fields(p, out);
  if (n == 0) return 0;
  std::memcpy(out.data() + n, p.payload.data(), p.payload.size());
  return n + p.payload.size();
}

Drop decode_parity(std::span<const uint8_t> body, Parity* out) {
  if (body.size() < kParityFixedLen) return Drop::malformed;
  ByteReader rd(as_view(body.first(kParityFixedLen)));
  rd.copy(out->prefix.data(), out->prefix.size());
  out->object_len = rd.u32();
  uint32_t flow = rd.u32();
  out->mcast = (flow & kFlowMcastBit) != 0;
  out->flow_seq = flow & kMaxFlowSeq;
  out->cell = rd.u16();
  out->index = rd.u8();
  uint8_t flags = rd.u8();
  out->payload = body.subspan(kParityFixedLen);
  return flags == 0 && valid_parity(*out) ? Drop::none : Drop::malformed;
}

// --- HAVE ------------------------------------------------------------------------

namespace {

bool valid_have(const Have& h) {
  bool complete = (h.flags & kHaveComplete) != 0;
  if (h.ranges.size() > kMaxListCount || complete != h.ranges.empty()) return false;
  return valid_ranges(h.ranges, h.chunk_count);
}

}  // namespace

size_t encode_have(const Have& h, std::span<uint8_t> out) {
  size_t len = kHaveFixedLen + h.ranges.size() * kRangeLen;
  if (len > out.size() || !valid_have(h)) return 0;
  Put w(out.data());
  w.bytes(h.manifest.data(), h.manifest.size());
  w.u32(h.chunk_count);
  w.u8(h.flags);
  w.u8(static_cast<uint8_t>(h.ranges.size()));
  put_ranges(w, h.ranges);
  return len;
}

Drop decode_have(std::span<const uint8_t> body, Have* out) {
  ByteReader rd(as_view(body));
  rd.copy(out->manifest.data(), out->manifest.size());
  out->chunk_count = rd.u32();
  out->flags = rd.u8();
  size_t n = rd.u8();
  if (!rd.ok() || !read_ranges(rd, n, out->chunk_count, &out->ranges) || !valid_have(*out))
    return Drop::malformed;
  return Drop::none;
}

// --- REPORT, PING/PONG -------------------------------------------------------------

size_t encode_report(const Report& r, std::span<uint8_t> out) {
  if (out.size() < kReportLen || r.interval_ms == 0 || r.highest_seq > kMaxFlowSeq ||
      (r.flow != Flow::multicast && r.flow != Flow::unicast))
    return 0;
  Put w(out.data());
  w.u64(r.highest_counter);
  w.u32(r.sender_epoch);
  w.u32(r.highest_seq);
  w.u32(r.received);
  w.u32(r.lost);
  w.u16(r.interval_ms);
  w.u8(static_cast<uint8_t>(r.flow));
  if (!r.has_queue) return kReportLen;
  if (out.size() < kReportQueueLen) return 0;
  w.u8(std::min<uint8_t>(r.queue_pct, 100));
  return kReportQueueLen;
}

Drop decode_report(std::span<const uint8_t> body, Report* out) {
  ByteReader rd(as_view(body));
  out->highest_counter = rd.u64();
  out->sender_epoch = rd.u32();
  out->highest_seq = rd.u32();
  out->received = rd.u32();
  out->lost = rd.u32();
  out->interval_ms = rd.u16();
  uint8_t flow = rd.u8();
  out->has_queue = body.size() == kReportQueueLen;
  out->queue_pct = out->has_queue ? rd.u8() : 0;
  if (!rd.done() || out->interval_ms == 0 || out->highest_seq > kMaxFlowSeq || flow > 1 ||
      out->queue_pct > 100)
    return Drop::malformed;
  out->flow = static_cast<Flow>(flow);
  return Drop::none;
}

size_t encode_ping(const Ping& p, std::span<uint8_t> out) {
  if (out.size() < kPingLen) return 0;
  Put w(out.data());
  w.u64(p.token);
  return kPingLen;
}

Drop decode_ping(std::span<const uint8_t> body, Ping* out) {
  ByteReader rd(as_view(body));
  out->token = rd.u64();
  return rd.done() ? Drop::none : Drop::malformed;
}

size_t encode_pong(const Pong& p, std::span<uint8_t> out) {
  size_t len = p.wall_us == 0 ? kPingLen : kPongClockLen;
  if (out.size() < len) return 0;
  Put w(out.data());
  w.u64(p.token);
  if (p.wall_us != 0) w.u64(p.wall_us);
  return len;
}

Drop decode_pong(std::span<const uint8_t> body, Pong* out) {
  ByteReader rd(as_view(body));
  out->token = rd.u64();
  out->wall_us = body.size() == kPongClockLen ? rd.u64() : 0;
  if (!rd.done() || (body.size() == kPongClockLen && out->wall_us == 0)) return Drop::malformed;
  return Drop::none;
}

// --- STREAM ----------------------------------------------------------------------

namespace {
bool valid_stream(const Stream& s) {
  if (s.stream == 0 || s.file_size == 0 || s.path.empty() || s.path.size() > kMaxStreamPath ||
      s.chunks.size() > kMaxListCount || s.first_offset > s.file_size ||
      uint64_t{s.first_index} + s.chunks.size() > UINT32_MAX)
    return false;
  uint64_t end = s.first_offset;  // <= file_size, so file_size - end cannot wrap
  for (const StreamChunk& c : s.chunks) {
    // Compared against the room left, not as end + len <= file_size, which
    // wraps 64 bits for an offset near UINT64_MAX and would pass.
    if (c.len == 0 || c.len > kMaxStreamChunkLen || c.len > s.file_size - end) return false;
    end += c.len;
  }
  return true;
}
}  // namespace

size_t max_stream_entries(size_t mtu, size_t path_len) {
  size_t body = max_body(mtu);
  if (path_len == 0 || path_len > kMaxStreamPath || kStreamFixedLen + path_len > body) return 0;
  return std::min<size_t>((body - kStreamFixedLen - path_len) / kStreamEntryLen, kMaxListCount);
}

size_t encode_stream(const Stream& s, std::span<uint8_t> out) {
  size_t len = kStreamFixedLen + s.path.size() + s.chunks.size() * kStreamEntryLen;
  if (len > out.size() || !valid_stream(s)) return 0;
  Put w(out.data());
  w.u64(s.stream);
  w.u64(s.file_size);
  w.u64(s.first_offset);
  w.u32(s.first_index);
  w.u8(0);
  w.u8(static_cast<uint8_t>(s.chunks.size()));
  w.u16(static_cast<uint16_t>(s.path.size()));
  w.bytes(s.path.data(), s.path.size());
  for (const StreamChunk& c : s.chunks) {
    w.bytes(c.id.data(), c.id.size());
    w.u32(c.len);
  }
  return len;
}

Drop decode_stream(std::span<const uint8_t> body, Stream* out) {
  ByteReader rd(as_view(body));
  out->stream = rd.u64();
  out->file_size = rd.u64();
  out->first_offset = rd.u64();
  out->first_index = rd.u32();
  uint8_t flags = rd.u8();
  size_t n = rd.u8();
  size_t plen = rd.u16();
  std::string_view path = rd.bytes(plen);
  if (!rd.ok() || flags != 0 || rd.remaining() != n * kStreamEntryLen) return Drop::malformed;
  out->path.assign(path);
  out->chunks.resize(n);
  for (StreamChunk& c : out->chunks) {
    rd.copy(c.id.data(), c.id.size());
    c.len = rd.u32();
  }
  if (!rd.done() || !valid_stream(*out)) return Drop::malformed;
  return Drop::none;
}

}  // namespace shoal

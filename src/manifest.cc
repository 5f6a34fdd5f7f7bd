// Manifest encoding, version 1. All integers little-endian, no padding, every
// field fixed or length-prefixed, so each Manifest has exactly one encoding
// (its SHA-256 is the version id) and decode accepts only that encoding.
//
//   offset  size  field
//        0     4  magic "SHMF"
//        4     1  version = 1
//        5     4  flags u32 (ManifestFlags; unknown bits are refused)
//        9     8  size u64 (== sum of chunk lengths)
//       17     8  mtime_ns i64
//       25     4  mode u32 (permission bits, & ~07777 == 0)
//       29    32  parent: id of the version this one replaced (zeros: none)
//       61     1  origin length u8 (<= 64), then that many bytes
//        .     2  path length u16 (<= 4096), then that many bytes
//        .     4  chunk count u32
//        .  36*n  n x (32-byte SHA-256, u32 length in [1, kMaxChunkLen])
//
// The chunk count is checked against the bytes that are left before any
// memory is reserved, so a hostile count cannot make us allocate.
#include "manifest.h"

#include <string>

#include "reader.h"

namespace shoal {
namespace {

constexpr std::string_view kMagic = "SHMF";
constexpr uint8_t kVersion = 1;
constexpr size_t kFixedBytes = 4 + 1 + 4 + 8 + 8 + 4 + 32 + 1 + 2 + 4;
constexpr size_t kChunkRefBytes = 32 + 4;
constexpr std::string_view kReservedPrefix = ".shoal-";

bool control_byte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool valid_component(std::string_view c) {
  if (c.empty() || c == "." || c == ".." || c.size() > kMaxNameBytes) return false;
  if (c.starts_with(kReservedPrefix)) return false;
  for (char ch : c)
    if (control_byte(ch)) return false;
  return true;
}

bool valid_origin(std::string_view o) {
  if (o.size() > kMaxNodeName) return false;
  for (char ch : o) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

Status check_chunks(const Manifest& m) {
  if ((m.flags & kManifestDeleted) && !m.chunks.empty())
    return make_error(Errc::invalid, "manifest: tombstone with chunks");
  uint64_t sum = 0;
  for (const ChunkRef& c : m.chunks) {
    if (c.len == 0 || c.len > kMaxChunkLen)
      return make_error(Errc::invalid, "manifest: chunk length " + std::to_string(c.len));
    sum += c.len;  // cannot wrap: validate_manifest bounds the count first
    if (sum > m.size) break;
  }
  if (sum != m.size) return make_error(Errc::invalid, "manifest: size is not the sum of chunks");
  return {};
}

Error corrupt(const char* why) { return make_error(Errc::corrupt, std::string("manifest: ") + why); }

}  // namespace

bool valid_rel_path(std::string_view p) {
  if (p.empty() || p.size() > kMaxPathBytes) return false;
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    size_t end = slash == std::string_view::npos ? p.size() : slash;
    if (!valid_component(p.substr(start, end - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

Status validate_manifest(const Manifest& m) {
  if (m.flags & ~kManifestKnownFlags)
    return make_error(Errc::unsupported, "manifest: unknown flags " + std::to_string(m.flags));
  if (!valid_rel_path(m.path)) return make_error(Errc::invalid, "manifest: unsafe path");
  if (!valid_origin(m.origin)) return make_error(Errc::invalid, "manifest: bad origin name");
  if (m.mode & ~07777u) return make_error(Errc::invalid, "manifest: mode has non-permission bits");
  size_t max_chunks = (kMaxManifestBytes - kFixedBytes - m.origin.size() - m.path.size()) /
                      kChunkRefBytes;
  if (m.chunks.size() > max_chunks) return make_error(Errc::invalid, "manifest: too many chunks");
  return check_chunks(m);
}

std::string encode_manifest(const Manifest& m) {
  std::string out;
  out.reserve(kFixedBytes + m.origin.size() + m.path.size() + m.chunks.size() * kChunkRefBytes);
  ByteWriter w(out);
  w.bytes(kMagic);
  w.u8(kVersion);
  w.u32(m.flags);
  w.u64(m.size);
  w.i64(m.mtime_ns);
  w.u32(m.mode);
  w.bytes(m.parent.data(), m.parent.size());
  w.u8(static_cast<uint8_t>(m.origin.size()));
  w.bytes(m.origin);
  w.u16(static_cast<uint16_t>(m.path.size()));
  w.bytes(m.path);
  w.u32(static_cast<uint32_t>(m.chunks.size()));
  for (const ChunkRef& c : m.chunks) {
    w.bytes(c.hash.data(), c.hash.size());
    w.u32(c.len);
  }
  return out;
}

Result<Manifest> decode_manifest(std::string_view bytes) {
  if (bytes.size() > kMaxManifestBytes) return corrupt("too large");
  ByteReader r(bytes);
  if (r.bytes(kMagic.size()) != kMagic) return corrupt("bad magic");
  uint8_t version = r.u8();
  if (!r.ok()) return corrupt("truncated");
  if (version != kVersion)
    return make_error(Errc::unsupported, "manifest: version " + std::to_string(version));

  Manifest m;
  m.flags = r.u32();
  m.size = r.u64();
  m.mtime_ns = r.i64();
  m.mode = r.u32();
  r.copy(m.parent.data(), m.parent.size());
  m.origin = r.bytes(r.u8());
  m.path = r.bytes(r.u16());
  uint32_t count = r.u32();
  if (!r.ok()) return corrupt("truncated");
  if (r.remaining() != uint64_t{count} * kChunkRefBytes)
    return corrupt("chunk count does not match length");

  m.chunks.resize(count);
  for (ChunkRef& c : m.chunks) {
    r.copy(c.hash.data(), c.hash.size());
    c.len = r.u32();
  }
  if (!r.done()) return corrupt("truncated");
  if (Status st = validate_manifest(m); !st) return st.error();
  return m;
}

Hash manifest_id(std::string_view encoded) { return sha256(encoded.data(), encoded.size()); }

}  // namespace shoal

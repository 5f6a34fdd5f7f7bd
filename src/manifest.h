// A file version's manifest ("chunk 0" of a file): its metadata and ordered
// chunk list. Encoded deterministically; the SHA-256 of the encoding names the
// version. The decoder is bounded and validates everything, since manifests
// arrive from peers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hash.h"
#include "result.h"

namespace shoal {

constexpr size_t kMaxChunkLen = 256 * 1024;          // a longer chunk is refused
constexpr size_t kMaxManifestBytes = 16 * 1024 * 1024;  // encoded manifest bound
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNameBytes = 255;                 // one path component
constexpr size_t kMaxNodeName = 64;

struct ChunkRef {
  Hash hash{};
  uint32_t len = 0;
  bool operator==(const ChunkRef&) const = default;
};

enum ManifestFlags : uint32_t {
  kManifestDeleted = 1u,  // tombstone: the file was deleted at its origin; has
                          // no chunks (so size 0)
};
constexpr uint32_t kManifestKnownFlags = kManifestDeleted;

struct Manifest {
  std::string path;        // relative to the share root, '/'-separated, validated
  uint64_t size = 0;       // sum of chunk lengths
  int64_t mtime_ns = 0;    // modification time, ns since the epoch
  uint32_t mode = 0644;    // permission bits only (07777 mask)
  uint32_t flags = 0;      // ManifestFlags
  Hash parent{};           // id of the version this one replaced; zeros: none.
                           // Tells an update (parent == the version a box has)
                           // from a concurrent change (a conflict).
  std::string origin;      // node name that made this version (<= 64 bytes)
  std::vector<ChunkRef> chunks;
  bool operator==(const Manifest&) const = default;
};

// True if `p` is a safe relative path: non-empty, <= 4096 bytes, no leading
// '/', no empty, "." or ".." component, components <= 255 bytes, no NUL or
// control bytes (< 0x20, 0x7f), and no component starting with ".shoal-".
bool valid_rel_path(std::string_view p);

// Checks everything decode_manifest checks on the content: path, origin
// (<= kMaxNodeName printable ASCII bytes), mode (07777 only), known flags, a
// tombstone has no chunks, each chunk length in [1, kMaxChunkLen], size == sum
// of lengths, encoded size <= kMaxManifestBytes. Errc::invalid with a reason,
// or Errc::unsupported for unknown flags.
Status validate_manifest(const Manifest& m);

// Deterministic encoding. Needs a manifest that passes validate_manifest
// (otherwise the bytes are unspecified and will not decode).
std::string encode_manifest(const Manifest& m);

// Decodes and validates (version, bounds, path, size == sum of lengths, each
// chunk length in [1, kMaxChunkLen]). Never reads past `bytes` and allocates
// at most about bytes.size(). Errors: Errc::unsupported (unknown version or
// flags), Errc::corrupt (malformed encoding), Errc::invalid (well formed but
// fails validate_manifest). On success encode_manifest(result) == bytes.
Result<Manifest> decode_manifest(std::string_view bytes);

// SHA-256 of the encoding: the version's identity.
Hash manifest_id(std::string_view encoded);

}  // namespace shoal

// Content-defined chunking (FastCDC: gear hash with normalized chunking).
// Boundaries depend only on nearby content, so inserting bytes in a file
// changes only the chunks around the insertion.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shoal {

struct ChunkParams {
  uint32_t min_size = 16 * 1024;
  uint32_t avg_size = 64 * 1024;   // power of two
  uint32_t max_size = 256 * 1024;
};

// Returns the length of the chunk that starts at p, given n available bytes.
// Needs: p points at a chunk start. If n < params.max_size the caller must
// pass all remaining bytes of the file (end of file); otherwise only the first
// max_size bytes are looked at. Guarantees: result in [1, min(n, max_size)];
// result >= min_size unless n < min_size; 0 only if n == 0. Pure function,
// thread-safe. Boundaries are a stable format: the same bytes and params cut
// at the same places on every box and release.
size_t chunk_cut(const uint8_t* p, size_t n, const ChunkParams& params = {});

}  // namespace shoal

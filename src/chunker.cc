// FastCDC (Xia et al., USENIX ATC 2016): a gear rolling hash
// h = (h << 1) + G[byte], a cut where the masked hash bits are all zero.
//
// Choices, all part of the on-the-wire format (boundaries must match across
// boxes and releases, so none of this may change without a format version):
// - G is 256 words from splitmix64 seeded with kGearSeed, built at compile time.
// - The mask tests the TOP bits of h. After a left shift, bit k of h depends
//   only on the last k+1 bytes, so high bits see a 64-byte window while low
//   bits would see just a few bytes (FastCDC spreads its mask bits for the same
//   reason; the top bits are the simplest way to get it).
// - Normalized chunking, level 2: before the normal point a cut needs
//   log2(avg)+2 zero bits (4x rarer), after it log2(avg)-2 (4x likelier). This
//   squeezes lengths towards avg: few tiny chunks (less per-chunk overhead in
//   the store and on the wire) and almost none forced at max_size (forced cuts
//   do not resync after an edit). Level 1 leaves a wide spread (sd ~39 KiB and
//   some forced cuts at 256 KiB in a simulation); level 3 is tighter still,
//   but the paper's dedup ratio falls as the level rises. Level 2 is the middle.
// - The normal point is avg_size - min_size/2, not avg_size as in the paper:
//   the min_size bytes that are never cut push the mean up by about min/2.
//   On random data with 16K/64K/256K: mean ~67 KiB, sd ~20 KiB (at avg_size
//   it would be ~73 KiB).
// - The first min_size bytes are not hashed at all (cut-point skipping); the
//   hash starts from 0 at min_size, which is a pure function of the chunk start.
// The cut is placed after the byte that completed a matching hash.
#include "chunker.h"

#include <algorithm>
#include <array>
#include <bit>

namespace shoal {
namespace {

constexpr uint64_t kGearSeed = 0x73686f616c434443ULL;  // "shoalCDC"

constexpr uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::array<uint64_t, 256> make_gear() {
  std::array<uint64_t, 256> g{};
  uint64_t state = kGearSeed;
  for (auto& v : g) v = splitmix64(state);
  return g;
}

constexpr std::array<uint64_t, 256> kGear = make_gear();

// A mask of the top `bits` bits, bits clamped to [1, 63].
constexpr uint64_t top_mask(int bits) {
  bits = std::clamp(bits, 1, 63);
  return ~uint64_t{0} << (64 - bits);
}

// Index one past the first cut in [i, end) for `mask`, or 0 if none.
// `h` carries the hash across the two normalization regions.
inline size_t scan(const uint8_t* p, size_t i, size_t end, uint64_t mask, uint64_t& h) {
  for (; i < end; i++) {
    h = (h << 1) + kGear[p[i]];
    if ((h & mask) == 0) return i + 1;
  }
  return 0;
}

}  // namespace

size_t chunk_cut(const uint8_t* p, size_t n, const ChunkParams& params) {
  const size_t max_size = std::max<size_t>(params.max_size, 1);
  const size_t limit = std::min(n, max_size);
  const size_t min_size = params.min_size;
  if (limit <= min_size) return limit;

  const int avg_bits = std::bit_width(std::max<uint32_t>(params.avg_size, 1)) - 1;
  const uint64_t strict = top_mask(avg_bits + 2);
  const uint64_t loose = top_mask(avg_bits - 2);
  const size_t half_min = min_size / 2;
  const size_t shifted = params.avg_size > half_min ? params.avg_size - half_min : 0;
  const size_t normal = std::clamp<size_t>(shifted, min_size, limit);

  uint64_t h = 0;
  if (size_t cut = scan(p, min_size, normal, strict, h)) return cut;
  if (size_t cut = scan(p, normal, limit, loose, h)) return cut;
  return limit;
}

}  // namespace shoal

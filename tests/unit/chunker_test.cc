#include "chunker.h"

#include <CppUTest/TestHarness.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "hash.h"

using namespace shoal;

namespace {

// Fixed pseudo-random bytes (splitmix64), the same on every box.
std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  uint64_t s = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, std::min<size_t>(8, n - i));
  }
  return out;
}

std::vector<size_t> chunk_all(const std::vector<uint8_t>& buf, const ChunkParams& prm = {}) {
  std::vector<size_t> lens;
  size_t pos = 0;
  while (pos < buf.size()) {
    size_t len = chunk_cut(buf.data() + pos, buf.size() - pos, prm);
    if (len == 0) FAIL("chunk_cut returned 0 with bytes left");
    lens.push_back(len);
    pos += len;
  }
  return lens;
}

std::vector<Hash> chunk_hashes(const std::vector<uint8_t>& buf) {
  std::vector<Hash> out;
  size_t pos = 0;
  for (size_t len : chunk_all(buf)) {
    out.push_back(sha256(buf.data() + pos, len));
    pos += len;
  }
  return out;
}

size_t count_missing(const std::vector<Hash>& from, const std::vector<Hash>& in) {
  size_t n = 0;
  for (const Hash& h : from)
    if (std::find(in.begin(), in.end(), h) == in.end()) n++;
  return n;
}

}  // namespace

TEST_GROUP(Chunker){};

TEST(Chunker, LengthsRespectBoundsAndSumToInput) {
  const ChunkParams prm;
  auto buf = random_bytes(4 << 20, 1);
  auto lens = chunk_all(buf);
  size_t sum = 0;
  for (size_t i = 0; i < lens.size(); i++) {
    CHECK(lens[i] <= prm.max_size);
    if (i + 1 < lens.size()) CHECK(lens[i] >= prm.min_size);
    sum += lens[i];
  }
  CHECK_EQUAL(buf.size(), sum);
}

TEST(Chunker, SmallParamsRespectBounds) {
  const ChunkParams prm{64, 256, 1024};
  auto buf = random_bytes(1 << 20, 2);
  auto lens = chunk_all(buf, prm);
  size_t sum = 0;
  for (size_t i = 0; i < lens.size(); i++) {
    CHECK(lens[i] <= 1024);
    if (i + 1 < lens.size()) CHECK(lens[i] >= 64);
    sum += lens[i];
  }
  CHECK_EQUAL(buf.size(), sum);
  // Mean ~256 with these params (a cut is likelier past the normal point).
  double mean = static_cast<double>(buf.size()) / static_cast<double>(lens.size());
  CHECK(mean > 200 && mean < 330);
}

TEST(Chunker, AverageNear64KiBOnRandomData) {
  auto buf = random_bytes(32 << 20, 3);
  auto lens = chunk_all(buf);
  double mean = static_cast<double>(buf.size()) / static_cast<double>(lens.size());
  // Design value ~67 KiB (see chunker.cc); 500 chunks give a standard error
  // under 1 KiB, so this window only fails if the algorithm changed.
  CHECK(mean > 60.0 * 1024 && mean < 74.0 * 1024);
}

TEST(Chunker, Deterministic) {
  auto buf = random_bytes(2 << 20, 4);
  auto copy = buf;
  CHECK(chunk_all(buf) == chunk_all(copy));
}

// Boundaries are a wire format: if this fails, the gear table, masks or
// normalization changed and every peer would re-chunk differently.
TEST(Chunker, PinnedBoundaries) {
  auto buf = random_bytes(1 << 20, 0x5eed);
  auto lens = chunk_all(buf);
  const std::vector<size_t> want = {75519, 57704, 22744, 61969, 67515, 65234, 65659, 57056};
  CHECK_TRUE(lens.size() >= want.size());
  for (size_t i = 0; i < want.size(); i++) CHECK_EQUAL(want[i], lens[i]);
}

TEST(Chunker, InsertionChangesOnlyNearbyChunks) {
  auto a = random_bytes(4 << 20, 5);
  auto b = a;
  auto extra = random_bytes(100, 6);
  b.insert(b.begin() + (2 << 20), extra.begin(), extra.end());
  auto ha = chunk_hashes(a);
  auto hb = chunk_hashes(b);
  CHECK(ha.size() > 40);
  CHECK(count_missing(ha, hb) <= 3);
  CHECK(count_missing(hb, ha) <= 3);
  // Everything before the insertion point is cut identically.
  size_t same_prefix = 0;
  while (same_prefix < ha.size() && same_prefix < hb.size() && ha[same_prefix] == hb[same_prefix])
    same_prefix++;
  CHECK(same_prefix >= ha.size() / 2 - 3);
}

TEST(Chunker, ShortInputIsOneChunk) {
  const ChunkParams prm;
  auto buf = random_bytes(prm.min_size, 7);
  CHECK_EQUAL(1u, chunk_cut(buf.data(), 1, prm));
  CHECK_EQUAL(1000u, chunk_cut(buf.data(), 1000, prm));
  CHECK_EQUAL(prm.min_size - 1, chunk_cut(buf.data(), prm.min_size - 1, prm));
  CHECK_EQUAL(prm.min_size, chunk_cut(buf.data(), prm.min_size, prm));
  CHECK_EQUAL(0u, chunk_cut(buf.data(), 0, prm));
}

TEST(Chunker, EndOfFileWithoutCutReturnsRest) {
  // Too few bytes past min_size for a cut to be likely: the rest is one chunk.
  const ChunkParams prm;
  auto buf = random_bytes(prm.min_size + 10, 8);
  CHECK_EQUAL(buf.size(), chunk_cut(buf.data(), buf.size(), prm));
}

TEST(Chunker, AllZeroCutsAtMax) {
  const ChunkParams prm;
  std::vector<uint8_t> zeros(1 << 20, 0);
  auto lens = chunk_all(zeros);
  CHECK_EQUAL(4u, lens.size());
  for (size_t len : lens) CHECK_EQUAL(prm.max_size, len);
}

TEST(Chunker, LooksAtMostMaxSizeBytes) {
  const ChunkParams prm;
  std::vector<uint8_t> zeros(prm.max_size + 4096, 0);
  size_t whole = chunk_cut(zeros.data(), zeros.size(), prm);
  CHECK_EQUAL(prm.max_size, whole);
  auto buf = random_bytes(prm.max_size * 2, 9);
  size_t a = chunk_cut(buf.data(), buf.size(), prm);
  size_t b = chunk_cut(buf.data(), prm.max_size, prm);
  // Bytes past max_size never influence the cut.
  CHECK_EQUAL(a, b);
}

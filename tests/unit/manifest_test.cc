#include "manifest.h"

#include <CppUTest/TestHarness.h>

#include <string>

#include "parse.h"

using namespace shoal;

namespace {

Hash fill_hash(uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

Manifest sample() {
  Manifest m;
  m.path = "photos/2024/über.jpg";
  m.mtime_ns = 1700000000123456789LL;
  m.mode = 0640;
  m.origin = "box-1";
  m.chunks = {{fill_hash(0xaa), 70000}, {fill_hash(0xbb), 1}, {fill_hash(0xcc), 262144}};
  m.size = 70000 + 1 + 262144;
  return m;
}

Errc decode_err(const std::string& bytes) {
  auto r = decode_manifest(bytes);
  return r.ok() ? Errc::ok : r.error().code;
}

// Encodes a manifest that may be invalid (the encoder does not check), to see
// the decoder refuse it.
Errc decode_err(const Manifest& m) { return decode_err(encode_manifest(m)); }

uint64_t next_rand(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Decoding must fail or give a manifest whose encoding is exactly the input.
void check_clean(const std::string& bytes) {
  auto r = decode_manifest(bytes);
  if (!r.ok()) return;
  CHECK(validate_manifest(*r).ok());
  CHECK(encode_manifest(*r) == bytes);
}

}  // namespace

TEST_GROUP(Manifest){};

TEST(Manifest, RoundTrip) {
  Manifest m = sample();
  CHECK(validate_manifest(m).ok());
  std::string enc = encode_manifest(m);
  auto d = decode_manifest(enc);
  CHECK_TRUE(d.ok());
  CHECK(*d == m);
  CHECK(encode_manifest(*d) == enc);
}

TEST(Manifest, EmptyFileAndTombstoneRoundTrip) {
  Manifest m;
  m.path = "empty";
  auto d = decode_manifest(encode_manifest(m));
  CHECK_TRUE(d.ok());
  CHECK(*d == m);
  m.flags = kManifestDeleted;
  d = decode_manifest(encode_manifest(m));
  CHECK_TRUE(d.ok());
  CHECK_EQUAL(kManifestDeleted, d->flags);
}

// The byte layout is a wire format; pin it.
TEST(Manifest, GoldenEncoding) {
  Manifest m;
  m.path = "a";
  m.origin = "n1";
  m.mtime_ns = -1;
  m.mode = 0644;
  m.chunks = {{fill_hash(0x11), 5}};
  m.size = 5;
  std::string want_hex = std::string("53484d46") + "01" + "00000000" + "0500000000000000" +
                         "ffffffffffffffff" + "a4010000" + std::string(64, '0') + "02" + "6e31" + "0100" + "61" +
                         "01000000" + std::string(64, '1') + "05000000";
  std::string enc = encode_manifest(m);
  STRCMP_EQUAL(want_hex.c_str(),
               hex_encode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size()).c_str());
}

TEST(Manifest, IdIsSha256OfEncoding) {
  std::string enc = encode_manifest(sample());
  CHECK(manifest_id(enc) == sha256(enc.data(), enc.size()));
  Manifest other = sample();
  other.mtime_ns++;
  CHECK(manifest_id(encode_manifest(other)) != manifest_id(enc));
  CHECK(manifest_id(encode_manifest(sample())) == manifest_id(enc));
}

TEST(Manifest, RelPathRules) {
  CHECK_TRUE(valid_rel_path("a/b/c.txt"));
  CHECK_TRUE(valid_rel_path("über.txt"));
  CHECK_TRUE(valid_rel_path(".hidden"));
  CHECK_TRUE(valid_rel_path("a/..b/c.."));
  CHECK_TRUE(valid_rel_path(".shoal"));
  CHECK_TRUE(valid_rel_path("x.shoal-tmp"));
  CHECK_TRUE(valid_rel_path(std::string(255, 'n')));

  CHECK_FALSE(valid_rel_path(""));
  CHECK_FALSE(valid_rel_path("../../x"));
  CHECK_FALSE(valid_rel_path("/etc/x"));
  CHECK_FALSE(valid_rel_path("a/../../x"));
  CHECK_FALSE(valid_rel_path("a/.."));
  CHECK_FALSE(valid_rel_path("a//b"));
  CHECK_FALSE(valid_rel_path("a/"));
  CHECK_FALSE(valid_rel_path("./a"));
  CHECK_FALSE(valid_rel_path("a/."));
  CHECK_FALSE(valid_rel_path("."));
  CHECK_FALSE(valid_rel_path(std::string("a\0b", 3)));
  CHECK_FALSE(valid_rel_path("a\nb"));
  CHECK_FALSE(valid_rel_path("a\tb"));
  CHECK_FALSE(valid_rel_path("a\x7f"));
  CHECK_FALSE(valid_rel_path(std::string(256, 'n')));
  CHECK_FALSE(valid_rel_path("ok/" + std::string(256, 'n') + "/ok"));
  CHECK_FALSE(valid_rel_path(std::string(4097, 'a')));  // also too long a component
  // Exactly kMaxPathBytes with short components is fine; one more byte is not.
  std::string longest;
  for (int i = 0; i < 40; i++) longest += std::string(100, 'a') + "/";
  longest += std::string(kMaxPathBytes - longest.size(), 'b');
  CHECK_EQUAL(kMaxPathBytes, longest.size());
  CHECK_TRUE(valid_rel_path(longest));
  CHECK_FALSE(valid_rel_path(longest + "c"));
  CHECK_FALSE(valid_rel_path(".shoal-tmp-1"));
  CHECK_FALSE(valid_rel_path("dir/.shoal-x"));
  CHECK_FALSE(valid_rel_path(".shoal-"));
}

TEST(Manifest, RejectsBadHeader) {
  std::string enc = encode_manifest(sample());
  std::string bad = enc;
  bad[0] = 'X';
  CHECK(Errc::corrupt == decode_err(bad));
  bad = enc;
  bad[4] = 2;
  CHECK(Errc::unsupported == decode_err(bad));
  bad = enc;
  bad[4] = 0;
  CHECK(Errc::unsupported == decode_err(bad));
  Manifest m = sample();
  m.flags = 0x80;
  CHECK(Errc::unsupported == decode_err(m));
  CHECK(Errc::corrupt == decode_err(enc + '\0'));
  CHECK(Errc::corrupt == decode_err(std::string(kMaxManifestBytes + 1, 'S')));
}

TEST(Manifest, HostileChunkCountDoesNotAllocate) {
  Manifest m;
  m.path = "x";
  std::string enc = encode_manifest(m);
  // The count is the last 4 bytes of a chunkless manifest; claim 2^32-1 chunks.
  for (size_t i = enc.size() - 4; i < enc.size(); i++) enc[i] = '\xff';
  CHECK(Errc::corrupt == decode_err(enc));
  // A count one higher than the data present is refused too.
  Manifest one = sample();
  enc = encode_manifest(one);
  size_t count_at = enc.size() - 3 * 36 - 4;
  enc[count_at] = 4;
  CHECK(Errc::corrupt == decode_err(enc));
  enc[count_at] = 2;
  CHECK(Errc::corrupt == decode_err(enc));
}

TEST(Manifest, RejectsBadChunks) {
  Manifest m = sample();
  m.chunks[1].len = 0;
  m.size -= 1;
  CHECK(Errc::invalid == decode_err(m));
  m = sample();
  m.chunks[1].len = kMaxChunkLen + 1;
  m.size += kMaxChunkLen;
  CHECK(Errc::invalid == decode_err(m));
  m = sample();
  m.size += 1;
  CHECK(Errc::invalid == decode_err(m));
  m.size -= 2;
  CHECK(Errc::invalid == decode_err(m));
  m.size = UINT64_MAX;
  CHECK(Errc::invalid == decode_err(m));
  m = sample();
  m.flags = kManifestDeleted;
  CHECK(Errc::invalid == decode_err(m));
}

TEST(Manifest, RejectsBadFields) {
  Manifest m = sample();
  m.path = "../etc/passwd";
  CHECK(Errc::invalid == decode_err(m));
  m.path = "";
  CHECK(Errc::invalid == decode_err(m));
  m = sample();
  m.mode = 0100644;
  CHECK(Errc::invalid == decode_err(m));
  m.mode = 07777;
  CHECK(Errc::ok == decode_err(m));
  m.origin = std::string(kMaxNodeName, 'o');
  CHECK(Errc::ok == decode_err(m));
  m.origin = std::string(kMaxNodeName + 1, 'o');
  CHECK(Errc::invalid == decode_err(m));
  m.origin = "bad\nname";
  CHECK(Errc::invalid == decode_err(m));
  m.origin = "\xc3\xbc";
  CHECK(Errc::invalid == decode_err(m));
  m.origin = "";
  CHECK(Errc::ok == decode_err(m));
}

TEST(Manifest, ValidateBoundsEncodedSize) {
  Manifest m;
  m.path = "big";
  size_t fits = (kMaxManifestBytes - 68 - m.path.size()) / 36;  // 68 fixed bytes
  m.chunks.assign(fits, ChunkRef{fill_hash(1), 1});
  m.size = fits;
  CHECK(validate_manifest(m).ok());
  CHECK(encode_manifest(m).size() <= kMaxManifestBytes);
  m.chunks.push_back(ChunkRef{fill_hash(1), 1});
  m.size++;
  CHECK(Errc::invalid == validate_manifest(m).error().code);
}

TEST(Manifest, ManyChunksRoundTrip) {
  Manifest m;
  m.path = "many";
  for (uint32_t i = 0; i < 10000; i++) {
    m.chunks.push_back({fill_hash(static_cast<uint8_t>(i)), i % 1000 + 1});
    m.size += i % 1000 + 1;
  }
  auto d = decode_manifest(encode_manifest(m));
  CHECK_TRUE(d.ok());
  CHECK(*d == m);
}

TEST(Manifest, EveryTruncationFails) {
  std::string enc = encode_manifest(sample());
  for (size_t n = 0; n < enc.size(); n++) CHECK_FALSE(decode_manifest(enc.substr(0, n)).ok());
  CHECK_TRUE(decode_manifest(enc).ok());
}

TEST(Manifest, RandomMutationsFailCleanlyOrRoundTrip) {
  const std::string enc = encode_manifest(sample());
  uint64_t seed = 0x6d757461;
  size_t accepted = 0;
  for (int iter = 0; iter < 4000; iter++) {
    std::string bad = enc;
    int edits = 1 + static_cast<int>(next_rand(seed) % 4);
    for (int e = 0; e < edits; e++) {
      size_t pos = next_rand(seed) % bad.size();
      switch (next_rand(seed) % 4) {
        case 0: bad[pos] = static_cast<char>(next_rand(seed)); break;
        case 1: bad[pos] = static_cast<char>(bad[pos] ^ (1 << (next_rand(seed) % 8))); break;
        case 2: bad.erase(pos, 1 + next_rand(seed) % 8); break;
        default: bad.insert(pos, 1 + next_rand(seed) % 8, static_cast<char>(next_rand(seed)));
      }
      if (bad.empty()) bad = "S";
    }
    if (decode_manifest(bad).ok()) accepted++;
    check_clean(bad);
  }
  // Flips in the hashes or mtime still decode; the test must see both paths.
  CHECK(accepted > 0);
  CHECK(accepted < 4000);
}

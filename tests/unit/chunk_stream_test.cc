#include "chunk_stream.h"

#include <CppUTest/TestHarness.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

using namespace shoal;

namespace {

std::string random_bytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// The chunks of `data` cut in one pass over the whole buffer.
std::vector<ChunkRef> reference_chunks(const std::string& data) {
  std::vector<ChunkRef> out;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t pos = 0;
  while (pos < data.size()) {
    size_t len = chunk_cut(p + pos, data.size() - pos);
    out.push_back({sha256(p + pos, len), static_cast<uint32_t>(len)});
    pos += len;
  }
  return out;
}

struct Read {
  std::vector<ChunkRef> chunks;
  std::string bytes;    // the chunk bytes as handed out
  size_t blocks = 0;
  Error error;
  bool ok = true;
};

}  // namespace

TEST_GROUP(ChunkStream) {
  std::string dir;
  std::atomic<bool> stop{false};

  void setup() override {
    char tmpl[] = "/tmp/shoal-cstream-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  void teardown() override { std::filesystem::remove_all(dir); }

  int open_with(const std::string& data) {
    const std::string p = dir + "/f";
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_EQUAL(static_cast<ssize_t>(data.size()), ::write(fd, data.data(), data.size()));
    CHECK_EQUAL(0, ::lseek(fd, 0, SEEK_SET));
    return fd;
  }

  Read read_all(int fd, bool threaded) {
    Read r;
    ChunkStream s(fd, stop, threaded);
    CHECK_EQUAL(threaded, s.threaded());
    for (;;) {
      auto b = s.next();
      if (!b) {
        r.ok = false;
        r.error = b.error();
        return r;
      }
      r.blocks++;
      const uint8_t* p = (*b)->data;
      for (const ChunkRef& c : (*b)->chunks) {
        r.chunks.push_back(c);
        r.bytes.append(reinterpret_cast<const char*>(p), c.len);
        p += c.len;
      }
      if ((*b)->last) return r;
    }
  }

  void check_same_as_one_pass(size_t size, bool threaded) {
    const std::string data = random_bytes(size, size);
    int fd = open_with(data);
    Read r = read_all(fd, threaded);
    ::close(fd);
    CHECK_TRUE(r.ok);
    CHECK_TRUE(r.bytes == data);
    const auto want = reference_chunks(data);
    CHECK_EQUAL(want.size(), r.chunks.size());
    CHECK_TRUE(want == r.chunks);
  }
};

TEST(ChunkStream, InlineMatchesOnePassCut) {
  check_same_as_one_pass(5 * ChunkStream::kBlockBytes + 12345, false);
}

TEST(ChunkStream, ThreadedMatchesOnePassCut) {
  // More blocks than kBlocks, so blocks are recycled while the reader runs.
  check_same_as_one_pass(11 * ChunkStream::kBlockBytes + 777, true);
}

TEST(ChunkStream, SmallAndEmptyFiles) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{300 * 1024}}) {
    check_same_as_one_pass(n, false);
    check_same_as_one_pass(n, true);
  }
}

TEST(ChunkStream, EmptyFileIsOneLastBlockWithoutChunks) {
  int fd = open_with("");
  Read r = read_all(fd, true);
  ::close(fd);
  CHECK_TRUE(r.ok);
  CHECK_EQUAL(1u, r.blocks);
  CHECK_EQUAL(0u, r.chunks.size());
}

TEST(ChunkStream, StopFailsWithBusy) {
  const std::string data = random_bytes(6 * ChunkStream::kBlockBytes, 7);
  for (bool threaded : {false, true}) {
    int fd = open_with(data);
    stop = true;
    Read r = read_all(fd, threaded);
    stop = false;
    ::close(fd);
    CHECK_FALSE(r.ok);
    CHECK_TRUE(r.error.code == Errc::busy);
  }
}

TEST(ChunkStream, ReadErrorIsReported) {
  // A directory fd: read(2) fails with EISDIR.
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  CHECK(fd >= 0);
  for (bool threaded : {false, true}) {
    Read r = read_all(fd, threaded);
    CHECK_FALSE(r.ok);
    CHECK_TRUE(r.error.code == Errc::io);
  }
  ::close(fd);
}

TEST(ChunkStream, AbandonedMidwayJoinsTheReader) {
  const std::string data = random_bytes(12 * ChunkStream::kBlockBytes, 9);
  int fd = open_with(data);
  {
    ChunkStream s(fd, stop, true);
    auto b = s.next();
    CHECK_TRUE(b.ok());
    CHECK_FALSE((*b)->last);
  }  // the reader is blocked on a full queue; the destructor must release it
  ::close(fd);
}

#include "flusher.h"

#include "testutil.h"

#include <CppUTest/TestHarness.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace shoal;

namespace {

// Waits (at most 10 s) until `f` has done `n` flushes.
bool wait_done(const Flusher& f, uint64_t n) {
  for (int i = 0; i < 1000 && f.done() < n; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return f.done() >= n;
}

}  // namespace

TEST_GROUP(Flusher) {
  std::string dir;

  void setup() override {
    char t[] = "/tmp/shoal-flusher-XXXXXX";
    CHECK_TRUE(::mkdtemp(t) != nullptr);
    dir = t;
  }
  void teardown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  // A file holding `len` unflushed bytes, open for writing.
  int dirty_file(const std::string& name, size_t len) {
    int fd = ::open((dir + "/" + name).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    CHECK_TRUE(fd >= 0);
    const std::string b = test::pseudo_bytes(7, len, 1);
    CHECK_EQUAL(static_cast<ssize_t>(len), ::pwrite(fd, b.data(), len, 0));
    return fd;
  }
};

TEST(Flusher, FlushesThroughADescriptorOfItsOwn) {
  Flusher f;
  int fd = dirty_file("a", 1 << 20);
  CHECK_TRUE(f.sync(fd));
  ::close(fd);  // the caller's descriptor may go at once
  CHECK_TRUE(wait_done(f, 1));
  CHECK_EQUAL(0u, f.failed());
  CHECK_EQUAL(1u << 20, test::read_file(dir + "/a").size());
}

TEST(Flusher, RefusesABadDescriptor) {
  Flusher f;
  CHECK_FALSE(f.sync(-1));
  int fd = dirty_file("a", 4096);
  ::close(fd);
  CHECK_FALSE(f.sync(fd));
  CHECK_EQUAL(0u, f.done());
}

TEST(Flusher, OneFlushAtATimePerFile) {
  Flusher f;
  int a = dirty_file("a", 8 << 20);
  int a2 = ::open((dir + "/a").c_str(), O_RDWR | O_CLOEXEC);
  CHECK_TRUE(a2 >= 0);
  CHECK_TRUE(f.sync(a));
  // Another descriptor of the same file: refused while the first flush waits
  // or runs; taken only once it is done.
  const bool again = f.sync(a2);
  const uint64_t done = f.done();
  CHECK_TRUE(!again || done >= 1);
  // Another file is not held up by it.
  int b = dirty_file("b", 4096);
  CHECK_TRUE(f.sync(b));
  CHECK_TRUE(wait_done(f, again ? 3 : 2));
  CHECK_TRUE(f.sync(a2));  // nothing of a's waits now
  CHECK_TRUE(wait_done(f, again ? 4 : 3));
  ::close(a);
  ::close(a2);
  ::close(b);
}

TEST(Flusher, DestroyedWithFlushesQueuedReturnsAndClosesThem) {
  std::vector<int> fds;
  {
    Flusher f;
    for (int i = 0; i < 16; i++) {
      fds.push_back(dirty_file("f" + std::to_string(i), 256 << 10));
      CHECK_TRUE(f.sync(fds.back()));
    }
  }
  for (int fd : fds) ::close(fd);
  // Only the test's own descriptors were open on the files: none is left.
  int open_fds = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind(dir, 0) == 0) open_fds++;
  }
  CHECK_EQUAL(0, open_fds);
}

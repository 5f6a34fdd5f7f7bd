#include "fileio.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "testutil.h"

#include <CppUTest/TestHarness.h>

using namespace shoal;

TEST_GROUP(FileIo) {
  std::string path;
  int fd = -1;
  void setup() override {
    char tmpl[] = "/tmp/shoal-fileio-XXXXXX";
    fd = ::mkstemp(tmpl);
    CHECK_TRUE(fd >= 0);
    path = tmpl;
  }
  void teardown() override {
    ::close(fd);
    ::unlink(path.c_str());
  }
};

TEST(FileIo, WritesAtOffsetsAndReadsBackTheSameBytes) {
  const std::string a = test::pseudo_bytes(1, 300000, 3), b = test::pseudo_bytes(2, 5000, 3);
  CHECK_TRUE(write_all(fd, a.data(), a.size()).ok());
  CHECK_TRUE(pwrite_all(fd, b.data(), b.size(), 1000).ok());
  std::string want = a;
  want.replace(1000, b.size(), b);
  CHECK_TRUE(want == test::read_file(path));
  std::string back(b.size(), '\0');
  CHECK_TRUE(pread_all(fd, back.data(), back.size(), 1000).ok());
  CHECK_TRUE(back == b);
}

TEST(FileIo, ReadPastTheEndIsAnError) {
  CHECK_TRUE(write_all(fd, "abc", 3).ok());
  char buf[8];
  Status st = pread_all(fd, buf, sizeof buf, 0);
  CHECK_FALSE(st.ok());
  CHECK_TRUE(Errc::io == st.error().code);
  CHECK_TRUE(pread_all(fd, buf, 3, 0).ok());
  CHECK_FALSE(write_all(-1, "x", 1).ok());
}

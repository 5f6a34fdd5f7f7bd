#include "probe.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "testutil.h"
// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

TEST_GROUP(Probe) {
  std::string dir;
  void setup() override {
    char tmpl[] = "/tmp/shoal-probe-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  void teardown() override {
    std::string cmd = "rm -rf '" + dir + "'";
    CHECK_EQUAL(0, std::system(cmd.c_str()));
  }
  void mkdir_p(const std::string& rel) { CHECK_EQUAL(0, ::mkdir((dir + "/" + rel).c_str(), 0755)); }
};

TEST(Probe, ModeAndDisk) {
  std::string key = dir + "/k";
  test::write_file(key, "x");
  CHECK_EQUAL(0, ::chmod(key.c_str(), 0640));
  LONGS_EQUAL(0640, probe_mode(key).value());
  CHECK_EQUAL(0, ::chmod(key.c_str(), 0600));
  LONGS_EQUAL(0600, probe_mode(key).value());
  STRCMP_CONTAINS("No such file", probe_mode(dir + "/none").error().msg.c_str());

  Result<DiskFacts> d = probe_disk(dir);
  CHECK_TRUE(d.ok());
  CHECK(d->total_bytes > 0);
  CHECK(d->free_bytes <= d->total_bytes);
  struct stat st {};
  CHECK_EQUAL(0, ::stat(dir.c_str(), &st));
  CHECK_EQUAL(static_cast<uint64_t>(st.st_dev), d->dev);
  CHECK_FALSE(probe_disk(dir + "/none").ok());
}

TEST(Probe, CountsDirectoriesWithoutFollowingLinks) {
  mkdir_p("a");
  mkdir_p("a/b");
  mkdir_p("a/b/c");
  mkdir_p("d");
  test::write_file(dir + "/a/file", "x");
  CHECK_EQUAL(0, ::symlink((dir + "/a").c_str(), (dir + "/link").c_str()));
  Result<DirCount> c = count_dirs(dir, 5000, 1000);
  CHECK_TRUE(c.ok());
  LONGS_EQUAL(5, c->dirs);  // root, a, a/b, a/b/c, d
  CHECK_TRUE(c->complete);
  Result<DirCount> capped = count_dirs(dir, 5000, 2);
  CHECK_FALSE(capped->complete);
  CHECK(capped->dirs >= 2);
  CHECK_FALSE(count_dirs(dir + "/none", 100, 100).ok());
}

TEST(Probe, ReadsTheNumberOnAProcStyleFile) {
  test::write_file(dir + "/n", "8192\n");
  LONGS_EQUAL(8192, read_uint_file(dir + "/n").value());
  test::write_file(dir + "/n", "  12  \nsecond line\n");
  LONGS_EQUAL(12, read_uint_file(dir + "/n").value());
  for (const char* bad : {"", "\n", "abc\n", "-1\n", "12 34\n"}) {
    test::write_file(dir + "/n", bad);
    CHECK_FALSE(read_uint_file(dir + "/n").has_value());
  }
  CHECK_FALSE(read_uint_file(dir + "/none").has_value());
  CHECK_TRUE(read_uint_file("/proc/sys/fs/inotify/max_user_watches").has_value());
}

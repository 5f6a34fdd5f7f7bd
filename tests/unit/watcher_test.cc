#include "watcher.h"
#include "publish.h"

#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <filesystem>

#include <CppUTest/TestHarness.h>

#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "log.h"

using namespace shoal;

namespace {

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK_TRUE(fd >= 0);
  CHECK_EQUAL(static_cast<ssize_t>(data.size()), write(fd, data.data(), data.size()));
  close(fd);
}

void make_dir(const std::string& path) { CHECK_EQUAL(0, mkdir(path.c_str(), 0755)); }

int remove_entry(const char* p, const struct stat*, int, FTW*) { return remove(p); }

}  // namespace

TEST_GROUP(Watcher) {
  std::string tmp, root;
  event_base* base = nullptr;
  std::unique_ptr<Watcher> w;
  std::vector<WatchEvent> events;
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);  // the skip warnings are expected here
    char tmpl[] = "/tmp/shoal-watcher-XXXXXX";
    CHECK_TRUE(mkdtemp(tmpl) != nullptr);
    tmp = tmpl;
    root = tmp + "/share";
    make_dir(root);
    base = event_base_new();
    CHECK_TRUE(base != nullptr);
    auto r = Watcher::create(base, [this](const WatchEvent& e) { events.push_back(e); });
    CHECK_TRUE(r.ok());
    w = std::move(r.value());
  }

  void teardown() override {
    w.reset();
    event_base_free(base);
    nftw(tmp.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    log_set_level(saved_level);
  }

  void run_ms(int ms) {
    timeval tv{0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }

  // Runs the loop in 10 ms slices until `done` holds or 5 s passed.
  bool run_until(const std::function<bool()>& done) {
    int64_t end = mono_ms() + 5000;
    while (!done()) {
      if (mono_ms() > end) return false;
      run_ms(10);
    }
    return true;
  }

  bool idle() { return run_until([this] { return w->pending() == 0; }); }

  int count(WatchEvent::Kind k, const std::string& rel) {
    int n = 0;
    for (const auto& e : events) n += (e.kind == k && e.rel == rel) ? 1 : 0;
    return n;
  }
  int readies(const std::string& rel) { return count(WatchEvent::Kind::ready, rel); }

  bool all_ready(const std::vector<std::string>& rels) {
    for (const auto& r : rels)
      if (readies(r) == 0) return false;
    return true;
  }

  void start(uint32_t settle_ms) {
    CHECK_TRUE(w->add_share("s", root, settle_ms).ok());
    CHECK_TRUE(idle());
    events.clear();
  }
};

TEST(Watcher, ScanRemovesTempFilesOfEarlierRunsOnly) {
  make_dir(root + "/d");
  write_file(root + "/d/.shoal-tmp-deadbeef-0011223344556677", "left by a crash");
  write_file(root + "/.shoal-tmp-0011223344556677", "older format");
  write_file(root + "/.shoal-conflict-keep", "not a temp file");
  CHECK_TRUE(w->add_share("s", root, 50).ok());
  CHECK_TRUE(idle());
  CHECK_FALSE(std::filesystem::exists(root + "/d/.shoal-tmp-deadbeef-0011223344556677"));
  CHECK_FALSE(std::filesystem::exists(root + "/.shoal-tmp-0011223344556677"));
  CHECK_TRUE(std::filesystem::exists(root + "/.shoal-conflict-keep"));
  CHECK_EQUAL(0u, events.size());
}

// The parts directory is not watched nor reported; its part files go when
// untouched for a day (then it goes too), not before.
TEST(Watcher, ScanRemovesOnlyStalePartFiles) {
  const std::string parts = root + "/" + kPartsDir;
  make_dir(parts);
  const std::string old_part = parts + "/.shoal-tmp-part-00112233445566778899aabbccddeeff";
  const std::string new_part = parts + "/.shoal-tmp-part-ffeeddccbbaa99887766554433221100";
  write_file(old_part, "a transfer nobody resumed");
  write_file(new_part, "a transfer that may resume");
  timespec old[2] = {{time(nullptr) - kPartKeepSec - 1, 0}, {time(nullptr) - kPartKeepSec - 1, 0}};
  CHECK_EQUAL(0, utimensat(AT_FDCWD, old_part.c_str(), old, 0));
  CHECK_TRUE(w->add_share("s", root, 50).ok());
  CHECK_TRUE(idle());
  CHECK_FALSE(std::filesystem::exists(old_part));
  CHECK_TRUE(std::filesystem::exists(new_part));
  CHECK_EQUAL(0u, events.size());
  // Writes to a part file raise no event.
  write_file(new_part, "more bytes");
  CHECK_TRUE(idle());
  CHECK_EQUAL(0u, events.size());
}

TEST(Watcher, InitialScanReportsNestedRegularFilesOnly) {
  make_dir(root + "/d1");
  make_dir(root + "/d1/d2");
  make_dir(root + "/.shoal-dir");
  write_file(root + "/a", "a");
  write_file(root + "/d1/b", "b");
  write_file(root + "/d1/d2/c", "c");
  write_file(root + "/.shoal-tmp1", "x");
  write_file(root + "/.shoal-dir/z", "z");
  CHECK_EQUAL(0, symlink("a", (root + "/link").c_str()));
  CHECK_EQUAL(0, mkfifo((root + "/d1/fifo").c_str(), 0644));

  CHECK_TRUE(w->add_share("s", root, 50).ok());
  CHECK_TRUE(w->pending() > 0);  // the initial scan counts until it finished
  CHECK_TRUE(idle());
  CHECK_EQUAL(3u, events.size());
  for (const char* rel : {"a", "d1/b", "d1/d2/c"}) CHECK_EQUAL(1, readies(rel));
  for (const auto& e : events) {
    CHECK_TRUE(e.from_scan);
    STRCMP_EQUAL("s", e.share.c_str());
  }
  CHECK_EQUAL(2u, w->stats().skipped);
  CHECK_EQUAL(3u, w->stats().watches);  // root, d1, d1/d2

  events.clear();
  w->rescan("s");
  CHECK_TRUE(idle());
  CHECK_EQUAL(3u, events.size());
  CHECK_EQUAL(2u, w->stats().skipped);  // warned once per path, not per scan
}

TEST(Watcher, BigTreeIsScannedInSlices) {
  make_dir(root + "/big");
  const int n = 2100;
  for (int i = 0; i < n; ++i) write_file(root + "/big/" + std::to_string(i), "");
  CHECK_TRUE(w->add_share("s", root, 50).ok());
  event_base_loop(base, EVLOOP_ONCE);  // one slice, then the loop gets control back
  CHECK_TRUE(events.size() > 0);
  CHECK_TRUE(events.size() < static_cast<size_t>(n));
  CHECK_TRUE(w->pending() > 0);
  CHECK_TRUE(idle());
  CHECK_EQUAL(static_cast<size_t>(n), events.size());
}

TEST(Watcher, AddShareErrors) {
  auto missing = w->add_share("m", tmp + "/nope", 50);
  CHECK_FALSE(missing.ok());
  CHECK_TRUE(missing.error().code == Errc::not_found);
  write_file(tmp + "/plain", "x");
  CHECK_FALSE(w->add_share("p", tmp + "/plain", 50).ok());
  CHECK_TRUE(w->add_share("s", root, 50).ok());
  CHECK_FALSE(w->add_share("s", tmp, 50).ok());
}

TEST(Watcher, OverlappingSharesAreRefusedOrCounted) {
  make_dir(root + "/d");
  write_file(root + "/d/x", "x");
  CHECK_TRUE(w->add_share("inner", root + "/d", 20).ok());
  CHECK_TRUE(w->add_share("outer", root, 20).ok());
  CHECK_TRUE(idle());
  CHECK_EQUAL(1u, w->stats().errors);  // outer cannot watch inner's root
  CHECK_EQUAL(2, readies("d/x") + readies("x"));  // both scans still list it
  CHECK_FALSE(w->add_share("again", root + "/d", 20).ok());
  w->rescan("");
  CHECK_TRUE(idle());
  CHECK_EQUAL(1u, w->stats().errors);  // counted once per path
}

TEST(Watcher, ClosedFileReportedOnceAfterSettle) {
  start(150);
  write_file(root + "/x", "hello");
  int64_t closed_at = mono_ms();
  CHECK_TRUE(w->pending() > 0);  // queued in the kernel, not read yet
  run_ms(20);
  CHECK_EQUAL(0, readies("x"));
  CHECK_EQUAL(1u, w->pending());
  CHECK_TRUE(run_until([this] { return readies("x") > 0; }));
  CHECK_TRUE(mono_ms() - closed_at >= 150);
  CHECK_EQUAL(0u, w->pending());
  run_ms(300);
  CHECK_EQUAL(1, readies("x"));
  CHECK_EQUAL(1u, events.size());
  CHECK_FALSE(events[0].from_scan);
}

// settle_ms counts from the file's last change (its mtime): a file moved or
// linked in whole, last written long ago, does not wait; one written just
// before it was moved in does, and so does one written in place.
TEST(Watcher, FileMovedInWithOldMtimeIsReadyAtOnce) {
  start(3000);
  auto set_mtime_ago = [](const std::string& path, int seconds) {
    timespec ts[2]{};
    clock_gettime(CLOCK_REALTIME, &ts[1]);
    ts[1].tv_sec -= seconds;
    ts[0] = ts[1];
    CHECK_EQUAL(0, utimensat(AT_FDCWD, path.c_str(), ts, 0));
  };
  write_file(tmp + "/old", "old content");
  set_mtime_ago(tmp + "/old", 60);
  write_file(tmp + "/linked", "linked content");
  set_mtime_ago(tmp + "/linked", 60);
  write_file(tmp + "/fresh", "fresh content");
  int64_t t0 = mono_ms();
  CHECK_EQUAL(0, rename((tmp + "/old").c_str(), (root + "/old").c_str()));
  CHECK_EQUAL(0, link((tmp + "/linked").c_str(), (root + "/linked").c_str()));
  CHECK_EQUAL(0, rename((tmp + "/fresh").c_str(), (root + "/fresh").c_str()));
  CHECK_TRUE(run_until([this] { return readies("old") == 1 && readies("linked") == 1; }));
  CHECK_TRUE(mono_ms() - t0 < 3000);
  CHECK_EQUAL(0, readies("fresh"));
  CHECK_EQUAL(1u, w->pending());
  CHECK_TRUE(run_until([this] { return readies("fresh") == 1; }));
  CHECK_TRUE(mono_ms() - t0 >= 3000 - 20);  // mtime has coarse (jiffy) resolution
  CHECK_EQUAL(3u, events.size());
}

TEST(Watcher, FileAppendedWhileOpenWaitsUntilClosedAndQuiet) {
  start(100);
  int fd = open((root + "/grow").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  CHECK_TRUE(fd >= 0);
  run_ms(180);  // created and open, nothing written yet: not ready
  CHECK_EQUAL(0, readies("grow"));
  CHECK_EQUAL(1u, w->pending());
  for (int i = 0; i < 6; ++i) {  // open for 6 x 40 ms, well past the settle time
    CHECK_EQUAL(4, write(fd, "data", 4));
    run_ms(40);
    CHECK_EQUAL(0, readies("grow"));
    CHECK_TRUE(w->pending() > 0);
  }
  close(fd);
  int64_t closed_at = mono_ms();
  CHECK_TRUE(run_until([this] { return readies("grow") > 0; }));
  CHECK_TRUE(mono_ms() - closed_at >= 100);
  run_ms(120);
  CHECK_EQUAL(1, readies("grow"));

  // Closed, then reopened before it settled: quiet while open is not enough.
  write_file(root + "/again", "first");
  fd = open((root + "/again").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  CHECK_TRUE(fd >= 0);
  CHECK_EQUAL(4, write(fd, "more", 4));
  run_ms(180);
  CHECK_EQUAL(0, readies("again"));
  CHECK_TRUE(w->pending() > 0);
  close(fd);
  CHECK_TRUE(run_until([this] { return readies("again") == 1; }));
  CHECK_TRUE(idle());
}

// A change inotify cannot see in the share (written through a hard link in an
// unwatched directory) still delays the report: size/mtime are checked again.
TEST(Watcher, SizeChangeWithoutEventRearmsSettle) {
  start(300);
  write_file(root + "/x", "x");
  run_ms(20);
  CHECK_EQUAL(0, link((root + "/x").c_str(), (tmp + "/alias").c_str()));
  int fd = open((tmp + "/alias").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  CHECK_TRUE(fd >= 0);
  for (int i = 0; i < 6; ++i) {
    CHECK_EQUAL(1, write(fd, "y", 1));
    run_ms(50);
    CHECK_EQUAL(0, readies("x"));
  }
  close(fd);
  int64_t last_change = mono_ms();
  CHECK_TRUE(run_until([this] { return readies("x") > 0; }));
  CHECK_TRUE(mono_ms() - last_change >= 250);
  CHECK_EQUAL(1, readies("x"));
}

TEST(Watcher, FilesWrittenIntoNewDirectoryBeforeItsWatchAreReported) {
  start(50);
  std::vector<std::string> want;
  make_dir(root + "/sub");  // the loop does not run: no watch on sub yet
  for (int i = 0; i < 20; ++i) {
    want.push_back("sub/f" + std::to_string(i));
    write_file(root + "/" + want.back(), "content " + std::to_string(i));
  }
  make_dir(root + "/sub/deep");
  for (int i = 0; i < 5; ++i) {
    want.push_back("sub/deep/g" + std::to_string(i));
    write_file(root + "/" + want.back(), "g");
  }
  run_ms(10);
  want.push_back("sub/deep/late");  // after the watch: seen as an event
  write_file(root + "/" + want.back(), "late");
  CHECK_TRUE(run_until([&] { return all_ready(want); }));
  CHECK_TRUE(idle());
  run_ms(100);
  for (const auto& r : want) CHECK_EQUAL(1, readies(r));
  CHECK_EQUAL(want.size(), events.size());
  CHECK_EQUAL(3u, w->stats().watches);
}

TEST(Watcher, TreeMovedInIsReported) {
  start(30);
  make_dir(tmp + "/tree");
  make_dir(tmp + "/tree/b");
  make_dir(tmp + "/tree/b/d");
  write_file(tmp + "/tree/a", "a");
  write_file(tmp + "/tree/b/c", "c");
  write_file(tmp + "/tree/b/d/e", "e");
  CHECK_EQUAL(0, rename((tmp + "/tree").c_str(), (root + "/tree").c_str()));
  std::vector<std::string> want = {"tree/a", "tree/b/c", "tree/b/d/e"};
  CHECK_TRUE(run_until([&] { return all_ready(want); }));
  CHECK_TRUE(idle());
  CHECK_EQUAL(3u, events.size());
  CHECK_EQUAL(4u, w->stats().watches);
  // The new directories are watched: a later file there is seen too.
  write_file(root + "/tree/b/d/f", "f");
  CHECK_TRUE(run_until([this] { return readies("tree/b/d/f") == 1; }));
}

TEST(Watcher, DeleteIsReportedAsRemoved) {
  write_file(root + "/gone", "x");
  start(30);
  CHECK_EQUAL(0, unlink((root + "/gone").c_str()));
  CHECK_TRUE(run_until([this] { return count(WatchEvent::Kind::removed, "gone") == 1; }));
  CHECK_FALSE(events[0].dir);
  CHECK_EQUAL(1u, events.size());
}

TEST(Watcher, RenameWithinShareIsRemovedPlusReady) {
  write_file(root + "/old", "x");
  start(30);
  CHECK_EQUAL(0, rename((root + "/old").c_str(), (root + "/new").c_str()));
  CHECK_TRUE(run_until([this] { return readies("new") == 1; }));
  CHECK_EQUAL(1, count(WatchEvent::Kind::removed, "old"));
  CHECK_EQUAL(2u, events.size());
  CHECK_TRUE(events[0].kind == WatchEvent::Kind::removed);

  // shoal's own temporaries are invisible; only the final name shows up.
  events.clear();
  write_file(root + "/.shoal-part", "y");
  CHECK_EQUAL(0, rename((root + "/.shoal-part").c_str(), (root + "/final").c_str()));
  CHECK_TRUE(run_until([this] { return readies("final") == 1; }));
  CHECK_TRUE(idle());
  CHECK_EQUAL(1u, events.size());
}

TEST(Watcher, DirectoryRenamedOrMovedAway) {
  make_dir(root + "/d");
  make_dir(root + "/d/in");
  write_file(root + "/d/in/x", "x");
  start(30);
  CHECK_EQUAL(3u, w->stats().watches);

  CHECK_EQUAL(0, rename((root + "/d").c_str(), (root + "/e").c_str()));
  CHECK_TRUE(run_until([this] { return readies("e/in/x") == 1; }));
  CHECK_EQUAL(1, count(WatchEvent::Kind::removed, "d"));
  CHECK_TRUE(events[0].dir);
  CHECK_TRUE(idle());
  CHECK_EQUAL(3u, w->stats().watches);

  events.clear();
  CHECK_EQUAL(0, rename((root + "/e").c_str(), (tmp + "/out").c_str()));
  CHECK_TRUE(run_until([this] { return count(WatchEvent::Kind::removed, "e") == 1; }));
  CHECK_TRUE(run_until([this] { return w->stats().watches == 1; }));
  write_file(tmp + "/out/in/y", "y");  // no longer ours
  run_ms(80);
  CHECK_EQUAL(1u, events.size());
  CHECK_EQUAL(0u, w->pending());
}

TEST(Watcher, QueueOverflowRescansEverything) {
  FILE* f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
  CHECK_TRUE(f != nullptr);
  long limit = 0;
  CHECK_EQUAL(1, fscanf(f, "%ld", &limit));
  fclose(f);
  if (limit > (1L << 20)) {
    UT_PRINT("max_queued_events too large to overflow quickly; skipped");
    return;
  }
  make_dir(root + "/n");
  make_dir(root + "/n/m");
  std::vector<std::string> files = {"p1", "n/p2", "n/m/p3"};
  for (const auto& r : files) write_file(root + "/" + r, r);
  start(20);

  // Alternate two files so the kernel cannot merge consecutive events.
  std::string flood[2] = {root + "/f1", root + "/f2"};
  for (long i = 0; i < limit + 100; ++i) {
    int fd = open(flood[i % 2].c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK_TRUE(fd >= 0);
    close(fd);
  }
  CHECK_TRUE(run_until([this] { return w->stats().overflows == 1; }));
  CHECK_TRUE(idle());
  for (const auto& r : files) {
    bool scanned = false;
    for (const auto& e : events) scanned |= e.rel == r && e.from_scan;
    CHECK_TRUE(scanned);
  }
  CHECK_TRUE(readies("f1") >= 1);
  CHECK_TRUE(readies("f2") >= 1);
}

TEST(Watcher, RemovedShareGoesSilent) {
  make_dir(root + "/d");
  start(20);
  CHECK_EQUAL(2u, w->stats().watches);
  write_file(root + "/d/pending", "p");
  run_ms(5);
  w->remove_share("s");
  CHECK_EQUAL(0u, w->stats().watches);
  write_file(root + "/after", "a");
  run_ms(80);
  CHECK_EQUAL(0u, events.size());
  CHECK_EQUAL(0u, w->pending());
  // The same name can be added again and scans afresh.
  CHECK_TRUE(w->add_share("s", root, 20).ok());
  CHECK_TRUE(idle());
  CHECK_EQUAL(2, readies("after") + readies("d/pending"));
}

TEST(Watcher, DeletedRootIsSurvivedAndRescanRecovers) {
  make_dir(root + "/d");
  write_file(root + "/d/x", "x");
  start(20);
  nftw(root.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  CHECK_TRUE(run_until([this] { return w->stats().watches == 0; }));
  CHECK_EQUAL(1, count(WatchEvent::Kind::removed, "d/x"));
  CHECK_EQUAL(1u, w->stats().errors);

  make_dir(root);
  write_file(root + "/back", "b");
  events.clear();
  w->rescan("");
  CHECK_TRUE(idle());
  CHECK_EQUAL(1, readies("back"));
  CHECK_EQUAL(1u, w->stats().watches);
  write_file(root + "/later", "l");  // watched again
  CHECK_TRUE(run_until([this] { return readies("later") == 1; }));
}

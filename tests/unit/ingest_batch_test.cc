#include "ingest.h"

#include <CppUTest/TestHarness.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "log.h"

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

void write_file(const std::string& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
}

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

TEST_GROUP(IngestBatch) {
  std::string dir, root, db;
  std::atomic<bool> stop{false};
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);
    char tmpl[] = "/tmp/shoal-ingest-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    root = dir + "/share";
    db = dir + "/shoal.db";
    std::filesystem::create_directory(root);
  }
  void teardown() override {
    std::filesystem::remove_all(dir);
    log_set_level(saved_level);
  }
  std::unique_ptr<Store> open_store() {
    auto r = Store::open(db);
    if (!r) FAIL(r.error().msg.c_str());
    auto roots = std::make_shared<ShareRoots>();
    roots->set("s", root);
    (*r)->set_roots(roots);
    return std::move(r).value();
  }
  // Bytes the database and its WAL take on disk.
  uint64_t db_bytes() {
    std::error_code ec;
    uint64_t n = std::filesystem::file_size(db, ec);
    uint64_t w = std::filesystem::file_size(db + "-wal", ec);
    return n + (ec ? 0 : w);
  }
  IngestJob job(const std::string& rel, IngestJob::Kind k = IngestJob::Kind::file) {
    return IngestJob{k, "s", root, rel};
  }
};

TEST(IngestBatch, StoresOnceThenUnchanged) {
  auto st = open_store();
  const std::string data = random_bytes(9 * 1024 * 1024 + 5, 1);  // read on a second thread
  write_file(root + "/big", data);
  IngestResult r = Ingester::ingest_file(*st, job("big"), "n1", stop);
  CHECK_EQUAL(static_cast<int>(IngestResult::Kind::stored), static_cast<int>(r.kind));
  CHECK_EQUAL(data.size(), r.bytes);
  CHECK(r.record.chunks > 50);
  CHECK_EQUAL(r.record.chunks, r.new_chunks);
  auto rec = st->get_file("s", "big");
  CHECK_TRUE(rec.ok() && rec->has_value());
  CHECK_TRUE((**rec).manifest == r.record.manifest);
  // Every chunk reads back and the bytes add up to the file.
  std::string man;
  CHECK_TRUE(st->get_manifest(r.record.manifest, &man).ok());
  auto m = decode_manifest(man);
  CHECK_TRUE(m.ok());
  std::string back;
  for (const ChunkRef& c : m->chunks) {
    std::string part;
    CHECK_TRUE(st->get_chunk(c.hash, &part).ok());
    back += part;
  }
  CHECK_TRUE(back == data);

  IngestResult again = Ingester::ingest_file(*st, job("big"), "n1", stop);
  CHECK_EQUAL(static_cast<int>(IngestResult::Kind::unchanged), static_cast<int>(again.kind));
}

// A large file's data stays in the file: the database holds where each
// chunk is, not a second copy; the chunks read back from the file, checked,
// and once the file changes they are no longer there (never wrong bytes).
TEST(IngestBatch, LargeFileIsNotCopiedIntoTheDatabase) {
  auto st = open_store();
  const std::string data = random_bytes(40 * 1024 * 1024, 6);
  write_file(root + "/large", data);
  IngestResult r = Ingester::ingest_file(*st, job("large"), "n1", stop);
  CHECK_EQUAL(static_cast<int>(IngestResult::Kind::stored), static_cast<int>(r.kind));
  CHECK(r.new_chunks > 100);
  CHECK(db_bytes() < 2 * 1024 * 1024);
  std::string man;
  CHECK_TRUE(st->get_manifest(r.record.manifest, &man).ok());
  auto m = decode_manifest(man);
  CHECK_TRUE(m.ok());
  size_t off = 0;
  for (const ChunkRef& c : m->chunks) {
    std::string part;
    CHECK_TRUE(st->get_chunk(c.hash, &part).ok());
    CHECK_TRUE(data.compare(off, part.size(), part) == 0);
    off += part.size();
  }
  CHECK_EQUAL(data.size(), off);
  auto ok = st->integrity_check();
  CHECK_TRUE(ok.ok());
  STRCMP_EQUAL("ok", ok->c_str());
  std::string changed = data;
  changed[5] ^= 1;
  write_file(root + "/large", changed);
  std::string part;
  CHECK_TRUE(Errc::not_found == st->get_chunk(m->chunks[0].hash, &part).error().code);
  CHECK_TRUE(st->get_chunk(m->chunks[1].hash, &part).ok());
}

TEST(IngestBatch, FileGrowingWhileReadIsNotRecorded) {
  auto st = open_store();
  const std::string p = root + "/growing";
  write_file(p, random_bytes(24 * 1024 * 1024, 2));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    int fd = ::open(p.c_str(), O_WRONLY | O_APPEND);
    std::string more = random_bytes(4096, 3);
    while (!done.load()) {
      if (::write(fd, more.data(), more.size()) < 0) break;
      usleep(500);
    }
    ::close(fd);
  });
  IngestResult r = Ingester::ingest_file(*st, job("growing"), "n1", stop);
  done = true;
  writer.join();
  CHECK_EQUAL(static_cast<int>(IngestResult::Kind::skipped), static_cast<int>(r.kind));
  CHECK_TRUE(r.error.code == Errc::busy);
  auto rec = st->get_file("s", "growing");
  CHECK_TRUE(rec.ok() && !rec->has_value());
}

TEST(IngestBatch, StopAbandonsTheFile) {
  auto st = open_store();
  write_file(root + "/f", random_bytes(8 * 1024 * 1024, 4));
  stop = true;
  IngestResult r = Ingester::ingest_file(*st, job("f"), "n1", stop);
  CHECK_EQUAL(static_cast<int>(IngestResult::Kind::skipped), static_cast<int>(r.kind));
  auto rec = st->get_file("s", "f");
  CHECK_TRUE(rec.ok() && !rec->has_value());
}

// Many queued files share transactions; each result arrives once, and only
// when another connection can already see the record it reports.
TEST(IngestBatch, QueuedFilesAreReportedAfterTheirCommit) {
  evthread_use_pthreads();
  event_base* base = event_base_new();
  CHECK(base != nullptr);
  auto reader = open_store();
  std::map<std::string, int> stored;
  int not_visible = 0, removed = 0;
  std::unique_ptr<Ingester> in;
  {
    auto r = Ingester::start(base, open_store(), "n1", [&](const IngestResult& res) {
      if (res.kind == IngestResult::Kind::removed) removed++;
      if (res.kind != IngestResult::Kind::stored) return;
      stored[res.rel]++;
      auto rec = reader->get_file("s", res.rel);
      if (!rec.ok() || !rec->has_value() || (**rec).manifest != res.record.manifest) not_visible++;
    });
    CHECK_TRUE(r.ok());
    in = std::move(r.value());
  }
  const int n = 700;  // more than one transaction's worth
  for (int i = 0; i < n; i++) write_file(root + "/f" + std::to_string(i), random_bytes(4096, 100 + i));
  write_file(root + "/big", random_bytes(6 * 1024 * 1024, 5));
  for (int i = 0; i < n / 2; i++) in->submit(job("f" + std::to_string(i)));
  in->submit(job("big"));
  for (int i = n / 2; i < n; i++) in->submit(job("f" + std::to_string(i)));
  int64_t end = mono_ms() + 20000;
  while (in->pending() > 0 && mono_ms() < end) {
    timeval tv{0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK_EQUAL(0u, in->pending());
  CHECK_EQUAL(static_cast<size_t>(n + 1), stored.size());
  for (const auto& [rel, count] : stored) CHECK_EQUAL(1, count);
  CHECK_EQUAL(0, not_visible);

  // A removal is reported once committed, too.
  std::filesystem::remove(root + "/f0");
  in->submit(job("f0", IngestJob::Kind::removed));
  end = mono_ms() + 5000;
  while (in->pending() > 0 && mono_ms() < end) {
    timeval tv{0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  CHECK_EQUAL(1, removed);
  auto rec = reader->get_file("s", "f0");
  CHECK_TRUE(rec.ok() && rec->has_value());
  STRCMP_EQUAL("deleted", (**rec).state.c_str());
  CHECK_EQUAL(static_cast<uint64_t>(n + 1), in->stats().files_stored);
  in.reset();
  reader.reset();
  event_base_free(base);
}

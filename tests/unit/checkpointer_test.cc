#include "checkpointer.h"

#include <CppUTest/TestHarness.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "log.h"

using namespace shoal;

namespace {

std::vector<uint8_t> bytes_for(uint32_t seed, size_t n) {
  std::vector<uint8_t> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

int64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

}  // namespace

TEST_GROUP(Checkpointer) {
  std::string dir, db;
  std::unique_ptr<Store> st;
  uint32_t next_seed = 1;
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);
    char tmpl[] = "/tmp/shoal-ckpt-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    db = dir + "/shoal.db";
    auto r = Store::open(db);
    if (!r) FAIL(r.error().msg.c_str());
    st = std::move(r).value();
    CHECK_TRUE(st->set_autocheckpoint(false).ok());
  }
  void teardown() override {
    st.reset();
    std::filesystem::remove_all(dir);
    log_set_level(saved_level);
  }
  // One transaction of `n` new 64 KiB chunks.
  void write_txn(int n) {
    auto t = st->begin();
    CHECK_TRUE(t.ok());
    for (int i = 0; i < n; i++) {
      auto data = bytes_for(next_seed++, 64 * 1024);
      auto r = st->put_chunk(sha256(data.data(), data.size()), data.data(), data.size());
      CHECK_TRUE(r.ok() && *r);
    }
    CHECK_TRUE(t->commit().ok());
  }
};

TEST(Checkpointer, KicksCopyTheWalIntoTheDatabase) {
  auto c = Checkpointer::start(db);
  CHECK_TRUE(c.ok());
  const int64_t before = file_size(db);
  for (int round = 0; round < 4; round++) {
    write_txn(128);  // 8 MiB
    (*c)->kick();
  }
  (*c)->stop();
  (*c)->stop();  // twice is fine
  // The passes ran on the checkpointer's connection: the data is in the
  // database file, not only in the WAL.
  CHECK(file_size(db) - before > 24 * 1024 * 1024);
  auto ok = st->integrity_check();
  CHECK_TRUE(ok.ok());
  STRCMP_EQUAL("ok", ok->c_str());
  auto s = st->stats();
  CHECK_TRUE(s.ok());
  CHECK_EQUAL(512u, s->chunks);
  CHECK_TRUE(st->checkpoint().ok());  // truncate
  CHECK_EQUAL(0, file_size(db + "-wal"));
}

TEST(Checkpointer, DestroyedWhileBusy) {
  auto c = Checkpointer::start(db);
  CHECK_TRUE(c.ok());
  write_txn(256);
  (*c)->kick();
  c->reset();  // interrupts a pass under way; must not hang or damage the store
  auto ok = st->integrity_check();
  CHECK_TRUE(ok.ok());
  STRCMP_EQUAL("ok", ok->c_str());
}

TEST(Checkpointer, StartFailsOnAForeignFile) {
  const std::string p = dir + "/foreign";
  FILE* f = fopen(p.c_str(), "w");
  CHECK(f != nullptr);
  fputs("not a database at all, just text long enough to be looked at", f);
  fclose(f);
  CHECK_FALSE(Checkpointer::start(p).ok());
}

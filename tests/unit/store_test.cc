#include "store.h"

#include "testutil.h"

#include <CppUTest/TestHarness.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace shoal;
using test::read_file;
using test::write_file;

namespace {



std::string chunk_data(uint32_t seed, size_t len) { return test::pseudo_bytes(seed, len, 1); }

struct Chunk {
  std::string data;
  Hash hash{};
  ChunkRef ref() const { return {hash, static_cast<uint32_t>(data.size())}; }
};

Chunk make_chunk(uint32_t seed, size_t len = 1000) {
  Chunk c{chunk_data(seed, len), {}};
  c.hash = sha256(c.data.data(), c.data.size());
  return c;
}

// A stand-in manifest encoding: the store only hashes and keeps the bytes.
struct Version {
  FileRecord rec;
  std::string encoded;
  std::vector<ChunkRef> refs;
};

Version make_version(const std::string& share, const std::string& path,
                     const std::vector<Chunk>& chunks, const std::string& tag) {
  Version v;
  v.encoded = "manifest|" + path + "|" + tag;
  for (const Chunk& c : chunks) {
    v.refs.push_back(c.ref());
    v.encoded += "|" + hash_hex(c.hash);
    v.rec.size += c.data.size();
  }
  v.rec.share = share;
  v.rec.path = path;
  v.rec.manifest = sha256(v.encoded.data(), v.encoded.size());
  v.rec.chunks = static_cast<uint32_t>(chunks.size());
  v.rec.mtime_ns = 1700000000123456789LL;
  v.rec.mode = 0644;
  v.rec.inode = 0xfedcba9876543210ULL;  // above INT64_MAX: must round-trip
  v.rec.dev = 2049;
  return v;
}

int64_t pragma(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  CHECK_EQUAL(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &s, nullptr));
  CHECK_EQUAL(SQLITE_ROW, sqlite3_step(s));
  int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

}  // namespace

TEST_GROUP(Store) {
  std::string dir;
  std::string db;
  std::unique_ptr<Store> st;

  void setup() override {
    char tmpl[] = "/tmp/shoal-store-XXXXXX";
    CHECK(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    db = dir + "/shoal.db";
    st = open_ok();
  }
  void teardown() override {
    st.reset();
    std::filesystem::remove_all(dir);
  }
  std::unique_ptr<Store> open_ok() {
    auto r = Store::open(db);
    if (!r) FAIL(r.error().msg.c_str());
    return std::move(r).value();
  }
  void put(const Chunk& c) {
    auto r = st->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(c.data.data()), c.data.size());
    if (!r) FAIL(r.error().msg.c_str());
  }
  void commit(const Version& v) {
    auto s = st->commit_file(v.rec, v.encoded, v.refs);
    if (!s) FAIL(s.error().msg.c_str());
  }
  // Puts the chunks and commits a version of share:path.
  Version store_version(const std::string& share, const std::string& path,
                        const std::vector<Chunk>& chunks, const std::string& tag) {
    for (const Chunk& c : chunks) put(c);
    Version v = make_version(share, path, chunks, tag);
    commit(v);
    return v;
  }
  uint64_t latest_seq(const std::string& share, const std::string& path) {
    uint64_t seq = 0;
    auto cat = st->catalog_since(share, 0, 1000);  // range-for over .value() of a temporary dangles
    for (const auto& e : cat.value())
      if (e.path == path) seq = e.seq;
    return seq;
  }
};

TEST(Store, CreateSetsWalPageSizeVersionAndReopenKeepsData) {
  Chunk c = make_chunk(1);
  put(c);
  CHECK_TRUE(st->set_meta("epoch", "7").ok());
  sqlite3* h = st->db();
  CHECK_EQUAL(16384, pragma(h, "PRAGMA page_size"));
  CHECK_EQUAL(2, pragma(h, "PRAGMA user_version"));
  CHECK_EQUAL(0x53484f4c, pragma(h, "PRAGMA application_id"));
  CHECK_EQUAL(1, pragma(h, "PRAGMA synchronous"));  // NORMAL
  CHECK_EQUAL(-512, pragma(h, "PRAGMA cache_size"));
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, nullptr);
  CHECK_EQUAL(SQLITE_ROW, sqlite3_step(s));
  STRCMP_EQUAL("wal", reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);

  st.reset();
  st = open_ok();
  std::string out;
  CHECK_TRUE(st->get_chunk(c.hash, &out).ok());
  CHECK(out == c.data);
  STRCMP_EQUAL("7", st->get_meta("epoch").value().value().c_str());
  CHECK_EQUAL(1u, st->stats().value().chunks);
}

TEST(Store, ForeignTextFileRefusedAndUntouched) {
  std::string p = dir + "/notes.db";
  std::string text = "this is not a database, just a text file that happens to be long enough\n";
  for (int i = 0; i < 6; i++) text += text;
  write_file(p, text);
  auto r = Store::open(p);
  CHECK_FALSE(r.ok());
  CHECK(r.error().code == Errc::corrupt);
  CHECK(r.error().msg.find(p) != std::string::npos);
  CHECK(read_file(p) == text);
  CHECK_FALSE(std::filesystem::exists(p + "-wal"));
}

TEST(Store, ForeignSqliteDatabasesRefusedAndUntouched) {
  struct Case {
    const char* name;
    const char* sql;
    Errc want;
  } cases[] = {
      {"other-app.db", "PRAGMA application_id = 42; CREATE TABLE t(x); INSERT INTO t VALUES(1);",
       Errc::corrupt},
      {"no-app-id.db", "CREATE TABLE chunks(x); INSERT INTO chunks VALUES(1);", Errc::corrupt},
      {"newer.db", "PRAGMA application_id = 1397247820; PRAGMA user_version = 99; CREATE TABLE t(x);",
       Errc::unsupported},
      {"ours-no-tables.db", "PRAGMA application_id = 1397247820; PRAGMA user_version = 1; CREATE TABLE t(x);",
       Errc::corrupt},
      {"wal-other.db", "PRAGMA journal_mode = WAL; PRAGMA application_id = 7; CREATE TABLE t(x);",
       Errc::corrupt},
  };
  for (const Case& c : cases) {
    std::string p = dir + "/" + c.name;
    sqlite3* h = nullptr;
    CHECK_EQUAL(SQLITE_OK, sqlite3_open(p.c_str(), &h));
    CHECK_EQUAL(SQLITE_OK, sqlite3_exec(h, c.sql, nullptr, nullptr, nullptr));
    sqlite3_close(h);
    std::string before = read_file(p);
    auto r = Store::open(p);
    CHECK_FALSE(r.ok());
    CHECK(r.error().code == c.want);
    CHECK(r.error().msg.find(p) != std::string::npos);
    CHECK(read_file(p) == before);
  }
}

TEST(Store, EmptyFileBecomesStore) {
  std::string p = dir + "/empty.db";
  write_file(p, "");
  auto r = Store::open(p);
  CHECK_TRUE(r.ok());
  CHECK_EQUAL(2, pragma((*r)->db(), "PRAGMA user_version"));
}

TEST(Store, PutChunkDedupes) {
  Chunk c = make_chunk(2, 5000);
  auto first = st->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(c.data.data()), c.data.size());
  CHECK_TRUE(first.value());
  StoreStats s1 = st->stats().value();
  auto second = st->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(c.data.data()), c.data.size());
  CHECK_TRUE(second.ok());
  CHECK_FALSE(second.value());
  StoreStats s2 = st->stats().value();
  CHECK_EQUAL(1u, s2.chunks);
  CHECK_EQUAL(5000u, s2.chunk_bytes);
  CHECK_EQUAL(s1.chunk_bytes, s2.chunk_bytes);
  CHECK_TRUE(st->has_chunk(c.hash).value());
  CHECK_FALSE(st->has_chunk(make_chunk(3).hash).value());
}

TEST(Store, PutChunkRejectsBadLength) {
  Chunk c = make_chunk(4);
  CHECK(st->put_chunk(c.hash, nullptr, 0).error().code == Errc::invalid);
  std::string big(kMaxChunkLen + 1, 'x');
  CHECK(st->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(big.data()), big.size()).error().code ==
        Errc::invalid);
}

TEST(Store, GetChunkRoundTripsLargestChunk) {
  Chunk c = make_chunk(5, kMaxChunkLen);
  put(c);
  std::string out = "stale";
  CHECK_TRUE(st->get_chunk(c.hash, &out).ok());
  CHECK_EQUAL(kMaxChunkLen, out.size());
  CHECK(out == c.data);
  CHECK(st->get_chunk(make_chunk(6).hash, &out).error().code == Errc::not_found);
}

TEST(Store, CommitFileThenGetAndList) {
  Version a = store_version("docs", "b/report.pdf", {make_chunk(10), make_chunk(11)}, "1");
  Version b = store_version("docs", "a.txt", {make_chunk(12)}, "1");
  Version c = store_version("pics", "cat.jpg", {make_chunk(13)}, "1");

  auto got = st->get_file("docs", "b/report.pdf").value();
  CHECK_TRUE(got.has_value());
  CHECK(got->manifest == a.rec.manifest);
  CHECK_EQUAL(2000u, got->size);
  CHECK_EQUAL(2u, got->chunks);
  CHECK_EQUAL(a.rec.mtime_ns, got->mtime_ns);
  CHECK_EQUAL(0644u, got->mode);
  CHECK_EQUAL(0xfedcba9876543210ULL, got->inode);
  CHECK_EQUAL(2049u, got->dev);
  STRCMP_EQUAL("stored", got->state.c_str());
  CHECK_FALSE(st->get_file("docs", "missing").value().has_value());

  auto docs = st->list_files("docs").value();
  CHECK_EQUAL(2u, docs.size());
  STRCMP_EQUAL("a.txt", docs[0].path.c_str());
  STRCMP_EQUAL("b/report.pdf", docs[1].path.c_str());
  auto all = st->list_files("").value();
  CHECK_EQUAL(3u, all.size());
  STRCMP_EQUAL("pics", all[2].share.c_str());

  std::string body;
  CHECK_TRUE(st->get_manifest(c.rec.manifest, &body).ok());
  CHECK(body == c.encoded);
  CHECK(st->get_manifest(make_chunk(99).hash, &body).error().code == Errc::not_found);

  auto ss = st->share_stats().value();
  CHECK_EQUAL(2u, ss.size());
  STRCMP_EQUAL("docs", ss[0].share.c_str());
  CHECK_EQUAL(2u, ss[0].files);
  CHECK_EQUAL(3000u, ss[0].bytes);
  CHECK_EQUAL(1u, ss[1].files);
  CHECK_EQUAL(3u, st->stats().value().manifests);
  (void)b;
}

TEST(Store, CommitFileChecksItsInputs) {
  Chunk c1 = make_chunk(20);
  Chunk c2 = make_chunk(21);
  put(c1);
  Version v = make_version("s", "f", {c1, c2}, "1");  // c2 never put
  auto r = st->commit_file(v.rec, v.encoded, v.refs);
  CHECK(r.error().code == Errc::not_found);
  CHECK_FALSE(st->get_file("s", "f").value().has_value());
  CHECK_EQUAL(0u, st->stats().value().manifests);
  CHECK_EQUAL(0u, st->catalog_since("s", 0, 10).value().size());

  put(c2);
  Version bad = v;
  bad.encoded += "x";  // no longer what rec.manifest names
  CHECK(st->commit_file(bad.rec, bad.encoded, bad.refs).error().code == Errc::invalid);
  bad = v;
  bad.refs.pop_back();
  CHECK(st->commit_file(bad.rec, bad.encoded, bad.refs).error().code == Errc::invalid);
  commit(v);
}

TEST(Store, NewVersionReplacesRecordWithHigherSeq) {
  Version v1 = store_version("s", "f.txt", {make_chunk(30)}, "v1");
  uint64_t seq1 = latest_seq("s", "f.txt");
  Version v2 = store_version("s", "f.txt", {make_chunk(31), make_chunk(32)}, "v2");
  uint64_t seq2 = latest_seq("s", "f.txt");
  CHECK(seq2 > seq1);
  auto rec = st->get_file("s", "f.txt").value();
  CHECK(rec->manifest == v2.rec.manifest);
  CHECK_EQUAL(1u, st->list_files("s").value().size());

  // Recommitting the current version (a restart re-scan) adds no entry.
  commit(v2);
  CHECK_EQUAL(seq2, latest_seq("s", "f.txt"));
  CHECK_EQUAL(2u, st->catalog_since("s", 0, 10).value().size());

  // Going back to v1's exact bytes must make v1 the newest entry again.
  commit(v1);
  auto cat = st->catalog_since("s", 0, 10).value();
  CHECK_EQUAL(2u, cat.size());
  CHECK(cat.back().manifest == v1.rec.manifest);
  CHECK(cat.back().seq > seq2);
}

TEST(Store, SameVersionInTwoSharesHasAnEntryInEach) {
  Version a = store_version("one", "same.txt", {make_chunk(40)}, "1");
  Version b = a;
  b.rec.share = "two";
  commit(b);
  auto c1 = st->catalog_since("one", 0, 10).value();
  auto c2 = st->catalog_since("two", 0, 10).value();
  CHECK_EQUAL(1u, c1.size());
  CHECK_EQUAL(1u, c2.size());
  CHECK_EQUAL(1u, c2[0].seq);  // seqs are per share
  CHECK(c2[0].manifest == a.rec.manifest);
  CHECK_EQUAL(1u, st->stats().value().manifests);  // body stored once
}

TEST(Store, InShareOnlyForObjectsOfThatShare) {
  Chunk shared = make_chunk(50), only_t = make_chunk(51), orphan = make_chunk(52);
  Version s = store_version("s", "a.txt", {shared}, "1");
  Version t = store_version("t", "secret.txt", {only_t, shared}, "1");
  put(orphan);  // stored, in no manifest (a transfer in progress)
  CHECK_TRUE(st->in_share("s", s.rec.manifest, true).value());
  CHECK_TRUE(st->in_share("s", shared.hash, false).value());
  CHECK_FALSE(st->in_share("s", t.rec.manifest, true).value());
  CHECK_FALSE(st->in_share("s", only_t.hash, false).value());
  CHECK_TRUE(st->in_share("t", only_t.hash, false).value());
  CHECK_TRUE(st->in_share("t", shared.hash, false).value());
  CHECK_FALSE(st->in_share("s", orphan.hash, false).value());
  CHECK_FALSE(st->in_share("t", orphan.hash, false).value());
  // A manifest id asked for as a chunk (and the reverse) is not served.
  CHECK_FALSE(st->in_share("s", s.rec.manifest, false).value());
  CHECK_FALSE(st->in_share("s", shared.hash, true).value());
  CHECK_FALSE(st->in_share("nope", shared.hash, false).value());
}

TEST(Store, CountFilesCountsStoredRecordsOfOneShare) {
  CHECK_EQUAL(0u, st->count_files("s").value());
  store_version("s", "a", {make_chunk(60)}, "1");
  store_version("s", "b", {make_chunk(61)}, "1");
  store_version("s", "a", {make_chunk(62)}, "2");  // an update is no new file
  store_version("t", "c", {make_chunk(63)}, "1");
  CHECK_EQUAL(2u, st->count_files("s").value());
  CHECK_EQUAL(1u, st->count_files("t").value());
  CHECK_TRUE(st->remove_file("s", "b", false).ok());
  CHECK_EQUAL(1u, st->count_files("s").value());
}

TEST(Store, CatalogSincePages) {
  std::vector<Hash> ids;
  for (uint32_t i = 0; i < 7; i++) {
    Version v = store_version("s", "file" + std::to_string(i), {make_chunk(100 + i)}, "1");
    ids.push_back(v.rec.manifest);
  }
  Version tomb = make_version("s", "gone", {}, "tombstone");
  tomb.rec.state = "deleted";
  CHECK_TRUE(st->commit_file(tomb.rec, tomb.encoded, tomb.refs, kManifestDeleted).ok());

  std::vector<CatalogEntry> all;
  uint64_t after = 0;
  for (;;) {
    auto page = st->catalog_since("s", after, 3).value();
    if (page.empty()) break;
    CHECK(page.size() <= 3);
    for (auto& e : page) {
      CHECK(e.seq > after);
      after = e.seq;
      all.push_back(e);
    }
  }
  CHECK_EQUAL(8u, all.size());
  for (size_t i = 0; i < ids.size(); i++) {
    CHECK(all[i].manifest == ids[i]);
    CHECK_EQUAL(0u, all[i].flags);
  }
  STRCMP_EQUAL("gone", all[7].path.c_str());
  CHECK_EQUAL(static_cast<uint32_t>(kManifestDeleted), all[7].flags);
  CHECK_EQUAL(0u, st->catalog_since("other", 0, 10).value().size());
  CHECK_EQUAL(0u, st->catalog_since("s", after, 10).value().size());
}

TEST(Store, GcRemovesOrphansAndOldVersionsKeepsSharedAndLatest) {
  Chunk shared = make_chunk(50, 3000);
  Chunk old_only = make_chunk(51, 2000);
  Chunk fresh = make_chunk(52, 1000);
  Chunk orphan = make_chunk(53, 700);
  Version v1 = store_version("s", "f", {shared, old_only}, "v1");
  Version v2 = store_version("s", "f", {shared, fresh}, "v2");
  // A path whose record was forgotten keeps its latest version.
  Version g = store_version("s", "forgotten", {make_chunk(54, 500)}, "1");
  CHECK_TRUE(st->remove_file("s", "forgotten", true).ok());
  put(orphan);  // put but never committed, as after a crash mid-ingest

  GcStats gs = st->gc().value();
  CHECK_EQUAL(1u, gs.manifests_removed);
  CHECK_EQUAL(2u, gs.chunks_removed);
  CHECK_EQUAL(2700u, gs.bytes_removed);

  std::string out;
  CHECK_TRUE(st->get_chunk(shared.hash, &out).ok());
  CHECK_TRUE(st->get_chunk(fresh.hash, &out).ok());
  CHECK_FALSE(st->has_chunk(old_only.hash).value());
  CHECK_FALSE(st->has_chunk(orphan.hash).value());
  CHECK(st->get_manifest(v1.rec.manifest, &out).error().code == Errc::not_found);
  CHECK_TRUE(st->get_manifest(v2.rec.manifest, &out).ok());
  CHECK_TRUE(st->get_manifest(g.rec.manifest, &out).ok());
  auto cat = st->catalog_since("s", 0, 10).value();
  CHECK_EQUAL(2u, cat.size());
  StoreStats s = st->stats().value();
  CHECK_EQUAL(3u, s.chunks);
  CHECK_EQUAL(4500u, s.chunk_bytes);
  STRCMP_EQUAL("ok", st->integrity_check().value().c_str());

  GcStats again = st->gc().value();
  CHECK_EQUAL(0u, again.manifests_removed + again.chunks_removed + again.bytes_removed);
}

TEST(Store, GcKeepsOldVersionAnotherShareStillUses) {
  Version v1 = store_version("a", "f", {make_chunk(60)}, "v1");
  Version b = v1;
  b.rec.share = "b";
  commit(b);
  store_version("a", "f", {make_chunk(61)}, "v2");
  GcStats gs = st->gc().value();
  CHECK_EQUAL(0u, gs.manifests_removed);
  CHECK_EQUAL(0u, gs.chunks_removed);
  CHECK_EQUAL(1u, st->catalog_since("a", 0, 10).value().size());  // a's stale entry went
  CHECK_EQUAL(1u, st->catalog_since("b", 0, 10).value().size());
}

TEST(Store, InterruptedTransactionLeavesNothing) {
  Version kept = store_version("s", "kept", {make_chunk(70)}, "1");
  StoreStats before = st->stats().value();
  {
    auto t = st->begin();
    CHECK_TRUE(t.ok());
    CHECK(st->begin().error().code == Errc::internal);  // no nesting
    Chunk a = make_chunk(71);
    Chunk b = make_chunk(72);
    put(a);
    put(b);
    Version v = make_version("s", "new", {a, b}, "1");
    commit(v);
    CHECK_TRUE(st->set_meta("k", "v").ok());
    CHECK_TRUE(st->get_file("s", "new").value().has_value());  // visible inside
  }  // destroyed without commit
  StoreStats after = st->stats().value();
  CHECK_EQUAL(before.chunks, after.chunks);
  CHECK_EQUAL(before.chunk_bytes, after.chunk_bytes);
  CHECK_EQUAL(before.manifests, after.manifests);
  CHECK_FALSE(st->get_file("s", "new").value().has_value());
  CHECK_FALSE(st->get_meta("k").value().has_value());
  CHECK_EQUAL(1u, st->catalog_since("s", 0, 10).value().size());

  // The next transaction works and commits; seqs continue.
  auto t = st->begin();
  CHECK_TRUE(t.ok());
  Version v = store_version("s", "new", {make_chunk(73)}, "2");
  CHECK_TRUE(t->commit().ok());
  CHECK_TRUE(st->get_file("s", "new").value().has_value());
  CHECK(latest_seq("s", "new") > latest_seq("s", "kept"));
  (void)kept;
  (void)v;
}

TEST(Store, SecondConnectionReadsBesideTheWriter) {
  Chunk c = make_chunk(75);
  auto t = st->begin();
  CHECK_TRUE(t.ok());
  put(c);
  std::unique_ptr<Store> reader = open_ok();  // opening needs no write lock
  CHECK_FALSE(reader->has_chunk(c.hash).value());  // not committed yet
  sqlite3_busy_timeout(reader->db(), 10);  // not the 5 s default
  CHECK(reader->begin().error().code == Errc::busy);  // one writer at a time
  CHECK_TRUE(t->commit().ok());
  CHECK_TRUE(reader->has_chunk(c.hash).value());
}

TEST(Store, FailedCommitInsideTransactionKeepsEarlierWork) {
  auto t = st->begin();
  CHECK_TRUE(t.ok());
  Chunk a = make_chunk(80);
  put(a);
  Version ok = make_version("s", "ok", {a}, "1");
  commit(ok);
  Version bad = make_version("s", "bad", {make_chunk(81)}, "1");  // chunk missing
  CHECK(st->commit_file(bad.rec, bad.encoded, bad.refs).error().code == Errc::not_found);
  CHECK_TRUE(t->commit().ok());
  CHECK_TRUE(st->get_file("s", "ok").value().has_value());
  CHECK_FALSE(st->get_file("s", "bad").value().has_value());
  CHECK_EQUAL(1u, st->stats().value().manifests);
}

TEST(Store, RemoveFileMarksOrForgets) {
  store_version("s", "a", {make_chunk(90)}, "1");
  store_version("s", "b", {make_chunk(91)}, "1");
  CHECK_TRUE(st->remove_file("s", "a", false).ok());
  STRCMP_EQUAL("deleted", st->get_file("s", "a").value()->state.c_str());
  auto ss = st->share_stats().value();
  CHECK_EQUAL(1u, ss[0].files);
  CHECK_EQUAL(1000u, ss[0].bytes);
  CHECK_TRUE(st->remove_file("s", "b", true).ok());
  CHECK_FALSE(st->get_file("s", "b").value().has_value());
  CHECK(st->remove_file("s", "b", true).error().code == Errc::not_found);
  CHECK(st->remove_file("s", "nope", false).error().code == Errc::not_found);
}

TEST(Store, MetaSetGetOverwrite) {
  CHECK_FALSE(st->get_meta("node").value().has_value());
  CHECK_TRUE(st->set_meta("node", "alpha").ok());
  CHECK_TRUE(st->set_meta("node", "beta").ok());
  STRCMP_EQUAL("beta", st->get_meta("node").value()->c_str());
}

TEST(Store, IntegrityCheckOkAndCheckpointTruncatesWal) {
  for (uint32_t i = 0; i < 20; i++) put(make_chunk(200 + i, 60000));
  STRCMP_EQUAL("ok", st->integrity_check().value().c_str());
  CHECK(std::filesystem::file_size(db + "-wal") > 0);
  CHECK_TRUE(st->checkpoint().ok());
  CHECK_EQUAL(0u, std::filesystem::file_size(db + "-wal"));
}

namespace {

// Puts 4 MiB of chunks in one transaction; returns the connection's page
// cache use afterwards, in bytes.
int cache_after_big_transaction(Store* s, uint32_t seed) {
  auto t = s->begin();
  CHECK_TRUE(t.ok());
  for (uint32_t i = 0; i < 64; i++) {
    Chunk c = make_chunk(seed + i, 64 * 1024);
    CHECK_TRUE(s->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(c.data.data()), c.data.size()).ok());
  }
  CHECK_TRUE(t->commit().ok());
  int cur = 0, hi = 0;
  CHECK_EQUAL(SQLITE_OK, sqlite3_db_status(s->db(), SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0));
  return cur;
}

}  // namespace

TEST(Store, PageCacheStaysSmallInBigTransactions) {
  // cache_size -512 plus per-page overhead
  CHECK(cache_after_big_transaction(st.get(), 400) <= 640 * 1024);
  st.reset();
  st = open_ok();  // an existing file takes another path through open()
  CHECK(cache_after_big_transaction(st.get(), 500) <= 640 * 1024);
}

TEST(Store, SmallerPageCacheOnRequestAndDataStillReadable) {
  CHECK_TRUE(st->set_cache_kib(128).ok());
  CHECK(cache_after_big_transaction(st.get(), 600) <= 192 * 1024);
  for (uint32_t i = 0; i < 64; i += 7) {
    Chunk c = make_chunk(600 + i, 64 * 1024);
    std::string back;
    CHECK_TRUE(st->get_chunk(c.hash, &back).ok());
    CHECK(back == c.data);
  }
}

TEST(Store, DiskFullIsNoSpaceAndTransactionReportsIt) {
  CHECK_EQUAL(SQLITE_OK, sqlite3_exec(st->db(), "PRAGMA max_page_count = 40", nullptr, nullptr, nullptr));
  auto t = st->begin();
  CHECK_TRUE(t.ok());
  Error last;
  for (uint32_t i = 0; i < 40; i++) {
    Chunk c = make_chunk(300 + i, 60000);
    auto r = st->put_chunk(c.hash, reinterpret_cast<const uint8_t*>(c.data.data()), c.data.size());
    if (!r) {
      last = r.error();
      break;
    }
  }
  CHECK(last.code == Errc::no_space);
  CHECK(!last.msg.empty());
  (void)t->commit();  // whatever SQLite kept of the transaction, Txn must end cleanly
}

// Not a unit test: SHOAL_STORE_BENCH=<dir> build/unit_tests -g StoreBench -v
// puts 1 GiB of distinct 64 KiB chunks in transactions of 64 and prints MB/s.
TEST_GROUP(StoreBench){};

static long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

TEST(StoreBench, Put1GiB) {
  const char* where = getenv("SHOAL_STORE_BENCH");
  if (where == nullptr) return;
  std::string p = std::string(where) + "/bench.db";
  std::filesystem::remove(p);
  auto r = Store::open(p);
  CHECK_TRUE(r.ok());
  auto& s = *r;
  if (const char* ac = getenv("SHOAL_BENCH_AUTOCKPT")) {
    std::string sql = std::string("PRAGMA wal_autocheckpoint = ") + ac;
    sqlite3_exec(s->db(), sql.c_str(), nullptr, nullptr, nullptr);
  }
  const size_t kLen = 64 * 1024, kCount = 16384;
  std::string pool = chunk_data(1, 4 << 20);
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kCount; i += 64) {
    auto t = s->begin();
    CHECK_TRUE(t.ok());
    for (size_t j = i; j < i + 64; j++) {
      Hash h = sha256(&j, sizeof j);  // unique name; the store does not recheck data
      const auto* d = reinterpret_cast<const uint8_t*>(pool.data()) + (j * 4096) % (pool.size() - kLen);
      CHECK_TRUE(s->put_chunk(h, d, kLen).ok());
    }
    CHECK_TRUE(t->commit().ok());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nstore put: %.0f MB/s (%.2f s for 1 GiB), peak RSS %ld KiB\n", 1024.0 / secs, secs,
              peak_rss_kib());
  std::printf("sqlite heap high water %lld KiB\n", static_cast<long long>(sqlite3_memory_highwater(0) >> 10));
  // One 512 MiB file over the first half of the chunks; gc drops the rest.
  Version v;
  for (size_t j = 0; j < kCount / 2; j++) {
    Hash h = sha256(&j, sizeof j);
    v.refs.push_back({h, static_cast<uint32_t>(kLen)});
    v.encoded.append(reinterpret_cast<const char*>(h.data()), h.size());
  }
  v.rec.share = "bench";
  v.rec.path = "big";
  v.rec.manifest = sha256(v.encoded.data(), v.encoded.size());
  v.rec.chunks = static_cast<uint32_t>(v.refs.size());
  v.rec.size = kLen * v.refs.size();
  auto t1 = std::chrono::steady_clock::now();
  CHECK_TRUE(s->commit_file(v.rec, v.encoded, v.refs).ok());
  double cms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  std::printf("commit_file of %zu chunks: %.0f ms\n", v.refs.size(), cms);
  t1 = std::chrono::steady_clock::now();
  auto st = s->stats();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  std::printf("stats: %llu chunks in %.2f ms\n", static_cast<unsigned long long>(st->chunks), ms);
  t1 = std::chrono::steady_clock::now();
  auto g = s->gc();
  ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  std::printf("gc of orphans: %llu chunks in %.0f ms, peak RSS %ld KiB\n",
              static_cast<unsigned long long>(g->chunks_removed), ms, peak_rss_kib());
  s.reset();
  std::filesystem::remove(p);
}

TEST(Store, ConnectionDoesNotPreallocateItsPageCache) {
  const sqlite3_int64 before = sqlite3_memory_used();
  auto second = open_ok();
  const sqlite3_int64 used = sqlite3_memory_used() - before;
  UT_PRINT(("connection: " + std::to_string(used) + " bytes").c_str());
  // A block of 20 pages (330 KiB) came on top before.
  CHECK(used < 320 * 1024);
}

#include "ingest.h"

#include "testutil.h"

#include <CppUTest/TestHarness.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "chunk_stream.h"
#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "prio.h"

using namespace shoal;
using test::read_file;
using test::write_file;

namespace {


std::string bytes_of(uint32_t seed, size_t len) { return test::pseudo_bytes(seed, len, 3); }

void set_mtime(const std::string& p, int64_t ns) {
  timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(ns / 1000000000LL);
  ts[0].tv_nsec = ts[1].tv_nsec = static_cast<long>(ns % 1000000000LL);
  CHECK_EQUAL(0, ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW));
}

// A fresh temp dir, on tmpfs when there is one: publishing and the store
// fsync, which costs tens of ms per call on a disk and nothing on tmpfs.
std::string make_tmp_dir(const char* tag) {
  for (const char* base : {"/dev/shm", "/tmp"}) {
    std::string tmpl = std::string(base) + "/shoal-" + tag + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) return tmpl;
  }
  return "";
}

}  // namespace

TEST_GROUP(Ingest) {
  std::string tmp, root;
  std::unique_ptr<Store> store;
  std::atomic<bool> stop{false};
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);
    tmp = make_tmp_dir("ingest");
    CHECK_FALSE(tmp.empty());
    root = tmp + "/share";
    CHECK_EQUAL(0, ::mkdir(root.c_str(), 0755));
    auto s = Store::open(tmp + "/shoal.db");
    CHECK_TRUE(s.ok());
    store = std::move(s.value());
  }

  void teardown() override {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    log_set_level(saved_level);
  }

  IngestJob job(const std::string& rel, IngestJob::Kind kind = IngestJob::Kind::file) {
    IngestJob j;
    j.kind = kind;
    j.share = "docs";
    j.root = root;
    j.rel = rel;
    return j;
  }

  IngestResult ingest(const IngestJob& j) { return Ingester::ingest_file(*store, j, "nodeA", stop); }

  Manifest manifest_of(const Hash& id) {
    std::string enc;
    CHECK_TRUE(store->get_manifest(id, &enc).ok());
    CHECK_TRUE(manifest_id(enc) == id);
    auto m = decode_manifest(enc);
    CHECK_TRUE(m.ok());
    return m.value();
  }

  std::optional<FileRecord> record(const std::string& rel) {
    auto r = store->get_file("docs", rel);
    CHECK_TRUE(r.ok());
    return r.value();
  }
};

TEST(Ingest, NewFileIsStored) {
  const std::string content = bytes_of(1, 700 * 1024);
  CHECK_EQUAL(0, ::mkdir((root + "/sub").c_str(), 0755));
  write_file(root + "/sub/f.bin", content);
  CHECK_EQUAL(0, ::chmod((root + "/sub/f.bin").c_str(), 0640));
  IngestResult r = ingest(job("sub/f.bin"));
  CHECK_TRUE(IngestResult::Kind::stored == r.kind);
  STRCMP_EQUAL("stored", ingest_kind_name(r.kind));
  CHECK_EQUAL(content.size(), r.bytes);
  CHECK_EQUAL(content.size(), r.record.size);
  CHECK_TRUE(r.record.chunks >= 3);  // 700 KiB, chunks at most 256 KiB
  CHECK_EQUAL(r.record.chunks, r.new_chunks);

  struct stat st {};
  CHECK_EQUAL(0, ::stat((root + "/sub/f.bin").c_str(), &st));
  auto rec = record("sub/f.bin");
  CHECK_TRUE(rec.has_value());
  STRCMP_EQUAL("stored", rec->state.c_str());
  CHECK_TRUE(rec->manifest == r.record.manifest);
  CHECK_EQUAL(static_cast<uint64_t>(st.st_ino), rec->inode);
  CHECK_EQUAL(0640u, rec->mode);

  Manifest m = manifest_of(rec->manifest);
  STRCMP_EQUAL("sub/f.bin", m.path.c_str());
  STRCMP_EQUAL("nodeA", m.origin.c_str());
  CHECK_EQUAL(content.size(), m.size);
  CHECK_EQUAL(0640u, m.mode);
  CHECK_TRUE(m.parent == Hash{});
  CHECK_EQUAL(rec->chunks, m.chunks.size());
  std::string joined, buf;
  for (const ChunkRef& c : m.chunks) {
    CHECK_TRUE(store->get_chunk(c.hash, &buf).ok());
    CHECK_EQUAL(c.len, buf.size());
    CHECK_TRUE(sha256(buf.data(), buf.size()) == c.hash);
    joined += buf;
  }
  CHECK_TRUE(joined == content);
}

TEST(Ingest, UnchangedFileIsNotStoredAgain) {
  write_file(root + "/f", bytes_of(2, 50000));
  IngestResult r1 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  IngestResult r2 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::unchanged == r2.kind);
  CHECK_TRUE(r2.record.manifest == r1.record.manifest);
  CHECK_EQUAL(0u, r2.new_chunks);
  auto head = store->catalog_head("docs");
  CHECK_TRUE(head.ok());
  CHECK_EQUAL(1u, head.value());

  // Same size, mtime and inode but other bytes: only stat is consulted, so the
  // file is not read (the old version stays recorded).
  struct stat st {};
  CHECK_EQUAL(0, ::stat((root + "/f").c_str(), &st));
  write_file(root + "/f", bytes_of(99, 50000));
  set_mtime(root + "/f", static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec);
  IngestResult r3 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::unchanged == r3.kind);
  CHECK_TRUE(r3.record.manifest == r1.record.manifest);
}

TEST(Ingest, ChangedFileIsNewVersionWithParent) {
  const std::string p = root + "/f";
  write_file(p, bytes_of(3, 100000));
  set_mtime(p, 1600000000000000000LL);
  IngestResult r1 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  write_file(p, bytes_of(4, 90000));
  set_mtime(p, 1600000001000000000LL);
  IngestResult r2 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r2.kind);
  CHECK_FALSE(r2.record.manifest == r1.record.manifest);
  CHECK_EQUAL(90000u, r2.record.size);
  CHECK_EQUAL(1600000001000000000LL, r2.record.mtime_ns);
  Manifest m = manifest_of(r2.record.manifest);
  CHECK_TRUE(m.parent == r1.record.manifest);
  CHECK_EQUAL(1600000001000000000LL, m.mtime_ns);
  auto rec = record("f");
  CHECK_TRUE(rec.has_value());
  CHECK_TRUE(rec->manifest == r2.record.manifest);
}

TEST(Ingest, EmptyFile) {
  write_file(root + "/empty", "");
  IngestResult r = ingest(job("empty"));
  CHECK_TRUE(IngestResult::Kind::stored == r.kind);
  CHECK_EQUAL(0u, r.record.chunks);
  CHECK_EQUAL(0u, r.record.size);
  Manifest m = manifest_of(r.record.manifest);
  CHECK_EQUAL(0u, m.chunks.size());
  CHECK_EQUAL(0u, m.flags);
}

TEST(Ingest, SymlinkFifoAndVanishedAreSkipped) {
  write_file(tmp + "/outside", "secret");
  CHECK_EQUAL(0, ::symlink((tmp + "/outside").c_str(), (root + "/link").c_str()));
  CHECK_EQUAL(0, ::mkfifo((root + "/fifo").c_str(), 0644));
  CHECK_EQUAL(0, ::mkdir((root + "/dir").c_str(), 0755));
  for (const char* rel : {"link", "fifo", "dir"}) {
    IngestResult r = ingest(job(rel));
    CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
    CHECK_TRUE(Errc::invalid == r.error.code);
    CHECK_FALSE(record(rel).has_value());
  }
  IngestResult r = ingest(job("gone"));
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  CHECK_TRUE(Errc::not_found == r.error.code);
  CHECK_FALSE(record("gone").has_value());
  auto s = store->stats();
  CHECK_TRUE(s.ok());
  CHECK_EQUAL(0u, s->chunks);
}

TEST(Ingest, FilesOverTheShareLimitsAreSkipped) {
  write_file(root + "/big", bytes_of(7, 100 * 1024));
  write_file(root + "/small", bytes_of(8, 1000));
  IngestJob j = job("big");
  j.max_file_size = 100 * 1024 - 1;
  IngestResult r = ingest(j);
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  STRCMP_EQUAL("larger than max_file_size", r.error.msg.c_str());
  CHECK_FALSE(record("big").has_value());
  CHECK_EQUAL(0u, store->stats().value().chunks);  // nothing was read
  j.max_file_size = 100 * 1024;
  CHECK_TRUE(IngestResult::Kind::stored == ingest(j).kind);

  // max_files: a new file beyond it is skipped; an update of a present one is not.
  j = job("small");
  j.max_files = 1;
  r = ingest(j);
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  STRCMP_EQUAL("over max_files", r.error.msg.c_str());
  CHECK_FALSE(record("small").has_value());
  j.max_files = 2;
  CHECK_TRUE(IngestResult::Kind::stored == ingest(j).kind);
  write_file(root + "/small", bytes_of(9, 1000));
  set_mtime(root + "/small", 1700000000000000000LL);
  j.max_files = 1;
  CHECK_TRUE(IngestResult::Kind::stored == ingest(j).kind);
  CHECK_EQUAL(2u, store->count_files("docs").value());
}

TEST(Ingest, UnsafeNameIsSkipped) {
  write_file(root + "/.shoal-tmp-abc", "partial");
  IngestResult r = ingest(job(".shoal-tmp-abc"));
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  CHECK_FALSE(record(".shoal-tmp-abc").has_value());
}

TEST(Ingest, StopAbandonsWithoutRecording) {
  write_file(root + "/f", bytes_of(5, 300000));
  stop = true;
  IngestResult r = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  CHECK_FALSE(record("f").has_value());
  auto head = store->catalog_head("docs");
  CHECK_TRUE(head.ok());
  CHECK_EQUAL(0u, head.value());
  auto s = store->stats();  // the abandoned transaction was rolled back
  CHECK_TRUE(s.ok());
  CHECK_EQUAL(0u, s->chunks);
  stop = false;
  CHECK_TRUE(IngestResult::Kind::stored == ingest(job("f")).kind);
}

TEST(Ingest, RemovalOfPresentFileIsAnUpdate) {
  write_file(root + "/f", bytes_of(6, 5000));
  IngestResult r1 = ingest(job("f", IngestJob::Kind::removed));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  IngestResult r2 = ingest(job("f", IngestJob::Kind::removed));
  CHECK_TRUE(IngestResult::Kind::unchanged == r2.kind);
  auto rec = record("f");
  CHECK_TRUE(rec.has_value());
  STRCMP_EQUAL("stored", rec->state.c_str());
}

TEST(Ingest, RemovalMarksRecordDeleted) {
  write_file(root + "/f", bytes_of(7, 5000));
  IngestResult r1 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  CHECK_EQUAL(0, ::unlink((root + "/f").c_str()));
  IngestResult r2 = ingest(job("f", IngestJob::Kind::removed));
  CHECK_TRUE(IngestResult::Kind::removed == r2.kind);
  auto rec = record("f");
  CHECK_TRUE(rec.has_value());
  STRCMP_EQUAL("deleted", rec->state.c_str());
  // No new version: the catalog holds only the stored one.
  auto head = store->catalog_head("docs");
  CHECK_TRUE(head.ok());
  CHECK_EQUAL(1u, head.value());

  IngestResult r3 = ingest(job("f", IngestJob::Kind::removed));
  CHECK_TRUE(IngestResult::Kind::unchanged == r3.kind);
  // Never known at all: nothing to do either.
  IngestResult r4 = ingest(job("never", IngestJob::Kind::removed));
  CHECK_TRUE(IngestResult::Kind::unchanged == r4.kind);
  CHECK_FALSE(record("never").has_value());
}

TEST(Ingest, PropagatedRemovalRecordsTombstone) {
  write_file(root + "/f", bytes_of(8, 5000));
  IngestResult r1 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  CHECK_EQUAL(0, ::unlink((root + "/f").c_str()));
  IngestJob j = job("f", IngestJob::Kind::removed);
  j.propagate_delete = true;
  IngestResult r2 = ingest(j);
  CHECK_TRUE(IngestResult::Kind::removed == r2.kind);

  auto rec = record("f");
  CHECK_TRUE(rec.has_value());
  STRCMP_EQUAL("deleted", rec->state.c_str());
  CHECK_FALSE(rec->manifest == r1.record.manifest);
  Manifest m = manifest_of(rec->manifest);
  CHECK_EQUAL(static_cast<uint32_t>(kManifestDeleted), m.flags);
  CHECK_TRUE(m.parent == r1.record.manifest);
  CHECK_EQUAL(0u, m.chunks.size());
  STRCMP_EQUAL("f", m.path.c_str());
  STRCMP_EQUAL("nodeA", m.origin.c_str());

  auto cat = store->catalog_since("docs", 0, 100);
  CHECK_TRUE(cat.ok());
  bool found = false;
  for (const CatalogEntry& e : cat.value()) {
    if (e.manifest == rec->manifest) {
      found = true;
      CHECK_TRUE((e.flags & kManifestDeleted) != 0);
      STRCMP_EQUAL("f", e.path.c_str());
    }
  }
  CHECK_TRUE(found);

  auto head = store->catalog_head("docs");
  CHECK_TRUE(head.ok());
  IngestResult r3 = ingest(j);
  CHECK_TRUE(IngestResult::Kind::unchanged == r3.kind);
  auto head2 = store->catalog_head("docs");
  CHECK_TRUE(head2.ok());
  CHECK_EQUAL(head.value(), head2.value());

  // The file coming back is a new version whose parent is the tombstone.
  write_file(root + "/f", bytes_of(9, 100));
  IngestResult r4 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r4.kind);
  CHECK_TRUE(manifest_of(r4.record.manifest).parent == rec->manifest);
}

TEST(Ingest, GcRemovesOrphanChunks) {
  write_file(root + "/f", bytes_of(10, 5000));
  IngestResult r1 = ingest(job("f"));
  CHECK_TRUE(IngestResult::Kind::stored == r1.kind);
  const std::string orphan = bytes_of(11, 1000);
  const Hash oh = sha256(orphan.data(), orphan.size());
  auto put = store->put_chunk(oh, reinterpret_cast<const uint8_t*>(orphan.data()), orphan.size());
  CHECK_TRUE(put.ok() && put.value());

  IngestResult g = ingest(job("", IngestJob::Kind::gc));
  CHECK_TRUE(IngestResult::Kind::skipped == g.kind);
  CHECK_TRUE(Errc::ok == g.error.code);
  STRCMP_EQUAL("gc done", g.error.msg.c_str());
  auto has = store->has_chunk(oh);
  CHECK_TRUE(has.ok());
  CHECK_FALSE(has.value());
  for (const ChunkRef& c : manifest_of(r1.record.manifest).chunks) {
    auto h = store->has_chunk(c.hash);
    CHECK_TRUE(h.ok() && h.value());
  }
}

// --- streaming a large file's chunks while it is read (StreamBatch) ---------

namespace {
// Batches as the sink received them (copied: the sink may not keep them).
struct Batches {
  std::vector<StreamBatch> got;
  std::function<void(StreamBatch&)> sink() {
    return [this](StreamBatch& b) { got.push_back(b); };
  }
};
}  // namespace

// A large file's chunks come as a chain of batches, in file order, the first
// before the file is fully read, then one last batch that says it is whole;
// together they are exactly the version that is then stored.
TEST(Ingest, StreamedLargeFileListsTheStoredChunksInOrder) {
  const std::string content = bytes_of(40, (20u << 20) + 12345);
  write_file(root + "/big.bin", content);
  struct stat st {};
  CHECK_EQUAL(0, ::stat((root + "/big.bin").c_str(), &st));
  IngestJob j = job("big.bin");
  j.stream = true;
  Batches b;
  IngestResult r = Ingester::ingest_file(*store, j, "nodeA", stop, b.sink());
  CHECK_TRUE(IngestResult::Kind::stored == r.kind);
  Manifest m = manifest_of(r.record.manifest);
  CHECK_TRUE(m.chunks.size() > 64);  // enough for a first batch and full ones after it

  CHECK_TRUE(b.got.size() >= 3);  // the early first one, at least one of 32, the end
  std::vector<ChunkRef> joined;
  uint64_t off = 0;
  const uint64_t id = b.got[0].stream;
  CHECK_TRUE(id != 0);
  for (size_t i = 0; i < b.got.size(); i++) {
    const StreamBatch& sb = b.got[i];
    const bool last = i + 1 == b.got.size();
    STRCMP_EQUAL("docs", sb.share.c_str());
    STRCMP_EQUAL("big.bin", sb.rel.c_str());
    CHECK_EQUAL(id, sb.stream);
    CHECK_EQUAL(joined.size(), sb.first_index);
    CHECK_EQUAL(off, sb.first_offset);
    CHECK_EQUAL(last, sb.end);
    CHECK_EQUAL(last, sb.whole);
    if (!last) CHECK_FALSE(sb.chunks.empty());
    // After the first, batches gather at least 32 chunks (not one per block).
    if (i > 0 && !last) CHECK_TRUE(sb.chunks.size() >= 32);
    CHECK_EQUAL(static_cast<uint64_t>(st.st_size), sb.size);
    CHECK_EQUAL(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(sb.st.st_dev));
    CHECK_EQUAL(static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(sb.st.st_ino));
    CHECK_EQUAL(mtime_ns_of(st), mtime_ns_of(sb.st));
    CHECK_EQUAL(ctime_ns_of(st), ctime_ns_of(sb.st));
    CHECK(unchanged_between(st, sb.st));
    for (const ChunkRef& c : sb.chunks) {
      joined.push_back(c);
      off += c.len;
    }
  }
  // The first batch went out as soon as the first block was cut (a block
  // holds at most kBlockBytes and a carried tail), not once 32 chunks had
  // gathered.
  uint64_t first_bytes = 0;
  for (const ChunkRef& c : b.got[0].chunks) first_bytes += c.len;
  CHECK_TRUE(first_bytes <= ChunkStream::kBlockBytes + ChunkParams{}.max_size);
  CHECK_EQUAL(content.size(), off);
  CHECK_EQUAL(m.chunks.size(), joined.size());
  CHECK_TRUE(joined == m.chunks);
  CHECK_EQUAL(content.size(), m.size);
}

// Only streamed jobs, and only files of at least kStreamMin bytes, list
// their chunks; the others are stored without a single batch.
TEST(Ingest, SmallOrUnstreamedFilesGiveNoBatch) {
  write_file(root + "/under", bytes_of(41, kStreamMin - 1));
  write_file(root + "/at", bytes_of(42, kStreamMin));
  write_file(root + "/big", bytes_of(43, 20u << 20));
  IngestJob j = job("under");
  j.stream = true;
  Batches b;
  CHECK_TRUE(IngestResult::Kind::stored == Ingester::ingest_file(*store, j, "nodeA", stop, b.sink()).kind);
  CHECK_EQUAL(0u, b.got.size());

  j = job("big");
  CHECK_FALSE(j.stream);  // off unless asked for
  CHECK_TRUE(IngestResult::Kind::stored == Ingester::ingest_file(*store, j, "nodeA", stop, b.sink()).kind);
  CHECK_EQUAL(0u, b.got.size());

  // The threshold is inclusive: a file of exactly kStreamMin streams.
  j = job("at");
  j.stream = true;
  CHECK_TRUE(IngestResult::Kind::stored == Ingester::ingest_file(*store, j, "nodeA", stop, b.sink()).kind);
  CHECK_TRUE(b.got.size() >= 2);
  CHECK_TRUE(b.got.back().end && b.got.back().whole);
}

// A file that changes while it is read ends its stream with whole=false
// (and no version is recorded).
TEST(Ingest, StreamOfAFileChangedWhileReadEndsNotWhole) {
  const std::string p = root + "/big.bin";
  write_file(p, bytes_of(44, 12u << 20));
  set_mtime(p, 1600000000000000000LL);
  IngestJob j = job("big.bin");
  j.stream = true;
  std::vector<StreamBatch> got;
  IngestResult r = Ingester::ingest_file(*store, j, "nodeA", stop, [&](StreamBatch& sb) {
    if (got.empty()) set_mtime(p, 1600000001000000000LL);  // touched after the first batch
    got.push_back(sb);
  });
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  CHECK_FALSE(record("big.bin").has_value());
  CHECK_TRUE(got.size() >= 2);
  size_t ends = 0;
  for (const StreamBatch& sb : got) ends += sb.end ? 1 : 0;
  CHECK_EQUAL(1u, ends);
  CHECK_TRUE(got.back().end);
  CHECK_FALSE(got.back().whole);
  CHECK_EQUAL(1600000000000000000LL, mtime_ns_of(got.front().st));  // the file as the read found it
}

// A read abandoned halfway (stopping) also ends its stream, not whole.
TEST(Ingest, StreamOfAnAbandonedReadEndsNotWhole) {
  write_file(root + "/big.bin", bytes_of(45, kStreamMin));
  IngestJob j = job("big.bin");
  j.stream = true;
  std::vector<StreamBatch> got;
  IngestResult r = Ingester::ingest_file(*store, j, "nodeA", stop, [&](StreamBatch& sb) {
    stop = true;  // after the first batch
    got.push_back(sb);
  });
  CHECK_TRUE(IngestResult::Kind::skipped == r.kind);
  CHECK_FALSE(record("big.bin").has_value());
  CHECK_EQUAL(2u, got.size());
  CHECK_FALSE(got[0].end);
  CHECK_TRUE(got[1].end);
  CHECK_FALSE(got[1].whole);
  CHECK_EQUAL(got[0].stream, got[1].stream);
}

// The Ingester's worker and its way back to the loop thread.
TEST_GROUP(IngesterPost) {
  std::string tmp;
  event_base* base = nullptr;
  std::unique_ptr<Ingester> in;
  std::atomic<bool> release{false};
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);
    evthread_use_pthreads();
    tmp = make_tmp_dir("ingester");
    CHECK_FALSE(tmp.empty());
    base = event_base_new();
    CHECK_TRUE(base != nullptr);
    auto s = Store::open(tmp + "/shoal.db");
    CHECK_TRUE(s.ok());
    auto r = Ingester::start(base, std::move(s.value()), "nodeA", [](const IngestResult&) {});
    CHECK_TRUE(r.ok());
    in = std::move(r.value());
  }

  void teardown() override {
    release = true;  // a blocked worker must finish before the join
    in.reset();
    if (base != nullptr) event_base_free(base);
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    log_set_level(saved_level);
  }

  // Runs the loop until `done` holds or about two seconds have passed.
  void run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      timeval tv{0, 10000};
      event_base_loopexit(base, &tv);
      event_base_dispatch(base);
    }
  }
};

TEST(IngesterPost, WorkRunsOnWorkerAndContinuationOnLoop) {
  const std::string data = bytes_of(12, 2000);
  const Hash h = sha256(data.data(), data.size());
  std::thread::id worker_id, cont_id;
  bool stored = false, ran = false;
  CHECK_TRUE(in->post([&](Store& s) -> std::function<void()> {
    worker_id = std::this_thread::get_id();
    auto r = s.put_chunk(h, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    stored = r.ok() && r.value();
    return [&] {
      cont_id = std::this_thread::get_id();
      ran = true;
    };
  }));
  run_until([&] { return ran; });
  CHECK_TRUE(ran);
  CHECK_TRUE(stored);
  CHECK_TRUE(cont_id == std::this_thread::get_id());
  CHECK_TRUE(worker_id != std::this_thread::get_id());
  // The post's transaction was committed: another connection sees the chunk.
  auto reader = Store::open(tmp + "/shoal.db");
  CHECK_TRUE(reader.ok());
  auto has = reader.value()->has_chunk(h);
  CHECK_TRUE(has.ok() && has.value());
}

// File ingests run at a lower priority; a post after them is back at the
// worker's normal one (where the priority can come back at all).
TEST(IngesterPost, PostAfterIngestsRunsAtTheNormalPriority) {
  const int base_nice = thread_nice();  // the worker was started from this thread
  std::filesystem::create_directories(tmp + "/share");
  for (int i = 0; i < 3; i++) {
    std::ofstream(tmp + "/share/f" + std::to_string(i)) << bytes_of(static_cast<uint32_t>(i), 5000);
    in->submit(IngestJob{IngestJob::Kind::file, "s", tmp + "/share", "f" + std::to_string(i)});
  }
  run_until([&] { return in->pending() == 0; });
  CHECK_EQUAL(0u, in->pending());
  int post_nice = -100;
  bool ran = false;
  CHECK_TRUE(in->post([&](Store&) -> std::function<void()> {
    post_nice = thread_nice();
    return [&] { ran = true; };
  }));
  run_until([&] { return ran; });
  CHECK_TRUE(ran);
  CHECK_EQUAL(base_nice, post_nice);
}

TEST(IngesterPost, PostRefusedWhenQueueIsFull) {
  std::atomic<bool> blocked{false};
  CHECK_TRUE(in->post([&](Store&) -> std::function<void()> {
    blocked = true;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!release.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return nullptr;
  }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!blocked.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK_TRUE(blocked.load());
  CHECK_EQUAL(0u, in->posts_waiting());

  size_t ran = 0;
  for (size_t i = 0; i < Ingester::kMaxPosts; i++) {
    CHECK_TRUE(in->post([&](Store&) -> std::function<void()> { return [&] { ran++; }; }));
  }
  CHECK_EQUAL(Ingester::kMaxPosts, in->posts_waiting());
  CHECK_FALSE(in->post([](Store&) -> std::function<void()> { return nullptr; }));
  CHECK_EQUAL(Ingester::kMaxPosts, in->posts_waiting());

  release = true;
  run_until([&] { return ran == Ingester::kMaxPosts; });
  CHECK_EQUAL(Ingester::kMaxPosts, ran);
  CHECK_EQUAL(0u, in->posts_waiting());
  CHECK_TRUE(in->post([](Store&) -> std::function<void()> { return nullptr; }));
}

#include "publish.h"

#include "testutil.h"

#include <CppUTest/TestHarness.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hash.h"
#include "log.h"

using namespace shoal;
using test::read_file;
using test::write_file;

namespace {



std::string bytes_of(uint32_t seed, size_t len) { return test::pseudo_bytes(seed, len, 7); }

// sha256 of `n` copies of `s`.
Hash sha256_of_repeats(const std::string& s, int n) {
  std::string all;
  for (int i = 0; i < n; i++) all += s;
  return sha256(all.data(), all.size());
}

bool exists_nofollow(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// Names in `dir` that start with ".shoal-tmp-" (leftovers of a publish).
int tmp_leftovers(const std::string& dir) {
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name).rfind(".shoal-tmp-", 0) == 0) n++;
  }
  ::closedir(d);
  return n;
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

TEST_GROUP(Publish) {
  std::string tmp, root, elsewhere;
  std::unique_ptr<Store> store;
  LogLevel saved_level = LogLevel::info;

  void setup() override {
    saved_level = log_level();
    log_set_level(LogLevel::error);
    tmp = make_tmp_dir("publish");
    CHECK_FALSE(tmp.empty());
    root = tmp + "/share";
    elsewhere = tmp + "/elsewhere";
    CHECK_EQUAL(0, ::mkdir(root.c_str(), 0755));
    CHECK_EQUAL(0, ::mkdir(elsewhere.c_str(), 0755));
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

  // Stores `content` cut into pieces of at most `piece` bytes (optionally
  // leaving one piece out of the store) and returns a request publishing it.
  PublishRequest request(const std::string& rel, const std::string& content, size_t piece = 1000,
                         int skip_piece = -1) {
    PublishRequest req;
    req.share = "docs";
    req.root = root;
    req.rel = rel;
    Manifest& m = req.manifest;
    m.path = rel;
    m.mode = 0640;
    m.mtime_ns = 1600000000123456789LL;
    m.origin = "nodeA";
    int i = 0;
    for (size_t off = 0; off < content.size(); off += piece, i++) {
      const std::string p = content.substr(off, piece);
      ChunkRef ref{sha256(p.data(), p.size()), static_cast<uint32_t>(p.size())};
      if (i != skip_piece) {
        auto r = store->put_chunk(ref.hash, reinterpret_cast<const uint8_t*>(p.data()), p.size());
        CHECK_TRUE(r.ok());
      }
      m.chunks.push_back(ref);
      m.size += p.size();
    }
    CHECK_TRUE(validate_manifest(m).ok());
    req.encoded = encode_manifest(m);
    return req;
  }

  // Publishes `content` (3 pieces of 1000 bytes) at `rel` through its part
  // file, into a fresh store that holds none of it: every chunk is then
  // held only in the published file. The request keeps the part file.
  PublishRequest publish_through_part_file(const std::string& rel, const std::string& content,
                                           bool keep_files_open) {
    PublishRequest req = request(rel, content, 1000);
    store.reset();
    store = std::move(Store::open(tmp + "/fresh.db").value());
    auto roots = std::make_shared<ShareRoots>();
    roots->set("docs", root);
    store->set_roots(roots);
    store->keep_files_open(keep_files_open);
    auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded));
    CHECK_TRUE(part->open(*store).ok());
    for (size_t i = 0; i < 3; i++) {
      const std::string b = content.substr(i * 1000, 1000);
      CHECK_TRUE(part->put(req.manifest.chunks[i].hash, reinterpret_cast<const uint8_t*>(b.data()), b.size()));
    }
    req.part = part;
    CHECK_TRUE(publish_file(*store, req).ok());
    return req;
  }

  void corrupt_chunk(const Hash& h) {
    sqlite3_stmt* st = nullptr;
    CHECK_EQUAL(SQLITE_OK, sqlite3_prepare_v2(store->db(),
                                              "UPDATE chunks SET data = zeroblob(len) WHERE hash = ?",
                                              -1, &st, nullptr));
    sqlite3_bind_blob(st, 1, h.data(), static_cast<int>(h.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    CHECK_EQUAL(SQLITE_DONE, rc);
    CHECK_EQUAL(1, sqlite3_changes(store->db()));
  }
};

TEST(Publish, WritesFileWithModeMtimeAndRecord) {
  const std::string content = bytes_of(1, 4500);
  PublishRequest req = request("a/b/c.bin", content);
  req.manifest.mode = 04755;  // setuid must be dropped
  req.encoded = encode_manifest(req.manifest);
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());

  const std::string path = root + "/a/b/c.bin";
  CHECK_TRUE(content == read_file(path));
  struct stat st {};
  CHECK_EQUAL(0, ::lstat(path.c_str(), &st));
  CHECK_TRUE(S_ISREG(st.st_mode));
  CHECK_EQUAL(0755, st.st_mode & 07777);
  CHECK_EQUAL(req.manifest.mtime_ns, mtime_ns_of(st));
  CHECK_EQUAL(0, tmp_leftovers(root + "/a/b"));

  auto rec = store->get_file("docs", "a/b/c.bin");
  CHECK_TRUE(rec.ok());
  CHECK_TRUE(rec->has_value());
  const FileRecord& f = **rec;
  CHECK_TRUE(f.manifest == manifest_id(req.encoded));
  CHECK_EQUAL(static_cast<uint64_t>(st.st_ino), f.inode);
  CHECK_EQUAL(static_cast<uint64_t>(st.st_dev), f.dev);
  CHECK_EQUAL(content.size(), f.size);
  CHECK_EQUAL(5u, f.chunks);
  CHECK_EQUAL(mtime_ns_of(st), f.mtime_ns);
  STRCMP_EQUAL("stored", f.state.c_str());
  CHECK_EQUAL(r->inode, f.inode);
}

TEST(Publish, RecordFalseLeavesStoreAlone) {
  PublishRequest req = request("x.txt", "hello");
  req.record = false;
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());
  STRCMP_EQUAL("hello", read_file(root + "/x.txt").c_str());
  auto rec = store->get_file("docs", "x.txt");
  CHECK_TRUE(rec.ok());
  CHECK_FALSE(rec->has_value());
}

TEST(Publish, EmptyFile) {
  PublishRequest req = request("empty", "");
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());
  struct stat st {};
  CHECK_EQUAL(0, ::lstat((root + "/empty").c_str(), &st));
  CHECK_EQUAL(0, st.st_size);
  CHECK_EQUAL(0u, r->chunks);
}

TEST(Publish, ReplacesExistingFileAtomically) {
  const std::string v1 = bytes_of(2, 3000), v2 = bytes_of(3, 2000);
  CHECK_TRUE(publish_file(*store, request("f.bin", v1)).ok());
  // A reader holding the old file keeps seeing the old bytes: the new version
  // is a new inode renamed over the name, not a rewrite in place.
  int old_fd = ::open((root + "/f.bin").c_str(), O_RDONLY);
  CHECK_TRUE(old_fd >= 0);
  struct stat old_st {};
  CHECK_EQUAL(0, ::fstat(old_fd, &old_st));

  auto r = publish_file(*store, request("f.bin", v2));
  std::string seen(v1.size(), '\0');
  ssize_t n = ::pread(old_fd, seen.data(), seen.size(), 0);
  ::close(old_fd);
  CHECK_TRUE(r.ok());
  CHECK_EQUAL(static_cast<ssize_t>(v1.size()), n);
  CHECK_TRUE(seen == v1);
  CHECK_TRUE(read_file(root + "/f.bin") == v2);
  struct stat st {};
  CHECK_EQUAL(0, ::lstat((root + "/f.bin").c_str(), &st));
  CHECK_TRUE(st.st_ino != old_st.st_ino);
  CHECK_EQUAL(0, tmp_leftovers(root));
  auto rec = store->get_file("docs", "f.bin");
  CHECK_TRUE(rec.ok() && rec->has_value());
  CHECK_EQUAL(static_cast<uint64_t>(st.st_ino), (**rec).inode);
}

TEST(Publish, MoveAsideKeepsTheOldFileAsConflictCopy) {
  const std::string v1 = bytes_of(4, 1500), v2 = bytes_of(5, 2500);
  CHECK_TRUE(publish_file(*store, request("d/f.txt", v1)).ok());
  PublishRequest req = request("d/f.txt", v2);
  req.move_aside_rel = conflict_name("d/f.txt", "nodeB", 1700000000LL * 1000000000LL);
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());
  CHECK_TRUE(read_file(root + "/d/f.txt") == v2);
  CHECK_TRUE(read_file(root + "/d/f.txt.shoal-conflict-nodeB-20231114T221320Z") == v1);
  CHECK_EQUAL(0, tmp_leftovers(root + "/d"));
}

TEST(Publish, MoveAsideIntoAnotherDirectoryIsRefused) {
  const std::string v1 = bytes_of(6, 100);
  CHECK_TRUE(publish_file(*store, request("d/f.txt", v1)).ok());
  PublishRequest req = request("d/f.txt", bytes_of(7, 100));
  req.move_aside_rel = "f.txt.shoal-conflict-x";
  auto r = publish_file(*store, req);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  CHECK_TRUE(read_file(root + "/d/f.txt") == v1);
  CHECK_EQUAL(0, tmp_leftovers(root + "/d"));
}

TEST(Publish, SymlinkedDirectoryOnTheWayIsRefused) {
  CHECK_EQUAL(0, ::symlink(elsewhere.c_str(), (root + "/link").c_str()));
  auto r = publish_file(*store, request("link/f.txt", "data"));
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  CHECK_FALSE(exists_nofollow(elsewhere + "/f.txt"));
  CHECK_EQUAL(0, tmp_leftovers(elsewhere));
  CHECK_TRUE(std::filesystem::is_empty(elsewhere));

  // Deeper: a symlink in the middle of the path.
  CHECK_EQUAL(0, ::mkdir((root + "/sub").c_str(), 0755));
  CHECK_EQUAL(0, ::symlink(elsewhere.c_str(), (root + "/sub/ln").c_str()));
  auto r2 = publish_file(*store, request("sub/ln/new/f.txt", "data"));
  CHECK_FALSE(r2.ok());
  CHECK_TRUE(Errc::invalid == r2.error().code);
  CHECK_TRUE(std::filesystem::is_empty(elsewhere));
}

TEST(Publish, FileOnTheWayIsRefused) {
  write_file(root + "/plain", "x");
  auto r = publish_file(*store, request("plain/f.txt", "data"));
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  STRCMP_EQUAL("x", read_file(root + "/plain").c_str());
}

TEST(Publish, ExistingDirectoryAtTargetIsRefused) {
  CHECK_EQUAL(0, ::mkdir((root + "/dir").c_str(), 0755));
  auto r = publish_file(*store, request("dir", "data"));
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  struct stat st {};
  CHECK_EQUAL(0, ::lstat((root + "/dir").c_str(), &st));
  CHECK_TRUE(S_ISDIR(st.st_mode));
  CHECK_EQUAL(0, tmp_leftovers(root));
  auto rec = store->get_file("docs", "dir");
  CHECK_TRUE(rec.ok());
  CHECK_FALSE(rec->has_value());
}

TEST(Publish, SymlinkAtTargetIsRefused) {
  write_file(elsewhere + "/victim", "keep");
  CHECK_EQUAL(0, ::symlink((elsewhere + "/victim").c_str(), (root + "/s").c_str()));
  auto r = publish_file(*store, request("s", "data"));
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  STRCMP_EQUAL("keep", read_file(elsewhere + "/victim").c_str());
  CHECK_EQUAL(0, tmp_leftovers(root));
}

TEST(Publish, MissingChunkFailsAndLeavesNothing) {
  const std::string v1 = bytes_of(8, 800);
  CHECK_TRUE(publish_file(*store, request("keep.bin", v1)).ok());
  auto r = publish_file(*store, request("keep.bin", bytes_of(9, 3000), 1000, 1));
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::not_found == r.error().code);
  CHECK_TRUE(read_file(root + "/keep.bin") == v1);
  CHECK_EQUAL(0, tmp_leftovers(root));

  auto r2 = publish_file(*store, request("n/new.bin", bytes_of(10, 3000), 1000, 2));
  CHECK_FALSE(r2.ok());
  CHECK_FALSE(exists_nofollow(root + "/n/new.bin"));
  CHECK_EQUAL(0, tmp_leftovers(root + "/n"));
  auto rec = store->get_file("docs", "n/new.bin");
  CHECK_TRUE(rec.ok());
  CHECK_FALSE(rec->has_value());
}

TEST(Publish, CorruptChunkIsRefused) {
  PublishRequest req = request("c.bin", bytes_of(11, 2500));
  corrupt_chunk(req.manifest.chunks[1].hash);
  auto r = publish_file(*store, req);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::corrupt == r.error().code);
  CHECK_FALSE(exists_nofollow(root + "/c.bin"));
  CHECK_EQUAL(0, tmp_leftovers(root));
  auto rec = store->get_file("docs", "c.bin");
  CHECK_TRUE(rec.ok());
  CHECK_FALSE(rec->has_value());
}

TEST(Publish, UnsafePathsAreRefused) {
  for (const char* rel : {"../x", "/abs", "a/../../x", "", ".shoal-tmp-1", "a//b"}) {
    PublishRequest req = request("ok", "data");
    req.rel = rel;
    auto r = publish_file(*store, req);
    CHECK_FALSE(r.ok());
    CHECK_TRUE(Errc::invalid == r.error().code);
  }
  PublishRequest req = request("ok", "data");
  req.move_aside_rel = "../ok.old";
  auto r = publish_file(*store, req);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  CHECK_FALSE(exists_nofollow(tmp + "/x"));
  CHECK_FALSE(exists_nofollow(root + "/ok"));
}

TEST(Publish, UnpublishRemovesRegularFile) {
  CHECK_EQUAL(0, ::mkdir((root + "/d").c_str(), 0755));
  write_file(root + "/d/f", "x");
  CHECK_TRUE(unpublish_file(root, "d/f").ok());
  CHECK_FALSE(exists_nofollow(root + "/d/f"));
  // Absent file, absent directory: nothing to do.
  CHECK_TRUE(unpublish_file(root, "d/f").ok());
  auto r = unpublish_file(root, "nodir/f");
  CHECK_TRUE(r.ok() || r.error().code == Errc::not_found);
}

TEST(Publish, UnpublishRefusesSymlinks) {
  write_file(elsewhere + "/f", "keep");
  CHECK_EQUAL(0, ::symlink(elsewhere.c_str(), (root + "/link").c_str()));
  auto r = unpublish_file(root, "link/f");
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::invalid == r.error().code);
  STRCMP_EQUAL("keep", read_file(elsewhere + "/f").c_str());

  CHECK_EQUAL(0, ::symlink((elsewhere + "/f").c_str(), (root + "/s").c_str()));
  auto r2 = unpublish_file(root, "s");
  CHECK_FALSE(r2.ok());
  CHECK_TRUE(Errc::invalid == r2.error().code);
  CHECK_TRUE(exists_nofollow(root + "/s"));
  STRCMP_EQUAL("keep", read_file(elsewhere + "/f").c_str());

  CHECK_EQUAL(0, ::mkdir((root + "/dir").c_str(), 0755));
  CHECK_FALSE(unpublish_file(root, "dir").ok());
  CHECK_FALSE(unpublish_file(root, "../elsewhere/f").ok());
  STRCMP_EQUAL("keep", read_file(elsewhere + "/f").c_str());
}

TEST(Publish, ConflictNameFormat) {
  STRCMP_EQUAL("dir/a.txt.shoal-conflict-nodeB-20231114T221320Z",
               conflict_name("dir/a.txt", "nodeB", 1700000000LL * 1000000000LL + 999999999LL).c_str());
  STRCMP_EQUAL("x.shoal-conflict-n1-19700101T000000Z", conflict_name("x", "n1", 0).c_str());
  STRCMP_EQUAL("y.shoal-conflict-n2-20000229T235959Z",
               conflict_name("y", "n2", 951868799LL * 1000000000LL).c_str());
}

// --- written while it arrives (PartFile) ---------------------------------------

namespace {
// The ".shoal-tmp-*" names in `dir`.
std::vector<std::string> tmp_names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d))
    if (std::string(e->d_name).rfind(".shoal-tmp-", 0) == 0) out.push_back(e->d_name);
  ::closedir(d);
  return out;
}
}  // namespace

TEST(Publish, PartFileWrittenOutOfOrderPublishesTheSameBytes) {
  // Piece 1 is in the store before the part opens (copied in by open());
  // the others arrive afterwards, last first, and one of them twice.
  const std::string content = bytes_of(21, 5500);
  PublishRequest req = request("p/big.bin", content, 1000, 3);
  const std::string piece3 = content.substr(3000, 1000);
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded));
  CHECK_TRUE(part->open(*store).ok());
  CHECK_TRUE(part->usable());
  // In the parts directory (unwatched), not beside the target.
  const std::string parts = root + "/" + kPartsDir;
  CHECK_EQUAL(0u, tmp_names(root + "/p").size());
  CHECK_EQUAL(1u, tmp_names(parts).size());
  CHECK_EQUAL(parts + "/" + tmp_names(parts)[0], part->path());
  CHECK_FALSE(is_stale_temp(tmp_names(parts)[0], 3600));  // kept for resuming
  part->put(req.manifest.chunks[3].hash, reinterpret_cast<const uint8_t*>(piece3.data()), piece3.size());
  part->put(req.manifest.chunks[3].hash, reinterpret_cast<const uint8_t*>(piece3.data()), piece3.size());
  CHECK_TRUE(store->put_chunk(req.manifest.chunks[3].hash, reinterpret_cast<const uint8_t*>(piece3.data()),
                              piece3.size()).ok());
  req.part = part;
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());
  CHECK_TRUE(content == read_file(root + "/p/big.bin"));
  CHECK_EQUAL(0, tmp_leftovers(root + "/p"));
  CHECK_FALSE(exists_nofollow(parts));  // its last part file went: so did it
  auto rec = store->get_file("docs", "p/big.bin");
  CHECK_TRUE(rec.ok() && rec->has_value());
  CHECK_EQUAL(r->inode, (**rec).inode);
  part.reset();
  req.part.reset();
  CHECK_TRUE(content == read_file(root + "/p/big.bin"));  // the destructor left the published file alone
}

TEST(Publish, PartFileRepeatedChunkIsWrittenAtEveryOffset) {
  const std::string a = bytes_of(22, 700), b = bytes_of(23, 700);
  const std::string content = a + b + a + a;
  PublishRequest req = request("rep.bin", content, 700, 0);  // "a" not in the store
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded));
  CHECK_TRUE(part->open(*store).ok());
  part->put(req.manifest.chunks[0].hash, reinterpret_cast<const uint8_t*>(a.data()), a.size());
  // The store never got "a": everything the file needs came through put().
  req.part = part;
  req.record = false;
  CHECK_TRUE(publish_file(*store, req).ok());
  CHECK_TRUE(content == read_file(root + "/rep.bin"));
}

TEST(Publish, PartFileIsFlushedOnTheWay) {
  // 40 MiB (one chunk of kMaxChunkLen 160 times, in no store): written by
  // one put(), which asks the flusher for a flush on the way; the publish is
  // unchanged.
  const std::string a = bytes_of(24, kMaxChunkLen);
  PublishRequest req;
  req.share = "docs";
  req.root = root;
  req.rel = req.manifest.path = "flushed.bin";
  req.manifest.mode = 0640;
  req.manifest.origin = "nodeA";
  for (int i = 0; i < 160; i++) {
    req.manifest.chunks.push_back({sha256(a.data(), a.size()), static_cast<uint32_t>(a.size())});
    req.manifest.size += a.size();
  }
  CHECK_TRUE(validate_manifest(req.manifest).ok());
  req.encoded = encode_manifest(req.manifest);
  req.record = false;
  auto flusher = std::make_shared<Flusher>();
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded), flusher);
  CHECK_TRUE(part->open(*store).ok());
  CHECK_TRUE(part->put(req.manifest.chunks[0].hash, reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  for (int i = 0; i < 1000 && flusher->done() == 0; i++) ::usleep(10000);
  // One per 8 MiB at most (fewer when one for the file still waited).
  CHECK_TRUE(flusher->done() >= 1 && flusher->done() <= 5);
  CHECK_EQUAL(0u, flusher->failed());
  req.part = part;
  CHECK_TRUE(publish_file(*store, req).ok());
  const std::string got = read_file(root + "/flushed.bin");
  CHECK_EQUAL(req.manifest.size, got.size());
  CHECK_TRUE(sha256(got.data(), got.size()) == sha256_of_repeats(a, 160));
}

TEST(Publish, PartFileDiscardedBeforePublishLeavesNothing) {
  PublishRequest req = request("gone/x.bin", bytes_of(24, 3000));
  {
    PartFile part(root, req.rel, req.manifest, manifest_id(req.encoded));
    CHECK_TRUE(part.open(*store).ok());
    CHECK_EQUAL(1, tmp_leftovers(root + "/" + kPartsDir));
  }
  CHECK_EQUAL(1, tmp_leftovers(root + "/" + kPartsDir));  // not discarded: kept for a resume
  {
    PartFile part(root, req.rel, req.manifest, manifest_id(req.encoded));
    CHECK_TRUE(part.open(*store).ok());
    part.discard();
  }
  CHECK_FALSE(exists_nofollow(root + "/" + kPartsDir));
  CHECK_EQUAL(0, tmp_leftovers(root + "/gone"));
  CHECK_FALSE(exists_nofollow(root + "/gone/x.bin"));
}

TEST(Publish, PartFileResumesTheChunksAnEarlierRunWroteAndChecksThem) {
  const std::string content = bytes_of(27, 5000);
  // A store that holds none of it: every piece comes through the part file.
  PublishRequest req = request("r/big.bin", content, 1000);
  store.reset();
  store = std::move(Store::open(tmp + "/empty.db").value());
  Hash mid = manifest_id(req.encoded);
  auto put = [&](PartFile& p, size_t i) {
    const std::string b = content.substr(i * 1000, 1000);
    return p.put(req.manifest.chunks[i].hash, reinterpret_cast<const uint8_t*>(b.data()), b.size());
  };
  std::string path;
  {
    PartFile first(root, req.rel, req.manifest, mid);  // the run that was killed
    CHECK_TRUE(first.open(*store).ok());
    CHECK_TRUE(first.resumed().empty());
    CHECK_TRUE(put(first, 0));
    CHECK_TRUE(put(first, 2));
    CHECK_TRUE(put(first, 4));
    path = first.path();
  }
  CHECK_EQUAL(root + "/" + kPartsDir + "/" + PartFile::name_of(mid), path);
  // Piece 4 was torn by the crash: it must not count.
  int fd = ::open(path.c_str(), O_WRONLY);
  CHECK_TRUE(fd >= 0);
  CHECK_EQUAL(3, ::pwrite(fd, "xyz", 3, 4100));
  ::close(fd);
  auto second = std::make_shared<PartFile>(root, req.rel, req.manifest, mid);
  CHECK_TRUE(second->open(*store).ok());
  std::vector<uint32_t> held = second->resumed();
  std::sort(held.begin(), held.end());
  CHECK_EQUAL(2u, held.size());
  CHECK_EQUAL(0u, held[0]);
  CHECK_EQUAL(2u, held[1]);
  CHECK_TRUE(put(*second, 1));
  CHECK_TRUE(put(*second, 3));
  CHECK_TRUE(put(*second, 4));
  req.part = second;
  auto r = publish_file(*store, req);
  CHECK_TRUE(r.ok());
  CHECK_TRUE(content == read_file(root + "/r/big.bin"));
  CHECK_EQUAL(0, tmp_leftovers(root + "/r"));
  CHECK_FALSE(exists_nofollow(root + "/" + kPartsDir));
}

// A part file untouched for a day goes (the watcher's scan calls this), and
// the parts directory with it when it is left empty; a fresh one stays.
TEST(Publish, StalePartFilesAreRemovedWithTheirDirectory) {
  PublishRequest a = request("s/a.bin", bytes_of(31, 3000)), b = request("s/b.bin", bytes_of(32, 3000));
  std::string pa, pb;
  {
    PartFile p(root, a.rel, a.manifest, manifest_id(a.encoded));
    CHECK_TRUE(p.open(*store).ok());
    pa = p.path();
  }
  {
    PartFile p(root, b.rel, b.manifest, manifest_id(b.encoded));
    CHECK_TRUE(p.open(*store).ok());
    pb = p.path();
  }
  timespec old[2] = {{time(nullptr) - kPartKeepSec - 60, 0}, {time(nullptr) - kPartKeepSec - 60, 0}};
  CHECK_EQUAL(0, ::utimensat(AT_FDCWD, pa.c_str(), old, 0));
  std::vector<std::string> gone = remove_stale_parts(root);
  CHECK_EQUAL(1u, gone.size());
  CHECK_FALSE(exists_nofollow(pa));
  CHECK_TRUE(exists_nofollow(pb));
  CHECK_EQUAL(0u, remove_stale_parts(root).size());
  CHECK_EQUAL(0, ::utimensat(AT_FDCWD, pb.c_str(), old, 0));
  CHECK_EQUAL(1u, remove_stale_parts(root).size());
  CHECK_FALSE(exists_nofollow(root + "/" + kPartsDir));
}

// A parts directory that is a symlink is not used: the part goes beside
// its target, and nothing is written where the link points.
TEST(Publish, PartsDirectoryThatIsASymlinkIsNotFollowed) {
  CHECK_EQUAL(0, ::symlink(elsewhere.c_str(), (root + "/" + kPartsDir).c_str()));
  const std::string content = bytes_of(33, 3000);
  PublishRequest req = request("l/x.bin", content, 1000, 0);
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded));
  CHECK_TRUE(part->open(*store).ok());
  CHECK_EQUAL(root + "/l/" + PartFile::name_of(manifest_id(req.encoded)), part->path());
  CHECK_EQUAL(0u, tmp_names(elsewhere).size());
  for (size_t i = 0; i < 3; i++) {
    const std::string c = content.substr(i * 1000, 1000);
    CHECK_TRUE(part->put(req.manifest.chunks[i].hash, reinterpret_cast<const uint8_t*>(c.data()), c.size()));
  }
  req.part = part;
  CHECK_TRUE(publish_file(*store, req).ok());
  CHECK_TRUE(content == read_file(root + "/l/x.bin"));
  CHECK_EQUAL(0, tmp_leftovers(root + "/l"));
}

TEST(Publish, PartFileBytesCountsWhatAnEarlierRunReserved) {
  PublishRequest req = request("pb/x.bin", bytes_of(29, 300000), 100000);
  Hash mid = manifest_id(req.encoded);
  CHECK_EQUAL(0u, part_file_bytes(root, req.rel, mid));  // no part file, no directory yet
  {
    PartFile part(root, req.rel, req.manifest, mid);
    CHECK_TRUE(part.open(*store).ok());
  }
  // The reservation (fallocate) or the copied chunks: at least the size.
  CHECK_TRUE(part_file_bytes(root, req.rel, mid) >= 300000);
  CHECK_EQUAL(0u, part_file_bytes(root, req.rel, Hash{}));  // another version's: none
  CHECK_EQUAL(0u, part_file_bytes(root, "../pb/x.bin", mid));  // unsafe path
}

TEST(Publish, ChunksOnlyInThePublishedFileAreReadFromItWhileItHoldsThem) {
  const std::string content = bytes_of(28, 3000);
  PublishRequest req = publish_through_part_file("f/only.bin", content, false);
  CHECK_TRUE(content == read_file(root + "/f/only.bin"));
  // The store has no copy of the bytes, only where they are.
  auto stats = store->stats();
  CHECK_TRUE(stats.ok());
  CHECK_EQUAL(3u, stats->chunks);
  std::string got;
  CHECK_TRUE(store->get_chunk(req.manifest.chunks[1].hash, &got).ok());
  CHECK_TRUE(got == content.substr(1000, 1000));
  // The file is changed behind shoal's back: the chunk is no longer held
  // (never wrong bytes), and a version needing it is told which ones to fetch.
  write_file(root + "/f/only.bin", std::string(3000, 'z'));
  CHECK_TRUE(Errc::not_found == store->get_chunk(req.manifest.chunks[1].hash, &got).error().code);
  PublishRequest again = req;
  again.rel = "f/copy.bin";
  again.part.reset();
  again.lost.clear();
  auto r = publish_file(*store, again);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::not_found == r.error().code);
  CHECK_EQUAL(3u, again.lost.size());
  CHECK_EQUAL(0, tmp_leftovers(root + "/f"));
  CHECK_FALSE(exists_nofollow(root + "/f/copy.bin"));
  // Fetched again, a chunk comes into the database and is served from there.
  const std::string b1 = content.substr(1000, 1000);
  CHECK_TRUE(store->put_chunk(req.manifest.chunks[1].hash, reinterpret_cast<const uint8_t*>(b1.data()),
                              b1.size()).ok());
  CHECK_TRUE(store->get_chunk(req.manifest.chunks[1].hash, &got).ok());
  CHECK_TRUE(got == b1);
}

// How many of this process's descriptors are open on `path`.
int open_descriptors_on(const std::string& path) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target == path) n++;
  }
  return n;
}

// A file kept open between reads (keep_files_open) is trusted while fstat
// shows it as its record says; a change while it is open, even one that
// puts back size and mtime, means its bytes are checked again.
TEST(Publish, ChunksFromAFileKeptOpenAreCheckedAgainOnceItChanges) {
  const std::string content = bytes_of(29, 3000);
  PublishRequest req = publish_through_part_file("f/kept.bin", content, true);
  const std::string path = root + "/f/kept.bin";
  std::string got;
  for (size_t i = 0; i < 3; i++) {
    CHECK_TRUE(store->get_chunk(req.manifest.chunks[i].hash, &got).ok());
    CHECK_TRUE(got == content.substr(i * 1000, 1000));
  }
  // Chunk 1 is overwritten in place, then size and mtime are put back.
  struct stat st0 {};
  CHECK_EQUAL(0, ::stat(path.c_str(), &st0));
  int fd = ::open(path.c_str(), O_WRONLY);
  CHECK_TRUE(fd >= 0);
  const std::string z(1000, 'z');
  CHECK_EQUAL(1000, ::pwrite(fd, z.data(), z.size(), 1000));
  ::close(fd);
  const timespec times[2] = {st0.st_atim, st0.st_mtim};
  CHECK_EQUAL(0, ::utimensat(AT_FDCWD, path.c_str(), times, 0));
  struct stat st1 {};
  CHECK_EQUAL(0, ::stat(path.c_str(), &st1));
  CHECK_TRUE(st1.st_size == st0.st_size && st1.st_ino == st0.st_ino);
  CHECK_TRUE(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
  // Never the new bytes under the old hash; the untouched chunks still pass
  // their check.
  auto r = store->get_chunk(req.manifest.chunks[1].hash, &got);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::not_found == r.error().code);
  CHECK_TRUE(store->get_chunk(req.manifest.chunks[2].hash, &got).ok());
  CHECK_TRUE(got == content.substr(2000, 1000));
  store->close_idle_files();  // used just now: kept, still checked
  CHECK_FALSE(store->get_chunk(req.manifest.chunks[1].hash, &got).ok());
  // Kept open means a descriptor on the file (the part file holds one
  // more), until the files are closed.
  const int before = open_descriptors_on(path);
  CHECK_TRUE(before >= 1);
  store->close_files();
  CHECK_EQUAL(before - 1, open_descriptors_on(path));
}

TEST(Publish, PartFileMissingChunkIsListedAndTheRetrySucceeds) {
  const std::string content = bytes_of(25, 3000);
  PublishRequest req = request("m.bin", content, 1000, 2);
  req.part = std::make_shared<PartFile>(root, req.rel, req.manifest, manifest_id(req.encoded));
  CHECK_TRUE(req.part->open(*store).ok());
  auto r = publish_file(*store, req);
  CHECK_FALSE(r.ok());
  CHECK_TRUE(Errc::not_found == r.error().code);
  CHECK_EQUAL(1u, req.lost.size());
  CHECK_TRUE(req.lost[0] == req.manifest.chunks[2].hash);
  CHECK_TRUE(req.part->usable());  // what it holds is kept
  CHECK_FALSE(exists_nofollow(root + "/m.bin"));
  // Once the chunk is there, the retry succeeds.
  const std::string p2 = content.substr(2000);
  CHECK_TRUE(store->put_chunk(req.manifest.chunks[2].hash, reinterpret_cast<const uint8_t*>(p2.data()),
                              p2.size()).ok());
  CHECK_TRUE(publish_file(*store, req).ok());
  CHECK_TRUE(content == read_file(root + "/m.bin"));
}

TEST(Publish, PartFileForeignChunkIsIgnored) {
  const std::string content = bytes_of(26, 2000);
  PublishRequest req = request("w.bin", content, 1000);
  PartFile part(root, req.rel, req.manifest, manifest_id(req.encoded));
  CHECK_TRUE(part.open(*store).ok());  // both pieces copied from the store
  const std::string shorter = content.substr(0, 10);
  part.put(sha256(shorter.data(), shorter.size()), reinterpret_cast<const uint8_t*>(shorter.data()),
           shorter.size());  // not a chunk of this version: ignored
  CHECK_TRUE(part.usable());
}

TEST(Publish, StaleTempNames) {
  CHECK_TRUE(is_stale_temp(".shoal-tmp-0011223344556677", 0));        // the older format
  CHECK_TRUE(is_stale_temp(".shoal-tmp-deadbeef-0011223344556677", 0));  // another run's token
  CHECK_FALSE(is_stale_temp(".shoal-tmpx", 0));
  CHECK_FALSE(is_stale_temp("a.shoal-tmp-1", 0));
  CHECK_FALSE(is_stale_temp(".shoal-conflict-x", 0));
  // A part file is kept for resuming until it has been left alone a day.
  const std::string part = PartFile::name_of(Hash{});
  CHECK_FALSE(is_stale_temp(part, 0));
  CHECK_FALSE(is_stale_temp(part, kPartKeepSec - 1));
  CHECK_TRUE(is_stale_temp(part, kPartKeepSec));
}

// --- written while a peer still reads it (StreamFile) --------------------------

namespace {
// Writes `data` at `off` through a descriptor of the stream file's own.
void write_through_dup(const StreamFile& sf, const std::string& data, uint64_t off) {
  int fd = sf.dup_fd();
  CHECK_TRUE(fd >= 0);
  CHECK_EQUAL(static_cast<ssize_t>(data.size()), ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)));
  CHECK_EQUAL(0, ::close(fd));
}
}  // namespace

// Made in the parts directory, empty but with its space reserved; chunks
// written through dup_fd() are checked at their offset; hand_over() turns it
// into the version's part file, which outlives the StreamFile.
TEST(Publish, StreamFileIsCheckedAndHandedOverAsThePartFile) {
  const std::string parts = root + "/" + kPartsDir;
  const std::string chunk = bytes_of(50, 70000);
  const Hash h = sha256(chunk.data(), chunk.size());
  const uint64_t off = 300000, size = 1u << 20;
  const Hash mid = sha256("a version", 9);
  std::vector<uint8_t> buf(chunk.size());
  std::string own;
  {
    StreamFile sf(root, "s/d/f.bin", size);
    CHECK_EQUAL(-1, sf.dup_fd());  // not open yet
    CHECK_FALSE(sf.check(h, off, buf.data(), static_cast<uint32_t>(buf.size())));
    CHECK_TRUE(sf.open().ok());
    CHECK_FALSE(sf.open().ok());
    CHECK_EQUAL(1u, tmp_names(parts).size());
    CHECK_EQUAL(0u, tmp_names(root + "/s/d").size());  // rel's directories made, the file not there
    own = tmp_names(parts)[0];
    // A temp file of this run, not a part file: after a crash the next run removes it.
    CHECK_FALSE(own.rfind(".shoal-tmp-part-", 0) == 0);
    CHECK_FALSE(is_stale_temp(own, 0));
    struct stat st {};
    CHECK_EQUAL(0, ::lstat((parts + "/" + own).c_str(), &st));
    CHECK_TRUE(S_ISREG(st.st_mode));
    CHECK_EQUAL(0, st.st_size);
    CHECK_TRUE(static_cast<uint64_t>(st.st_blocks) * 512 >= size);  // reserved (FALLOC_FL_KEEP_SIZE)

    write_through_dup(sf, chunk, off);
    CHECK_TRUE(sf.check(h, off, buf.data(), static_cast<uint32_t>(buf.size())));
    CHECK_TRUE(std::string(buf.begin(), buf.end()) == chunk);  // read into buf
    Hash wrong = h;
    wrong[0] ^= 1;
    CHECK_FALSE(sf.check(wrong, off, buf.data(), static_cast<uint32_t>(buf.size())));
    CHECK_FALSE(sf.check(h, off + 1, buf.data(), static_cast<uint32_t>(buf.size())));
    CHECK_FALSE(sf.check(h, 0, buf.data(), static_cast<uint32_t>(buf.size())));
    CHECK_FALSE(sf.check(h, size, buf.data(), static_cast<uint32_t>(buf.size())));  // past the end

    CHECK_EQUAL(0u, part_file_bytes(root, "s/d/f.bin", mid));
    PartFile taker(root, "s/d/f.bin", Manifest{}, mid);
    CHECK_TRUE(sf.hand_over(taker, mid));
    CHECK_FALSE(exists_nofollow(parts + "/" + own));
    CHECK_FALSE(sf.hand_over(taker, mid));  // once
  }
  const std::string part = parts + "/" + PartFile::name_of(mid);
  CHECK_TRUE(exists_nofollow(part));
  const std::string held = read_file(part);
  CHECK_EQUAL(off + chunk.size(), held.size());
  CHECK_TRUE(held.substr(off) == chunk);
  CHECK_TRUE(part_file_bytes(root, "s/d/f.bin", mid) >= size);  // the reservation came along
  CHECK_EQUAL(1u, tmp_names(parts).size());
}

// The part file that takes a stream's file over keeps the chunks the stream
// checked (copying one to the version's other offsets of it) and reads
// nothing else there; a chunk checked where the version holds another one
// (a stream that listed it wrongly) is not kept.
TEST(Publish, StreamFileTakenOverKeepsItsCheckedChunksOnly) {
  const std::string p0 = bytes_of(60, 1000), p1 = bytes_of(61, 1000), p2 = bytes_of(62, 1000);
  const std::string content = p0 + p1 + p2 + p0;
  PublishRequest req = request("t.bin", content, 1000);
  store = std::move(Store::open(tmp + "/fresh.db").value());  // holds none of it
  const Hash mid = manifest_id(req.encoded);
  const Hash h0 = sha256(p0.data(), p0.size()), h1 = sha256(p1.data(), p1.size());
  std::vector<uint8_t> buf(1000);
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, mid);
  {
    StreamFile sf(root, "t.bin", content.size());
    CHECK_TRUE(sf.open().ok());
    write_through_dup(sf, p0 + p1 + p2 + p1, 0);  // p2 written, never checked
    CHECK_TRUE(sf.check(h0, 0, buf.data(), 1000));
    CHECK_TRUE(sf.check(h1, 1000, buf.data(), 1000));
    CHECK_TRUE(sf.check(h1, 3000, buf.data(), 1000));  // the version has p0 there
    CHECK_TRUE(sf.hand_over(*part, mid));
  }
  CHECK_TRUE(part->open(*store).ok());
  std::vector<uint32_t> kept = part->resumed();
  std::sort(kept.begin(), kept.end());
  CHECK_TRUE((std::vector<uint32_t>{0, 1}) == kept);
  CHECK_TRUE(part->put(req.manifest.chunks[2].hash, reinterpret_cast<const uint8_t*>(p2.data()), p2.size()));
  req.part = part;
  req.record = false;
  CHECK_TRUE(publish_file(*store, req).ok());
  CHECK_TRUE(content == read_file(root + "/t.bin"));
}

// A checked list for another file (not the one found under the part's
// name) is not used: the file is resumed by hashing every chunk.
TEST(Publish, CheckedChunksOfAnotherFileAreNotTrusted) {
  const std::string p0 = bytes_of(63, 1000), p1 = bytes_of(64, 1000);
  const std::string content = p0 + p1;
  PublishRequest req = request("u.bin", content, 1000);
  store = std::move(Store::open(tmp + "/fresh.db").value());
  const Hash mid = manifest_id(req.encoded);
  struct stat other {};
  const std::string decoy = root + "/decoy";
  test::write_file(decoy, "x");
  CHECK_EQUAL(0, ::stat(decoy.c_str(), &other));
  std::vector<uint8_t> buf(1000);
  auto part = std::make_shared<PartFile>(root, req.rel, req.manifest, mid);
  {
    StreamFile sf(root, "u.bin", content.size());
    CHECK_TRUE(sf.open().ok());
    const std::string wrong = bytes_of(65, 1000);
    write_through_dup(sf, wrong + p1, 0);  // chunk 0 is wrong, chunk 1 right but unchecked
    CHECK_TRUE(sf.hand_over(*part, mid));
  }
  // As if another file had taken the name between the rename and the open.
  part->take_checked(other, {{0, req.manifest.chunks[0].hash, 1000}});
  CHECK_TRUE(part->open(*store).ok());
  CHECK_TRUE((std::vector<uint32_t>{1}) == part->resumed());  // hashed: chunk 1 only
}

// Not handed over, it goes with its object, and the parts directory it made
// with it.
TEST(Publish, StreamFileDroppedLeavesNothing) {
  const std::string parts = root + "/" + kPartsDir;
  CHECK_FALSE(exists_nofollow(parts));
  std::string path;
  {
    StreamFile sf(root, "t/f.bin", 1u << 20);
    CHECK_TRUE(sf.open().ok());
    CHECK_EQUAL(1u, tmp_names(parts).size());
    path = parts + "/" + tmp_names(parts)[0];
    write_through_dup(sf, bytes_of(51, 5000), 0);
  }
  CHECK_FALSE(exists_nofollow(path));
  CHECK_EQUAL(0u, tmp_names(parts).size());
  CHECK_FALSE(exists_nofollow(parts));
  CHECK_EQUAL(0, tmp_leftovers(root + "/t"));
}

// hand_over() never replaces a part file an earlier run left (it may hold
// chunks to resume from); the stream file then goes alone.
TEST(Publish, StreamFileHandOverRefusesAnExistingPartFile) {
  const std::string parts = root + "/" + kPartsDir;
  const Hash mid = sha256("another version", 15);
  const std::string name = PartFile::name_of(mid);
  const std::string earlier = bytes_of(52, 4000);
  CHECK_EQUAL(0, ::mkdir(parts.c_str(), 0700));
  write_file(parts + "/" + name, earlier);
  {
    StreamFile sf(root, "u/f.bin", 1u << 20);
    CHECK_TRUE(sf.open().ok());
    CHECK_EQUAL(2u, tmp_names(parts).size());
    write_through_dup(sf, bytes_of(53, 6000), 0);
    PartFile taker(root, "u/f.bin", Manifest{}, mid);
    CHECK_FALSE(sf.hand_over(taker, mid));
    CHECK_TRUE(earlier == read_file(parts + "/" + name));
    CHECK_EQUAL(2u, tmp_names(parts).size());  // its own file is still there
  }
  std::vector<std::string> left = tmp_names(parts);
  CHECK_EQUAL(1u, left.size());
  STRCMP_EQUAL(name.c_str(), left[0].c_str());
  CHECK_TRUE(earlier == read_file(parts + "/" + name));
}

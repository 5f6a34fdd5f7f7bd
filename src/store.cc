#include "store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "fileio.h"
#include "log.h"

namespace shoal {
namespace {

// PRAGMA application_id of a shoal database ("SHOL"), so a foreign SQLite file
// at the state path is recognised and left alone.
constexpr int32_t kAppId = 0x53484f4c;

// Chunks are up to 256 KiB; 16 KiB pages cut the overflow chains of a 64 KiB
// chunk to four pages. Only takes effect before the first table exists.
constexpr int kPageSize = 16384;
// Commits checkpoint the WAL past this many pages (64 MiB).
constexpr int kAutoCheckpointPages = 4096;

// Design notes on the schema (v1):
// - chunks keeps a rowid table (large blobs) with its hash in a separate
//   unique index; gc scans that index, never the blob pages.
// - A manifest is stored once (mid UNIQUE) with its chunk list; the catalog
//   maps (share, seq) -> manifest, so the same version committed in two shares
//   gets an entry (and a seq) in each without duplicating body or chunk list.
// - manifest_chunks refers to chunks by integer id: a quarter of the index
//   size of 32-byte hashes, and commit_file looks every chunk up anyway to
//   check it is present.
// - totals is kept by triggers so stats() does not scan a large store.
// - shares.last_seq makes catalog seqs strictly increasing even after gc has
//   removed entries.
const char* const kSchemaV1 = R"sql(
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  len INTEGER NOT NULL,
  data BLOB NOT NULL);
CREATE UNIQUE INDEX chunks_hash ON chunks(hash);
CREATE TABLE manifests(
  id INTEGER PRIMARY KEY,
  mid BLOB NOT NULL,
  path TEXT NOT NULL,
  flags INTEGER NOT NULL,
  body BLOB NOT NULL);
CREATE UNIQUE INDEX manifests_mid ON manifests(mid);
CREATE INDEX manifests_path ON manifests(path);
CREATE TABLE manifest_chunks(
  manifest INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  chunk INTEGER NOT NULL,
  PRIMARY KEY(manifest, idx)) WITHOUT ROWID;
CREATE INDEX manifest_chunks_chunk ON manifest_chunks(chunk);
CREATE TABLE shares(
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE catalog(
  share TEXT NOT NULL,
  seq INTEGER NOT NULL,
  manifest INTEGER NOT NULL,
  PRIMARY KEY(share, seq),
  UNIQUE(share, manifest)) WITHOUT ROWID;
CREATE INDEX catalog_manifest ON catalog(manifest);
CREATE TABLE files(
  share TEXT NOT NULL,
  path TEXT NOT NULL,
  mid BLOB NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  dev INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY(share, path)) WITHOUT ROWID;
CREATE INDEX files_mid ON files(mid);
CREATE TABLE meta(
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE totals(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  chunks INTEGER NOT NULL,
  bytes INTEGER NOT NULL);
INSERT INTO totals VALUES(1, 0, 0);
CREATE TRIGGER chunks_ins AFTER INSERT ON chunks BEGIN
  UPDATE totals SET chunks = chunks + 1, bytes = bytes + NEW.len;
END;
CREATE TRIGGER chunks_del AFTER DELETE ON chunks BEGIN
  UPDATE totals SET chunks = chunks - 1, bytes = bytes - OLD.len;
END;
PRAGMA application_id = 1397247820;
)sql";
static_assert(kAppId == 1397247820, "kSchemaV1 spells the application id");

// Schema history: entry N-1 takes user_version N-1 to N. Append only.
struct Migration {
  int version;
  const char* sql;
};
// v2: chunks may be held in a published file instead of the database (data
// is then the empty blob, len > 0); manifest_chunks.off is the chunk's
// offset in its version, so such a chunk can be read from any stored file of
// a version that holds it. Rows of v1 manifests keep off NULL (their chunks
// are all in the database).
const char* const kSchemaV2 = "ALTER TABLE manifest_chunks ADD COLUMN off INTEGER;";

constexpr Migration kMigrations[] = {{1, kSchemaV1}, {2, kSchemaV2}};
constexpr int kSchemaVersion = 2;

// Tables every schema version since v1 has; a file without them is foreign.
constexpr const char* kTables[] = {"chunks", "manifests", "manifest_chunks", "shares",
                                   "catalog", "files",     "meta",            "totals"};

Errc errc_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return Errc::no_space;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Errc::corrupt;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Errc::busy;
    default: return Errc::io;
  }
}

Error db_error(sqlite3* db, int rc, const char* what) {
  std::string msg = std::string("store: ") + what + ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(errc_of(rc), std::move(msg));
}

Status exec(sqlite3* db, const char* sql, const char* what) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db_error(db, rc, what);
  return {};
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// Owns a prepared statement for the life of the connection.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Status prepare(sqlite3* db, const char* sql) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr);
    if (rc != SQLITE_OK) return db_error(db, rc, sql);
    return {};
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// A text or blob column as bytes; NULL reads as empty.
std::string col_str(sqlite3_stmt* s, int c) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s, c));
  return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, c)));
}

// One use of a cached statement: binds, steps, reads columns, and resets the
// statement (dropping bindings that point into caller memory) on scope exit.
class Use {
 public:
  explicit Use(const Stmt& s) : s_(s.get()) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  Use& i64(int i, int64_t v) { return note(sqlite3_bind_int64(s_, i, v)); }
  Use& u64(int i, uint64_t v) { return i64(i, static_cast<int64_t>(v)); }
  Use& blob(int i, const void* p, size_t n) {
    return note(sqlite3_bind_blob64(s_, i, p, n, SQLITE_STATIC));
  }
  Use& hash(int i, const Hash& h) { return blob(i, h.data(), h.size()); }
  Use& text(int i, const std::string& t) {
    return note(sqlite3_bind_text64(s_, i, t.data(), t.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  // SQLITE_ROW, SQLITE_DONE, or the error (a failed bind included).
  int step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }

  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  uint64_t u64(int c) const { return static_cast<uint64_t>(i64(c)); }
  uint32_t u32(int c) const { return static_cast<uint32_t>(i64(c)); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const { return col_str(s_, c); }
  // False if the column is not a 32-byte blob.
  bool hash(int c, Hash* out) const {
    const void* p = sqlite3_column_blob(s_, c);
    if (p == nullptr || sqlite3_column_bytes(s_, c) != static_cast<int>(out->size())) return false;
    std::memcpy(out->data(), p, out->size());
    return true;
  }
  sqlite3_stmt* raw() const { return s_; }

 private:
  Use& note(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }
  sqlite3_stmt* s_;
  int bind_rc_ = SQLITE_OK;
};

// Steps a statement that returns no rows.
Status run(sqlite3* db, Use& u, const char* what) {
  int rc = u.step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_error(db, rc, what);
  return {};
}

struct TxnStmts {
  Stmt begin, commit, rollback, savepoint, release, rollback_to;
};

// Makes one multi-statement change atomic: BEGIN IMMEDIATE (so a writer never
// has to upgrade a read lock) when no transaction is open, otherwise a
// savepoint inside the caller's transaction so a failure leaves it usable.
class Atomic {
 public:
  Atomic(sqlite3* db, const TxnStmts& t) : db_(db), t_(t), nested_(!sqlite3_get_autocommit(db)) {}
  ~Atomic() {
    if (!open_) return;
    if (nested_) {
      Use r(t_.rollback_to);
      Use rel(t_.release);
      if (r.step() != SQLITE_DONE || rel.step() != SQLITE_DONE)
        LOG_WARN("store: rollback to savepoint: %s", sqlite3_errmsg(db_));
    } else if (!sqlite3_get_autocommit(db_)) {
      Use r(t_.rollback);
      if (r.step() != SQLITE_DONE) LOG_WARN("store: rollback: %s", sqlite3_errmsg(db_));
    }
  }
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  Status start() {
    Use u(nested_ ? t_.savepoint : t_.begin);
    if (auto s = run(db_, u, "begin"); !s) return s;
    open_ = true;
    return {};
  }
  Status commit() {
    Use u(nested_ ? t_.release : t_.commit);
    if (auto s = run(db_, u, "commit"); !s) return s;
    open_ = false;
    return {};
  }

 private:
  sqlite3* db_;
  const TxnStmts& t_;
  bool nested_;
  bool open_ = false;
};

Result<int64_t> pragma_int(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return db_error(db, rc, sql);
  return v;
}

// "SQLite without our tables" is as foreign as another application's file.
Status check_tables(sqlite3* db, const std::string& path) {
  std::string q = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (";
  for (const char* t : kTables) q += std::string(t == kTables[0] ? "'" : ",'") + t + "'";
  q += ")";
  auto have = pragma_int(db, q.c_str());
  if (!have) return have.error();
  if (*have != static_cast<int64_t>(std::size(kTables)))
    return make_error(Errc::corrupt, path + ": shoal tables missing");
  return {};
}

// Classifies the file at `path` on a read-only connection, so that a foreign
// file is refused before anything (WAL switch, checkpoint on close, hot-journal
// rollback) could write to it. True if there is no database yet (absent,
// empty, or an empty SQLite file), false if it is a shoal database we can use.
Result<bool> probe(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    return errno_error(path, errno);
  }
  if (st.st_size == 0) return true;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return make_error(errc_of(rc), path + ": " + sqlite3_errstr(rc));
  sqlite3_busy_timeout(db.get(), 5000);
  auto app = pragma_int(db.get(), "PRAGMA application_id");
  if (!app) {
    if (app.error().code == Errc::corrupt)
      return make_error(Errc::corrupt, path + ": not a shoal database (not SQLite, or corrupt: " +
                                           sqlite3_errmsg(db.get()) + ")");
    return make_error(app.error().code, path + ": " + app.error().msg);
  }
  auto ver = pragma_int(db.get(), "PRAGMA user_version");
  auto n = pragma_int(db.get(), "SELECT count(*) FROM sqlite_master");
  if (!ver || !n) return make_error(Errc::corrupt, path + ": unreadable SQLite header");
  if (*app == 0 && *ver == 0 && *n == 0) return true;
  if (*app != kAppId) {
    char buf[160];
    std::snprintf(buf, sizeof buf, ": not a shoal database (application_id 0x%08llx)",
                  static_cast<unsigned long long>(*app) & 0xffffffffULL);
    return make_error(Errc::corrupt, path + buf);
  }
  if (*ver > kSchemaVersion)
    return make_error(Errc::unsupported, path + ": schema version " + std::to_string(*ver) +
                                             " is newer than this build supports (" +
                                             std::to_string(kSchemaVersion) + ")");
  if (auto t = check_tables(db.get(), path); !t) return t.error();
  return false;
}

}  // namespace

struct Store::Stmts {
  TxnStmts txn;
  Stmt has_chunk, put_chunk, put_chunk_ref, get_chunk, chunk_sources, chunk_id;
  Stmt manifest_get, manifest_put, manifest_body, link_chunk;
  Stmt catalog_get, catalog_latest, catalog_put, catalog_move, catalog_since, seq_next;
  Stmt file_put, file_get, files_share, files_all, file_delete, file_forget;
  Stmt share_stats, totals, manifest_count;
  Stmt gc_catalog, gc_links, gc_manifests, gc_chunks;
  Stmt integrity, meta_set, meta_get;
  Stmt share_files, share_manifest, share_chunk;
};

namespace {
constexpr const char* kFileCols =
    "share, path, mid, size, mtime_ns, mode, inode, dev, chunks, state FROM files";
}

Status Store::prepare() {
  st_ = std::make_unique<Stmts>();
  Stmts& s = *st_;
  const std::string fsel = std::string("SELECT ") + kFileCols;
  const std::string by_share = fsel + " WHERE share = ?1 ORDER BY path";
  const std::string one = fsel + " WHERE share = ?1 AND path = ?2";
  const std::string all = fsel + " ORDER BY share, path";
  const std::pair<Stmt*, const char*> list[] = {
      {&s.txn.begin, "BEGIN IMMEDIATE"},
      {&s.txn.commit, "COMMIT"},
      {&s.txn.rollback, "ROLLBACK"},
      {&s.txn.savepoint, "SAVEPOINT shoal_op"},
      {&s.txn.release, "RELEASE shoal_op"},
      {&s.txn.rollback_to, "ROLLBACK TO shoal_op"},
      {&s.has_chunk, "SELECT 1 FROM chunks WHERE hash = ?1"},
      // A chunk held only in a file comes into the database when it is put.
      {&s.put_chunk,
       "INSERT INTO chunks(hash, len, data) VALUES(?1, ?2, ?3) ON CONFLICT(hash) DO UPDATE"
       " SET data = excluded.data WHERE length(chunks.data) = 0"},
      {&s.put_chunk_ref, "INSERT OR IGNORE INTO chunks(hash, len, data) VALUES(?1, ?2, x'')"},
      {&s.get_chunk, "SELECT data, len FROM chunks WHERE hash = ?1"},
      // Stored files of versions that hold a chunk, with its offset there.
      // CROSS JOIN pins the order: the chunk's row, its links, their files.
      {&s.chunk_sources,
       "SELECT f.share, f.path, mc.off, f.size, f.mtime_ns, f.inode, f.dev FROM chunks c CROSS JOIN manifest_chunks mc"
       " ON mc.chunk = c.id CROSS JOIN manifests m ON m.id = mc.manifest CROSS JOIN files f"
       " ON f.mid = m.mid WHERE c.hash = ?1 AND mc.off IS NOT NULL AND f.state = 'stored'"
       " LIMIT 8"},
      {&s.chunk_id, "SELECT id, len FROM chunks WHERE hash = ?1"},
      {&s.manifest_get, "SELECT id, path FROM manifests WHERE mid = ?1"},
      {&s.manifest_put,
       "INSERT INTO manifests(mid, path, flags, body) VALUES(?1, ?2, ?3, ?4)"},
      {&s.manifest_body, "SELECT body FROM manifests WHERE mid = ?1"},
      {&s.link_chunk, "INSERT INTO manifest_chunks(manifest, idx, chunk, off) VALUES(?1, ?2, ?3, ?4)"},
      {&s.catalog_get, "SELECT seq FROM catalog WHERE share = ?1 AND manifest = ?2"},
      {&s.catalog_latest,
       // CROSS JOIN pins the loop order (path index first); without ANALYZE
       // data the planner would walk the share's whole catalog instead.
       "SELECT max(c.seq) FROM manifests m CROSS JOIN catalog c"
       " ON c.share = ?1 AND c.manifest = m.id WHERE m.path = ?2"},
      {&s.catalog_put, "INSERT INTO catalog(share, seq, manifest) VALUES(?1, ?2, ?3)"},
      {&s.catalog_move, "UPDATE catalog SET seq = ?3 WHERE share = ?1 AND manifest = ?2"},
      {&s.catalog_since,
       "SELECT c.seq, m.mid, m.path, m.flags FROM catalog c JOIN manifests m"
       " ON m.id = c.manifest WHERE c.share = ?1 AND c.seq > ?2 ORDER BY c.seq LIMIT ?3"},
      {&s.seq_next,
       "INSERT INTO shares(name, last_seq) VALUES(?1, 1)"
       " ON CONFLICT(name) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq"},
      {&s.file_put,
       "INSERT OR REPLACE INTO files(share, path, mid, size, mtime_ns, mode, inode, dev,"
       " chunks, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&s.file_get, one.c_str()},
      {&s.files_share, by_share.c_str()},
      {&s.files_all, all.c_str()},
      {&s.file_delete, "UPDATE files SET state = 'deleted' WHERE share = ?1 AND path = ?2"},
      {&s.file_forget, "DELETE FROM files WHERE share = ?1 AND path = ?2"},
      {&s.share_stats,
       "SELECT share, count(*) FILTER (WHERE state = 'stored'),"
       " coalesce(sum(size) FILTER (WHERE state = 'stored'), 0)"
       " FROM files GROUP BY share ORDER BY share"},
      {&s.totals, "SELECT chunks, bytes FROM totals WHERE id = 1"},
      {&s.manifest_count, "SELECT count(*) FROM manifests"},
      // Old versions of a path go unless a file record of that share still
      // points at them; the newest version of each (share, path) stays.
      {&s.gc_catalog,
       "DELETE FROM catalog WHERE (share, seq) IN (SELECT r.share, r.seq FROM ("
       " SELECT c.share, c.seq, m.mid, row_number() OVER"
       " (PARTITION BY c.share, m.path ORDER BY c.seq DESC) AS rn"
       " FROM catalog c JOIN manifests m ON m.id = c.manifest) r"
       " WHERE r.rn > 1 AND NOT EXISTS"
       " (SELECT 1 FROM files f WHERE f.share = r.share AND f.mid = r.mid))"},
      {&s.gc_links,
       "DELETE FROM manifest_chunks WHERE manifest IN (SELECT m.id FROM manifests AS m INDEXED BY manifests_mid"
       " WHERE NOT EXISTS (SELECT 1 FROM catalog c WHERE c.manifest = m.id)"
       " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.mid = m.mid))"},
      {&s.gc_manifests,
       "DELETE FROM manifests WHERE id IN (SELECT m.id FROM manifests AS m INDEXED BY manifests_mid"
       " WHERE NOT EXISTS (SELECT 1 FROM catalog c WHERE c.manifest = m.id)"
       " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.mid = m.mid))"},
      // INDEXED BY: find orphans by scanning the small hash index, never the
      // table, whose leaf pages hold the first part of every blob.
      {&s.gc_chunks,
       "DELETE FROM chunks WHERE id IN (SELECT k.id FROM chunks AS k INDEXED BY chunks_hash"
       " WHERE NOT EXISTS (SELECT 1 FROM manifest_chunks mc WHERE mc.chunk = k.id))"},
      {&s.integrity, "PRAGMA integrity_check(1)"},
      {&s.meta_set, "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)"},
      {&s.meta_get, "SELECT v FROM meta WHERE k = ?1"},
      {&s.share_files, "SELECT count(*) FROM files WHERE share = ?1 AND state = 'stored'"},
      // CROSS JOIN pins the order: from the one object to its catalog
      // entries, never through the share's whole catalog.
      {&s.share_manifest,
       "SELECT 1 FROM manifests m CROSS JOIN catalog c ON c.share = ?2 AND c.manifest = m.id"
       " WHERE m.mid = ?1 LIMIT 1"},
      {&s.share_chunk,
       "SELECT 1 FROM chunks k CROSS JOIN manifest_chunks mc INDEXED BY manifest_chunks_chunk"
       " ON mc.chunk = k.id CROSS JOIN catalog c ON c.share = ?2 AND c.manifest = mc.manifest"
       " WHERE k.hash = ?1 LIMIT 1"},
  };
  for (const auto& [stmt, sql] : list)
    if (auto r = stmt->prepare(db_, sql); !r) return r;
  return {};
}

Status Store::configure(bool fresh) {
  sqlite3_extended_result_codes(db_, 1);
  if (sqlite3_busy_timeout(db_, 5000) != SQLITE_OK) return db_error(db_, SQLITE_ERROR, "busy_timeout");
  if (fresh) {
    std::string ps = "PRAGMA page_size = " + std::to_string(kPageSize);
    if (auto s = exec(db_, ps.c_str(), "page_size"); !s) return s;
  }
  // Memory: a 512 KiB page cache and no mmap keep the daemon's RSS small; the
  // OS page cache does the rest (2 MiB was no faster than 1 MiB: 1 GiB ingest
  // 4.6-5.0x openssl dgst against 5.4-6.2x in the same session; 512 KiB no
  // slower than 1 MiB: 256 MiB ingest_bench median 1.40 s against 1.52 s,
  // 6 runs each). Set after page_size: set before, the cache kept its page
  // count from 4 KiB pages and grew to 8 MiB.
  if (auto s = exec(db_, "PRAGMA cache_size = -512; PRAGMA mmap_size = 0", "pragma"); !s) return s;
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &raw, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(raw);
  std::string mode = rc == SQLITE_ROW ? col_str(raw, 0) : "";
  sqlite3_finalize(raw);
  if (rc != SQLITE_ROW) return db_error(db_, rc, "journal_mode");
  if (mode != "wal") return make_error(Errc::io, path_ + ": cannot switch to WAL (mode " + mode + ")");
  // synchronous=NORMAL: WAL commits are not fsynced, checkpoints are; a power
  // cut loses at most the last transactions, never consistency.
  // wal_autocheckpoint 4096 pages (64 MiB): each checkpoint fsyncs, and at the
  // default 1000 the fsyncs slowed 1 GiB of puts by 10-20%. journal_size_limit
  // truncates the WAL back to that size after a checkpoint.
  // secure_delete: Debian builds SQLite with it ON, which makes gc overwrite
  // every freed page with zeros (a 1 GiB gc wrote 1 GiB); FAST only zeroes
  // within pages that are written anyway.
  if (auto s = set_autocheckpoint(true); !s) return s;
  return exec(db_,
              "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = FAST",
              "pragma");
}

namespace {

// Applies the migrations above user_version; the caller holds the write lock.
Status apply_migrations(sqlite3* db, const std::string& path) {
  // Re-read under the lock: another process may have created or migrated
  // the database since probe().
  auto ver = pragma_int(db, "PRAGMA user_version");
  auto app = pragma_int(db, "PRAGMA application_id");
  auto n = pragma_int(db, "SELECT count(*) FROM sqlite_master");
  if (!ver || !app || !n) return make_error(Errc::corrupt, path + ": unreadable header");
  bool fresh = *ver == 0 && *app == 0 && *n == 0;
  if (!fresh && *app != kAppId) return make_error(Errc::corrupt, path + ": not a shoal database");
  if (*ver > kSchemaVersion) return make_error(Errc::unsupported, path + ": schema version too new");
  for (const Migration& m : kMigrations) {
    if (m.version <= *ver) continue;
    LOG_INFO("store: %s: migrating schema to version %d", log_escape(path).c_str(), m.version);
    if (auto s = exec(db, m.sql, "migrate"); !s) return s;
    std::string uv = "PRAGMA user_version = " + std::to_string(m.version);
    if (auto s = exec(db, uv.c_str(), "migrate"); !s) return s;
  }
  return check_tables(db, path);
}

}  // namespace

Status Store::migrate() {
  // Current already: no write lock, so a reader can open beside a writer
  // that is in the middle of a long transaction.
  auto ver = pragma_int(db_, "PRAGMA user_version");
  if (!ver) return ver.error();
  if (*ver == kSchemaVersion) return check_tables(db_, path_);
  if (auto s = exec(db_, "BEGIN IMMEDIATE", "migrate"); !s) return s;
  if (auto s = apply_migrations(db_, path_); !s) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  }
  return exec(db_, "COMMIT", "migrate");
}

namespace {

// SQLite's page cache starts each connection with a block of 20 pages
// (330 KiB with 16 KiB pages) allocated at once, sized before cache_size is
// applied and kept for the connection's life; without it pages are
// allocated one by one as the cache fills, so each connection holds only
// what its cache_size lets it use. Must come before SQLite initialises: a
// later call fails harmlessly (SQLITE_MISUSE) and the default stays.
void no_page_cache_preallocation() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0); });
}

}  // namespace

// Files chunks were read from, kept open while a sender reads them chunk
// after chunk (keep_files_open).
struct Store::OpenFiles {
  static constexpr size_t kMax = 4;
  static constexpr auto kIdle = std::chrono::seconds(1);
  struct Entry {
    std::string root, path;
    Fd fd;
    struct stat st {};
    bool matches_record = false;  // as opened: the record's size, mtime, inode, device
    std::chrono::steady_clock::time_point used;
  };
  bool keep = false;
  std::vector<Entry> open;
};

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  no_page_cache_preallocation();
  auto fresh = probe(path);
  if (!fresh) return fresh.error();
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  int rc = sqlite3_open_v2(path.c_str(), &s->db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return make_error(errc_of(rc), path + ": " + sqlite3_errstr(rc));
  Status r = s->configure(*fresh);
  if (r) r = s->migrate();
  if (r) r = s->prepare();
  if (!r) {
    const Error& e = r.error();
    return e.msg.compare(0, path.size(), path) == 0 ? e : make_error(e.code, path + ": " + e.msg);
  }
  return s;
}

Store::~Store() {
  st_.reset();  // statements must be finalized before the connection closes
  if (sqlite3_close(db_) != SQLITE_OK) LOG_WARN("store: close: %s", sqlite3_errmsg(db_));
}

// --- transactions ------------------------------------------------------

Txn::Txn(Txn&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }

Txn::~Txn() {
  if (s_ != nullptr) (void)s_->end_txn(false);
}

Status Txn::commit() {
  if (s_ == nullptr) return make_error(Errc::internal, "store: commit of a finished transaction");
  Status r = s_->end_txn(true);
  if (r) s_ = nullptr;
  return r;
}

Result<Txn> Store::begin() {
  if (in_txn_) return make_error(Errc::internal, "store: transaction already open");
  Use u(st_->txn.begin);
  if (auto s = run(db_, u, "begin"); !s) return s.error();
  in_txn_ = true;
  return Txn(this);
}

Status Store::end_txn(bool commit) {
  if (commit) {
    Use u(st_->txn.commit);
    if (auto s = run(db_, u, "commit"); !s) return s;  // Txn destructor rolls back
  } else if (!sqlite3_get_autocommit(db_)) {
    Use u(st_->txn.rollback);
    if (auto s = run(db_, u, "rollback"); !s) LOG_WARN("%s", s.error().msg.c_str());
  }
  in_txn_ = false;
  return {};
}

// SQLite rolls a transaction back by itself on some errors (SQLITE_FULL,
// I/O); later writes must not silently run in autocommit mode then.
Status Store::live_txn() {
  if (in_txn_ && sqlite3_get_autocommit(db_))
    return make_error(Errc::io, "store: transaction was aborted by an earlier error");
  return {};
}

// --- chunks ------------------------------------------------------------

Result<bool> Store::has_chunk(const Hash& h) {
  Use u(st_->has_chunk);
  u.hash(1, h);
  int rc = u.step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_error(db_, rc, "has_chunk");
}

namespace {
Status check_chunk_len(size_t len) {
  if (len == 0 || len > kMaxChunkLen)
    return make_error(Errc::invalid, "store: chunk length " + std::to_string(len) + " out of range");
  return {};
}
}  // namespace

Result<bool> Store::put_chunk(const Hash& h, const uint8_t* data, size_t len) {
  if (auto s = check_chunk_len(len); !s) return s.error();
  if (auto s = live_txn(); !s) return s.error();
  Use u(st_->put_chunk);
  u.hash(1, h).u64(2, len).blob(3, data, len);
  int rc = u.step();
  if (rc != SQLITE_DONE) return db_error(db_, rc, "put_chunk");
  bool added = sqlite3_changes(db_) > 0;
  if (added) bytes_put_ += len;
  return added;
}

// A chunk held in the file of the version being committed (no-op if present).
Status Store::put_chunk_ref(const Hash& h, size_t len) {
  if (auto s = check_chunk_len(len); !s) return s;
  Use u(st_->put_chunk_ref);
  u.hash(1, h).u64(2, len);
  return run(db_, u, "commit_file");
}

Status Store::get_chunk(const Hash& h, std::string* out) {
  uint64_t len = 0;
  {
    Use u(st_->get_chunk);
    u.hash(1, h);
    int rc = u.step();
    if (rc == SQLITE_DONE) return make_error(Errc::not_found, "store: chunk " + hash_hex(h) + " not found");
    if (rc != SQLITE_ROW) return db_error(db_, rc, "get_chunk");
    len = u.u64(1);
    if (sqlite3_column_bytes(u.raw(), 0) > 0 || len == 0) {
      *out = u.text(0);
      return {};
    }
  }
  return read_from_files(h, len, out);
}

bool file_matches_record(const FileRecord& rec, const struct stat& st) {
  return rec.size == static_cast<uint64_t>(st.st_size) && rec.mtime_ns == mtime_ns_of(st) &&
         rec.inode == st.st_ino && rec.dev == st.st_dev;
}

void Store::keep_files_open(bool on) {
  if (!files_) files_ = std::make_unique<OpenFiles>();
  files_->keep = on;
  if (!on) files_->open.clear();
}

void Store::close_files() {
  if (files_) files_->open.clear();
}

void Store::close_idle_files() {
  if (!files_) return;
  auto now = std::chrono::steady_clock::now();
  std::erase_if(files_->open, [&](const OpenFiles::Entry& e) { return now - e.used >= OpenFiles::kIdle; });
}

// A chunk held in files: the first stored file that still has it. Bytes
// read from a file that is as its record says are used as they are; from
// any other, only if they match the hash.
Status Store::read_from_files(const Hash& h, uint64_t len, std::string* out) {
  struct Source {
    FileRecord rec;  // share, path and what the file was when recorded
    uint64_t off;
  };
  std::vector<Source> sources;
  {
    Use u(st_->chunk_sources);
    u.hash(1, h);
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) {
      Source& s = sources.emplace_back();
      s.rec.share = u.text(0);
      s.rec.path = u.text(1);
      s.off = u.u64(2);
      s.rec.size = u.u64(3);
      s.rec.mtime_ns = u.i64(4);
      s.rec.inode = u.u64(5);
      s.rec.dev = u.u64(6);
    }
    if (rc != SQLITE_DONE) return db_error(db_, rc, "get_chunk");
  }
  if (!files_) files_ = std::make_unique<OpenFiles>();
  auto& open = files_->open;
  out->resize(len);
  for (const Source& s : sources) {
    std::string root = roots_ ? roots_->get(s.rec.share) : std::string();
    if (root.empty()) continue;
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const OpenFiles::Entry& e) { return e.root == root && e.path == s.rec.path; });
    struct stat st {};
    // The path now names another file (replaced since it was opened): reopen.
    if (it != open.end() &&
        (::fstat(it->fd.get(), &st) != 0 || st.st_ino != s.rec.inode || st.st_dev != s.rec.dev)) {
      open.erase(it);
      it = open.end();
    }
    OpenFiles::Entry fresh;
    OpenFiles::Entry* e = &fresh;
    if (it != open.end()) {
      e = &*it;
      if (!unchanged_between(st, e->st)) e->matches_record = false;
    } else {
      auto fd = open_beneath(root, s.rec.path);
      if (!fd || ::fstat(fd->get(), &st) != 0) continue;
      fresh.root = root;
      fresh.path = s.rec.path;
      fresh.fd = std::move(fd.value());
      fresh.st = st;
      fresh.matches_record = file_matches_record(s.rec, st);
      if (files_->keep) {
        if (open.size() >= OpenFiles::kMax)
          open.erase(std::min_element(open.begin(), open.end(),
                                      [](const auto& a, const auto& b) { return a.used < b.used; }));
        open.push_back(std::move(fresh));
        e = &open.back();
      }
    }
    e->used = std::chrono::steady_clock::now();
    if (!pread_all(e->fd.get(), out->data(), len, s.off).ok()) continue;
    if (e->matches_record || sha256(out->data(), out->size()) == h) return {};
  }
  out->clear();
  return make_error(Errc::not_found, "store: chunk " + hash_hex(h) + " is in no file that still holds it");
}

void ShareRoots::set(const std::string& share, const std::string& root) {
  std::lock_guard<std::mutex> lk(mu_);
  if (root.empty()) roots_.erase(share);
  else roots_[share] = root;
}

std::string ShareRoots::get(const std::string& share) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = roots_.find(share);
  return it == roots_.end() ? std::string() : it->second;
}

// --- manifests and files -----------------------------------------------

namespace {

Status check_version(const FileRecord& rec, const std::string& encoded,
                     const std::vector<ChunkRef>& chunks) {
  if (rec.share.empty() || rec.path.empty() || rec.path.size() > kMaxPathBytes)
    return make_error(Errc::invalid, "store: commit_file: bad share or path");
  if (encoded.empty() || encoded.size() > kMaxManifestBytes)
    return make_error(Errc::invalid, "store: commit_file: bad manifest size");
  if (sha256(encoded.data(), encoded.size()) != rec.manifest)
    return make_error(Errc::invalid, "store: commit_file: record does not name this manifest");
  uint64_t total = 0;
  for (const ChunkRef& c : chunks) total += c.len;
  if (chunks.size() != rec.chunks || total != rec.size)
    return make_error(Errc::invalid, "store: commit_file: chunk list does not match the record");
  return {};
}

}  // namespace

Status Store::commit_file(const FileRecord& rec, const std::string& encoded_manifest,
                          const std::vector<ChunkRef>& chunks, uint32_t flags, bool in_file) {
  if (auto s = check_version(rec, encoded_manifest, chunks); !s) return s;
  if (auto s = live_txn(); !s) return s;
  Atomic a(db_, st_->txn);
  if (auto s = a.start(); !s) return s;
  if (in_file)
    for (const ChunkRef& c : chunks)
      if (auto s = put_chunk_ref(c.hash, c.len); !s) return s;
  auto id = put_manifest(rec, encoded_manifest, chunks, flags);
  if (!id) return id.error();
  if (auto s = catalog_add(rec.share, rec.path, *id); !s) return s;
  if (auto s = put_file(rec); !s) return s;
  return a.commit();
}

// The manifest's row id, inserting it and its chunk list if new.
Result<int64_t> Store::put_manifest(const FileRecord& rec, const std::string& encoded,
                                    const std::vector<ChunkRef>& chunks, uint32_t flags) {
  {
    Use u(st_->manifest_get);
    u.hash(1, rec.manifest);
    int rc = u.step();
    if (rc == SQLITE_ROW) {
      if (u.text(1) != rec.path)
        return make_error(Errc::invalid, "store: commit_file: manifest recorded under another path");
      return u.i64(0);
    }
    if (rc != SQLITE_DONE) return db_error(db_, rc, "commit_file");
  }
  Use u(st_->manifest_put);
  u.hash(1, rec.manifest).text(2, rec.path).i64(3, flags).blob(4, encoded.data(), encoded.size());
  if (auto s = run(db_, u, "commit_file"); !s) return s.error();
  int64_t id = sqlite3_last_insert_rowid(db_);
  if (auto s = link_chunks(id, chunks); !s) return s.error();
  return id;
}

Status Store::link_chunks(int64_t manifest, const std::vector<ChunkRef>& chunks) {
  uint64_t off = 0;
  for (size_t i = 0; i < chunks.size(); i++) {
    int64_t cid = 0;
    {
      Use q(st_->chunk_id);
      q.hash(1, chunks[i].hash);
      int rc = q.step();
      if (rc == SQLITE_DONE)
        return make_error(Errc::not_found, "store: commit_file: chunk " + hash_hex(chunks[i].hash) + " missing");
      if (rc != SQLITE_ROW) return db_error(db_, rc, "commit_file");
      if (q.u64(1) != chunks[i].len)
        return make_error(Errc::invalid, "store: commit_file: chunk " + hash_hex(chunks[i].hash) + " length differs");
      cid = q.i64(0);
    }
    Use u(st_->link_chunk);
    u.i64(1, manifest).u64(2, i).i64(3, cid).u64(4, off);
    if (auto s = run(db_, u, "commit_file"); !s) return s;
    off += chunks[i].len;
  }
  return {};
}

// A version gets a new seq when first seen in a share, and again when it
// comes back after another version of the path (A, B, A): peers must see the
// newest seq of a path name its current version.
Status Store::catalog_add(const std::string& share, const std::string& path, int64_t manifest) {
  int64_t have = 0;
  {
    Use u(st_->catalog_get);
    u.text(1, share).i64(2, manifest);
    int rc = u.step();
    if (rc == SQLITE_ROW) have = u.i64(0);
    else if (rc != SQLITE_DONE) return db_error(db_, rc, "commit_file");
  }
  if (have != 0) {
    Use u(st_->catalog_latest);
    u.text(1, share).text(2, path);
    int rc = u.step();
    if (rc != SQLITE_ROW) return db_error(db_, rc, "commit_file");
    if (u.i64(0) == have) return {};
  }
  auto seq = next_seq(share);
  if (!seq) return seq.error();
  Use u(have != 0 ? st_->catalog_move : st_->catalog_put);
  u.text(1, share);
  if (have != 0) u.i64(2, manifest).u64(3, *seq);
  else u.u64(2, *seq).i64(3, manifest);
  return run(db_, u, "commit_file");
}

Result<uint64_t> Store::next_seq(const std::string& share) {
  Use u(st_->seq_next);
  u.text(1, share);
  int rc = u.step();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "catalog seq");
  uint64_t seq = u.u64(0);
  // RETURNING rows are produced after the change; finish the statement.
  rc = u.step();
  if (rc != SQLITE_DONE) return db_error(db_, rc, "catalog seq");
  return seq;
}

Status Store::put_file(const FileRecord& rec) {
  Use u(st_->file_put);
  u.text(1, rec.share).text(2, rec.path).hash(3, rec.manifest).u64(4, rec.size);
  u.i64(5, rec.mtime_ns).i64(6, rec.mode).u64(7, rec.inode).u64(8, rec.dev);
  u.i64(9, rec.chunks).text(10, rec.state);
  return run(db_, u, "put_file");
}

Status Store::remove_file(const std::string& share, const std::string& path, bool forget) {
  if (auto s = live_txn(); !s) return s;
  Use u(forget ? st_->file_forget : st_->file_delete);
  u.text(1, share).text(2, path);
  if (auto s = run(db_, u, "remove_file"); !s) return s;
  if (sqlite3_changes(db_) == 0)
    return make_error(Errc::not_found, "store: no record of " + log_escape(share) + ":" + log_escape(path));
  return {};
}

namespace {

// Reads the rows of a files query (columns as in kFileCols).
Result<std::vector<FileRecord>> read_files(sqlite3* db, sqlite3_stmt* s) {
  std::vector<FileRecord> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    FileRecord r;
    r.share = col_str(s, 0);
    r.path = col_str(s, 1);
    const void* mid = sqlite3_column_blob(s, 2);
    if (mid == nullptr || sqlite3_column_bytes(s, 2) != static_cast<int>(r.manifest.size()))
      return make_error(Errc::corrupt, "store: bad manifest id in files table");
    std::memcpy(r.manifest.data(), mid, r.manifest.size());
    r.size = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    r.mtime_ns = sqlite3_column_int64(s, 4);
    r.mode = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
    r.inode = static_cast<uint64_t>(sqlite3_column_int64(s, 6));
    r.dev = static_cast<uint64_t>(sqlite3_column_int64(s, 7));
    r.chunks = static_cast<uint32_t>(sqlite3_column_int64(s, 8));
    r.state = col_str(s, 9);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return db_error(db, rc, "list files");
  return out;
}

}  // namespace

Result<std::optional<FileRecord>> Store::get_file(const std::string& share, const std::string& path) {
  Use u(st_->file_get);
  u.text(1, share).text(2, path);
  auto v = read_files(db_, u.raw());
  if (!v) return v.error();
  if (v->empty()) return std::optional<FileRecord>();
  return std::optional<FileRecord>(std::move(v->front()));
}

Result<std::vector<FileRecord>> Store::list_files(const std::string& share) {
  Use u(share.empty() ? st_->files_all : st_->files_share);
  if (!share.empty()) u.text(1, share);
  return read_files(db_, u.raw());
}

Status Store::get_manifest(const Hash& id, std::string* out) {
  Use u(st_->manifest_body);
  u.hash(1, id);
  int rc = u.step();
  if (rc == SQLITE_DONE) return make_error(Errc::not_found, "store: manifest " + hash_hex(id) + " not found");
  if (rc != SQLITE_ROW) return db_error(db_, rc, "get_manifest");
  *out = u.text(0);
  return {};
}

Result<std::vector<CatalogEntry>> Store::catalog_since(const std::string& share, uint64_t after,
                                                       size_t limit) {
  std::vector<CatalogEntry> out;
  Use u(st_->catalog_since);
  u.text(1, share).u64(2, std::min<uint64_t>(after, INT64_MAX));
  u.u64(3, std::min<uint64_t>(limit, INT64_MAX));
  int rc;
  while ((rc = u.step()) == SQLITE_ROW) {
    CatalogEntry e;
    e.seq = u.u64(0);
    if (!u.hash(1, &e.manifest)) return make_error(Errc::corrupt, "store: bad manifest id in catalog");
    e.path = u.text(2);
    e.flags = u.u32(3);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return db_error(db_, rc, "catalog_since");
  return out;
}

Result<uint64_t> Store::catalog_head(const std::string& share) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, "SELECT last_seq FROM shares WHERE name = ?", -1, &raw, nullptr);
  if (rc != SQLITE_OK) return db_error(db_, rc, "catalog_head");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, sqlite3_finalize);
  sqlite3_bind_text(raw, 1, share.data(), static_cast<int>(share.size()), SQLITE_TRANSIENT);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return uint64_t{0};
  if (rc != SQLITE_ROW) return db_error(db_, rc, "catalog_head");
  return static_cast<uint64_t>(sqlite3_column_int64(raw, 0));
}

// --- housekeeping ------------------------------------------------------

Result<std::vector<ShareStats>> Store::share_stats() {
  std::vector<ShareStats> out;
  Use u(st_->share_stats);
  int rc;
  while ((rc = u.step()) == SQLITE_ROW) out.push_back({u.text(0), u.u64(1), u.u64(2)});
  if (rc != SQLITE_DONE) return db_error(db_, rc, "share_stats");
  return out;
}

Result<StoreStats> Store::totals() {
  StoreStats t;
  Use u(st_->totals);
  int rc = u.step();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "stats");
  t.chunks = u.u64(0);
  t.chunk_bytes = u.u64(1);
  return t;
}

Result<StoreStats> Store::stats() {
  auto t = totals();
  if (!t) return t;
  Use u(st_->manifest_count);
  int rc = u.step();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "stats");
  t->manifests = u.u64(0);
  return t;
}

Result<GcStats> Store::gc() {
  if (auto s = live_txn(); !s) return s.error();
  Atomic a(db_, st_->txn);
  if (auto s = a.start(); !s) return s.error();
  auto before = totals();
  if (!before) return before.error();
  GcStats g;
  for (Stmt* s : {&st_->gc_catalog, &st_->gc_links, &st_->gc_manifests, &st_->gc_chunks}) {
    Use u(*s);
    if (auto r = run(db_, u, "gc"); !r) return r.error();
    if (s == &st_->gc_manifests) g.manifests_removed = static_cast<uint64_t>(sqlite3_changes64(db_));
  }
  auto after = totals();
  if (!after) return after.error();
  g.chunks_removed = before->chunks - after->chunks;
  g.bytes_removed = before->chunk_bytes - after->chunk_bytes;
  if (auto s = a.commit(); !s) return s.error();
  return g;
}

Result<std::string> Store::integrity_check() {
  Use u(st_->integrity);
  int rc = u.step();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "integrity_check");
  return u.text(0);
}

Status Store::checkpoint() { return checkpoint(CheckpointMode::truncate); }

Status Store::checkpoint(CheckpointMode mode) {
  int m = mode == CheckpointMode::passive   ? SQLITE_CHECKPOINT_PASSIVE
          : mode == CheckpointMode::restart ? SQLITE_CHECKPOINT_RESTART
                                            : SQLITE_CHECKPOINT_TRUNCATE;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, m, nullptr, nullptr);
  if (rc != SQLITE_OK) return db_error(db_, rc, "checkpoint");
  return {};
}

Status Store::set_autocheckpoint(bool on) {
  int rc = sqlite3_wal_autocheckpoint(db_, on ? kAutoCheckpointPages : 0);
  if (rc != SQLITE_OK) return db_error(db_, rc, "wal_autocheckpoint");
  // Off, a WAL that restarts is reused at its full size rather than cut
  // back (and its pages allocated again) each time.
  return exec(db_, on ? "PRAGMA journal_size_limit = 67108864" : "PRAGMA journal_size_limit = -1",
              "journal_size_limit");
}

Status Store::set_cache_kib(int kib) {
  const std::string sql = "PRAGMA cache_size = -" + std::to_string(kib);
  return exec(db_, sql.c_str(), "cache_size");
}

void Store::interrupt() { sqlite3_interrupt(db_); }

Status Store::set_meta(const std::string& key, const std::string& value) {
  if (auto s = live_txn(); !s) return s;
  Use u(st_->meta_set);
  u.text(1, key).text(2, value);
  return run(db_, u, "set_meta");
}

Result<std::optional<std::string>> Store::get_meta(const std::string& key) {
  Use u(st_->meta_get);
  u.text(1, key);
  int rc = u.step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "get_meta");
  return std::optional<std::string>(u.text(0));
}

// --- share membership ----------------------------------------------------

Result<uint64_t> Store::count_files(const std::string& share) {
  Use u(st_->share_files);
  u.text(1, share);
  int rc = u.step();
  if (rc != SQLITE_ROW) return db_error(db_, rc, "count_files");
  return u.u64(0);
}

Result<bool> Store::in_share(const std::string& share, const Hash& id, bool manifest) {
  Use u(manifest ? st_->share_manifest : st_->share_chunk);
  u.hash(1, id).text(2, share);
  int rc = u.step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_error(db_, rc, "in_share");
}

}  // namespace shoal

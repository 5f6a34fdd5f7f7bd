// The SQLite chunk store (state_dir/shoal.db): content-addressed chunks stored
// once, file-version manifests with their chunk lists, the local file table and
// a per-share catalog sequence. WAL mode, schema version with migrations
// (PRAGMA user_version), every multi-step change in one transaction.
//
// One Store object = one SQLite connection, used by one thread at a time. The
// ingest worker owns the writing connection; the event loop may open another
// for reads (WAL lets readers run beside the writer).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hash.h"
#include "manifest.h"
#include "result.h"

struct sqlite3;
struct stat;

namespace shoal {

// The local record of one file in a share folder.
struct FileRecord {
  std::string share;     // local share name
  std::string path;      // relative path
  Hash manifest{};       // manifest_id of the version on disk
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;
  uint64_t inode = 0;    // st_ino / st_dev of the file when recorded, so an
  uint64_t dev = 0;      // unchanged file is not read again after a restart
  uint32_t chunks = 0;   // chunk count
  std::string state = "stored";  // stored | deleted | error:<reason>
};

// Whether `st` is the file `rec` describes: same size, mtime, inode and
// device. The start-up scan then does not read the file again, and serving
// uses its bytes without hashing them again.
bool file_matches_record(const FileRecord& rec, const struct stat& st);

struct ShareStats {
  std::string share;
  uint64_t files = 0;    // records with state "stored"
  uint64_t bytes = 0;    // sum of their sizes
};

struct StoreStats {
  uint64_t chunks = 0;        // unique chunks
  uint64_t chunk_bytes = 0;   // their total length
  uint64_t manifests = 0;
};

struct GcStats {
  uint64_t manifests_removed = 0;
  uint64_t chunks_removed = 0;
  uint64_t bytes_removed = 0;
};

struct CatalogEntry {
  uint64_t seq = 0;      // per-share, strictly increasing as versions are added
  Hash manifest{};
  std::string path;
  uint32_t flags = 0;    // ManifestFlags of that version
};

class Store;

// Versions this large keep their data in their file only: ingest records
// where each chunk is, and a receiver writes the chunks straight into the
// file (publish.h, PartFile). Smaller ones keep a copy in the database, so
// they are published and served without opening files.
constexpr uint64_t kHeldInFileMin = 1u << 20;

// Share name -> absolute root, for reading chunks held in published files.
// Thread-safe: the daemon updates it as shares come and go while both of its
// connections read it.
class ShareRoots {
 public:
  void set(const std::string& share, const std::string& root);  // empty root: remove
  std::string get(const std::string& share) const;              // empty: unknown

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> roots_;
};

// RAII transaction: rolls back on destruction unless commit() succeeded.
class [[nodiscard]] Txn {
 public:
  Txn(Txn&& o) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();
  Status commit();

 private:
  friend class Store;
  explicit Txn(Store* s) : s_(s) {}
  Store* s_;
};

class Store {
 public:
  // Opens (creating if needed) the database at `path`, sets WAL,
  // synchronous=NORMAL, busy timeout, and migrates the schema to the current
  // version. A file that is not a shoal database (foreign or corrupt) is an
  // Errc::corrupt error (Errc::unsupported for a shoal schema newer than this
  // build) with a message naming the file; it is never modified.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Starts a transaction (BEGIN IMMEDIATE). Nesting is not supported. The
  // Txn must not outlive the Store.
  Result<Txn> begin();

  // --- chunks ---------------------------------------------------------
  Result<bool> has_chunk(const Hash& h);
  // Stores a chunk if absent (idempotent), or brings it into the database if
  // it was held only in files. Caller has verified hash == sha256(data).
  // Returns true if it was new or brought in.
  Result<bool> put_chunk(const Hash& h, const uint8_t* data, size_t len);
  // Chunk bytes this connection has inserted (new chunks only), ever.
  uint64_t bytes_put() const { return bytes_put_; }
  // Reads a whole chunk into *out (resized). not_found if absent, or if it is
  // held in files and none of them (see set_roots) still has those bytes.
  Status get_chunk(const Hash& h, std::string* out);
  // Where shares live, for chunks held in files (none known until set).
  void set_roots(std::shared_ptr<const ShareRoots> roots) { roots_ = std::move(roots); }
  // A chunk read from a file whose size, mtime, inode and device still match
  // its file record (what ingest saw when it hashed it, or what publish
  // wrote) is used without hashing it again; any other is checked against
  // its SHA-256. With keep_files_open(true), up to 4 such files stay open
  // between reads (a sender reads a large file chunk after chunk), each
  // re-checked with fstat at every read (a change of ctime, mtime or size
  // since it was opened means hashing again), and close_idle_files() closes
  // those unused for a second, so a deleted file's space is not held. Off
  // by default: each read opens and closes its file.
  void keep_files_open(bool on);
  void close_idle_files();
  void close_files();  // all of them (a share went away)

  // --- manifests and files --------------------------------------------
  // Records a version: stores the manifest (if new) with its chunk list,
  // gives it the share's next catalog seq if it is new in rec.share (or was
  // superseded there by another version of the path), and upserts the file
  // record. The store never decodes manifests, so the caller passes the
  // manifest's chunk list and flags; rec.manifest must be sha256(encoded),
  // rec.chunks == chunks.size() and rec.size == sum of chunk lengths, and every
  // chunk must be present (not_found otherwise) unless `in_file`: the file
  // at rec.path holds the version (a large received file is written only
  // there), and chunks the store lacks are recorded as held in files.
  // get_chunk then reads them from a stored file of any version holding
  // them, checked against their hash. Atomic: its own transaction, or a
  // savepoint inside the caller's.
  Status commit_file(const FileRecord& rec, const std::string& encoded_manifest,
                     const std::vector<ChunkRef>& chunks, uint32_t flags = 0, bool in_file = false);
  // Marks a file record deleted (or removes it if `forget`); not_found if absent.
  Status remove_file(const std::string& share, const std::string& path, bool forget);
  Result<std::optional<FileRecord>> get_file(const std::string& share, const std::string& path);
  // All records of `share`, or of every share when empty, ordered by share, path.
  Result<std::vector<FileRecord>> list_files(const std::string& share);
  // The encoded manifest by id; not_found if absent.
  Status get_manifest(const Hash& id, std::string* out);
  // Catalog entries of `share` with seq > after, at most `limit`, by seq.
  // The highest seq ever assigned in `share` (0: none). Entries up to it may
  // have been collected; a peer that has pulled up to the head is up to date.
  Result<uint64_t> catalog_head(const std::string& share);
  Result<std::vector<CatalogEntry>> catalog_since(const std::string& share, uint64_t after, size_t limit);

  // Files of `share` in state "stored".
  Result<uint64_t> count_files(const std::string& share);
  // Whether object `id` belongs to a version in `share`'s catalog: the
  // manifest itself (manifest = true) or one of its chunks. What a peer of
  // one share may be served; chunks held only for other shares are not.
  Result<bool> in_share(const std::string& share, const Hash& id, bool manifest);

  // --- housekeeping ---------------------------------------------------
  Result<std::vector<ShareStats>> share_stats();
  Result<StoreStats> stats();
  // Removes catalog entries and manifests that no file record references
  // (except the newest version of each (share, path)), then chunks no
  // remaining manifest references, including chunks put but never committed.
  // One transaction. Must not run while this connection's owner is between
  // put_chunk and commit_file of a file in separate transactions: those
  // chunks are still orphans and would be removed.
  Result<GcStats> gc();
  // "ok" or the first problem reported by PRAGMA integrity_check.
  Result<std::string> integrity_check();
  // PRAGMA wal_checkpoint(TRUNCATE) so the WAL does not grow without bound.
  Status checkpoint();
  // passive: copies what it can without waiting for other connections;
  // restart: waits for them, copies everything and makes the next write start
  // the WAL from its beginning; truncate: restart, and truncates the WAL file.
  enum class CheckpointMode { passive, restart, truncate };
  Status checkpoint(CheckpointMode mode);
  // Whether this connection's commits checkpoint the WAL once it holds 64 MiB
  // (the default). Off, the owner must checkpoint (some connection must).
  Status set_autocheckpoint(bool on);
  // Caps this connection's page cache at about `kib` KiB (512 KiB when opened).
  // The cache is allocated as it fills, so this bounds the connection's memory.
  Status set_cache_kib(int kib);
  // Makes a checkpoint or statement running on this connection on another
  // thread stop early with an error (sqlite3_interrupt). Thread-safe.
  void interrupt();
  const std::string& path() const { return path_; }

  // Small key/value table for node state (epochs, counters).
  Status set_meta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> get_meta(const std::string& key);

  sqlite3* db() { return db_; }  // for tests that inject faults

 private:
  friend class Txn;
  Store() = default;
  Status end_txn(bool commit);
  Status live_txn();
  Status configure(bool fresh);
  Status migrate();
  Status prepare();
  Result<int64_t> put_manifest(const FileRecord& rec, const std::string& encoded,
                               const std::vector<ChunkRef>& chunks, uint32_t flags);
  Status link_chunks(int64_t manifest, const std::vector<ChunkRef>& chunks);
  Status catalog_add(const std::string& share, const std::string& path, int64_t manifest);
  Result<uint64_t> next_seq(const std::string& share);
  Status put_file(const FileRecord& rec);
  Result<StoreStats> totals();
  Status read_from_files(const Hash& h, uint64_t len, std::string* out);
  Status put_chunk_ref(const Hash& h, size_t len);

  std::string path_;
  sqlite3* db_ = nullptr;
  bool in_txn_ = false;
  uint64_t bytes_put_ = 0;
  std::shared_ptr<const ShareRoots> roots_;
  struct OpenFiles;
  std::unique_ptr<OpenFiles> files_;
  struct Stmts;
  std::unique_ptr<Stmts> st_;
};

}  // namespace shoal

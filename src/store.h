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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hash.h"
#include "manifest.h"
#include "result.h"

struct sqlite3;

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
  // Errc::corrupt error with a message naming the file; it is never modified.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Starts a transaction (BEGIN IMMEDIATE). Nesting is not supported.
  Result<Txn> begin();

  // --- chunks ---------------------------------------------------------
  Result<bool> has_chunk(const Hash& h);
  // Stores a chunk if absent (idempotent). Caller has verified hash == sha256(data).
  // Returns true if it was new.
  Result<bool> put_chunk(const Hash& h, const uint8_t* data, size_t len);
  // Reads a whole chunk into *out (resized). not_found if absent.
  Status get_chunk(const Hash& h, std::string* out);

  // --- manifests and files --------------------------------------------
  // Records a version: stores the manifest (if new) under `share`, assigns it
  // the share's next catalog seq if new, and upserts the file record
  // (rec.manifest must equal manifest_id(encoded)). One transaction unless the
  // caller already holds one. All chunks of the manifest must be present.
  Status commit_file(const FileRecord& rec, const std::string& encoded_manifest);
  // Marks a file record deleted (or removes it if `forget`).
  Status remove_file(const std::string& share, const std::string& path, bool forget);
  Result<std::optional<FileRecord>> get_file(const std::string& share, const std::string& path);
  // All records of `share`, or of every share when empty, ordered by share, path.
  Result<std::vector<FileRecord>> list_files(const std::string& share);
  // The encoded manifest by id; not_found if absent.
  Status get_manifest(const Hash& id, std::string* out);
  // Catalog entries of `share` with seq > after, at most `limit`, by seq.
  Result<std::vector<CatalogEntry>> catalog_since(const std::string& share, uint64_t after, size_t limit);

  // --- housekeeping ---------------------------------------------------
  Result<std::vector<ShareStats>> share_stats();
  Result<StoreStats> stats();
  // Removes manifests that no file record references (and are not the latest
  // catalog entry of their path), then chunks no manifest references.
  Result<GcStats> gc();
  // "ok" or the first problem reported by PRAGMA integrity_check.
  Result<std::string> integrity_check();
  // PRAGMA wal_checkpoint(TRUNCATE) so the WAL does not grow without bound.
  Status checkpoint();

  // Small key/value table for node state (epochs, counters).
  Status set_meta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> get_meta(const std::string& key);

  sqlite3* db() { return db_; }  // for tests that inject faults

 private:
  friend class Txn;
  Store() = default;
  sqlite3* db_ = nullptr;
  bool in_txn_ = false;
  struct Stmts;
  std::unique_ptr<Stmts> st_;
};

}  // namespace shoal

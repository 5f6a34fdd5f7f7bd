// The ingest worker: a thread that owns the writing Store connection and turns
// files into chunks + manifests off the event-loop thread. Jobs come in from
// the loop (deduplicated per file, so the queue is bounded by the number of
// files, and the data in flight by a few read blocks: a large file is read
// and hashed on a second thread while the worker stores its chunks); results
// go back through the loop (a libevent event activated from the worker).
// Files queued back to back share one transaction, and a file's result is
// reported only once the transaction that recorded it has committed.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "result.h"
#include "store.h"

struct event;
struct event_base;

namespace shoal {

struct IngestJob {
  enum class Kind { file, removed, gc };  // gc: collect unreferenced chunks
  Kind kind = Kind::file;
  std::string share;   // local share name
  std::string root;    // absolute share root
  std::string rel;     // path relative to root
  bool propagate_delete = false;  // a removal becomes a tombstone version (delete = propagate)
  // The share's limits (config max_file_size, max_files; 0: none): a larger
  // file, or a new file beyond the count, is skipped with a warning.
  uint64_t max_file_size = 0;
  uint64_t max_files = 0;
  // List a large file's chunks while it is read (StreamBatch), so the
  // replicator can send them before the version is stored.
  bool stream = false;
};

// A large file's chunks in file order as they are cut and hashed, before its
// version is stored (PROTOCOL.md 8.7); then one batch with `end` set. Only
// for jobs with `stream`, files of at least kStreamMin bytes.
struct StreamBatch {
  std::string share;
  std::string rel;
  uint64_t stream = 0;          // this read of the file (random, never 0)
  uint64_t size = 0;            // the file's size when the read began
  uint64_t first_offset = 0;    // of chunks[0] in the file
  uint32_t first_index = 0;     // of chunks[0] in the version
  std::vector<ChunkRef> chunks;
  bool end = false;             // no more batches of this stream
  bool whole = false;           // with end: every chunk was listed and the file did not change
  // The file as the read found it: its bytes are what was hashed while it
  // is unchanged_between() this and a later stat.
  struct stat st {};
};
constexpr uint64_t kStreamMin = 8u << 20;

struct IngestResult {
  enum class Kind { stored, unchanged, removed, skipped, failed };
  Kind kind = Kind::failed;
  std::string share;
  std::string rel;
  uint32_t new_chunks = 0;   // chunks that were not yet in the store
  uint64_t bytes = 0;        // file size
  Error error;               // for failed / skipped
  FileRecord record;         // for stored / unchanged
};
const char* ingest_kind_name(IngestResult::Kind k);

struct IngestStats {
  uint64_t files_stored = 0;
  uint64_t files_unchanged = 0;
  uint64_t files_failed = 0;
  uint64_t bytes_read = 0;
  uint64_t chunks_new = 0;
};

class IngestBatch;
class Checkpointer;

class Ingester {
 public:
  using DoneFn = std::function<void(const IngestResult&)>;
  using StreamFn = std::function<void(StreamBatch&)>;
  // Takes ownership of `store` (the writing connection) and starts the worker.
  // `done` runs on the loop thread of `base`, once per finished job.
  // Needs evthread_use_pthreads() before `base` was created.
  static Result<std::unique_ptr<Ingester>> start(event_base* base, std::unique_ptr<Store> store,
                                                 std::string origin_node, DoneFn done);
  ~Ingester();  // stops the worker (an ingest in progress is abandoned safely) and joins

  // Where StreamBatches go (loop thread); without a sink they are dropped.
  void set_stream_sink(StreamFn fn) { stream_fn_ = std::move(fn); }
  // Queues a job (loop thread). A job for a file already queued is merged.
  void submit(IngestJob job);
  // Jobs queued or running.
  size_t pending() const { return pending_.load(); }

  // Runs `work` on the worker thread with the writing store, then the
  // function it returns on the loop thread. Posts run before queued file
  // ingests (never inside the transaction of a file), in order, several in
  // one transaction. Returns false (nothing
  // queued) when kMaxPosts are already waiting: the caller backs off.
  using Work = std::function<std::function<void()>(Store&)>;
  static constexpr size_t kMaxPosts = 256;
  bool post(Work work);
  size_t posts_waiting() const;
  IngestStats stats() const;

  // Ingests one file synchronously with `store` in transactions of its own
  // (the worker's code path; also used by tests). `stop` is polled between
  // chunks.
  static IngestResult ingest_file(Store& store, const IngestJob& job, const std::string& origin,
                                  const std::atomic<bool>& stop,
                                  std::function<void(StreamBatch&)> stream = nullptr);

 private:
  Ingester() = default;
  void run();
  bool must_flush(const IngestBatch& batch) const;
  void deliver(std::vector<IngestResult>& rs);
  static void on_results(int, short, void* arg);

  std::unique_ptr<Store> store_;
  std::string origin_;
  DoneFn done_;
  StreamFn stream_fn_;
  event* ev_ = nullptr;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<IngestJob> queue_;
  std::set<std::pair<std::string, std::string>> queued_;  // (share, rel) in queue_
  std::deque<IngestResult> results_;
  std::deque<Work> posts_;
  std::deque<std::function<void()>> post_done_;
  void run_posts(std::unique_lock<std::mutex>& lk);
  void posts_wrote(uint64_t bytes);
  void end_bulk_posts();
  // While posts store much data (chunks received from peers), a second
  // connection checkpoints the WAL, so the worker never stalls on it.
  std::unique_ptr<Checkpointer> post_ckpt_;
  uint64_t post_bytes_ = 0;  // stored by posts since the last bulk period
  uint64_t kicked_at_ = 0;   // post_bytes_ at the last checkpointer kick
  int64_t last_post_ms_ = 0;
  IngestStats stats_;
  std::atomic<size_t> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace shoal

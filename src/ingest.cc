#include "ingest.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "fileio.h"
#include "checkpointer.h"
#include "chunk_stream.h"
#include "log.h"
#include "manifest.h"
#include "prio.h"

namespace shoal {
namespace {

constexpr size_t kTxnBytes = 16 << 20;       // chunk bytes per store transaction
constexpr size_t kBatchFiles = 512;          // files recorded per transaction at most
constexpr int64_t kBatchMs = 250;            // a transaction is committed after this long
constexpr int64_t kThreadedRead = 4 << 20;   // files this large are read on a second thread
// Received data: once posts have stored this much, a checkpointer runs until
// they have been quiet for kBulkIdleMs (a transfer of a few MiB does not
// start a thread; one of hundreds never waits on a checkpoint).
constexpr uint64_t kBulkPostBytes = 8u << 20;
constexpr int64_t kBulkIdleMs = 500;
constexpr uint64_t kBulkKickBytes = 4u << 20;
constexpr size_t kStreamBatch = 32;          // chunks per StreamBatch after the first

uint64_t random_stream_id() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  uint64_t v = 0;
  while (v == 0) v = gen();
  return v;
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}


IngestResult result(const IngestJob& job, IngestResult::Kind kind) {
  IngestResult r;
  r.kind = kind;
  r.share = job.share;
  r.rel = job.rel;
  return r;
}

IngestResult fail(const IngestJob& job, IngestResult::Kind kind, Error e) {
  IngestResult r = result(job, kind);
  r.error = std::move(e);
  return r;
}

// A deletion as a version of its own (a tombstone: no chunks, the deleted
// flag, the removed version as parent), so peers with delete = propagate
// can apply it and nobody mistakes it for a lost file.
Status record_tombstone(Store& store, const IngestJob& job, const std::string& origin,
                        const Hash& parent) {
  Manifest m;
  m.path = job.rel;
  m.flags = kManifestDeleted;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  m.mtime_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  m.mode = 0;
  m.origin = origin;
  m.parent = parent;
  if (auto v = validate_manifest(m); !v) return v;
  const std::string enc = encode_manifest(m);
  FileRecord rec;
  rec.share = job.share;
  rec.path = job.rel;
  rec.manifest = manifest_id(enc);
  rec.mtime_ns = m.mtime_ns;
  rec.state = "deleted";
  return store.commit_file(rec, enc, {}, kManifestDeleted);
}

}  // namespace

// The worker's side of the store. One transaction stays open across
// consecutive jobs, so a burst of small files costs one commit (and writes
// each index page to the WAL once, not once per file), and is cut every
// kTxnBytes inside large files. A file's record and its last chunks share a
// transaction; a result waits until its transaction commits, so nothing is
// reported stored (or removed) that a crash could still take back.
class IngestBatch {
 public:
  using Sink = std::function<void(std::vector<IngestResult>&)>;
  using StreamSink = std::function<void(StreamBatch&)>;
  IngestBatch(Store& store, const std::string& origin, const std::atomic<bool>& stop, Sink sink,
              StreamSink stream = nullptr)
      : store_(store), origin_(origin), stop_(stop), sink_(std::move(sink)), stream_(std::move(stream)) {}
  ~IngestBatch() {  // an open transaction rolls back; its results are dropped
    if (txn_) LOG_DEBUG("ingest: abandoning a transaction of %zu files", files_);
  }
  IngestBatch(const IngestBatch&) = delete;
  IngestBatch& operator=(const IngestBatch&) = delete;

  // Runs one job; its result reaches the sink now or when the transaction commits.
  void run(const IngestJob& job);
  // Commits the open transaction and delivers the results waiting for it
  // (as failed if the commit failed).
  void flush();
  bool open() const { return txn_.has_value(); }
  // Enough files or time in this transaction: commit before the next job.
  bool full() const { return files_ >= kBatchFiles || now_ms() - began_ms_ >= kBatchMs; }

 private:
  IngestResult ingest(const IngestJob& job);
  IngestResult collect_garbage(const IngestJob& job);
  IngestResult remove(const IngestJob& job);
  Status store_chunks(int fd, bool threaded, bool in_file, std::vector<ChunkRef>* chunks,
                      uint32_t* new_chunks, uint64_t* bytes, StreamBatch* sb);
  void emit(StreamBatch* sb, bool end, bool whole);
  IngestResult record(const IngestJob& job, const struct stat& st,
                      const std::optional<FileRecord>& prev, Manifest m, uint32_t new_chunks,
                      bool in_file);
  Status begin();
  Status wrote(size_t n);
  std::optional<Error> over_limit(const IngestJob& job, uint64_t size, bool new_file);
  Status flush_txn();
  void finish(IngestResult r);
  void deliver();

  Store& store_;
  const std::string& origin_;
  const std::atomic<bool>& stop_;
  Sink sink_;
  StreamSink stream_;
  std::optional<Txn> txn_;
  size_t txn_bytes_ = 0;
  size_t files_ = 0;       // jobs run in the open transaction
  int64_t began_ms_ = 0;
  std::vector<IngestResult> held_;   // waiting for the open transaction
  std::vector<IngestResult> ready_;  // for the sink
  // Stored files per share, counted now and then (a count scans the share's
  // records) and kept up to date in between with the files this batch adds.
  struct FileCount {
    uint64_t n = 0;
    int64_t at_ms = 0;
  };
  std::map<std::string, FileCount> file_counts_;
};

void IngestBatch::run(const IngestJob& job) {
  IngestResult r = job.kind == IngestJob::Kind::gc        ? collect_garbage(job)
                   : job.kind == IngestJob::Kind::removed ? remove(job)
                                                          : ingest(job);
  if (txn_) files_++;
  finish(std::move(r));
  deliver();
}

Status IngestBatch::begin() {
  if (txn_) return {};
  auto t = store_.begin();
  if (!t) return t.error();
  txn_.emplace(std::move(*t));
  txn_bytes_ = 0;
  files_ = 0;
  began_ms_ = now_ms();
  return {};
}

// Counts chunk bytes written; a large file commits along the way so a crash
// loses at most kTxnBytes of work and the WAL can be checkpointed.
Status IngestBatch::wrote(size_t n) {
  txn_bytes_ += n;
  if (txn_bytes_ < kTxnBytes) return {};
  Status st = flush_txn();
  deliver();  // files committed before this one need not wait for it
  return st;
}

// Commits; the results held for this transaction become ready (stored and
// removed ones as failed if the commit failed).
Status IngestBatch::flush_txn() {
  if (!txn_) return {};
  Status st = txn_->commit();
  txn_.reset();
  for (auto& r : held_) {
    if (!st && (r.kind == IngestResult::Kind::stored || r.kind == IngestResult::Kind::removed)) {
      r.kind = IngestResult::Kind::failed;
      r.error = st.error();
    }
    ready_.push_back(std::move(r));
  }
  held_.clear();
  return st;
}

void IngestBatch::flush() {
  if (auto st = flush_txn(); !st) LOG_ERROR("ingest: %s", log_escape(st.error().msg).c_str());
  deliver();
}

void IngestBatch::finish(IngestResult r) {
  (txn_ ? held_ : ready_).push_back(std::move(r));
}

void IngestBatch::deliver() {
  if (!ready_.empty()) sink_(ready_);
  ready_.clear();
}

IngestResult IngestBatch::collect_garbage(const IngestJob& job) {
  using K = IngestResult::Kind;
  flush();  // gc takes its own transaction, and must not see a file half stored
  auto g = store_.gc();
  if (!g) return fail(job, K::failed, g.error());
  if (g->chunks_removed + g->manifests_removed > 0)
    LOG_INFO("store: collected %llu chunks (%llu bytes) and %llu old versions",
             static_cast<unsigned long long>(g->chunks_removed),
             static_cast<unsigned long long>(g->bytes_removed),
             static_cast<unsigned long long>(g->manifests_removed));
  (void)store_.checkpoint();
  return fail(job, K::skipped, make_error(Errc::ok, "gc done"));
}

// A removal event for a path that holds a file again (a rename over it, a
// file published in its place) is an update, not a deletion.
IngestResult IngestBatch::remove(const IngestJob& job) {
  using K = IngestResult::Kind;
  struct stat st {};
  if (::lstat((job.root + "/" + job.rel).c_str(), &st) == 0) return ingest(job);
  auto prev = store_.get_file(job.share, job.rel);
  if (!prev) return fail(job, K::failed, prev.error());
  // Already gone (or removed by replication): nothing to record.
  if (!prev->has_value() || (**prev).state != "stored") return result(job, K::unchanged);
  if (auto s = begin(); !s) return fail(job, K::failed, s.error());
  Status s = job.propagate_delete ? record_tombstone(store_, job, origin_, (**prev).manifest)
                                  : store_.remove_file(job.share, job.rel, false);
  if (!s) return fail(job, K::failed, s.error());
  return result(job, K::removed);
}

IngestResult IngestBatch::ingest(const IngestJob& job) {
  using K = IngestResult::Kind;
  const std::string full = job.root + "/" + job.rel;
  struct stat st0 {};
  if (::lstat(full.c_str(), &st0) != 0) {
    if (errno == ENOENT) return fail(job, K::skipped, make_error(Errc::not_found, "file vanished"));
    return fail(job, K::failed, errno_error("stat " + full, errno));
  }
  if (!S_ISREG(st0.st_mode)) return fail(job, K::skipped, make_error(Errc::invalid, "not a regular file"));
  if (!valid_rel_path(job.rel)) return fail(job, K::skipped, make_error(Errc::invalid, "path not allowed"));

  auto prev = store_.get_file(job.share, job.rel);
  if (!prev) return fail(job, K::failed, prev.error());
  bool new_file = !prev->has_value() || (**prev).state != "stored";
  if (auto e = over_limit(job, static_cast<uint64_t>(st0.st_size), new_file)) return fail(job, K::skipped, *e);
  if (prev->has_value()) {
    const FileRecord& p = **prev;
    if (p.state == "stored" && file_matches_record(p, st0)) {
      IngestResult r = result(job, K::unchanged);
      r.bytes = p.size;
      r.record = p;
      return r;
    }
  }

  Fd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return fail(job, K::failed, errno_error("open " + full, errno));
  struct stat st1 {};
  if (::fstat(fd.get(), &st1) != 0) return fail(job, K::failed, errno_error("fstat " + full, errno));
  if (!S_ISREG(st1.st_mode)) return fail(job, K::skipped, make_error(Errc::invalid, "not a regular file"));
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

  Manifest m;
  uint32_t new_chunks = 0;
  uint64_t bytes = 0;
  // A large file's chunks stay in the file (the store records where).
  const bool in_file = static_cast<uint64_t>(st1.st_size) >= kHeldInFileMin;
  // A large file's chunks are listed as they come (the replicator sends
  // them before the version exists); the last batch says how it ended.
  std::optional<StreamBatch> sb;
  if (job.stream && stream_ && static_cast<uint64_t>(st1.st_size) >= kStreamMin) {
    sb.emplace();
    sb->share = job.share;
    sb->rel = job.rel;
    sb->stream = random_stream_id();
    sb->size = static_cast<uint64_t>(st1.st_size);
    sb->st = st1;
  }
  StreamBatch* sbp = sb ? &*sb : nullptr;
  if (auto s = store_chunks(fd.get(), st1.st_size >= kThreadedRead, in_file, &m.chunks, &new_chunks, &bytes, sbp);
      !s) {
    emit(sbp, true, false);
    return fail(job, s.error().code == Errc::busy ? K::skipped : K::failed, s.error());
  }

  struct stat st2 {};
  if (::fstat(fd.get(), &st2) != 0) {
    emit(sbp, true, false);
    return fail(job, K::failed, errno_error("fstat " + full, errno));
  }
  // The chunks stay (they are valid content), but a version that never
  // existed as a whole is not recorded; the caller queues the file again.
  const bool same = unchanged_between(st1, st2) && bytes == static_cast<uint64_t>(st2.st_size);
  emit(sbp, true, same);
  if (!same) return fail(job, K::skipped, make_error(Errc::busy, "file changed while being read"));
  m.size = bytes;
  IngestResult r = record(job, st2, *prev, std::move(m), new_chunks, in_file);
  if (new_file && r.kind == K::stored) {
    auto it = file_counts_.find(job.share);
    if (it != file_counts_.end()) it->second.n++;
  }
  return r;
}

// The share's limits (PROTOCOL.md 13: from peers the replicator applies the
// same ones). Warns here: the daemon logs skipped files at debug level only.
std::optional<Error> IngestBatch::over_limit(const IngestJob& job, uint64_t size, bool new_file) {
  if (job.max_file_size != 0 && size > job.max_file_size) {
    LOG_WARN("share %s: not ingesting %s: %llu bytes, over max_file_size (%llu)", job.share.c_str(),
             log_escape(job.rel).c_str(), static_cast<unsigned long long>(size),
             static_cast<unsigned long long>(job.max_file_size));
    return make_error(Errc::invalid, "larger than max_file_size");
  }
  if (job.max_files == 0 || !new_file) return std::nullopt;
  FileCount& fc = file_counts_[job.share];
  int64_t now = now_ms();
  // Recount at least every second, less often for large shares.
  if (fc.at_ms == 0 || now - fc.at_ms >= 1000 + static_cast<int64_t>(fc.n / 100)) {
    auto n = store_.count_files(job.share);
    if (!n) return n.error();
    fc.n = *n;
    fc.at_ms = now;
  }
  if (fc.n < job.max_files) return std::nullopt;
  LOG_WARN("share %s: not ingesting %s: the share holds %llu files, max_files is %llu",
           job.share.c_str(), log_escape(job.rel).c_str(), static_cast<unsigned long long>(fc.n),
           static_cast<unsigned long long>(job.max_files));
  return make_error(Errc::invalid, "over max_files");
}

// Stores the chunks of `fd` as they are read (only counts the new ones if
// they stay `in_file`); fills `chunks` in file order.
Status IngestBatch::store_chunks(int fd, bool threaded, bool in_file, std::vector<ChunkRef>* chunks,
                                 uint32_t* new_chunks, uint64_t* bytes, StreamBatch* sb) {
  ChunkStream in(fd, stop_, threaded);
  for (;;) {
    auto blk = in.next();
    if (!blk) return blk.error();
    const uint8_t* p = (*blk)->data;
    for (const ChunkRef& ref : (*blk)->chunks) {
      if (stop_.load(std::memory_order_relaxed)) return make_error(Errc::busy, "stopping");
      chunks->push_back(ref);
      if (sb) sb->chunks.push_back(ref);
      p += ref.len;
      *bytes += ref.len;
      if (in_file) {
        auto has = store_.has_chunk(ref.hash);
        if (!has) return has.error();
        if (!*has) (*new_chunks)++;
        continue;
      }
      if (auto s = begin(); !s) return s;
      auto added = store_.put_chunk(ref.hash, p - ref.len, ref.len);
      if (!added) return added.error();
      if (*added) (*new_chunks)++;
      if (auto s = wrote(ref.len); !s) return s;
    }
    if ((*blk)->last) return {};
    // The first chunks go out at once (the receivers start early), then
    // batches of kStreamBatch (fewer wake-ups of the loop).
    if (sb && (sb->chunks.size() >= kStreamBatch || sb->first_index == 0)) emit(sb, false, false);
  }
}

// Hands `sb`'s chunks to the stream sink and moves it past them; `end`:
// the last batch of the stream, `whole`: the read completed unchanged.
void IngestBatch::emit(StreamBatch* sb, bool end, bool whole) {
  if (sb == nullptr || sb->end) return;
  if (sb->chunks.empty() && !end) return;
  StreamBatch out = *sb;
  out.end = end;
  out.whole = end && whole;
  for (const ChunkRef& c : sb->chunks) sb->first_offset += c.len;
  sb->first_index += static_cast<uint32_t>(sb->chunks.size());
  sb->chunks.clear();
  sb->end = end;
  stream_(out);
}

IngestResult IngestBatch::record(const IngestJob& job, const struct stat& st,
                                 const std::optional<FileRecord>& prev, Manifest m,
                                 uint32_t new_chunks, bool in_file) {
  m.path = job.rel;
  m.mtime_ns = mtime_ns_of(st);
  m.mode = static_cast<uint32_t>(st.st_mode & 07777);
  m.origin = origin_;
  if (prev.has_value()) m.parent = prev->manifest;
  const std::string enc = encode_manifest(m);

  IngestResult r = result(job, IngestResult::Kind::stored);
  FileRecord& rec = r.record;
  rec.share = job.share;
  rec.path = job.rel;
  rec.manifest = manifest_id(enc);
  rec.size = m.size;
  rec.mtime_ns = m.mtime_ns;
  rec.mode = m.mode;
  rec.inode = st.st_ino;
  rec.dev = st.st_dev;
  rec.chunks = static_cast<uint32_t>(m.chunks.size());
  rec.state = "stored";
  if (auto s = begin(); !s) return fail(job, IngestResult::Kind::failed, s.error());
  if (auto s = store_.commit_file(rec, enc, m.chunks, 0, in_file); !s)
    return fail(job, IngestResult::Kind::failed, s.error());
  r.new_chunks = new_chunks;
  r.bytes = m.size;
  return r;
}

const char* ingest_kind_name(IngestResult::Kind k) {
  switch (k) {
    case IngestResult::Kind::stored: return "stored";
    case IngestResult::Kind::unchanged: return "unchanged";
    case IngestResult::Kind::removed: return "removed";
    case IngestResult::Kind::skipped: return "skipped";
    case IngestResult::Kind::failed: return "failed";
  }
  return "?";
}

IngestResult Ingester::ingest_file(Store& store, const IngestJob& job, const std::string& origin,
                                   const std::atomic<bool>& stop,
                                   std::function<void(StreamBatch&)> stream) {
  std::optional<IngestResult> out;
  IngestBatch batch(
      store, origin, stop,
      [&](std::vector<IngestResult>& rs) {
        for (auto& r : rs) out = std::move(r);
      },
      std::move(stream));
  batch.run(job);
  batch.flush();
  if (!out) return fail(job, IngestResult::Kind::failed, make_error(Errc::internal, "no result"));
  return std::move(*out);
}

Result<std::unique_ptr<Ingester>> Ingester::start(event_base* base, std::unique_ptr<Store> store,
                                                  std::string origin_node, DoneFn done) {
  std::unique_ptr<Ingester> in(new Ingester());
  in->store_ = std::move(store);
  in->origin_ = std::move(origin_node);
  in->done_ = std::move(done);
  in->ev_ = event_new(base, -1, 0, &Ingester::on_results, in.get());
  if (in->ev_ == nullptr) return make_error(Errc::internal, "event_new failed");
  in->thread_ = std::thread([p = in.get()] { p->run(); });
  return in;
}

Ingester::~Ingester() {
  stop_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (ev_ != nullptr) event_free(ev_);
}

void Ingester::submit(IngestJob job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto key = std::make_pair(job.share, job.rel);
    if (queued_.count(key) != 0) {
      // A removal after a queued ingest (or the reverse) must win: replace.
      for (auto& q : queue_) {
        if (q.share == job.share && q.rel == job.rel) q = std::move(job);
      }
      return;
    }
    queued_.insert(std::move(key));
    queue_.push_back(std::move(job));
    pending_.fetch_add(1);
  }
  cv_.notify_one();
}

IngestStats Ingester::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

bool Ingester::post(Work work) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (posts_.size() >= kMaxPosts) return false;
    posts_.push_back(std::move(work));
  }
  cv_.notify_one();
  return true;
}

size_t Ingester::posts_waiting() const {
  std::lock_guard<std::mutex> lk(mu_);
  return posts_.size();
}

// Runs the queued posts (lock held on entry and exit, released while working)
// in one transaction, so a burst of received chunks costs one commit.
void Ingester::run_posts(std::unique_lock<std::mutex>& lk) {
  std::deque<Work> batch;
  batch.swap(posts_);
  lk.unlock();
  std::deque<std::function<void()>> done;
  auto t = store_->begin();
  std::optional<Txn> txn;
  if (t) txn.emplace(std::move(*t));
  const uint64_t before = store_->bytes_put();
  for (auto& w : batch) done.push_back(w(*store_));
  if (txn) {
    if (auto st = txn->commit(); !st) LOG_ERROR("store: commit of received data failed: %s", st.error().msg.c_str());
  }
  posts_wrote(store_->bytes_put() - before);
  lk.lock();
  for (auto& d : done) post_done_.push_back(std::move(d));
  lk.unlock();
  event_active(ev_, EV_READ, 0);
  lk.lock();
}

void Ingester::posts_wrote(uint64_t bytes) {
  if (bytes == 0) return;
  last_post_ms_ = now_ms();
  post_bytes_ += bytes;
  if (!post_ckpt_ && post_bytes_ >= kBulkPostBytes) {
    auto c = Checkpointer::start(store_->path());
    if (!c) {
      LOG_WARN("store: %s", log_escape(c.error().msg).c_str());
      post_bytes_ = 0;
      return;
    }
    if (auto st = store_->set_autocheckpoint(false); !st) {
      LOG_WARN("store: %s", log_escape(st.error().msg).c_str());
      (void)store_->set_autocheckpoint(true);
      post_bytes_ = 0;
      return;
    }
    post_ckpt_ = std::move(*c);
  }
  // A pass per few MiB: each pass fsyncs the WAL and the database, and a
  // pass per commit (a few chunks) spent more on fsync than on copying.
  if (post_ckpt_ && post_bytes_ - kicked_at_ >= kBulkKickBytes) {
    kicked_at_ = post_bytes_;
    post_ckpt_->kick();
  }
}

// Received data stopped (or a file ingest, with its own checkpointing, is
// next): catch the database up and go back to checkpoints on commit.
void Ingester::end_bulk_posts() {
  post_bytes_ = kicked_at_ = 0;
  if (!post_ckpt_) return;
  post_ckpt_->stop();
  post_ckpt_.reset();
  if (auto st = store_->set_autocheckpoint(true); !st)
    LOG_ERROR("store: %s", log_escape(st.error().msg).c_str());
  if (auto st = store_->checkpoint(Store::CheckpointMode::restart); !st)
    LOG_WARN("store: checkpoint: %s", log_escape(st.error().msg).c_str());
}

// Commit the open transaction before waiting (nothing queued), before posts
// (they take their own), on stop, or when it has grown enough.
bool Ingester::must_flush(const IngestBatch& batch) const {
  return batch.open() && (queue_.empty() || !posts_.empty() || stop_.load() || batch.full());
}

void Ingester::run() {
  pthread_setname_np(pthread_self(), "shoal-ingest");
  // Stream batches reach the loop through the results event, in order
  // (stream_fn_ is read on the loop thread only).
  StreamFn to_loop = [this](StreamBatch& b) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      post_done_.push_back([this, b = std::move(b)]() mutable {
        if (stream_fn_) stream_fn_(b);
      });
    }
    event_active(ev_, EV_READ, 0);
  };
  IngestBatch batch(*store_, origin_, stop_, [this](std::vector<IngestResult>& rs) { deliver(rs); },
                    std::move(to_loop));
  // Lowered from a file ingest until a post comes next: one pair of priority
  // changes per run of ingests, not per file (10,000 small files cost 34 ms
  // of syscalls one file at a time).
  std::optional<BulkPriority> bulk;
  for (;;) {
    IngestJob job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (must_flush(batch)) {
        lk.unlock();
        batch.flush();
        continue;
      }
      auto ready = [&] { return stop_.load() || !queue_.empty() || !posts_.empty(); };
      if (post_ckpt_) {
        int64_t left = last_post_ms_ + kBulkIdleMs - now_ms();
        if (left > 0 && !cv_.wait_for(lk, std::chrono::milliseconds(left), ready)) continue;
        if (!ready() || !queue_.empty()) {  // idle, or a file ingest comes next
          lk.unlock();
          if (batch.open()) batch.flush();
          end_bulk_posts();
          continue;
        }
      } else {
        post_bytes_ = now_ms() - last_post_ms_ > kBulkIdleMs ? 0 : post_bytes_;
        cv_.wait(lk, ready);
      }
      if (stop_.load()) return;
      if (!posts_.empty()) {
        bulk.reset();  // store jobs for the loop run at the normal priority
        run_posts(lk);
        continue;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase({job.share, job.rel});
    }
    if (!bulk) bulk.emplace();
    batch.run(job);
  }
}

void Ingester::deliver(std::vector<IngestResult>& rs) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& r : rs) {
      switch (r.kind) {
        case IngestResult::Kind::stored: stats_.files_stored++; break;
        case IngestResult::Kind::unchanged: stats_.files_unchanged++; break;
        case IngestResult::Kind::failed: stats_.files_failed++; break;
        default: break;
      }
      if (r.kind == IngestResult::Kind::stored) {
        stats_.bytes_read += r.bytes;
        stats_.chunks_new += r.new_chunks;
      }
      results_.push_back(std::move(r));
    }
  }
  event_active(ev_, EV_READ, 0);
}

void Ingester::on_results(int, short, void* arg) {
  auto* self = static_cast<Ingester*>(arg);
  std::deque<IngestResult> batch;
  std::deque<std::function<void()>> posted;
  {
    std::lock_guard<std::mutex> lk(self->mu_);
    batch.swap(self->results_);
    posted.swap(self->post_done_);
  }
  for (auto& d : posted)
    if (d) d();
  for (auto& r : batch) {
    // pending_ drops only once the loop has seen the result, so `wait` never
    // reports idle between a job finishing and its result being handled.
    self->pending_.fetch_sub(1);
    self->done_(r);
  }
}

}  // namespace shoal

#include "ingest.h"

#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "chunker.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"

namespace shoal {
namespace {

constexpr size_t kReadBlock = 1 << 20;      // bytes read per read(2) round
constexpr size_t kTxnBytes = 16 << 20;      // chunk bytes per store transaction

int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

bool same_file_state(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && mtime_ns_of(a) == mtime_ns_of(b) && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

IngestResult fail(const IngestJob& job, IngestResult::Kind kind, Error e) {
  IngestResult r;
  r.kind = kind;
  r.share = job.share;
  r.rel = job.rel;
  r.error = std::move(e);
  return r;
}

// Reads the whole of `fd` through a fixed buffer, cutting chunks and storing
// the new ones; fills `chunks`. Transactions are committed every kTxnBytes so
// a crash loses at most that much work and the WAL stays small.
Status chunk_and_store(Store& store, int fd, const std::atomic<bool>& stop,
                       std::vector<ChunkRef>* chunks, uint32_t* new_chunks, uint64_t* bytes,
                       std::optional<Txn>* txn) {
  const ChunkParams params;
  std::vector<uint8_t> buf(kReadBlock + params.max_size);
  size_t have = 0;
  bool eof = false;
  size_t txn_bytes = 0;
  Sha256 sha;
  while (!(eof && have == 0)) {
    while (!eof && have < buf.size()) {
      ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("read", errno);
      if (n == 0) eof = true;
      have += static_cast<size_t>(n);
      *bytes += static_cast<uint64_t>(n);
    }
    size_t pos = 0;
    while (have - pos >= params.max_size || (eof && pos < have)) {
      if (stop.load(std::memory_order_relaxed)) return make_error(Errc::busy, "stopping");
      size_t len = chunk_cut(buf.data() + pos, have - pos, params);
      sha.update(buf.data() + pos, len);
      ChunkRef ref{sha.final(), static_cast<uint32_t>(len)};
      auto added = store.put_chunk(ref.hash, buf.data() + pos, len);
      if (!added) return added.error();
      if (*added) (*new_chunks)++;
      chunks->push_back(ref);
      pos += len;
      txn_bytes += len;
      if (txn_bytes >= kTxnBytes) {
        if (auto st = (*txn)->commit(); !st) return st;
        txn->reset();
        auto t = store.begin();
        if (!t) return t.error();
        txn->emplace(std::move(*t));
        txn_bytes = 0;
      }
    }
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
  }
  return {};
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
                                   const std::atomic<bool>& stop) {
  using K = IngestResult::Kind;
  const std::string full = job.root + "/" + job.rel;
  if (job.kind == IngestJob::Kind::gc) {
    auto g = store.gc();
    if (!g) return fail(job, K::failed, g.error());
    if (g->chunks_removed + g->manifests_removed > 0)
      LOG_INFO("store: collected %llu chunks (%llu bytes) and %llu old versions",
               static_cast<unsigned long long>(g->chunks_removed),
               static_cast<unsigned long long>(g->bytes_removed),
               static_cast<unsigned long long>(g->manifests_removed));
    (void)store.checkpoint();
    return fail(job, K::skipped, make_error(Errc::ok, "gc done"));
  }
  struct stat st0 {};
  const bool exists = ::lstat(full.c_str(), &st0) == 0;
  // A removal event for a path that holds a file again (a rename over it,
  // a file published in its place) is an update, not a deletion.
  if (job.kind == IngestJob::Kind::removed && !exists) {
    auto prev = store.get_file(job.share, job.rel);
    if (!prev) return fail(job, K::failed, prev.error());
    if (!prev->has_value() || (**prev).state != "stored") {
      // Already gone (or removed by replication): nothing to record.
      IngestResult r;
      r.kind = K::unchanged;
      r.share = job.share;
      r.rel = job.rel;
      return r;
    }
    Status st = job.propagate_delete ? record_tombstone(store, job, origin, (**prev).manifest)
                                     : store.remove_file(job.share, job.rel, false);
    if (!st) return fail(job, K::failed, st.error());
    IngestResult r;
    r.kind = K::removed;
    r.share = job.share;
    r.rel = job.rel;
    return r;
  }
  if (!exists) {
    if (errno == ENOENT) return fail(job, K::skipped, make_error(Errc::not_found, "file vanished"));
    return fail(job, K::failed, errno_error("stat " + full, errno));
  }
  if (!S_ISREG(st0.st_mode)) return fail(job, K::skipped, make_error(Errc::invalid, "not a regular file"));
  if (!valid_rel_path(job.rel)) return fail(job, K::skipped, make_error(Errc::invalid, "path not allowed"));

  auto prev = store.get_file(job.share, job.rel);
  if (!prev) return fail(job, K::failed, prev.error());
  if (prev->has_value()) {
    const FileRecord& p = **prev;
    if (p.state == "stored" && p.size == static_cast<uint64_t>(st0.st_size) &&
        p.mtime_ns == mtime_ns_of(st0) && p.inode == st0.st_ino && p.dev == st0.st_dev) {
      IngestResult r;
      r.kind = K::unchanged;
      r.share = job.share;
      r.rel = job.rel;
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

  auto t = store.begin();
  if (!t) return fail(job, K::failed, t.error());
  std::optional<Txn> txn(std::move(*t));
  Manifest m;
  uint32_t new_chunks = 0;
  uint64_t bytes = 0;
  if (auto s = chunk_and_store(store, fd.get(), stop, &m.chunks, &new_chunks, &bytes, &txn); !s)
    return fail(job, s.error().code == Errc::busy ? K::skipped : K::failed, s.error());

  struct stat st2 {};
  if (::fstat(fd.get(), &st2) != 0) return fail(job, K::failed, errno_error("fstat " + full, errno));
  if (!same_file_state(st1, st2) || bytes != static_cast<uint64_t>(st2.st_size)) {
    // Keep the chunks (they are valid content) but do not record a version
    // that never existed as a whole; the caller queues the file again.
    (void)txn->commit();
    return fail(job, K::skipped, make_error(Errc::busy, "file changed while being read"));
  }

  m.path = job.rel;
  m.size = bytes;
  m.mtime_ns = mtime_ns_of(st2);
  m.mode = static_cast<uint32_t>(st2.st_mode & 07777);
  m.origin = origin;
  if (prev->has_value()) m.parent = (**prev).manifest;
  const std::string enc = encode_manifest(m);

  FileRecord rec;
  rec.share = job.share;
  rec.path = job.rel;
  rec.manifest = manifest_id(enc);
  rec.size = bytes;
  rec.mtime_ns = m.mtime_ns;
  rec.mode = m.mode;
  rec.inode = st2.st_ino;
  rec.dev = st2.st_dev;
  rec.chunks = static_cast<uint32_t>(m.chunks.size());
  rec.state = "stored";
  if (auto s = store.commit_file(rec, enc, m.chunks); !s) return fail(job, K::failed, s.error());
  if (auto s = txn->commit(); !s) return fail(job, K::failed, s.error());

  IngestResult r;
  r.kind = K::stored;
  r.share = job.share;
  r.rel = job.rel;
  r.new_chunks = new_chunks;
  r.bytes = bytes;
  r.record = rec;
  return r;
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
  for (auto& w : batch) done.push_back(w(*store_));
  if (txn) {
    if (auto st = txn->commit(); !st) LOG_ERROR("store: commit of received data failed: %s", st.error().msg.c_str());
  }
  lk.lock();
  for (auto& d : done) post_done_.push_back(std::move(d));
  lk.unlock();
  event_active(ev_, EV_READ, 0);
  lk.lock();
}

void Ingester::run() {
  for (;;) {
    IngestJob job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_.load() || !queue_.empty() || !posts_.empty(); });
      if (stop_.load()) return;
      if (!posts_.empty()) {
        run_posts(lk);
        continue;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase({job.share, job.rel});
    }
    IngestResult r = ingest_file(*store_, job, origin_, stop_);
    {
      std::lock_guard<std::mutex> lk(mu_);
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
    event_active(ev_, EV_READ, 0);
  }
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

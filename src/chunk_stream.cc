#include "chunk_stream.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "prio.h"

namespace shoal {

// [0, cut) holds whole chunks (listed in view.chunks); [cut, have) is the
// start of the next chunk, carried into the following block. Sized for a
// full read on top of the largest possible carried tail, so a full block
// always has at least one chunk to cut.
struct ChunkStream::Block {
  explicit Block(size_t n) : buf(std::make_unique_for_overwrite<uint8_t[]>(n)), cap(n) {}
  std::unique_ptr<uint8_t[]> buf;
  size_t cap;
  size_t have = 0;
  size_t cut = 0;
  bool eof = false;
  ChunkBlock view;
};

ChunkStream::ChunkStream(int fd, const std::atomic<bool>& stop, bool threaded)
    : fd_(fd), stop_(stop) {
  const size_t cap = kBlockBytes + params_.max_size;
  blocks_.push_back(std::make_unique<Block>(cap));
  if (!threaded) return;
  for (size_t i = 1; i < kBlocks; i++) blocks_.push_back(std::make_unique<Block>(cap));
  for (auto& b : blocks_) free_.push_back(b.get());
  try {
    thread_ = std::thread([this] { produce(); });
  } catch (const std::system_error&) {
    // No thread to be had: read on the caller's thread with the first block.
    free_.clear();
    blocks_.resize(1);
  }
}

ChunkStream::~ChunkStream() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    cancel_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Result<const ChunkBlock*> ChunkStream::next() {
  return thread_.joinable() ? next_threaded() : next_inline();
}

// One block: the carried tail moves to the front, then the block refills.
Result<const ChunkBlock*> ChunkStream::next_inline() {
  Block& b = *blocks_.front();
  if (started_) {
    std::memmove(b.buf.get(), b.buf.get() + b.cut, b.have - b.cut);
    b.have -= b.cut;
  }
  started_ = true;
  if (auto st = fill(b, true); !st) return st.error();
  return &b.view;
}

Result<const ChunkBlock*> ChunkStream::next_threaded() {
  std::unique_lock<std::mutex> lk(mu_);
  if (given_ != nullptr) {
    free_.push_back(given_);
    given_ = nullptr;
    cv_.notify_all();
  }
  cv_.wait(lk, [&] { return !full_.empty() || failed_; });
  if (full_.empty()) return error_.error();
  given_ = full_.front();
  full_.pop_front();
  lk.unlock();
  hash(*given_, sha_);  // while the reader cuts the next block
  return &given_->view;
}

// The reader thread: fills blocks in file order. The tail of a block is
// copied into the next one before the block is handed over, so the caller
// and the reader never touch the same block.
void ChunkStream::produce() {
  pthread_setname_np(pthread_self(), "shoal-read");
  BulkPriority prio(false);  // the thread ends with the ingest
  Block* cur = take_free();
  if (cur == nullptr) return;
  Status st = fill(*cur, false);
  while (st && !cur->eof) {
    Block* nxt = take_free();
    if (nxt == nullptr) return;
    std::memcpy(nxt->buf.get(), cur->buf.get() + cur->cut, cur->have - cur->cut);
    nxt->have = cur->have - cur->cut;
    hand_over(cur, {});
    cur = nxt;
    st = fill(*cur, false);
  }
  hand_over(st ? cur : nullptr, st);
}

// A free block, or nullptr once the caller has cancelled.
ChunkStream::Block* ChunkStream::take_free() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return cancel_ || !free_.empty(); });
  if (cancel_) return nullptr;
  Block* b = free_.front();
  free_.pop_front();
  return b;
}

void ChunkStream::hand_over(Block* b, Status st) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (b != nullptr) full_.push_back(b);
    if (!st) {
      error_ = std::move(st);
      failed_ = true;
    }
  }
  cv_.notify_all();
}

// Reads until the block is full or the file ends, then cuts (and hashes,
// if `hash`) the whole chunks in it.
Status ChunkStream::fill(Block& b, bool hash) {
  b.eof = false;
  while (b.have < b.cap) {
    if (stop_.load(std::memory_order_relaxed)) return make_error(Errc::busy, "stopping");
    ssize_t n = ::read(fd_, b.buf.get() + b.have, b.cap - b.have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", errno);
    if (n == 0) {
      b.eof = true;
      break;
    }
    b.have += static_cast<size_t>(n);
  }
  cut(b, hash);
  return {};
}

void ChunkStream::cut(Block& b, bool hash) {
  ChunkBlock& v = b.view;
  v.data = b.buf.get();
  v.chunks.clear();
  v.last = b.eof;
  size_t pos = 0;
  while (b.have - pos >= params_.max_size || (b.eof && pos < b.have)) {
    size_t len = chunk_cut(b.buf.get() + pos, b.have - pos, params_);
    ChunkRef ref{Hash{}, static_cast<uint32_t>(len)};
    if (hash) {
      sha_.update(b.buf.get() + pos, len);
      ref.hash = sha_.final();
    }
    v.chunks.push_back(ref);
    pos += len;
  }
  b.cut = pos;
}

void ChunkStream::hash(Block& b, Sha256& sha) {
  const uint8_t* p = b.view.data;
  for (ChunkRef& c : b.view.chunks) {
    sha.update(p, c.len);
    c.hash = sha.final();
    p += c.len;
  }
}

}  // namespace shoal

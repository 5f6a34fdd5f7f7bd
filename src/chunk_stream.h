// Reads a file as content-defined chunks with their SHA-256, handed out in
// blocks of whole chunks. Reading, cutting and hashing run on the caller's
// thread, or reading and cutting on a thread of their own while the caller
// hashes the block it takes (two cores hash and cut at once). Memory is
// bounded either way: one block inline, kBlocks when threaded (512 KiB
// each), whatever the file size.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "chunker.h"
#include "hash.h"
#include "manifest.h"
#include "result.h"

namespace shoal {

// Whole chunks: chunk i is chunks[i].len bytes, the chunks lie back to back
// from `data`. `last`: the file ends after them (chunks may then be empty).
struct ChunkBlock {
  const uint8_t* data = nullptr;
  std::vector<ChunkRef> chunks;
  bool last = false;
};

class ChunkStream {
 public:
  // File bytes read per block, on top of the carried tail (< one chunk).
  // 1 MiB blocks were no faster: the worker storing the chunks sets the pace,
  // and 4 blocks of 1.25 MiB were the largest part of the daemon's peak RSS.
  static constexpr size_t kBlockBytes = 256 << 10;
  static constexpr size_t kBlocks = 4;  // blocks in flight when threaded

  // Reads `fd` from its current offset to EOF. `fd` and `stop` must outlive
  // the stream. `threaded`: read on a second thread (falls back to the
  // caller's thread if none can be started). `stop` set: next() fails with
  // Errc::busy.
  ChunkStream(int fd, const std::atomic<bool>& stop, bool threaded);
  ~ChunkStream();  // stops and joins the reader thread
  ChunkStream(const ChunkStream&) = delete;
  ChunkStream& operator=(const ChunkStream&) = delete;

  // The next block; valid until the next call. After a block with `last`, or
  // an error, the stream is finished and next() must not be called again.
  Result<const ChunkBlock*> next();
  bool threaded() const { return thread_.joinable(); }

  struct Block;

 private:
  Result<const ChunkBlock*> next_inline();
  Result<const ChunkBlock*> next_threaded();
  void produce();
  Block* take_free();
  void hand_over(Block* b, Status st);
  Status fill(Block& b, bool hash);
  void cut(Block& b, bool hash);
  void hash(Block& b, Sha256& sha);

  int fd_;
  const std::atomic<bool>& stop_;
  const ChunkParams params_;
  Sha256 sha_;              // inline: hashes as it cuts; threaded: the caller's
  std::vector<std::unique_ptr<Block>> blocks_;
  Block* given_ = nullptr;  // the block the caller holds
  bool started_ = false;    // inline: the first block was read

  // Reader thread <-> caller.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block*> free_, full_;
  Status error_;            // the reader's failure, after the blocks it filled
  bool failed_ = false;
  bool cancel_ = false;     // the caller is done: the reader thread exits
  std::thread thread_;
};

}  // namespace shoal

// Flushes files to stable storage (fdatasync) on a thread of its own, so a
// large file that arrives over seconds reaches the disk while it arrives and
// the fsync that publishes it waits for its last part only. On a disk with a
// write cache the flush, not the writeback, is what takes the time: 256 MiB
// written back in full as it arrived still took 0.3 s to fsync at the end on
// this project's test machine (0.04 s when flushed every 32 MiB on the way;
// the part files flush every 8 MiB).
// Nothing depends on these flushes having happened: the publish still fsyncs.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "fileio.h"

namespace shoal {

class Flusher {
 public:
  Flusher() = default;
  ~Flusher();  // drops what waits (unflushed), lets a flush under way end, joins
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;

  // Any thread: queues an fdatasync of fd's file through a descriptor of its
  // own (so `fd` may close meanwhile). False, and nothing queued, if one for
  // the same file is already waiting or under way, or the descriptor or the
  // thread cannot be had: the caller asks again later.
  bool sync(int fd);
  // Flushes done and failed so far (tests, status).
  uint64_t done() const;
  uint64_t failed() const;

 private:
  struct Job {
    dev_t dev;
    ino_t ino;
    Fd fd;
  };
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool running_ = false;  // a job popped from the queue is being flushed
  dev_t run_dev_ = 0;
  ino_t run_ino_ = 0;
  bool quit_ = false;
  uint64_t done_ = 0, failed_ = 0;
  std::thread thread_;  // started by the first sync()
};

}  // namespace shoal

#include "flusher.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "log.h"

namespace shoal {

Flusher::~Flusher() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

bool Flusher::sync(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  std::lock_guard<std::mutex> lk(mu_);
  if (quit_) return false;
  if (running_ && run_dev_ == st.st_dev && run_ino_ == st.st_ino) return false;
  for (const Job& j : queue_)
    if (j.dev == st.st_dev && j.ino == st.st_ino) return false;
  if (!thread_.joinable()) {
    try {
      thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
      LOG_DEBUG("flusher: no thread (%s): files are flushed when published only", e.what());
      quit_ = true;
      return false;
    }
  }
  Fd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (own.get() < 0) return false;
  queue_.push_back({st.st_dev, st.st_ino, std::move(own)});
  cv_.notify_one();
  return true;
}

uint64_t Flusher::done() const {
  std::lock_guard<std::mutex> lk(mu_);
  return done_;
}

uint64_t Flusher::failed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return failed_;
}

void Flusher::run() {
  pthread_setname_np(pthread_self(), "shoal-flush");
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return quit_ || !queue_.empty(); });
    if (quit_) break;
    Job j = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    run_dev_ = j.dev;
    run_ino_ = j.ino;
    lk.unlock();
    // A failure here is not the file's verdict (the publish fsyncs and
    // reports); it is only counted.
    const bool ok = ::fdatasync(j.fd.get()) == 0;
    const int err = errno;
    j.fd.reset();
    lk.lock();
    running_ = false;
    if (ok) {
      done_++;
    } else {
      failed_++;
      LOG_DEBUG("flusher: fdatasync: %s", std::strerror(err));
    }
  }
}

}  // namespace shoal

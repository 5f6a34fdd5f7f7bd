#include "checkpointer.h"

#include <pthread.h>

#include <system_error>

#include "log.h"

namespace shoal {
namespace {

// A checkpoint copies WAL frames through a buffer of its own, not through
// the page cache: the connection only reads the schema, a few pages.
constexpr int kCacheKib = 64;

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& db_path) {
  auto conn = Store::open(db_path);
  if (!conn) return conn.error();
  if (auto st = (*conn)->set_cache_kib(kCacheKib); !st) return st.error();
  std::unique_ptr<Checkpointer> c(new Checkpointer(std::move(*conn)));
  try {
    c->thread_ = std::thread([p = c.get()] { p->run(); });
  } catch (const std::system_error& e) {
    return make_error(Errc::internal, std::string("checkpointer: no thread: ") + e.what());
  }
  return c;
}

Checkpointer::~Checkpointer() { join(true); }

void Checkpointer::stop() { join(false); }

void Checkpointer::join(bool interrupt) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (interrupt) conn_->interrupt();
  thread_.join();
}

void Checkpointer::kick() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

Status Checkpointer::restart_wal() {
  std::unique_lock<std::mutex> lk(mu_);
  if (quit_) return make_error(Errc::internal, "checkpointer stopped");
  restart_ = true;
  cv_.notify_all();
  cv_.wait(lk, [&] { return !restart_; });
  return restart_status_;
}

// A passive checkpoint per kick: passes of one writer transaction each kept
// the WAL fsyncs short and overlapped best with the writing (passes of 64 MiB
// were slower overall, though they fsync less often).
void Checkpointer::run() {
  pthread_setname_np(pthread_self(), "shoal-ckpt");
  for (;;) {
    bool restart = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return quit_ || kicked_ || restart_; });
      if (quit_) break;
      kicked_ = false;
      restart = restart_;
    }
    Status st = conn_->checkpoint(restart ? Store::CheckpointMode::restart
                                          : Store::CheckpointMode::passive);
    if (!st) LOG_DEBUG("checkpointer: %s", st.error().msg.c_str());
    if (restart) {
      std::lock_guard<std::mutex> lk(mu_);
      restart_status_ = std::move(st);
      restart_ = false;
      cv_.notify_all();
    }
  }
  std::lock_guard<std::mutex> lk(mu_);  // release a restart_wal() left waiting
  if (restart_) {
    restart_status_ = make_error(Errc::internal, "checkpointer stopped");
    restart_ = false;
    cv_.notify_all();
  }
}

}  // namespace shoal

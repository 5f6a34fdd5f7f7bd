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
    interrupted_ = interrupt;
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

// A passive checkpoint per kick: passes of one writer transaction each kept
// the WAL fsyncs short and overlapped best with the writing (passes of 64 MiB
// were slower overall, though they fsync less often).
void Checkpointer::run() {
  pthread_setname_np(pthread_self(), "shoal-ckpt");
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return quit_ || kicked_; });
      // stop() still runs a pass asked for before it; the destructor does not.
      if (quit_ && (!kicked_ || interrupted_)) break;
      kicked_ = false;
    }
    if (Status st = conn_->checkpoint(Store::CheckpointMode::passive); !st)
      LOG_DEBUG("checkpointer: %s", st.error().msg.c_str());
  }
}

}  // namespace shoal

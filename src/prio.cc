#include "prio.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"

namespace shoal {
namespace {

id_t self_tid() { return static_cast<id_t>(gettid()); }

// Linux applies PRIO_PROCESS with a thread id to that thread only.
bool set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, self_tid(), nice) == 0; }

// Whether this thread may go back to nice value `nice` once it raised it:
// root may, others as far as RLIMIT_NICE allows (down to 20 - rlim_cur).
bool may_return_to(int nice) {
  if (geteuid() == 0) return true;
  rlimit rl{};
  if (getrlimit(RLIMIT_NICE, &rl) != 0) return false;
  return rl.rlim_cur == RLIM_INFINITY || 20 - static_cast<long>(rl.rlim_cur) <= nice;
}

}  // namespace

int thread_nice() {
  errno = 0;
  int n = getpriority(PRIO_PROCESS, self_tid());
  return errno == 0 ? n : 0;
}

BulkPriority::BulkPriority(bool restore) : base_(thread_nice()), restore_(restore) {
  if (restore_ && !may_return_to(base_)) return;
  int want = base_ + kBulkNice > 19 ? 19 : base_ + kBulkNice;
  if (want == base_) return;
  lowered_ = set_thread_nice(want);
  if (!lowered_) LOG_DEBUG("bulk work keeps its priority: setpriority: %s", std::strerror(errno));
}

BulkPriority::~BulkPriority() {
  if (!lowered_ || !restore_) return;
  if (!set_thread_nice(base_))
    LOG_WARN("cannot restore the worker thread's priority (nice %d): %s", base_, std::strerror(errno));
}

}  // namespace shoal

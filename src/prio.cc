#include "prio.h"

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "log.h"

namespace shoal {
namespace {

id_t self_tid() { return static_cast<id_t>(gettid()); }

// Linux applies PRIO_PROCESS with a thread id to that thread only.
bool set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, self_tid(), nice) == 0; }

// CAP_SYS_NICE in the effective set (root in a container may lack it).
bool has_cap_sys_nice() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[CAP_SYS_NICE / 32].effective >> (CAP_SYS_NICE % 32)) & 1u;
}

// Set once a restore failed all the same: no thread lowers its priority again.
std::atomic<bool> g_restore_failed{false};

}  // namespace

bool may_return_to_nice(int nice) {
  if (g_restore_failed.load(std::memory_order_relaxed)) return false;
  if (has_cap_sys_nice()) return true;
  rlimit rl{};
  if (getrlimit(RLIMIT_NICE, &rl) != 0) return false;
  return rl.rlim_cur == RLIM_INFINITY || 20 - static_cast<long>(rl.rlim_cur) <= nice;
}

int thread_nice() {
  errno = 0;
  int n = getpriority(PRIO_PROCESS, self_tid());
  return errno == 0 ? n : 0;
}

BulkPriority::BulkPriority(bool restore) : base_(thread_nice()), restore_(restore) {
  if (restore_ && !may_return_to_nice(base_)) return;
  int want = base_ + kBulkNice > 19 ? 19 : base_ + kBulkNice;
  if (want == base_) return;
  lowered_ = set_thread_nice(want);
  if (!lowered_) LOG_DEBUG("bulk work keeps its priority: setpriority: %s", std::strerror(errno));
}

BulkPriority::~BulkPriority() {
  if (!lowered_ || !restore_) return;
  if (set_thread_nice(base_)) return;
  g_restore_failed.store(true, std::memory_order_relaxed);
  LOG_WARN("cannot restore the worker thread's priority (nice %d): %s; bulk work keeps the "
           "normal priority from now on", base_, std::strerror(errno));
}

}  // namespace shoal

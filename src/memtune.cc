#include "memtune.h"

#include <malloc.h>

namespace shoal {

// glibc gives every thread that allocates its own arena (up to 8 per CPU),
// each with its own free lists and top. The daemon's threads (loop, ingest
// worker, reader, checkpointer) hand buffers to one another, so memory freed
// in one arena could not be reused by a thread allocating from another: the
// peaks added up. Small allocations hardly touch the arena lock (per-thread
// tcache), so one arena costs no measurable time.
bool tune_malloc() {
#ifdef __SANITIZE_ADDRESS__
  return true;  // AddressSanitizer's allocator replaces glibc's: nothing to tune
#else
  return mallopt(M_ARENA_MAX, 1) == 1;
#endif
}

}  // namespace shoal

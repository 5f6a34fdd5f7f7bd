// Process-wide memory settings of the daemon: glibc malloc tuned for a small,
// steady footprint rather than for many threads allocating at once.
#pragma once

namespace shoal {

// One malloc arena for all threads. Call once, before threads start; false
// if the C library refused (the defaults then stay, nothing else changes).
bool tune_malloc();

}  // namespace shoal

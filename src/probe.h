// System facts `shoalctl doctor` judges, read by the daemon (which has the
// share folders, key files and limits of the user it runs as): free disk
// space, key file modes, directory counts and the inotify watch limit.
// Each probe reads a little and never changes anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "result.h"

namespace shoal {

struct DiskFacts {
  uint64_t free_bytes = 0;   // available to an unprivileged user
  uint64_t total_bytes = 0;
  uint64_t dev = 0;          // st_dev of the path: equal devs share free space
};
// statvfs and stat of `path`.
Result<DiskFacts> probe_disk(const std::string& path);

// Permission bits (mode & 07777) of `path`, following symlinks as the key
// loader does.
Result<uint32_t> probe_mode(const std::string& path);

struct DirCount {
  uint64_t dirs = 0;      // directories under root, root included
  bool complete = true;   // false: the walk stopped at the time or count limit
};
// Counts directories under `root` without following symlinks, stopping after
// `max_ms` milliseconds or `max_dirs` directories. Unreadable subdirectories
// are counted but not entered.
Result<DirCount> count_dirs(const std::string& root, uint64_t max_ms, uint64_t max_dirs);

// The unsigned integer on the first line of a file such as
// /proc/sys/fs/inotify/max_user_watches; nullopt when it cannot be read or parsed.
std::optional<uint64_t> read_uint_file(const std::string& path);

}  // namespace shoal

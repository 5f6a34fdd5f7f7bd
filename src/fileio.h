// Whole-buffer file I/O: loops over short transfers and EINTR, so callers
// see either every byte moved or an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "result.h"

namespace shoal {

Status write_all(int fd, const void* p, size_t n);
Status pwrite_all(int fd, const void* p, size_t n, uint64_t off);
// Errc::io also when the file ends before `n` bytes.
Status pread_all(int fd, void* p, size_t n, uint64_t off);

// "a/b/c" -> {"a", "b", "c"}.
std::vector<std::string> split_path(const std::string& rel);
// Opens (creating as needed) the directory holding the path `parts` under
// `root`, one component at a time with O_NOFOLLOW, so a symlink anywhere on
// the way is refused (Errc::invalid). Returns the descriptor; caller closes.
Result<int> open_parent_dir(const std::string& root, const std::vector<std::string>& parts, bool create);
// Opens the regular file `rel` under `root` read-only, following no symlink
// on the way or at the end. Errc::invalid for an unsafe path. Caller closes.
Result<int> open_beneath(const std::string& root, const std::string& rel);

}  // namespace shoal

// Whole-buffer file I/O: loops over short transfers and EINTR, so callers
// see either every byte moved or an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "result.h"

struct stat;

namespace shoal {

// st_mtim in nanoseconds since the epoch, as file records keep it.
int64_t mtime_ns_of(const struct stat& st);
// st_ctim likewise (any change to the file or its inode moves it).
int64_t ctime_ns_of(const struct stat& st);
// Two stats of one file show no change between them: same size, inode,
// device, mtime and ctime (an edit that puts mtime back still moves ctime).
bool unchanged_between(const struct stat& a, const struct stat& b);

// An owned file descriptor (-1: none), closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);
  // Closes now and reports the result (close can report delayed write errors).
  int close();

 private:
  int fd_;
};

Status write_all(int fd, const void* p, size_t n);
Status pwrite_all(int fd, const void* p, size_t n, uint64_t off);
// Errc::io also when the file ends before `n` bytes.
Status pread_all(int fd, void* p, size_t n, uint64_t off);

// "a/b/c" -> {"a", "b", "c"}.
std::vector<std::string> split_path(const std::string& rel);
// Opens (creating as needed) the directory holding the path `parts` under
// `root`, one component at a time with O_NOFOLLOW, so a symlink anywhere on
// the way is refused (Errc::invalid).
Result<Fd> open_parent(const std::string& root, const std::vector<std::string>& parts, bool create);
// Opens the regular file `rel` under `root` read-only, following no symlink
// on the way or at the end. Errc::invalid for an unsafe path.
Result<Fd> open_beneath(const std::string& root, const std::string& rel);

}  // namespace shoal

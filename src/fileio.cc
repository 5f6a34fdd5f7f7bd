#include "fileio.h"

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

namespace shoal {

Status write_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno_error("write", errno);
    b += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status pwrite_all(int fd, const void* p, size_t n, uint64_t off) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, b, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno_error("write", errno);
    b += w;
    off += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status pread_all(int fd, void* p, size_t n, uint64_t off) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    ssize_t r = ::pread(fd, b, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno_error("read", errno);
    if (r == 0) return make_error(Errc::io, "read: the file ends early");
    b += r;
    off += static_cast<uint64_t>(r);
    n -= static_cast<size_t>(r);
  }
  return {};
}

}  // namespace shoal

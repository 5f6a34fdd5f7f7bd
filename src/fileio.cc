#include "fileio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#include "manifest.h"

namespace shoal {

int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

int64_t ctime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000LL + st.st_ctim.tv_nsec;
}

bool unchanged_between(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
         mtime_ns_of(a) == mtime_ns_of(b) && ctime_ns_of(a) == ctime_ns_of(b);
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int Fd::close() {
  int r = ::close(fd_);
  fd_ = -1;
  return r;
}

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

std::vector<std::string> split_path(const std::string& rel) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    parts.push_back(rel.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

Result<Fd> open_parent(const std::string& root, const std::vector<std::string>& parts, bool create) {
  Fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) {
    int e = errno;
    return errno_error("open share root " + root, e);
  }
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    const char* c = parts[i].c_str();
    int fd = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), c, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        return errno_error("mkdir " + parts[i], e);
      }
      fd = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      int e = errno;
      if (e == ELOOP || e == ENOTDIR)
        return make_error(Errc::invalid, "'" + parts[i] + "' on the way is not a plain directory");
      return errno_error("open directory " + parts[i], e);
    }
    dir.reset(fd);
  }
  return dir;
}

Result<Fd> open_beneath(const std::string& root, const std::string& rel) {
  if (!valid_rel_path(rel)) return make_error(Errc::invalid, "unsafe path");
  auto parts = split_path(rel);
  auto dir = open_parent(root, parts, false);
  if (!dir) return dir.error();
  Fd fd(::openat(dir->get(), parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    int e = errno;
    return errno_error("open " + rel, e);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return make_error(Errc::invalid, rel + " is not a regular file");
  return fd;
}

}  // namespace shoal

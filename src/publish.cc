#include "publish.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <vector>

#include "hash.h"
#include "parse.h"

namespace shoal {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

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

// Opens (creating as needed) the directory holding `rel`, one component at a
// time with O_NOFOLLOW, so a symlink anywhere on the way is refused.
Result<Fd> open_parent(const std::string& root, const std::vector<std::string>& parts, bool create) {
  Fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return errno_error("open share root " + root, errno);
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    const char* c = parts[i].c_str();
    int fd = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), c, 0755) != 0 && errno != EEXIST)
        return errno_error("mkdir " + parts[i], errno);
      fd = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        return make_error(Errc::invalid, "'" + parts[i] + "' on the way is not a plain directory");
      return errno_error("open directory " + parts[i], errno);
    }
    dir = Fd(fd);
  }
  return dir;
}

Status write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno_error("write", errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status fill_file(Store& store, int fd, const Manifest& m) {
  std::string buf;
  for (const ChunkRef& c : m.chunks) {
    if (auto st = store.get_chunk(c.hash, &buf); !st) return st;
    if (buf.size() != c.len || sha256(buf.data(), buf.size()) != c.hash)
      return make_error(Errc::corrupt, "stored chunk " + hash_hex(c.hash) + " fails its hash");
    if (auto st = write_all(fd, buf.data(), buf.size()); !st) return st;
  }
  return {};
}

std::string tmp_name() {
  uint8_t r[8];
  if (RAND_bytes(r, sizeof r) != 1) {
    uint64_t t = static_cast<uint64_t>(::time(nullptr)) ^ static_cast<uint64_t>(::getpid());
    for (size_t i = 0; i < sizeof r; i++) r[i] = static_cast<uint8_t>(t >> (8 * i));
  }
  return ".shoal-tmp-" + hex_encode(r, sizeof r);
}

}  // namespace

std::string conflict_name(const std::string& rel, const std::string& node, int64_t mtime_ns) {
  time_t secs = static_cast<time_t>(mtime_ns / 1000000000LL);
  tm t{};
  gmtime_r(&secs, &t);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &t);
  return rel + ".shoal-conflict-" + node + "-" + when;
}

Result<FileRecord> publish_file(Store& store, const PublishRequest& req) {
  const Manifest& m = req.manifest;
  if (!valid_rel_path(req.rel)) return make_error(Errc::invalid, "unsafe path");
  if (!req.move_aside_rel.empty() && !valid_rel_path(req.move_aside_rel))
    return make_error(Errc::invalid, "unsafe conflict path");
  auto parts = split_path(req.rel);
  auto dir = open_parent(req.root, parts, true);
  if (!dir) return dir.error();
  const std::string& name = parts.back();

  struct statvfs vfs {};
  if (::fstatvfs(dir->get(), &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < m.size)
      return make_error(Errc::no_space, "not enough free space for " + std::to_string(m.size) +
                                            " bytes (" + std::to_string(avail) + " free)");
  }
  const std::string tmp = tmp_name();
  Fd out(::openat(dir->get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return errno_error("create " + tmp, errno);
  auto cleanup = [&](Error e) -> Result<FileRecord> {
    ::unlinkat(dir->get(), tmp.c_str(), 0);
    return e;
  };
  if (auto st = fill_file(store, out.get(), m); !st) return cleanup(st.error());
  // Permission bits only: a peer must not plant setuid/setgid files owned by
  // the daemon's user (often root) in the share.
  mode_t mode = static_cast<mode_t>(m.mode & 0777);
  if (::fchmod(out.get(), mode) != 0) return cleanup(errno_error("chmod", errno));
  timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(m.mtime_ns / 1000000000LL);
  times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(m.mtime_ns % 1000000000LL);
  if (m.mtime_ns < 0) times[0] = times[1] = timespec{0, 0};
  if (::futimens(out.get(), times) != 0) return cleanup(errno_error("set mtime", errno));
  if (::fsync(out.get()) != 0) return cleanup(errno_error("fsync", errno));
  struct stat st {};
  if (::fstat(out.get(), &st) != 0) return cleanup(errno_error("fstat", errno));

  struct stat old {};
  if (::fstatat(dir->get(), name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(old.st_mode)) return cleanup(make_error(Errc::invalid, "'" + name + "' exists and is not a regular file"));
    if (!req.move_aside_rel.empty()) {
      auto aside = split_path(req.move_aside_rel);
      if (aside.size() != parts.size()) return cleanup(make_error(Errc::invalid, "conflict copy must sit beside the file"));
      if (::renameat(dir->get(), name.c_str(), dir->get(), aside.back().c_str()) != 0)
        return cleanup(errno_error("move aside " + name, errno));
    }
  }
  if (::renameat(dir->get(), tmp.c_str(), dir->get(), name.c_str()) != 0)
    return cleanup(errno_error("rename into place " + name, errno));
  ::fsync(dir->get());

  FileRecord rec;
  rec.share = req.share;
  rec.path = req.rel;
  rec.manifest = manifest_id(req.encoded);
  rec.size = m.size;
  rec.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  rec.mode = m.mode;
  rec.inode = st.st_ino;
  rec.dev = st.st_dev;
  rec.chunks = static_cast<uint32_t>(m.chunks.size());
  rec.state = "stored";
  if (req.record) {
    if (auto s = store.commit_file(rec, req.encoded, m.chunks); !s) return s.error();
  }
  return rec;
}

Status unpublish_file(const std::string& root, const std::string& rel) {
  if (!valid_rel_path(rel)) return make_error(Errc::invalid, "unsafe path");
  auto parts = split_path(rel);
  auto dir = open_parent(root, parts, false);
  if (!dir) return dir.error();
  struct stat st {};
  if (::fstatat(dir->get(), parts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
  if (!S_ISREG(st.st_mode)) return make_error(Errc::invalid, "not a regular file");
  if (::unlinkat(dir->get(), parts.back().c_str(), 0) != 0) return errno_error("unlink " + rel, errno);
  ::fsync(dir->get());
  return {};
}

}  // namespace shoal

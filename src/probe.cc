#include "probe.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "parse.h"

namespace shoal {
namespace {

struct DirClose {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

bool is_dir_entry(int dfd, const dirent* e) {
  if (e->d_type == DT_DIR) return true;
  if (e->d_type != DT_UNKNOWN) return false;
  struct stat st {};
  return fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Result<DiskFacts> probe_disk(const std::string& path) {
  struct statvfs vs {};
  if (statvfs(path.c_str(), &vs) != 0) return errno_error("statvfs " + path, errno);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno_error("stat " + path, errno);
  DiskFacts f;
  f.free_bytes = static_cast<uint64_t>(vs.f_bavail) * vs.f_frsize;
  f.total_bytes = static_cast<uint64_t>(vs.f_blocks) * vs.f_frsize;
  f.dev = static_cast<uint64_t>(st.st_dev);
  return f;
}

Result<uint32_t> probe_mode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno_error("stat " + path, errno);
  return static_cast<uint32_t>(st.st_mode & 07777);
}

Result<DirCount> count_dirs(const std::string& root, uint64_t max_ms, uint64_t max_dirs) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(max_ms);
  DirPtr top(opendir(root.c_str()));
  if (!top) return errno_error("cannot read " + root, errno);
  top.reset();
  DirCount c;
  std::vector<std::string> todo{root};
  uint64_t seen = 0;
  while (!todo.empty()) {
    std::string dir = std::move(todo.back());
    todo.pop_back();
    ++c.dirs;
    DirPtr d(opendir(dir.c_str()));
    if (!d) continue;  // counted (it needs a watch) but not entered
    while (const dirent* e = readdir(d.get())) {
      if (++seen % 256 == 0 && Clock::now() > deadline) {
        c.complete = false;
        return c;
      }
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      if (is_dir_entry(dirfd(d.get()), e)) todo.push_back(dir + "/" + e->d_name);
    }
    if (c.dirs + todo.size() >= max_dirs) {
      c.dirs += todo.size();
      c.complete = false;
      return c;
    }
  }
  return c;
}

std::optional<uint64_t> read_uint_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "re"), &std::fclose);
  if (!f) return std::nullopt;
  char buf[64] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f.get());
  std::string_view text(buf, n);
  text = trim(text.substr(0, text.find('\n')));  // /proc files end in a newline
  Result<uint64_t> v = parse_uint(text, 0, UINT64_MAX);
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace shoal

#include "publish.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <algorithm>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "fileio.h"
#include "hash.h"
#include "log.h"
#include "parse.h"

namespace shoal {
namespace {


// A stored chunk, checked against its hash (the store may have rotted).
Status load_chunk(Store& store, const ChunkRef& c, std::string* buf) {
  if (auto st = store.get_chunk(c.hash, buf); !st) return st;
  if (buf->size() != c.len || sha256(buf->data(), buf->size()) != c.hash)
    return make_error(Errc::corrupt, "stored chunk " + hash_hex(c.hash) + " fails its hash");
  return {};
}

// Chunks that could not be loaded are listed in *lost (and not written).
Status lost_error(const std::vector<Hash>& lost) {
  return make_error(Errc::not_found, std::to_string(lost.size()) + " chunk(s) no longer held here (first " +
                                         hash_hex(lost.front()).substr(0, 16) + "); fetching them again");
}

Status fill_file(Store& store, int fd, const Manifest& m, std::vector<Hash>* lost) {
  std::string buf;
  uint64_t off = 0;
  for (const ChunkRef& c : m.chunks) {
    if (auto st = load_chunk(store, c, &buf); !st) {
      if (st.error().code != Errc::not_found) return st;
      lost->push_back(c.hash);
    } else if (auto w = pwrite_all(fd, buf.data(), buf.size(), off); !w) {
      return w;
    }
    off += c.len;
  }
  if (!lost->empty()) return lost_error(*lost);
  return {};
}

std::string random_hex(size_t n) {
  uint8_t r[16];
  n = std::min(n, sizeof r);
  if (RAND_bytes(r, static_cast<int>(n)) != 1) {
    uint64_t t = static_cast<uint64_t>(::time(nullptr)) ^ static_cast<uint64_t>(::getpid());
    for (size_t i = 0; i < n; i++) r[i] = static_cast<uint8_t>(t >> (8 * (i % 8)));
  }
  return hex_encode(r, n);
}

constexpr std::string_view kTmpPrefix = ".shoal-tmp-";
constexpr std::string_view kPartPrefix = ".shoal-tmp-part-";
constexpr uint64_t kWritebackBytes = 8u << 20;

// Temp names carry a token of this process, so the watcher can tell the
// leftovers of an earlier run (which no transfer will finish) from ours.
const std::string& temp_token() {
  static const std::string token = random_hex(4) + "-";
  return token;
}

std::string tmp_name() { return std::string(kTmpPrefix) + temp_token() + random_hex(8); }

// Creating a part file in kPartsDir and removing the empty directory are
// serialised: a PartFile may be destroyed on any thread.
std::mutex g_parts_dir_mu;

// root's kPartsDir (made if `create`), if it is a plain directory of ours.
Result<Fd> open_parts_dir(const std::string& root, bool create) {
  Fd r(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (r.get() < 0) return errno_error("open share root " + root, errno);
  if (create && ::mkdirat(r.get(), kPartsDir, 0700) != 0 && errno != EEXIST)
    return errno_error(std::string("mkdir ") + kPartsDir, errno);
  Fd d(::openat(r.get(), kPartsDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (d.get() < 0) return errno_error(std::string("open ") + kPartsDir, errno);
  struct stat st {};
  if (::fstat(d.get(), &st) != 0 || st.st_uid != ::geteuid())
    return make_error(Errc::invalid, std::string(kPartsDir) + " is not ours");
  return d;
}

// Opens `name` (open flags `flags` on top of read-write) where `rel`'s part
// file lives: in kPartsDir when the rename into place can work (one file
// system); else, or if that directory is not usable, beside the target
// (`target`: rel's directory). Sets *dir (owned by the caller from then on),
// *in_parts and *path; returns the descriptor or -1 (errno set).
int open_in_part_dir(const std::string& root, const std::string& rel, Fd target, const std::string& name,
                     int flags, int* dir, bool* in_parts, std::string* path) {
  std::lock_guard<std::mutex> lock(g_parts_dir_mu);
  struct stat ts {}, ps {};
  auto parts = open_parts_dir(root, true);
  if (parts && ::fstat(target.get(), &ts) == 0 && ::fstat(parts->get(), &ps) == 0 && ts.st_dev == ps.st_dev) {
    *dir = parts->release();
    *in_parts = true;
    *path = root + "/" + kPartsDir + "/" + name;
  } else {
    *dir = target.release();
    *in_parts = false;
    auto cut = rel.rfind('/');
    *path = root + "/" + (cut == std::string::npos ? "" : rel.substr(0, cut + 1)) + name;
  }
  return ::openat(*dir, name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | flags, 0600);
}

// Removes root's kPartsDir if it is empty (a directory with part files in
// it stays: ENOTEMPTY).
void remove_parts_dir_if_empty(const std::string& root) {
  std::lock_guard<std::mutex> lock(g_parts_dir_mu);
  Fd r(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (r.get() >= 0) ::unlinkat(r.get(), kPartsDir, AT_REMOVEDIR);
}

// Mode, mtime, fsync, then the rename of `tmp` in `tmp_dir` into place in
// `dir` (moving an existing file aside first if asked) and a directory
// fsync. Returns the new file's stat.
Result<struct stat> seal_and_rename(int tmp_dir, int dir, int fd, const std::string& tmp,
                                    const std::vector<std::string>& parts, const PublishRequest& req) {
  const Manifest& m = req.manifest;
  const std::string& name = parts.back();
  // Permission bits only: a peer must not plant setuid/setgid files owned by
  // the daemon's user (often root) in the share.
  mode_t mode = static_cast<mode_t>(m.mode & 0777);
  if (::fchmod(fd, mode) != 0) return errno_error("chmod", errno);
  timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(m.mtime_ns / 1000000000LL);
  times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(m.mtime_ns % 1000000000LL);
  if (m.mtime_ns < 0) times[0] = times[1] = timespec{0, 0};
  if (::futimens(fd, times) != 0) return errno_error("set mtime", errno);
  if (::fsync(fd) != 0) return errno_error("fsync", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("fstat", errno);

  struct stat old {};
  if (::fstatat(dir, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISREG(old.st_mode)) return make_error(Errc::invalid, "'" + name + "' exists and is not a regular file");
    if (!req.move_aside_rel.empty()) {
      auto aside = split_path(req.move_aside_rel);
      if (aside.size() != parts.size()) return make_error(Errc::invalid, "conflict copy must sit beside the file");
      if (::renameat(dir, name.c_str(), dir, aside.back().c_str()) != 0)
        return errno_error("move aside " + name, errno);
    }
  }
  if (::renameat(tmp_dir, tmp.c_str(), dir, name.c_str()) != 0)
    return errno_error("rename into place " + name, errno);
  ::fsync(dir);
  return st;
}

FileRecord record_of(const PublishRequest& req, const struct stat& st) {
  const Manifest& m = req.manifest;
  FileRecord rec;
  rec.share = req.share;
  rec.path = req.rel;
  rec.manifest = manifest_id(req.encoded);
  rec.size = m.size;
  rec.mtime_ns = mtime_ns_of(st);
  rec.mode = m.mode;
  rec.inode = st.st_ino;
  rec.dev = st.st_dev;
  rec.chunks = static_cast<uint32_t>(m.chunks.size());
  rec.state = "stored";
  return rec;
}

// Records the version. `in_file`: chunks the store lacks are held in the
// file just published (written there only), so they are recorded as such.
Result<FileRecord> finish_publish(Store& store, const PublishRequest& req, const struct stat& st,
                                  bool in_file) {
  FileRecord rec = record_of(req, st);
  if (!req.record) return rec;
  if (auto s = store.commit_file(rec, req.encoded, req.manifest.chunks, 0, in_file); !s) return s.error();
  return rec;
}

}  // namespace

void WriteBack::wrote(int fd, uint64_t len) {
  pending += len;
  if (pending < kWritebackBytes) return;
  pending = 0;
  // A flush on the flusher's thread writes them back and empties the disk's
  // cache; without one (or while one for this file still waits), writeback
  // at least starts now.
  if (!flusher || !flusher->sync(fd)) ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

std::string conflict_name(const std::string& rel, const std::string& node, int64_t mtime_ns) {
  time_t secs = static_cast<time_t>(mtime_ns / 1000000000LL);
  tm t{};
  gmtime_r(&secs, &t);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &t);
  return rel + ".shoal-conflict-" + node + "-" + when;
}

// --- PartFile ------------------------------------------------------------------

PartFile::PartFile(std::string root, std::string rel, const Manifest& m, const Hash& mid,
                   std::shared_ptr<Flusher> flusher)
    : root_(std::move(root)), rel_(std::move(rel)), name_(name_of(mid)) {
  wb_.flusher = std::move(flusher);
  offsets_.reserve(m.chunks.size() + 1);
  by_hash_.reserve(m.chunks.size());
  uint64_t off = 0;
  for (uint32_t i = 0; i < m.chunks.size(); i++) {
    offsets_.push_back(off);
    off += m.chunks[i].len;
    by_hash_.push_back({m.chunks[i].hash, i});
  }
  offsets_.push_back(off);
  std::sort(by_hash_.begin(), by_hash_.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.hash, a.index) < std::tie(b.hash, b.index); });
  size_ = off;
}

std::string PartFile::name_of(const Hash& mid) {
  return std::string(kPartPrefix) + hash_hex(mid).substr(0, 32);
}

PartFile::~PartFile() {
  if (fd_ >= 0) ::close(fd_);
  if (dir_ >= 0) {
    if (discard_ && !renamed_ && !failed_ && ::unlinkat(dir_, name_.c_str(), 0) == 0) gone();
    ::close(dir_);
  }
}

void PartFile::gone() {
  if (in_parts_dir_) remove_parts_dir_if_empty(root_);
}

void PartFile::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  LOG_WARN("publish: %s: %s; what only its temp file held is fetched again",
           log_escape(rel_).c_str(), log_escape(why).c_str());
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (dir_ >= 0 && ::unlinkat(dir_, name_.c_str(), 0) == 0) gone();
}

StreamFile::StreamFile(std::string root, std::string rel, uint64_t size, std::shared_ptr<Flusher> flusher)
    : root_(std::move(root)), rel_(std::move(rel)), size_(size), name_(tmp_name()) {
  wb_.flusher = std::move(flusher);
}

StreamFile::~StreamFile() {
  if (fd_ >= 0) ::close(fd_);
  if (dir_ < 0) return;
  if (!handed_ && ::unlinkat(dir_, name_.c_str(), 0) == 0 && in_parts_dir_) remove_parts_dir_if_empty(root_);
  ::close(dir_);
}

Status StreamFile::open() {
  if (dir_ >= 0) return make_error(Errc::invalid, "stream file opened twice");
  if (!valid_rel_path(rel_)) return make_error(Errc::invalid, "unsafe path");
  auto target = open_parent(root_, split_path(rel_), true);
  if (!target) return target.error();
  std::string path;
  fd_ = open_in_part_dir(root_, rel_, std::move(*target), name_, O_CREAT | O_EXCL, &dir_, &in_parts_dir_, &path);
  if (fd_ < 0) {
    Error e = errno_error("create a temp file for " + rel_, errno);
    if (in_parts_dir_) remove_parts_dir_if_empty(root_);
    return e;
  }
  // The space is reserved (a full disk fails now) but the size stays 0: the
  // part file this may become hashes what lies below its size to resume.
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size_)) != 0 && errno != EOPNOTSUPP) {
    Error e = errno_error("reserve " + std::to_string(size_) + " bytes", errno);
    ::close(fd_);
    fd_ = -1;
    return e;
  }
  return {};
}

int StreamFile::dup_fd() const { return fd_ < 0 ? -1 : ::fcntl(fd_, F_DUPFD_CLOEXEC, 0); }

bool StreamFile::check(const Hash& h, uint64_t off, uint8_t* buf, uint32_t len) {
  if (fd_ < 0 || !pread_all(fd_, buf, len, off).ok() || sha256(buf, len) != h) return false;
  if (checked_.size() < kMaxChecked) checked_.push_back({off, h, len});
  wb_.wrote(fd_, len);
  return true;
}

bool StreamFile::hand_over(PartFile& part, const Hash& mid) {
  if (fd_ < 0 || handed_) return false;
  const std::string to = PartFile::name_of(mid);
  if (::renameat2(dir_, name_.c_str(), dir_, to.c_str(), RENAME_NOREPLACE) != 0) return false;
  handed_ = true;
  struct stat st {};
  if (::fstat(fd_, &st) == 0) part.take_checked(st, std::move(checked_));
  checked_.clear();
  return true;
}

void PartFile::wrote(uint32_t i, size_t len) {
  written_[i] = 1;
  wb_.wrote(fd_, len);
}

void PartFile::take_checked(const struct stat& st, std::vector<CheckedChunk> chunks) {
  checked_dev_ = st.st_dev;
  checked_ino_ = st.st_ino;
  checked_ = std::move(chunks);
}

const PartFile::Entry* PartFile::entry_at(const Hash& h, uint64_t off, size_t len, size_t* copies) const {
  const Entry* at = nullptr;
  size_t n = 0;
  for (auto it = first_of(h); it != by_hash_.end() && it->hash == h; ++it, ++n)
    if (offsets_[it->index] == off && len_of(it->index) == len) at = &*it;
  if (copies != nullptr) *copies = n;
  return at;
}

// The file open is the one take_checked() described: its checked chunks are
// kept where the version has them (copied to the version's other offsets of
// the same chunk); the rest of the file is not read.
void PartFile::keep_checked(const struct stat& sb) {
  std::string buf;
  for (const CheckedChunk& c : checked_) {
    if (c.off + c.len > static_cast<uint64_t>(sb.st_size)) continue;
    size_t copies = 0;
    const Entry* at = entry_at(c.id, c.off, c.len, &copies);
    if (at == nullptr || written_[at->index] != 0) continue;
    written_[at->index] = 1;
    resumed_.push_back(at->index);
    if (copies > 1) {  // put() writes the version's other copies from this one
      buf.resize(c.len);
      if (pread_all(fd_, buf.data(), c.len, c.off)) put(c.id, reinterpret_cast<const uint8_t*>(buf.data()), c.len);
    }
  }
  checked_.clear();
}

bool PartFile::keep_stream_checked(const Hash& h, uint64_t off, uint8_t* buf, size_t len) {
  if (!usable() || !took_over_) return false;
  const Entry* at = entry_at(h, off, len, nullptr);
  if (at == nullptr || !pread_all(fd_, buf, len, off)) return false;
  if (written_[at->index] == 0) wrote(at->index, len);
  return true;
}

Status PartFile::open(Store& store) {
  if (dir_ >= 0 || failed_) return make_error(Errc::invalid, "part file opened twice");
  failed_ = true;  // until it is open
  if (!valid_rel_path(rel_)) return make_error(Errc::invalid, "unsafe path");
  auto target = open_parent(root_, split_path(rel_), true);
  if (!target) return target.error();
  fd_ = open_in_part_dir(root_, rel_, std::move(*target), name_, O_CREAT, &dir_, &in_parts_dir_, &path_);
  if (fd_ < 0) {
    Error e = errno_error("open the temp file of " + rel_, errno);
    gone();
    return e;
  }
  // Only a file of ours is resumed: a plain file, not linked elsewhere.
  struct stat sb {};
  if (::fstat(fd_, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1 || sb.st_uid != ::geteuid()) {
    ::close(fd_);
    fd_ = -1;
    return make_error(Errc::invalid, "the temp file of " + rel_ + " is not ours");
  }
  failed_ = false;
  written_.assign(by_hash_.size(), 0);
  std::string buf;
  took_over_ = checked_ino_ != 0 && sb.st_dev == checked_dev_ && sb.st_ino == checked_ino_;
  if (sb.st_size > 0) {
    // Resuming: keep every chunk that is whole and right.
    if (took_over_)
      keep_checked(sb);
    else
      for (const Entry& e : by_hash_) {
        if (offsets_[e.index + 1] > static_cast<uint64_t>(sb.st_size)) continue;
        buf.resize(len_of(e.index));
        if (!holds(e, reinterpret_cast<uint8_t*>(buf.data()))) continue;
        written_[e.index] = 1;
        resumed_.push_back(e.index);
      }
    if (static_cast<uint64_t>(sb.st_size) > size_ && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      Error e = errno_error("truncate the temp file of " + rel_, errno);
      fail(e.msg);
      return e;
    }
  }
  // Reserving the whole size makes a full disk fail now, not halfway.
  if (size_ > 0 && ::fallocate(fd_, 0, 0, static_cast<off_t>(size_)) != 0 && errno != EOPNOTSUPP) {
    Error e = errno_error("reserve " + std::to_string(size_) + " bytes", errno);
    fail(e.msg);
    return e;
  }
  for (size_t k = 0; k < by_hash_.size(); k++) {
    const Entry& e = by_hash_[k];
    if (k > 0 && by_hash_[k - 1].hash == e.hash) continue;  // put() wrote every copy
    if (written_[e.index] != 0) continue;
    if (!load_chunk(store, ChunkRef{e.hash, len_of(e.index)}, &buf)) continue;  // fetched or filled in later
    put(e.hash, reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  }
  if (!usable()) return make_error(Errc::io, "cannot write the temp file of " + rel_);
  return {};
}

// The first entry of `h` (its lowest index), or end().
std::vector<PartFile::Entry>::const_iterator PartFile::first_of(const Hash& h) const {
  return std::lower_bound(by_hash_.begin(), by_hash_.end(), h,
                          [](const Entry& e, const Hash& x) { return e.hash < x; });
}

uint64_t PartFile::first_offset(const Hash& h) const {
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h) return UINT64_MAX;
  return offsets_[it->index];  // the lowest index: entries are sorted by (hash, index)
}

// Whether the file holds entry e's chunk at its offset (buf: len_of bytes).
bool PartFile::holds(const Entry& e, uint8_t* buf) const {
  const uint32_t len = len_of(e.index);
  return pread_all(fd_, buf, len, offsets_[e.index]).ok() && sha256(buf, len) == e.hash;
}

int PartFile::dup_fd() const { return usable() ? ::fcntl(fd_, F_DUPFD_CLOEXEC, 0) : -1; }

bool PartFile::check_written(const Hash& h, uint8_t* buf, size_t len) {
  if (!usable()) return false;
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h || len_of(it->index) != len || !holds(*it, buf)) return false;
  if (written_[it->index] == 0) wrote(it->index, len);
  return true;
}

bool PartFile::read_first(const Hash& h, uint8_t* buf, size_t len) {
  if (!usable()) return false;
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h || len_of(it->index) != len) return false;
  return pread_all(fd_, buf, len, offsets_[it->index]).ok();
}

bool PartFile::write_first(const Hash& h, const uint8_t* p, size_t n, uint32_t at) {
  if (!usable()) return false;
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h || uint64_t{at} + n > len_of(it->index)) return false;
  if (auto st = pwrite_all(fd_, p, n, offsets_[it->index] + at); !st) {
    fail(st.error().msg);
    return false;
  }
  return true;
}

bool PartFile::check_buffer(const Hash& h, const uint8_t* buf, size_t len) {
  if (!usable()) return false;
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h || len_of(it->index) != len || sha256(buf, len) != h) return false;
  if (written_[it->index] == 0) wrote(it->index, len);
  return true;
}

bool PartFile::put(const Hash& h, const uint8_t* data, size_t len) {
  if (!usable()) return false;
  auto it = first_of(h);
  if (it == by_hash_.end() || it->hash != h) return false;
  for (; it != by_hash_.end() && it->hash == h; ++it) {
    const uint32_t i = it->index;
    if (written_[i] != 0) continue;
    if (len_of(i) != len) {
      fail("a chunk of the wrong length");
      return false;
    }
    if (auto st = pwrite_all(fd_, data, len, offsets_[i]); !st) {
      fail(st.error().msg);
      return false;
    }
    wrote(i, len);
  }
  return true;
}

Status PartFile::fill_missing(Store& store, std::vector<Hash>* lost) {
  std::string buf;
  for (const Entry& e : by_hash_) {
    if (written_[e.index] != 0) continue;
    if (auto st = load_chunk(store, ChunkRef{e.hash, len_of(e.index)}, &buf); !st) {
      if (st.error().code != Errc::not_found) return st;
      if (lost->empty() || lost->back() != e.hash) lost->push_back(e.hash);
      continue;
    }
    if (!put(e.hash, reinterpret_cast<const uint8_t*>(buf.data()), buf.size()))
      return make_error(Errc::io, "cannot write the temp file of " + rel_);
  }
  if (!lost->empty()) return lost_error(*lost);
  return {};
}

// --- publishing -------------------------------------------------------------------

// The version was written as it arrived: fill what is missing, then seal it.
Result<FileRecord> publish_part(Store& store, const PublishRequest& req, PartFile& p) {
  if (auto st = p.fill_missing(store, &req.lost); !st) {
    if (st.error().code != Errc::not_found) p.fail(st.error().msg);
    return st.error();
  }
  auto parts = split_path(req.rel);
  timespec a{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &a);
  auto target = open_parent(req.root, parts, true);
  if (!target) {
    p.fail(target.error().msg);
    return target.error();
  }
  auto st = seal_and_rename(p.dir_, target->get(), p.fd_, p.name_, parts, req);
  if (!st) {
    p.fail(st.error().msg);
    return st.error();
  }
  p.renamed_ = true;
  p.gone();
  clock_gettime(CLOCK_MONOTONIC, &b);
  LOG_DEBUG("publish: %s sealed and renamed in %ld ms", log_escape(req.rel).c_str(),
            (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
  return finish_publish(store, req, *st, true);
}

Result<FileRecord> publish_file(Store& store, const PublishRequest& req) {
  const Manifest& m = req.manifest;
  req.lost.clear();
  if (!valid_rel_path(req.rel)) return make_error(Errc::invalid, "unsafe path");
  if (!req.move_aside_rel.empty() && !valid_rel_path(req.move_aside_rel))
    return make_error(Errc::invalid, "unsafe conflict path");
  if (req.part && req.part->usable() && req.part->rel_ == req.rel) return publish_part(store, req, *req.part);
  auto parts = split_path(req.rel);
  auto dir = open_parent(req.root, parts, true);
  if (!dir) return dir.error();

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
  if (auto st = fill_file(store, out.get(), m, &req.lost); !st) return cleanup(st.error());
  auto st = seal_and_rename(dir->get(), dir->get(), out.get(), tmp, parts, req);
  if (!st) return cleanup(st.error());
  return finish_publish(store, req, *st, false);
}

bool is_stale_temp(const std::string& name, int64_t age_sec) {
  if (name.compare(0, kTmpPrefix.size(), kTmpPrefix) != 0) return false;
  if (name.compare(0, kPartPrefix.size(), kPartPrefix) == 0) return age_sec >= kPartKeepSec;
  return name.compare(kTmpPrefix.size(), temp_token().size(), temp_token()) != 0;
}

uint64_t part_file_bytes(const std::string& root, const std::string& rel, const Hash& mid) {
  if (!valid_rel_path(rel)) return 0;
  const std::string name = PartFile::name_of(mid);
  auto held = [&](const Result<Fd>& dir) -> uint64_t {
    struct stat st {};
    if (dir && ::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
      return static_cast<uint64_t>(st.st_blocks) * 512;
    return 0;
  };
  if (uint64_t n = held(open_parts_dir(root, false)); n > 0) return n;
  return held(open_parent(root, split_path(rel), false));
}

std::vector<std::string> remove_stale_parts(const std::string& root) {
  std::vector<std::string> removed;
  auto d = open_parts_dir(root, false);
  if (!d) return removed;
  int fd = ::dup(d->get());
  DIR* dp = fd >= 0 ? ::fdopendir(fd) : nullptr;
  if (dp == nullptr) {
    if (fd >= 0) ::close(fd);
    return removed;
  }
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  while (dirent* de = ::readdir(dp)) {
    struct stat st {};
    if (::fstatat(d->get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!is_stale_temp(de->d_name, now - static_cast<int64_t>(st.st_mtim.tv_sec))) continue;
    if (::unlinkat(d->get(), de->d_name, 0) == 0) removed.push_back(de->d_name);
  }
  ::closedir(dp);
  remove_parts_dir_if_empty(root);
  return removed;
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

#include "watcher.h"

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fileio.h"
#include "log.h"
#include "publish.h"

namespace shoal {
namespace {

// IN_MOVE_SELF only matters for a share root (children are covered by their
// parent's IN_MOVED_FROM); IN_DONT_FOLLOW is added for every non-root dir.
constexpr uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                              IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_MODIFY | IN_ATTRIB |
                              IN_ONLYDIR | IN_EXCL_UNLINK;
// Bounds on work per loop iteration so a big tree or an event flood never
// stalls the daemon's other I/O.
constexpr size_t kScanSliceEntries = 2000;
constexpr size_t kSettleSliceFiles = 2000;
constexpr int kReadsPerWakeup = 16;
// A file written but never closed (truncate(2), a writer that keeps it open)
// is reported after this much silence so it is not lost until a rescan.
constexpr int64_t kOpenQuietMinMs = 30000;
constexpr std::string_view kOwnPrefix = ".shoal-";

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

std::string join(std::string_view rel, std::string_view name) {
  std::string out;
  out.reserve(rel.size() + 1 + name.size());
  out.append(rel);
  if (!rel.empty()) out.push_back('/');
  out.append(name);
  return out;
}

bool under(std::string_view path, std::string_view prefix_slash) {
  return path.substr(0, prefix_slash.size()) == prefix_slash;
}

// A directory that disappeared or was replaced between event and syscall:
// not an error, the events for that change are already queued.
bool vanished(int err) { return err == ENOENT || err == ENOTDIR || err == ELOOP; }

struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;
struct DirClose {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

struct Share;
struct Pending;

// Settle queue entry. `at` may be earlier than the file's real deadline
// (IN_MODIFY only moves Pending::deadline); the timer re-queues such entries,
// so the hot path never touches the set.
struct Due {
  int64_t at;
  Pending* p;
  bool operator<(const Due& o) const {
    return at != o.at ? at < o.at : std::less<const Pending*>()(p, o.p);
  }
};
using DueSet = std::set<Due>;

struct Pending {
  Share* share = nullptr;
  const std::string* rel = nullptr;  // the key of this entry in Share::files
  int64_t deadline = 0;
  int64_t size = -1;
  int64_t mtime = 0;
  bool closed = false;     // closed after writing / moved in / found by a scan
  bool from_scan = false;  // found by a new-directory scan, no event since
  bool whole = false;      // moved or linked in, or found by a scan: quiet since its mtime
  DueSet::iterator due;
};

struct Share {
  std::string name;
  std::string root;
  uint32_t settle_ms = 0;
  std::map<std::string, int> dirs;                    // rel -> wd
  std::map<std::string, Pending, std::less<>> files;  // settling files
  std::set<std::string, std::less<>> warned;          // paths already warned about
};

struct WatchDir {
  Share* share;
  std::string rel;
};

struct ScanJob {
  Share* share = nullptr;
  bool settle = false;  // new directory: files settle instead of being reported at once
  bool started = false;
  std::vector<std::string> todo;  // directories still to list
  DirPtr dir;                     // directory being listed
  std::string dir_rel;
};

}  // namespace

struct Watcher::Impl {
  event_base* base;
  Callback cb;
  int fd = -1;
  EventPtr ev_read, ev_settle, ev_scan;
  std::map<std::string, std::unique_ptr<Share>> shares;
  std::unordered_map<int, WatchDir> wds;
  DueSet due;
  int64_t armed_at = -1;
  std::deque<ScanJob> jobs;
  std::vector<WatchEvent> out, delivering;
  std::string scratch, path;  // reused so the per-event path does not allocate
  WatcherStats st;
  alignas(inotify_event) char buf[64 * 1024];

  Impl(event_base* b, Callback c) : base(b), cb(std::move(c)) {}
  ~Impl() {
    ev_read.reset();  // before close(): libevent still knows the fd
    ev_settle.reset();
    ev_scan.reset();
    if (fd >= 0) close(fd);
  }

  Status init();
  static void on_read(evutil_socket_t, short, void* arg);
  static void on_settle(evutil_socket_t, short, void* arg);
  static void on_scan(evutil_socket_t, short, void* arg);

  const std::string& path_of(const Share& s, std::string_view rel);
  int add_watch(Share& s, const std::string& rel);
  void watch_failed(Share& s, const std::string& rel, int err);
  bool warn_once(Share& s, std::string_view rel, const char* what, const char* detail);
  void skip_special(Share& s, std::string_view rel, bool link);
  void forget_wd(int wd);
  void forget_subtree(Share& s, const std::string& rel);
  std::map<std::string, Pending, std::less<>>::iterator drop(
      Share& s, std::map<std::string, Pending, std::less<>>::iterator it);

  Pending& track(Share& s, std::string_view rel, int64_t at);
  void set_deadline(Pending& p, int64_t at);
  void requeue(Pending& p, int64_t at);
  int64_t quiet_ms(const Share& s) const;
  void arm_timer();
  void settle_check(Pending& p, int64_t now);

  void handle(int wd, uint32_t mask, std::string_view name);
  void dir_event(Share& s, uint32_t mask);
  void file_event(Share& s, uint32_t mask);
  void file_landed(Share& s, uint32_t mask);
  void file_modified(Share& s, uint32_t mask);
  void file_gone(Share& s);
  void root_gone(Share& s, uint32_t mask);

  void add_scan(Share& s, const std::string& rel, bool settle);
  void schedule_scan();
  bool scan_step(ScanJob& job, size_t& budget);
  void open_scan_dir(ScanJob& job);
  void scan_entry(ScanJob& job, const dirent& de);
  void drop_stale_temp(ScanJob& job, const dirent& de);
  void found_in_new_dir(Share& s, const std::string& rel, const struct stat& sb);

  void emit(const Share& s, std::string_view rel, WatchEvent::Kind k, bool from_scan, bool dir);
  void flush();
};

// ---- setup ---------------------------------------------------------------

Status Watcher::Impl::init() {
  fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return errno_error("inotify_init1", errno);
  ev_read.reset(event_new(base, fd, EV_READ | EV_PERSIST, on_read, this));
  ev_settle.reset(evtimer_new(base, on_settle, this));
  ev_scan.reset(evtimer_new(base, on_scan, this));
  if (!ev_read || !ev_settle || !ev_scan || event_add(ev_read.get(), nullptr) != 0)
    return make_error(Errc::internal, "watcher: cannot set up libevent events");
  return {};
}

const std::string& Watcher::Impl::path_of(const Share& s, std::string_view rel) {
  path.assign(s.root);
  if (!rel.empty()) {
    path.push_back('/');
    path.append(rel);
  }
  return path;
}

// Returns 0 or an errno value; EEXIST means another share owns the directory.
int Watcher::Impl::add_watch(Share& s, const std::string& rel) {
  uint32_t mask = kDirMask | (rel.empty() ? 0 : IN_DONT_FOLLOW);
  int wd = inotify_add_watch(fd, path_of(s, rel).c_str(), mask);
  if (wd < 0) return errno;
  auto [it, inserted] = wds.try_emplace(wd, WatchDir{&s, rel});
  if (!inserted) {
    WatchDir& w = it->second;
    if (w.share != &s) return EEXIST;
    if (w.rel != rel) {  // moved within the share while we were not looking
      auto old = s.dirs.find(w.rel);
      if (old != s.dirs.end() && old->second == wd) s.dirs.erase(old);
      w.rel = rel;
    }
  }
  s.dirs[rel] = wd;
  return 0;
}

bool Watcher::Impl::warn_once(Share& s, std::string_view rel, const char* what,
                              const char* detail) {
  if (!s.warned.emplace(rel).second) return false;
  LOG_WARN("watcher: share %s: %s \"%s\": %s", log_escape(s.name).c_str(), what,
           log_escape(rel.empty() ? "." : rel).c_str(), detail);
  return true;
}

void Watcher::Impl::watch_failed(Share& s, const std::string& rel, int err) {
  if (vanished(err)) return;
  const char* detail = err == EEXIST   ? "already watched by another share"
                       : err == ENOSPC ? "inotify watch limit reached (fs.inotify.max_user_watches)"
                                       : std::strerror(err);
  if (warn_once(s, rel, "cannot watch directory", detail)) st.errors++;
}

void Watcher::Impl::skip_special(Share& s, std::string_view rel, bool link) {
  if (warn_once(s, rel, link ? "skipping symbolic link" : "skipping special file",
                "only regular files are shared"))
    st.skipped++;
}

// ---- forgetting ------------------------------------------------------------

void Watcher::Impl::forget_wd(int wd) {
  auto it = wds.find(wd);
  if (it == wds.end()) return;
  Share& s = *it->second.share;
  auto d = s.dirs.find(it->second.rel);
  if (d != s.dirs.end() && d->second == wd) s.dirs.erase(d);
  wds.erase(it);
}

std::map<std::string, Pending, std::less<>>::iterator Watcher::Impl::drop(
    Share& s, std::map<std::string, Pending, std::less<>>::iterator it) {
  due.erase(it->second.due);
  return s.files.erase(it);
}

// Drops watches, settling files and warnings at `rel` and beneath ("" = all).
void Watcher::Impl::forget_subtree(Share& s, const std::string& rel) {
  std::string pre = rel.empty() ? std::string() : rel + "/";
  auto unwatch = [&](std::map<std::string, int>::iterator it) {
    auto w = wds.find(it->second);
    if (w != wds.end() && w->second.share == &s && w->second.rel == it->first) {
      inotify_rm_watch(fd, it->second);  // IN_IGNORED for it is dropped later
      wds.erase(w);
    }
    return s.dirs.erase(it);
  };
  if (auto it = s.dirs.find(rel); it != s.dirs.end()) unwatch(it);
  for (auto it = s.dirs.lower_bound(pre); it != s.dirs.end() && under(it->first, pre);)
    it = unwatch(it);
  for (auto it = s.files.lower_bound(pre); it != s.files.end() && under(it->first, pre);)
    it = drop(s, it);
  for (auto it = s.warned.lower_bound(pre); it != s.warned.end() && under(*it, pre);)
    it = s.warned.erase(it);
}

// ---- settling ----------------------------------------------------------------

int64_t Watcher::Impl::quiet_ms(const Share& s) const {
  return std::max<int64_t>(kOpenQuietMinMs, int64_t{s.settle_ms} * 2);
}

// How much longer a file that arrived whole must stay unchanged: settle_ms
// counted from its mtime, so one whose last change is already settle_ms old
// is ready at once. An mtime in the future counts as now.
static int64_t settle_left_ms(const Share& s, const struct stat& sb) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  int64_t age_ms = std::max<int64_t>(0, (wall_ns - mtime_ns_of(sb)) / 1000000);
  return std::max<int64_t>(0, int64_t{s.settle_ms} - age_ms);
}

Pending& Watcher::Impl::track(Share& s, std::string_view rel, int64_t at) {
  auto it = s.files.find(rel);
  if (it != s.files.end()) {
    set_deadline(it->second, at);
    return it->second;
  }
  it = s.files.emplace(std::string(rel), Pending{}).first;
  Pending& p = it->second;
  p.share = &s;
  p.rel = &it->first;
  p.deadline = at;
  p.due = due.insert(Due{at, &p}).first;
  return p;
}

void Watcher::Impl::set_deadline(Pending& p, int64_t at) {
  p.deadline = at;
  if (at < p.due->at) requeue(p, at);
}

void Watcher::Impl::requeue(Pending& p, int64_t at) {
  auto node = due.extract(p.due);  // reuses the node: no allocation
  node.value().at = at;
  p.due = due.insert(std::move(node)).position;
}

void Watcher::Impl::arm_timer() {
  if (due.empty()) {
    if (armed_at >= 0) evtimer_del(ev_settle.get());
    armed_at = -1;
    return;
  }
  int64_t at = due.begin()->at;
  if (at == armed_at) return;
  // +1 ms: libevent measures from its cached loop time, which lags ours.
  int64_t delay = std::max<int64_t>(0, at - now_ms() + 1);
  timeval tv{static_cast<time_t>(delay / 1000), static_cast<suseconds_t>(delay % 1000 * 1000)};
  evtimer_add(ev_settle.get(), &tv);
  armed_at = at;
}

void Watcher::Impl::on_settle(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->armed_at = -1;
  int64_t now = now_ms();
  for (size_t n = 0; n < kSettleSliceFiles && !self->due.empty(); ++n) {
    Pending& p = *self->due.begin()->p;
    if (self->due.begin()->at > now) break;
    if (p.deadline > now)
      self->requeue(p, p.deadline);
    else
      self->settle_check(p, now);
  }
  self->arm_timer();
  self->flush();
}

void Watcher::Impl::settle_check(Pending& p, int64_t now) {
  Share& s = *p.share;
  auto it = s.files.find(*p.rel);
  struct stat sb{};
  if (lstat(path_of(s, *p.rel).c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    drop(s, it);  // gone or replaced: its own events (or the next scan) report it
    return;
  }
  if (p.closed && (sb.st_size != p.size || mtime_ns_of(sb) != p.mtime)) {
    p.size = sb.st_size;
    p.mtime = mtime_ns_of(sb);
    p.deadline = now + s.settle_ms;
    requeue(p, p.deadline);
    return;
  }
  if (!p.closed)
    LOG_DEBUG("watcher: %s modified but never closed; reporting after quiet period",
              log_escape(*p.rel).c_str());
  emit(s, *p.rel, WatchEvent::Kind::ready, p.from_scan, false);
  drop(s, it);
}

// ---- inotify events ----------------------------------------------------------

void Watcher::Impl::on_read(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    ssize_t n = read(self->fd, self->buf, sizeof self->buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN) LOG_ERROR("watcher: read inotify: %s", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    size_t len = static_cast<size_t>(n);
    inotify_event ev{};
    for (size_t off = 0; off + sizeof ev <= len; off += sizeof ev + ev.len) {
      std::memcpy(&ev, self->buf + off, sizeof ev);
      if (ev.len > len - off - sizeof ev) break;
      const char* name = self->buf + off + sizeof ev;
      self->handle(ev.wd, ev.mask, std::string_view(name, strnlen(name, ev.len)));
    }
  }
  self->arm_timer();
  self->flush();
}

void Watcher::Impl::handle(int wd, uint32_t mask, std::string_view name) {
  if (mask & IN_Q_OVERFLOW) {
    st.overflows++;
    LOG_WARN("watcher: inotify queue overflowed; rescanning all shares");
    for (auto& kv : shares) add_scan(*kv.second, "", false);
    schedule_scan();
    return;
  }
  auto it = wds.find(wd);
  if (it == wds.end()) return;  // removed by us; its last events are stale
  Share& s = *it->second.share;
  if (mask & IN_IGNORED) return forget_wd(wd);
  if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
    if (it->second.rel.empty()) root_gone(s, mask);
    return;
  }
  if (name.empty() || name.substr(0, kOwnPrefix.size()) == kOwnPrefix) return;
  scratch.assign(it->second.rel);
  if (!scratch.empty()) scratch.push_back('/');
  scratch.append(name);
  if (mask & IN_ISDIR)
    dir_event(s, mask);
  else
    file_event(s, mask);
}

void Watcher::Impl::root_gone(Share& s, uint32_t mask) {
  LOG_WARN("watcher: share %s: root %s was %s; rescan once it is back",
           log_escape(s.name).c_str(), log_escape(s.root).c_str(),
           (mask & IN_MOVE_SELF) ? "moved" : "deleted");
  st.errors++;
  forget_subtree(s, "");
}

void Watcher::Impl::dir_event(Share& s, uint32_t mask) {
  if (mask & (IN_CREATE | IN_MOVED_TO)) {
    add_scan(s, scratch, true);
    schedule_scan();
  } else if (mask & (IN_DELETE | IN_MOVED_FROM)) {
    std::string rel = scratch;
    forget_subtree(s, rel);
    emit(s, rel, WatchEvent::Kind::removed, false, true);
  }
}

void Watcher::Impl::file_event(Share& s, uint32_t mask) {
  if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE))
    file_landed(s, mask);
  else if (mask & (IN_MODIFY | IN_ATTRIB))
    file_modified(s, mask);
  else if (mask & (IN_DELETE | IN_MOVED_FROM))
    file_gone(s);
}

// IN_CREATE, IN_CLOSE_WRITE or IN_MOVED_TO for the file at `scratch`.
void Watcher::Impl::file_landed(Share& s, uint32_t mask) {
  struct stat sb{};
  if (lstat(path_of(s, scratch).c_str(), &sb) != 0) return;  // already gone again
  if (!S_ISREG(sb.st_mode)) {
    if (auto it = s.files.find(scratch); it != s.files.end()) drop(s, it);
    return skip_special(s, scratch, S_ISLNK(sb.st_mode));
  }
  int64_t now = now_ms();
  // open(O_CREAT) will be followed by IN_CLOSE_WRITE; link() (nlink > 1) will not.
  bool created = (mask & IN_CREATE) != 0;
  bool open_for_write = created && sb.st_nlink == 1;
  // A file renamed or linked in arrives whole: it has been quiet since its
  // mtime. One just closed by its writer waits settle_ms from the close, in
  // case the writer opens it again.
  bool whole = (mask & IN_MOVED_TO) != 0 || (created && !open_for_write);
  int64_t wait = open_for_write ? quiet_ms(s) : whole ? settle_left_ms(s, sb) : s.settle_ms;
  Pending& p = track(s, scratch, now + wait);
  p.closed = !open_for_write;
  p.whole = whole;
  p.from_scan = false;
  p.size = sb.st_size;
  p.mtime = mtime_ns_of(sb);
}

void Watcher::Impl::file_modified(Share& s, uint32_t mask) {
  auto it = s.files.find(scratch);
  if (it == s.files.end()) {
    // IN_ATTRIB alone (chmod, touch -d) is not new content; a fifo being
    // written is not a file we share.
    if ((mask & IN_MODIFY) == 0 || s.warned.find(scratch) != s.warned.end()) return;
    Pending& p = track(s, scratch, now_ms() + quiet_ms(s));
    p.closed = false;
    return;
  }
  Pending& p = it->second;
  if (mask & IN_MODIFY) {  // written again: wait for the next close
    p.closed = false;
    p.whole = false;
    p.from_scan = false;
  }
  if (!p.closed) return set_deadline(p, now_ms() + quiet_ms(s));
  if (!p.whole) return set_deadline(p, now_ms() + s.settle_ms);
  // Attributes only (a link count, chmod, touch) of a file that arrived
  // whole: the content did not change, so its mtime says how long it has
  // been quiet.
  struct stat sb{};
  if (lstat(path_of(s, scratch).c_str(), &sb) != 0) return;  // gone: its own event follows
  set_deadline(p, now_ms() + settle_left_ms(s, sb));
}

void Watcher::Impl::file_gone(Share& s) {
  if (auto w = s.warned.find(scratch); w != s.warned.end()) {
    s.warned.erase(w);  // a skipped symlink or fifo: never reported, so no removed
    return;
  }
  if (auto it = s.files.find(scratch); it != s.files.end()) drop(s, it);
  emit(s, scratch, WatchEvent::Kind::removed, false, false);
}

// ---- scans -----------------------------------------------------------------

void Watcher::Impl::add_scan(Share& s, const std::string& rel, bool settle) {
  if (!settle) {
    for (const ScanJob& j : jobs)
      if (j.share == &s && !j.settle && !j.started) return;  // one queued full scan is enough
  }
  ScanJob job;
  job.share = &s;
  job.settle = settle;
  job.todo.push_back(rel);
  // New directories first: they are small and a writer may be filling them.
  if (settle)
    jobs.push_front(std::move(job));
  else
    jobs.push_back(std::move(job));
}

void Watcher::Impl::schedule_scan() {
  if (evtimer_pending(ev_scan.get(), nullptr)) return;
  timeval zero{0, 0};
  evtimer_add(ev_scan.get(), &zero);
}

void Watcher::Impl::on_scan(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  size_t budget = kScanSliceEntries;
  while (!self->jobs.empty() && self->scan_step(self->jobs.front(), budget))
    self->jobs.pop_front();
  if (!self->jobs.empty()) self->schedule_scan();
  self->arm_timer();
  self->flush();
}

// Lists directories of `job` until it is done (true) or `budget` is spent.
bool Watcher::Impl::scan_step(ScanJob& job, size_t& budget) {
  while (budget > 0) {
    if (!job.dir) {
      if (job.todo.empty()) return true;
      job.dir_rel = std::move(job.todo.back());
      job.todo.pop_back();
      job.started = true;
      --budget;
      open_scan_dir(job);
      continue;
    }
    errno = 0;
    const dirent* de = readdir(job.dir.get());
    if (de == nullptr) {
      if (errno != 0 &&
          warn_once(*job.share, job.dir_rel, "cannot read directory", std::strerror(errno)))
        st.errors++;
      job.dir.reset();
      continue;
    }
    --budget;
    scan_entry(job, *de);
  }
  return !job.dir && job.todo.empty();
}

// The watch goes on before the listing, so nothing created in between is missed.
void Watcher::Impl::open_scan_dir(ScanJob& job) {
  Share& s = *job.share;
  int err = add_watch(s, job.dir_rel);
  if (err != 0) watch_failed(s, job.dir_rel, err);
  if (vanished(err)) return;
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (job.dir_rel.empty() ? 0 : O_NOFOLLOW);
  int dfd = open(path_of(s, job.dir_rel).c_str(), flags);
  DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
  if (d == nullptr) {
    int e = errno;
    if (dfd >= 0) close(dfd);
    if (!vanished(e) && warn_once(s, job.dir_rel, "cannot read directory", std::strerror(e)))
      st.errors++;
    return;
  }
  job.dir.reset(d);
  if (err == 0) {  // readable and watched again: a later failure deserves a new warning
    if (auto w = s.warned.find(job.dir_rel); w != s.warned.end()) s.warned.erase(w);
  }
}

void Watcher::Impl::scan_entry(ScanJob& job, const dirent& de) {
  std::string_view name = de.d_name;
  if (name.substr(0, kOwnPrefix.size()) == kOwnPrefix) return drop_stale_temp(job, de);
  if (name == "." || name == "..") return;
  Share& s = *job.share;
  std::string rel = join(job.dir_rel, name);
  unsigned type = de.d_type;
  struct stat sb{};
  if (type == DT_UNKNOWN || (type == DT_REG && job.settle)) {
    if (fstatat(dirfd(job.dir.get()), de.d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) return;
    type = IFTODT(sb.st_mode);
  }
  if (type == DT_DIR)
    job.todo.push_back(std::move(rel));
  else if (type != DT_REG)
    skip_special(s, rel, type == DT_LNK);
  else if (job.settle)
    found_in_new_dir(s, rel, sb);
  else
    emit(s, rel, WatchEvent::Kind::ready, true, false);
}

// A temp file that no publish of this process will finish (left by a crash
// or a kill) is removed, so a killed transfer leaves nothing behind.
void Watcher::Impl::drop_stale_temp(ScanJob& job, const dirent& de) {
  if (job.dir_rel.empty() && std::string_view(de.d_name) == kPartsDir) {
    for (const std::string& n : remove_stale_parts(job.share->root))
      LOG_INFO("share %s: removed %s/%s, untouched for a day", job.share->name.c_str(), kPartsDir,
               log_escape(n).c_str());
    return;
  }
  if (de.d_type != DT_REG && de.d_type != DT_UNKNOWN) return;
  struct stat sb {};
  int64_t age = 0;
  if (fstatat(dirfd(job.dir.get()), de.d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
    age = static_cast<int64_t>(time(nullptr)) - static_cast<int64_t>(sb.st_mtim.tv_sec);
  if (!is_stale_temp(de.d_name, age)) return;
  if (unlinkat(dirfd(job.dir.get()), de.d_name, 0) == 0)
    LOG_INFO("share %s: removed %s, left by an earlier run", job.share->name.c_str(),
             log_escape(join(job.dir_rel, de.d_name)).c_str());
}

// A file in a directory that just appeared may still be written: let it
// settle. An entry that exists already came from an event under our watch,
// which knows better whether the file is still open.
void Watcher::Impl::found_in_new_dir(Share& s, const std::string& rel, const struct stat& sb) {
  if (s.files.find(rel) != s.files.end()) return;
  Pending& p = track(s, rel, now_ms() + settle_left_ms(s, sb));
  p.closed = true;
  p.whole = true;
  p.from_scan = true;
  p.size = sb.st_size;
  p.mtime = mtime_ns_of(sb);
}

// ---- delivery ---------------------------------------------------------------

void Watcher::Impl::emit(const Share& s, std::string_view rel, WatchEvent::Kind k,
                         bool from_scan, bool dir) {
  WatchEvent& e = out.emplace_back();
  e.kind = k;
  e.share = s.name;
  e.rel = rel;
  e.from_scan = from_scan;
  e.dir = dir;
}

// Callbacks run only here, after internal state is consistent, so they may
// call back into the watcher.
void Watcher::Impl::flush() {
  while (!out.empty()) {
    delivering.swap(out);
    for (const WatchEvent& e : delivering)
      if (shares.count(e.share) != 0) cb(e);  // skip shares removed by an earlier callback
    delivering.clear();
  }
}

// ---- public API ----------------------------------------------------------------

Result<std::unique_ptr<Watcher>> Watcher::create(event_base* base, Callback cb) {
  if (base == nullptr || !cb) return make_error(Errc::invalid, "watcher: no event base or callback");
  auto impl = std::make_unique<Impl>(base, std::move(cb));
  if (Status s = impl->init(); !s) return s.error();
  return std::unique_ptr<Watcher>(new Watcher(std::move(impl)));
}

Watcher::Watcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Watcher::~Watcher() = default;

Status Watcher::add_share(const std::string& share, const std::string& root, uint32_t settle_ms) {
  Impl& m = *impl_;
  if (share.empty()) return make_error(Errc::invalid, "watcher: empty share name");
  if (m.shares.count(share) != 0)
    return make_error(Errc::invalid, "watcher: share " + share + " is already watched");
  struct stat sb{};
  if (stat(root.c_str(), &sb) != 0) {
    int e = errno;
    Error err = errno_error("share " + share + ": " + root, e);
    if (e == ENOENT) err.code = Errc::not_found;
    return err;
  }
  if (!S_ISDIR(sb.st_mode))
    return make_error(Errc::invalid, "share " + share + ": " + root + " is not a directory");
  auto s = std::make_unique<Share>();
  s->name = share;
  s->root = root;
  s->settle_ms = settle_ms;
  // Watch the root now so changes made before the first scan slice are seen.
  if (int e = m.add_watch(*s, ""); e != 0) {
    if (e == EEXIST)
      return make_error(Errc::invalid, "share " + share + ": " + root +
                                           " is already watched by another share");
    return errno_error("share " + share + ": watch " + root, e);
  }
  Share& ref = *s;
  m.shares.emplace(share, std::move(s));
  m.add_scan(ref, "", false);
  m.schedule_scan();
  return {};
}

void Watcher::remove_share(const std::string& share) {
  Impl& m = *impl_;
  auto it = m.shares.find(share);
  if (it == m.shares.end()) return;
  Share* s = it->second.get();
  m.forget_subtree(*s, "");
  m.jobs.erase(std::remove_if(m.jobs.begin(), m.jobs.end(),
                              [s](const ScanJob& j) { return j.share == s; }),
               m.jobs.end());
  m.shares.erase(it);
  m.arm_timer();
}

void Watcher::rescan(const std::string& share) {
  Impl& m = *impl_;
  for (auto& kv : m.shares)
    if (share.empty() || kv.first == share) m.add_scan(*kv.second, "", false);
  m.schedule_scan();
}

size_t Watcher::pending() const {
  const Impl& m = *impl_;
  size_t n = m.jobs.size();
  for (const auto& kv : m.shares) n += kv.second->files.size();
  int queued = 0;  // events the kernel holds that on_read has not seen yet
  if (ioctl(m.fd, FIONREAD, &queued) == 0 && queued > 0) n++;
  return n;
}

WatcherStats Watcher::stats() const {
  WatcherStats s = impl_->st;
  s.watches = impl_->wds.size();
  return s;
}

}  // namespace shoal

// Recursive inotify watcher for share folders, driven by the libevent loop.
// Reports a file as ready once it was closed after writing (or moved in, or
// found by a scan) and its size and mtime stayed the same for settle_ms.
// Ignores shoal's own temporaries (names starting ".shoal-"), skips symlinks
// and special files (one warning each).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "result.h"

struct event_base;

namespace shoal {

struct WatchEvent {
  enum class Kind { ready, removed };
  Kind kind = Kind::ready;
  std::string share;   // share name given to add_share
  std::string rel;     // path relative to the share root
  bool from_scan = false;  // found by a (re)scan rather than an inotify event
};

struct WatcherStats {
  uint64_t watches = 0;     // directories watched
  uint64_t overflows = 0;   // IN_Q_OVERFLOW seen (each triggers a rescan)
  uint64_t skipped = 0;     // symlinks / special files skipped
  uint64_t errors = 0;      // directories that could not be watched or read
};

class Watcher {
 public:
  using Callback = std::function<void(const WatchEvent&)>;
  // `base` must outlive the watcher. Callbacks run on the loop thread.
  static Result<std::unique_ptr<Watcher>> create(event_base* base, Callback cb);
  ~Watcher();

  // Watches `root` recursively (and directories created later; each new
  // directory is scanned right after its watch is added) and schedules a full
  // scan that reports every regular file as ready (from_scan = true).
  // A missing root is an error (the caller shows it in status and may retry).
  Status add_share(const std::string& share, const std::string& root, uint32_t settle_ms);
  void remove_share(const std::string& share);
  // Full rescan of one share (or all when empty): reports every regular file.
  void rescan(const std::string& share);
  // Files waiting out their settle time, plus scans not yet finished.
  size_t pending() const;
  WatcherStats stats() const;

  struct Impl;

 private:
  explicit Watcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal

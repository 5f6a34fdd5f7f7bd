// Recursive inotify watcher for share folders, driven by the libevent loop.
// Reports a file as ready once it was closed after writing (or moved in, or
// found in a newly created directory) and its size and mtime stayed the same
// for settle_ms; a file modified but never closed is reported once it was
// quiet for max(30 s, 2 * settle_ms). Full scans report every file at once.
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
  // removed only: `rel` was a directory that was deleted or moved away;
  // everything the caller knew beneath `rel` is gone.
  bool dir = false;
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
  // `base` must outlive the watcher. Callbacks run on the loop thread; they
  // may call add_share/remove_share/rescan but must not destroy the watcher.
  static Result<std::unique_ptr<Watcher>> create(event_base* base, Callback cb);
  ~Watcher();

  // Watches `root` recursively (and directories created later; each new
  // directory is scanned right after its watch is added) and schedules a full
  // scan that reports every regular file as ready (from_scan = true).
  // A missing root is an error (the caller shows it in status and may retry).
  Status add_share(const std::string& share, const std::string& root, uint32_t settle_ms);
  // Drops the share's watches, settling files and scans; no more events for it.
  void remove_share(const std::string& share);
  // Full rescan of one share (or all when empty): reports every regular file
  // and re-adds missing watches.
  void rescan(const std::string& share);
  // Files waiting out their settle time, plus scans not yet finished, plus one
  // while inotify events are queued but not yet read.
  size_t pending() const;
  WatcherStats stats() const;

  struct Impl;

 private:
  explicit Watcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal

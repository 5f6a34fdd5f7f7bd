// CPU priority of bulk work against the network loop.
//
// A file ingest (reading, cutting and hashing a whole file) runs beside the
// loop that sends the chunks it has already cut (PROTOCOL.md 8.7). On a box
// with few cores the two compete, and the wire then idles while the ingest,
// which is far ahead of it, hashes. Bulk work therefore runs at a lower
// priority (a higher nice value) than the loop.
#pragma once

namespace shoal {

constexpr int kBulkNice = 10;  // added to the thread's nice value for bulk work

// Lowers the calling thread's priority by kBulkNice while it lives. With
// `restore`, the old priority comes back on destruction, and the priority is
// lowered only if that will be allowed (may_return_to_nice); a thread that
// ends with the work passes restore = false. A refused syscall (a seccomp
// filter, say) leaves the priority as it was.
class BulkPriority {
 public:
  explicit BulkPriority(bool restore = true);
  ~BulkPriority();
  BulkPriority(const BulkPriority&) = delete;
  BulkPriority& operator=(const BulkPriority&) = delete;
  bool lowered() const { return lowered_; }

 private:
  int base_ = 0;
  bool restore_ = true;
  bool lowered_ = false;
};

// The calling thread's nice value.
int thread_nice();

// Whether the calling thread could set its nice value back to `nice` after
// raising it: CAP_SYS_NICE, or an RLIMIT_NICE that reaches `nice` (and no
// restore has failed before).
bool may_return_to_nice(int nice);

}  // namespace shoal

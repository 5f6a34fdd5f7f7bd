// A set of disjoint half-open byte ranges [begin, end) over uint32 offsets.
// Used for what a receiver has of an object and what a sender still owes.
// Small: ranges are merged on insert; a hostile sequence of inserts can at
// most produce one range per distinct insert, and callers bound those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace shoal {

class RangeSet {
 public:
  // Adds [b, e); merges with neighbours. Empty ranges are ignored.
  void add(uint32_t b, uint32_t e);
  // Removes [b, e) from the set.
  void remove(uint32_t b, uint32_t e);
  // True when [b, e) is entirely inside the set (true for an empty range).
  bool covers(uint32_t b, uint32_t e) const;
  // Total bytes in the set.
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return r_.empty(); }
  size_t count() const { return r_.size(); }
  void clear() { r_.clear(); bytes_ = 0; }
  // The gaps of this set inside [b, e), in order, at most `max` of them.
  std::vector<std::pair<uint32_t, uint32_t>> gaps(uint32_t b, uint32_t e, size_t max) const;
  // The first range (lowest begin); set must not be empty.
  std::pair<uint32_t, uint32_t> first() const { return *r_.begin(); }
  const std::map<uint32_t, uint32_t>& ranges() const { return r_; }

 private:
  std::map<uint32_t, uint32_t> r_;  // begin -> end
  uint64_t bytes_ = 0;
};

}  // namespace shoal

#include "rangeset.h"

namespace shoal {

void RangeSet::add(uint32_t b, uint32_t e) {
  if (b >= e) return;
  auto it = r_.upper_bound(b);
  if (it != r_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= b) {  // overlaps or touches the previous range
      if (prev->second >= e) return;
      b = prev->first;
      bytes_ -= prev->second - prev->first;
      it = r_.erase(prev);
    }
  }
  while (it != r_.end() && it->first <= e) {
    if (it->second > e) e = it->second;
    bytes_ -= it->second - it->first;
    it = r_.erase(it);
  }
  r_.emplace(b, e);
  bytes_ += e - b;
}

void RangeSet::remove(uint32_t b, uint32_t e) {
  if (b >= e) return;
  auto it = r_.upper_bound(b);
  if (it != r_.begin()) --it;
  while (it != r_.end() && it->first < e) {
    uint32_t rb = it->first, re = it->second;
    if (re <= b) {
      ++it;
      continue;
    }
    bytes_ -= re - rb;
    it = r_.erase(it);
    if (rb < b) {
      r_.emplace(rb, b);
      bytes_ += b - rb;
    }
    if (re > e) {
      r_.emplace(e, re);
      bytes_ += re - e;
      break;
    }
  }
}

bool RangeSet::covers(uint32_t b, uint32_t e) const {
  if (b >= e) return true;
  auto it = r_.upper_bound(b);
  if (it == r_.begin()) return false;
  --it;
  return it->first <= b && it->second >= e;
}

std::vector<std::pair<uint32_t, uint32_t>> RangeSet::gaps(uint32_t b, uint32_t e, size_t max) const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  uint32_t cur = b;
  auto it = r_.upper_bound(b);
  if (it != r_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > cur) cur = prev->second;
  }
  for (; cur < e && out.size() < max; ++it) {
    uint32_t next = (it == r_.end() || it->first > e) ? e : it->first;
    if (next > cur) out.emplace_back(cur, next);
    if (it == r_.end()) break;
    if (it->second > cur) cur = it->second;
  }
  return out;
}

}  // namespace shoal

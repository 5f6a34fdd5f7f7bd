#include "pacer.h"

#include <algorithm>
#include <cmath>

namespace shoal {

namespace {

constexpr int64_t kUnitsPerByte = 8LL * 1000000000LL;  // 1e-9 bit units

uint64_t since(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

}  // namespace

// ---- TokenBucket ----

TokenBucket::TokenBucket(uint64_t rate_bps, uint64_t burst_bytes)
    : rate_(std::max<uint64_t>(rate_bps, 1)),
      burst_(std::clamp<uint64_t>(burst_bytes, 2 * kMtu, kMaxBytes)),
      cap_(static_cast<int64_t>(burst_) * kUnitsPerByte),
      tokens_(cap_) {}

int64_t TokenBucket::need(size_t bytes) const {
  return static_cast<int64_t>(std::min<uint64_t>(bytes, kMaxBytes)) * kUnitsPerByte;
}

void TokenBucket::refill(uint64_t now_ns) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
    return;
  }
  const uint64_t dt = since(now_ns, last_ns_);
  if (dt == 0) return;
  last_ns_ = now_ns;
  const auto room = static_cast<uint64_t>(cap_ - tokens_);
  // Compare before multiplying: dt * rate may not fit in 64 bits.
  if (dt > room / rate_) {
    tokens_ = cap_;
  } else {
    tokens_ += static_cast<int64_t>(dt * rate_);
  }
}

bool TokenBucket::take(size_t bytes, uint64_t now_ns) {
  refill(now_ns);
  const int64_t n = need(bytes);
  if (tokens_ >= n || (n > cap_ && tokens_ == cap_)) {
    tokens_ -= n;
    return true;
  }
  return false;
}

uint64_t TokenBucket::wait_ns(size_t bytes, uint64_t now_ns) {
  refill(now_ns);
  const int64_t target = std::min(need(bytes), cap_);
  if (tokens_ >= target) return 0;
  const auto deficit = static_cast<uint64_t>(target - tokens_);
  return (deficit + rate_ - 1) / rate_;
}

void TokenBucket::set_rate(uint64_t bps) { rate_ = std::max<uint64_t>(bps, 1); }

// ---- RateController ----

namespace {

RateConfig sanitize(RateConfig c) {
  c.min_rate_bps = std::max<uint64_t>(c.min_rate_bps, 1);
  c.max_rate_bps = std::max(c.max_rate_bps, c.min_rate_bps);
  if (!(c.loss_threshold >= 0.0)) c.loss_threshold = 0.0;
  if (!(c.loss_ceiling > 0.0 && c.loss_ceiling <= 1.0)) c.loss_ceiling = 1.0;
  if (!(c.decrease_factor > 0.0 && c.decrease_factor < 1.0)) c.decrease_factor = 0.85;
  if (!(c.increase_fraction > 0.0 && c.increase_fraction <= 1.0)) c.increase_fraction = 0.05;
  if (!(c.increase_ratio > 0.0 && c.increase_ratio <= 10.0)) c.increase_ratio = 0.25;
  c.interval_ns = std::max<uint64_t>(c.interval_ns, 1);
  c.report_ttl_ns = std::max(c.report_ttl_ns, c.interval_ns);
  c.baseline_rise_ns = std::max<uint64_t>(c.baseline_rise_ns, 1);
  c.baseline_fall_ns = std::max<uint64_t>(c.baseline_fall_ns, 1);
  c.max_receivers = std::max<size_t>(c.max_receivers, 1);
  c.min_sample = std::max<uint64_t>(c.min_sample, 1);
  if (!(c.queue_high >= 0.05 && c.queue_high <= 1.0)) c.queue_high = 0.5;
  return c;
}

}  // namespace

RateController::RateController(const RateConfig& cfg)
    : cfg_(sanitize(cfg)), rate_(static_cast<double>(cfg_.max_rate_bps)) {}

void RateController::on_report(uint64_t receiver_id, double loss_fraction, uint64_t now_ns,
                               uint64_t packets, double queue_fraction) {
  if (!(loss_fraction >= 0.0)) return;
  const double loss = std::min(loss_fraction, 1.0);
  start(now_ns);
  expire(now_ns);
  auto it = rx_.find(receiver_id);
  if (it == rx_.end()) {
    if (rx_.size() >= cfg_.max_receivers) evict_oldest();
    it = rx_.emplace(receiver_id, Receiver{}).first;
  }
  Receiver& r = it->second;
  r.at_ns = std::max(r.at_ns, now_ns);
  // A receive queue this full is a receiver that cannot keep up: congestion
  // whatever its loss says, and before its socket overflows.
  r.queue_full = queue_fraction >= cfg_.queue_high;
  bool judged = true;
  if (packets == 0) {
    judge(r, loss, 0, now_ns);
  } else {
    // At low rates one report covers a handful of packets, and one loss in
    // five reads as 20%: pool until the fraction means something.
    r.pool_lost += loss * static_cast<double>(packets);
    r.pool_packets += packets;
    judged = r.pool_packets >= cfg_.min_sample;
    if (judged) {
      judge(r, r.pool_lost / static_cast<double>(r.pool_packets), r.pool_packets, now_ns);
      r.pool_lost = 0;
      r.pool_packets = 0;
    }
  }
  const bool by_loss = judged && r.loss_congested;
  if (r.queue_full) counts_.queue_reports++;
  if (by_loss) counts_.loss_reports++;
  if (r.queue_full || by_loss) pending_decrease_ = true;
  maybe_decrease(now_ns);
}

// A sample is congestion when it is at the ceiling, or above baseline +
// threshold by more than two standard deviations of its sampling noise.
void RateController::judge(Receiver& r, double loss, uint64_t packets, uint64_t now_ns) {
  const double p0 = std::min(1.0, r.baseline + cfg_.loss_threshold);
  const double noise =
      packets == 0 ? 0.0 : 2.0 * std::sqrt(p0 * (1.0 - p0) / static_cast<double>(packets));
  r.loss_congested = loss >= cfg_.loss_ceiling || loss > p0 + noise;
  // The baseline moves after judging: a sample must not excuse itself.
  if (r.judged) {
    const double tau = static_cast<double>(loss > r.baseline ? cfg_.baseline_rise_ns
                                                             : cfg_.baseline_fall_ns);
    const double dt = static_cast<double>(since(now_ns, r.judged_ns));
    r.baseline += (1.0 - std::exp(-dt / tau)) * (loss - r.baseline);
  }
  r.judged = true;
  r.judged_ns = std::max(r.judged_ns, now_ns);
  r.loss = loss;
}

void RateController::tick(uint64_t now_ns) {
  start(now_ns);
  expire(now_ns);
  maybe_decrease(now_ns);
  maybe_increase(now_ns);
}

void RateController::forget(uint64_t receiver_id) { rx_.erase(receiver_id); }

void RateController::set_limits(uint64_t min_rate_bps, uint64_t max_rate_bps) {
  RateConfig c = cfg_;
  c.min_rate_bps = min_rate_bps;
  c.max_rate_bps = max_rate_bps;
  cfg_ = sanitize(c);
  rate_ = std::clamp(rate_, static_cast<double>(cfg_.min_rate_bps),
                     static_cast<double>(cfg_.max_rate_bps));
}

void RateController::start(uint64_t now_ns) {
  if (started_) return;
  started_ = true;
  last_increase_ns_ = now_ns;
}

void RateController::expire(uint64_t now_ns) {
  for (auto it = rx_.begin(); it != rx_.end();) {
    if (since(now_ns, it->second.at_ns) > cfg_.report_ttl_ns) {
      it = rx_.erase(it);
    } else {
      ++it;
    }
  }
}

void RateController::evict_oldest() {
  auto oldest = std::min_element(rx_.begin(), rx_.end(), [](const auto& a, const auto& b) {
    return a.second.at_ns < b.second.at_ns;
  });
  if (oldest != rx_.end()) rx_.erase(oldest);
}

bool RateController::any_congested() const {
  return std::any_of(rx_.begin(), rx_.end(), [](const auto& e) { return e.second.congested(); });
}

void RateController::maybe_decrease(uint64_t now_ns) {
  if (!pending_decrease_) return;
  if (decreased_ && since(now_ns, last_decrease_ns_) < cfg_.interval_ns) return;
  const double floor = static_cast<double>(cfg_.min_rate_bps);
  rate_ = std::max(floor, rate_ * cfg_.decrease_factor);
  counts_.decreases++;
  pending_decrease_ = false;
  decreased_ = true;
  last_decrease_ns_ = now_ns;
  last_increase_ns_ = now_ns;
}

void RateController::maybe_increase(uint64_t now_ns) {
  const double max = static_cast<double>(cfg_.max_rate_bps);
  // The increase clock restarts while blocked, so a long block is not paid
  // back with a jump when it ends.
  if (any_congested() || pending_decrease_ || rate_ >= max) {
    last_increase_ns_ = now_ns;
    return;
  }
  const uint64_t steps = since(now_ns, last_increase_ns_) / cfg_.interval_ns;
  if (steps == 0) return;
  for (uint64_t i = 0; i < steps && rate_ < max; ++i) {
    rate_ = std::min(max, rate_ + std::min(cfg_.increase_fraction * max, cfg_.increase_ratio * rate_));
  }
  last_increase_ns_ += steps * cfg_.interval_ns;
}

}  // namespace shoal

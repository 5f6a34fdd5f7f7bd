// pacer: how fast the replication sender may go. Pure logic: every call takes
// the current time (CLOCK_MONOTONIC nanoseconds) so tests run on virtual time.
//
// TokenBucket turns a rate into "may I send these bytes now / when may I".
// RateController picks that rate for a multicast group from receivers' loss
// reports, AIMD-style, the slowest (lossiest) receiver limiting all, as in
// TFMCC (RFC 4654) but without its equation:
//
//   * Start at max_rate: a LAN is fast, and a tool that starts slow is what
//     users complain about.
//   * Each receiver's latest loss fraction is kept with its arrival time;
//     reports older than report_ttl expire, so a receiver that left stops
//     holding the rate down.
//   * Small samples lie: at 5 Mbit/s a 20 ms report covers 9 packets, and
//     one loss reads as 11%. Reports that say how many packets they cover
//     are pooled per receiver until min_sample packets, and a sample only
//     counts as congestion when it exceeds the limit by more than two
//     standard deviations of binomial noise.
//   * Congestion vs. random loss: a receiver keeps a baseline, the loss it
//     shows anyway. It rises slowly (baseline_rise_ns) and falls quickly
//     (baseline_fall_ns), so steady loss that does not go away when we slow
//     down (a bad cable, a lossy bridge, netem) is learned and then left to
//     NACK repair, while loss that appears when the rate rises (the sawtooth
//     of a full queue) stands out above it. A sample is congestion when
//     loss > baseline + loss_threshold (+ noise), or loss >= loss_ceiling
//     whatever the baseline: tolerance for "random" loss is bounded, and a
//     receiver losing 10% pins the group to min_rate until it recovers or
//     leaves (its reports expire).
//   * A receiver short of CPU shows no loss until its socket overflows, and
//     then a loss the baseline may learn. Its reports say how full its
//     receive queue got; queue_high (half) or more is congestion at once,
//     whatever its loss, for as long as its latest report says so.
//   * Multiplicative decrease: on a congested sample judged after the last
//     decrease, rate *= decrease_factor, at most once per interval_ns (the
//     time for the lower rate to show in the reports).
//   * Additive increase: every interval_ns without a congested latest sample
//     from any live receiver, rate += increase_fraction * max_rate, capped
//     at increase_ratio * rate so a slow bottleneck (50 Mbit/s under a
//     1 Gbit/s max) is approached, not overshot by a whole step. From the
//     floor back to 1 Gbit/s takes about 4 s.
//   * Always within [min_rate, max_rate].
//
// Simulated (reports every 20 ms, binomial loss, 3 receivers, max 1 Gbit/s):
// 2% random loss stays at max; 4% random dips for ~3 s then returns to max;
// a 300 Mbit/s bottleneck settles at ~285 Mbit/s, a 50 Mbit/s one at ~49.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace shoal {

// Token bucket in exact integer arithmetic (credit counted in 1e-9 bit units,
// so rate_bps is also the credit earned per nanosecond: no rounding drift).
// Guarantee: bytes taken in any window of W ns <= burst + rate * W / 8e9; the
// long-run average equals the rate. Starts full.
class TokenBucket {
 public:
  static constexpr uint64_t kMtu = 1500;
  static constexpr uint64_t kDefaultBurst = 64 * 1024;  // one GSO batch
  static constexpr uint64_t kMaxBytes = 256ULL << 20;   // larger burst/requests are clamped

  // rate_bps 0 is treated as 1; burst is raised to at least 2 MTU.
  explicit TokenBucket(uint64_t rate_bps, uint64_t burst_bytes = kDefaultBurst);

  // Takes `bytes` of credit if available and returns true; else takes nothing.
  // A request larger than the burst succeeds on a full bucket and leaves it in
  // debt, so it cannot starve and still counts against the rate.
  bool take(size_t bytes, uint64_t now_ns);
  // Nanoseconds from now_ns until take(bytes) will succeed; 0 if it would now.
  uint64_t wait_ns(size_t bytes, uint64_t now_ns);
  // New rate for credit earned from now on (time since the last call is
  // credited at the new rate; the burst bounds that either way).
  void set_rate(uint64_t bps);

  uint64_t rate_bps() const { return rate_; }
  uint64_t burst_bytes() const { return burst_; }

 private:
  void refill(uint64_t now_ns);
  int64_t need(size_t bytes) const;

  uint64_t rate_;
  uint64_t burst_;
  int64_t cap_;     // burst in credit units
  int64_t tokens_;  // <= cap_; negative after an oversized take
  uint64_t last_ns_ = 0;
  bool started_ = false;
};

struct RateConfig {
  uint64_t max_rate_bps = 1000000000ULL;  // config [net] max_rate
  uint64_t min_rate_bps = 1000000ULL;     // floor: a lossy receiver never stalls the group
  double loss_threshold = 0.02;           // loss above baseline that means congestion
  double loss_ceiling = 0.08;             // loss that always means congestion
  double decrease_factor = 0.85;
  double increase_fraction = 0.05;        // of max_rate per interval...
  double increase_ratio = 0.25;           // ...but at most this fraction of the current rate
  uint64_t interval_ns = 100000000ULL;    // 100 ms between rate changes
  uint64_t report_ttl_ns = 1000000000ULL; // reports expire after 1 s
  uint64_t baseline_rise_ns = 3000000000ULL;  // time constant, baseline going up
  uint64_t baseline_fall_ns = 300000000ULL;   // time constant, baseline going down
  size_t max_receivers = 4096;            // oldest report dropped beyond this
  uint64_t min_sample = 200;              // packets pooled before a loss is judged
  double queue_high = 0.5;                // a receive queue this full means congestion
};

// AIMD multicast rate from receivers' loss reports (algorithm: top of file).
class RateController {
 public:
  // Out-of-range config values are clamped to sane ones (min <= max, etc.).
  explicit RateController(const RateConfig& cfg = RateConfig{});

  // Records a receiver's loss fraction (0..1; NaN or negative ignored, > 1
  // clamped) measured up to now_ns over `packets` datagrams (0: unknown, taken
  // as exact), and may decrease the rate at once. Reports over fewer than
  // min_sample packets are pooled until they reach it.
  // queue_fraction: how full the receiver's socket queue got (0..1; 0 when
  // it does not say); queue_high or more is congestion at once.
  void on_report(uint64_t receiver_id, double loss_fraction, uint64_t now_ns,
                 uint64_t packets = 0, double queue_fraction = 0.0);
  // Expires stale reports and applies pending decreases and due increases.
  // Call at least every interval_ns (the daemon's pacer timer does).
  void tick(uint64_t now_ns);
  // Drops a receiver that said goodbye, without waiting for expiry.
  void forget(uint64_t receiver_id);
  // New bounds (config reload of max_rate): clamped like the constructor's;
  // the current rate is pulled into them at once, and climbs toward a raised
  // ceiling by the usual additive steps.
  void set_limits(uint64_t min_rate_bps, uint64_t max_rate_bps);

  uint64_t rate_bps() const { return static_cast<uint64_t>(rate_); }
  // Why the rate went down: decreases applied, and the reports that asked
  // for one by loss (a judged sample above its receiver's limit) or by a
  // full receive queue (both count when a report says both).
  struct Counts {
    uint64_t decreases = 0;
    uint64_t loss_reports = 0;
    uint64_t queue_reports = 0;
  };
  const Counts& counts() const { return counts_; }
  // Receivers with a live report.
  size_t receivers() const { return rx_.size(); }
  const RateConfig& config() const { return cfg_; }

 private:
  struct Receiver {
    double loss = 0;
    double baseline = 0;
    uint64_t at_ns = 0;      // last report (liveness)
    uint64_t judged_ns = 0;  // last judged sample (baseline clock)
    bool judged = false;
    bool loss_congested = false;  // the last judged loss sample
    bool queue_full = false;      // the last report's receive queue
    bool congested() const { return loss_congested || queue_full; }
    double pool_lost = 0;    // reports too small to judge alone
    uint64_t pool_packets = 0;
  };
  void judge(Receiver& r, double loss, uint64_t packets, uint64_t now_ns);
  void start(uint64_t now_ns);
  void expire(uint64_t now_ns);
  void evict_oldest();
  void maybe_decrease(uint64_t now_ns);
  void maybe_increase(uint64_t now_ns);
  bool any_congested() const;

  RateConfig cfg_;
  double rate_;
  std::unordered_map<uint64_t, Receiver> rx_;
  uint64_t last_decrease_ns_ = 0;
  uint64_t last_increase_ns_ = 0;
  bool pending_decrease_ = false;  // a congested report arrived since the last decrease
  bool decreased_ = false;
  bool started_ = false;
  Counts counts_;
};

}  // namespace shoal

#include "pacer.h"

#include <CppUTest/TestHarness.h>

#include <algorithm>
#include <deque>
#include <random>
#include <utility>

using namespace shoal;

namespace {

constexpr uint64_t kMs = 1000000ULL;
constexpr uint64_t kSec = 1000 * kMs;
constexpr uint64_t kGbit = 1000000000ULL;
constexpr uint64_t kMbit = 1000000ULL;

// Runs `ms` milliseconds of virtual time from *now: each receiver reports
// loss_of(rate) every 10 ms, tick() every 1 ms. With `sampled`, reports carry
// the packet count of 10 ms at the current rate (1400-byte packets) and the
// loss is drawn binomially, as a real receiver would see it. Returns the mean rate.
template <typename LossFn>
double simulate(RateController& rc, uint64_t* now, uint64_t ms, int receivers, LossFn loss_of,
                bool sampled = false) {
  static std::mt19937_64 rng(12345);
  double sum = 0;
  for (uint64_t i = 0; i < ms; ++i) {
    *now += kMs;
    if (i % 10 == 0) {
      for (int r = 0; r < receivers; ++r) {
        const double p = loss_of(rc.rate_bps());
        if (!sampled) {
          rc.on_report(static_cast<uint64_t>(r), p, *now);
          continue;
        }
        const auto pkts = std::max<uint64_t>(1, rc.rate_bps() / 8 / 100 / 1400);
        std::binomial_distribution<uint64_t> lost(pkts, p);
        rc.on_report(static_cast<uint64_t>(r),
                     static_cast<double>(lost(rng)) / static_cast<double>(pkts), *now, pkts);
      }
    }
    rc.tick(*now);
    CHECK(rc.rate_bps() <= rc.config().max_rate_bps);
    CHECK(rc.rate_bps() >= rc.config().min_rate_bps);
    sum += static_cast<double>(rc.rate_bps());
  }
  return sum / static_cast<double>(ms);
}

// Loss of a receiver behind a bottleneck of `cap` bit/s: what exceeds it.
auto bottleneck(double cap) {
  return [cap](uint64_t rate) {
    const double r = static_cast<double>(rate);
    return r > cap ? 1.0 - cap / r : 0.0;
  };
}

}  // namespace

TEST_GROUP(TokenBucket){};

TEST(TokenBucket, LongRunAverageEqualsRate) {
  // Greedy sender over 10 s of virtual time: wait exactly as told, then send.
  const uint64_t rate = 100 * kMbit;
  TokenBucket b(rate);
  uint64_t now = 5 * kSec;  // arbitrary clock origin
  const uint64_t start = now;
  uint64_t bytes = 0;
  while (now - start < 10 * kSec) {
    const uint64_t w = b.wait_ns(1400, now);
    if (w > 0) {
      CHECK_FALSE(b.take(1400, now + w - 1));  // not a nanosecond early
      now += w;
    }
    CHECK_TRUE(b.take(1400, now));
    bytes += 1400;
  }
  // Expected: rate * 10 s plus the initial burst, within one packet.
  const double expect = static_cast<double>(rate) / 8.0 * 10.0 + 65536.0;
  DOUBLES_EQUAL(expect, static_cast<double>(bytes), 1400.0);
}

TEST(TokenBucket, NoWindowExceedsBurstPlusRate) {
  // Sends in 1 ms ticks as much as allowed; checks every 50 ms sliding window.
  const uint64_t rate = 200 * kMbit;
  TokenBucket b(rate, 32 * 1024);
  std::deque<std::pair<uint64_t, uint64_t>> sent;  // (time, bytes)
  uint64_t in_window = 0;
  const uint64_t window = 50 * kMs;
  const double limit = 32.0 * 1024 + static_cast<double>(rate) / 8.0 * 0.050;
  uint64_t max_seen = 0;
  for (uint64_t now = 0; now < 2 * kSec; now += kMs) {
    while (b.take(1200, now)) {
      sent.emplace_back(now, 1200);
      in_window += 1200;
    }
    while (!sent.empty() && sent.front().first + window <= now) {
      in_window -= sent.front().second;
      sent.pop_front();
    }
    max_seen = std::max(max_seen, in_window);
  }
  CHECK(static_cast<double>(max_seen) <= limit);
  CHECK(static_cast<double>(max_seen) > 0.9 * limit);  // and it really uses the rate
}

TEST(TokenBucket, BurstRespected) {
  TokenBucket b(10 * kMbit, 10000);
  uint64_t n = 0;
  while (b.take(1000, 0)) ++n;
  CHECK_EQUAL(10u, n);  // a full bucket holds exactly the burst
  // After a long idle time it holds no more than the burst.
  n = 0;
  while (b.take(1000, 100 * kSec)) ++n;
  CHECK_EQUAL(10u, n);
}

TEST(TokenBucket, BurstAtLeastTwoMtu) {
  TokenBucket b(kMbit, 100);
  CHECK_EQUAL(3000u, b.burst_bytes());
  CHECK_EQUAL(65536u, TokenBucket(kGbit).burst_bytes());
}

TEST(TokenBucket, WaitIsExact) {
  TokenBucket b(8 * kMbit, 4000);  // 1 byte per microsecond
  CHECK_EQUAL(0u, b.wait_ns(4000, 0));
  CHECK_TRUE(b.take(4000, 0));
  CHECK_EQUAL(1000000u, b.wait_ns(1000, 0));  // 1000 bytes = 1 ms
  CHECK_EQUAL(500000u, b.wait_ns(1000, 500000));
  CHECK_FALSE(b.take(1000, 999999));
  CHECK_TRUE(b.take(1000, 1000000));
  CHECK_EQUAL(0u, b.wait_ns(0, 1000000));
}

TEST(TokenBucket, OversizedRequestGoesIntoDebt) {
  TokenBucket b(8 * kMbit, 4000);
  CHECK_TRUE(b.take(10000, 0));               // full bucket: allowed once
  CHECK_EQUAL(7000000u, b.wait_ns(1000, 0));  // 6000 debt + 1000 bytes
  CHECK_FALSE(b.take(10000, 1000));
}

TEST(TokenBucket, SetRateChangesPace) {
  TokenBucket b(8 * kMbit, 3000);
  CHECK_TRUE(b.take(3000, 0));
  b.set_rate(16 * kMbit);
  CHECK_EQUAL(500000u, b.wait_ns(1000, 0));
  b.set_rate(0);  // treated as 1 bit/s, never divides by zero
  CHECK_EQUAL(1u, b.rate_bps());
  CHECK(b.wait_ns(1000, 0) > 1000 * kSec);
}

TEST(TokenBucket, ClockGoingBackDoesNotMint) {
  TokenBucket b(8 * kMbit, 3000);
  CHECK_TRUE(b.take(3000, 10 * kMs));
  CHECK_FALSE(b.take(1000, 5 * kMs));
  CHECK_FALSE(b.take(1000, 10 * kMs));
}

TEST_GROUP(RateController){};

TEST(RateController, StartsAtMax) {
  RateController rc;
  CHECK_EQUAL(kGbit, rc.rate_bps());
}

TEST(RateController, IgnoresSmallLoss) {
  RateController rc;
  uint64_t now = kSec;
  simulate(rc, &now, 5000, 3, [](uint64_t) { return 0.005; });
  CHECK_EQUAL(kGbit, rc.rate_bps());
}

TEST(RateController, BacksOffUnderSustainedLossThenRecovers) {
  RateController rc;
  uint64_t now = kSec;
  simulate(rc, &now, 1000, 2, [](uint64_t) { return 0.10; });
  // One decrease per 100 ms: about 0.85^10 of max after 1 s.
  CHECK(rc.rate_bps() < kGbit / 4);
  CHECK(rc.rate_bps() > kGbit / 10);
  simulate(rc, &now, 5000, 2, [](uint64_t) { return 0.10; });
  CHECK_EQUAL(rc.config().min_rate_bps, rc.rate_bps());  // floor, never below
  // Loss stops: x1.25 then +5% of max per 100 ms, back at max within ~4 s.
  simulate(rc, &now, 4500, 2, [](uint64_t) { return 0.0; });
  CHECK_EQUAL(kGbit, rc.rate_bps());
}

// A receiver whose socket queue is half full cannot keep up, loss or not:
// the rate goes down at once, and climbs again once the queue drains. A
// queue below the mark changes nothing.
TEST(RateController, FullReceiveQueueIsCongestion) {
  RateController rc;
  uint64_t now = kSec;
  for (int i = 0; i < 10; ++i) rc.on_report(1, 0.0, now += 20 * kMs, 500, 0.49);
  rc.tick(now);
  CHECK_EQUAL(kGbit, rc.rate_bps());
  rc.on_report(1, 0.0, now += 20 * kMs, 500, 0.5);
  CHECK_EQUAL(850000000u, rc.rate_bps());
  // Still full: no increase, one more decrease per interval at most.
  rc.on_report(1, 0.0, now += 50 * kMs, 500, 0.9);
  CHECK_EQUAL(850000000u, rc.rate_bps());
  rc.on_report(1, 0.0, now += 60 * kMs, 500, 0.9);
  CHECK_EQUAL(722500000u, rc.rate_bps());
  for (int i = 0; i < 8; ++i) rc.tick(now += 100 * kMs);
  CHECK_EQUAL(722500000u, rc.rate_bps());  // its last report still says full
  // Drained: increases resume.
  for (int i = 0; i < 40; ++i) {
    rc.on_report(1, 0.0, now += 100 * kMs, 5000, 0.05);
    rc.tick(now);
  }
  CHECK_EQUAL(kGbit, rc.rate_bps());
  // Other receivers' queues are theirs: a full one limits the group.
  rc.on_report(2, 0.0, now += 10 * kMs, 5000, 0.0);
  rc.on_report(3, 0.0, now += 10 * kMs, 5000, 1.0);
  CHECK_EQUAL(850000000u, rc.rate_bps());
  // Why: four reports of a full queue (one of 0.9 came within the interval
  // and was folded into the next decrease), three decreases, no loss.
  CHECK_EQUAL(4u, rc.counts().queue_reports);
  CHECK_EQUAL(3u, rc.counts().decreases);
  CHECK_EQUAL(0u, rc.counts().loss_reports);
}

TEST(RateController, DecreasesAtMostOncePerInterval) {
  RateController rc;
  uint64_t now = kSec;
  for (int i = 0; i < 50; ++i) rc.on_report(1, 0.5, now + static_cast<uint64_t>(i) * kMs);
  CHECK_EQUAL(850000000u, rc.rate_bps());
  rc.tick(now + 99 * kMs);
  CHECK_EQUAL(850000000u, rc.rate_bps());
  rc.tick(now + 100 * kMs);  // the reports that came after the decrease count once
  CHECK_EQUAL(722500000u, rc.rate_bps());
  rc.tick(now + 300 * kMs);  // no new report: no new decrease
  CHECK_EQUAL(722500000u, rc.rate_bps());
  CHECK_EQUAL(50u, rc.counts().loss_reports);
  CHECK_EQUAL(2u, rc.counts().decreases);
  CHECK_EQUAL(0u, rc.counts().queue_reports);
}

TEST(RateController, SlowestReceiverLimits) {
  RateController rc;
  uint64_t now = kSec;
  // Receiver 0 is fine, receiver 1 loses 20%.
  for (int i = 0; i < 100; ++i) {
    now += 10 * kMs;
    rc.on_report(0, 0.0, now);
    rc.on_report(1, 0.20, now);
    rc.tick(now);
  }
  CHECK(rc.rate_bps() < kGbit / 2);
}

TEST(RateController, StaleReportsExpire) {
  RateController rc;
  uint64_t now = kSec;
  rc.on_report(7, 0.30, now);  // one bad report, then silence from 7
  CHECK_EQUAL(850000000u, rc.rate_bps());
  // Receiver 8 keeps reporting no loss; 7's report blocks increases until it expires.
  for (int i = 0; i < 90; ++i) {
    now += 10 * kMs;
    rc.on_report(8, 0.0, now);
    rc.tick(now);
  }
  CHECK_EQUAL(850000000u, rc.rate_bps());
  CHECK_EQUAL(2u, rc.receivers());
  for (int i = 0; i < 50; ++i) {
    now += 10 * kMs;
    rc.on_report(8, 0.0, now);
    rc.tick(now);
  }
  CHECK_EQUAL(1u, rc.receivers());
  CHECK_EQUAL(kGbit, rc.rate_bps());
}

TEST(RateController, ForgetReleasesTheRate) {
  RateController rc;
  uint64_t now = kSec;
  rc.on_report(7, 0.30, now);
  rc.forget(7);
  simulate(rc, &now, 400, 0, [](uint64_t) { return 0.0; });
  CHECK_EQUAL(kGbit, rc.rate_bps());
}

TEST(RateController, CapsAtMaxAndFloorsAtMin) {
  RateConfig cfg;
  cfg.max_rate_bps = 50 * kMbit;
  cfg.min_rate_bps = 5 * kMbit;
  RateController rc(cfg);
  uint64_t now = 0;
  simulate(rc, &now, 3000, 1, [](uint64_t) { return 0.0; });
  CHECK_EQUAL(50 * kMbit, rc.rate_bps());
  simulate(rc, &now, 3000, 1, [](uint64_t) { return 1.0; });
  CHECK_EQUAL(5 * kMbit, rc.rate_bps());
  // Nonsense config is made sane: max below min becomes min.
  cfg.max_rate_bps = 1;
  CHECK_EQUAL(5 * kMbit, RateController(cfg).rate_bps());
}

TEST(RateController, GarbageLossIgnoredOrClamped) {
  RateController rc;
  rc.on_report(1, -0.5, kSec);
  rc.on_report(2, __builtin_nan(""), kSec);
  CHECK_EQUAL(0u, rc.receivers());
  CHECK_EQUAL(kGbit, rc.rate_bps());
  rc.on_report(3, 7.0, kSec);  // clamped to 1.0: congestion
  CHECK_EQUAL(850000000u, rc.rate_bps());
}

TEST(RateController, ConvergesNearBottleneck) {
  RateController rc;
  uint64_t now = kSec;
  simulate(rc, &now, 5000, 1, bottleneck(300e6), true);
  const double mean = simulate(rc, &now, 10000, 1, bottleneck(300e6), true);
  CHECK(mean > 0.8 * 300e6);
  CHECK(mean < 1.05 * 300e6);
}

TEST(RateController, SlowBottleneckNotOvershot) {
  // A +50 Mbit/s step would double a 50 Mbit/s receiver's load; the step is
  // capped at a quarter of the rate, so the rate hovers around the bottleneck.
  RateController rc;
  uint64_t now = kSec;
  simulate(rc, &now, 5000, 1, bottleneck(50e6), true);
  const double mean = simulate(rc, &now, 10000, 1, bottleneck(50e6), true);
  CHECK(mean > 0.7 * 50e6);
  CHECK(mean < 1.15 * 50e6);
}

TEST(RateController, NoisyTwoPercentLossKeepsFullSpeed) {
  // The case udpcast fails: 3 receivers, 2% random loss, noisy samples.
  RateController rc;
  uint64_t now = kSec;
  const double mean = simulate(rc, &now, 10000, 3, [](uint64_t) { return 0.02; }, true);
  CHECK(mean > 0.95 * static_cast<double>(kGbit));
}

TEST(RateController, SmallReportsArePooled) {
  RateController rc;
  uint64_t now = kSec;
  // 1 loss in a 5-packet report, then clean ones: 0.5% over 200 packets.
  rc.on_report(1, 0.2, now, 5);
  for (int i = 0; i < 39; ++i) {
    CHECK_EQUAL(kGbit, rc.rate_bps());
    now += 10 * kMs;
    rc.on_report(1, 0.0, now, 5);
    rc.tick(now);
  }
  CHECK_EQUAL(kGbit, rc.rate_bps());
  // The same loss in a report big enough to judge on its own is congestion.
  rc.on_report(2, 0.2, now, 500);
  CHECK_EQUAL(850000000u, rc.rate_bps());
}

TEST(RateController, LearnsRandomLossAndReturnsToMax) {
  // 4% loss whatever the rate (a bad link, not congestion): after learning
  // it, the rate goes back to max and NACK repair deals with the loss.
  RateController rc;
  uint64_t now = kSec;
  simulate(rc, &now, 200, 2, [](uint64_t) { return 0.04; });
  CHECK(rc.rate_bps() < kGbit);  // reacts at first
  simulate(rc, &now, 10000, 2, [](uint64_t) { return 0.04; });
  CHECK_EQUAL(kGbit, rc.rate_bps());
  // A jump on top of the learned level is congestion again.
  simulate(rc, &now, 300, 2, [](uint64_t) { return 0.07; });
  CHECK(rc.rate_bps() < kGbit);
}

#include "rangeset.h"

#include <CppUTest/TestHarness.h>

#include <random>
#include <vector>

using namespace shoal;

TEST_GROUP(RangeSet){};

TEST(RangeSet, AddMergesAndCounts) {
  RangeSet s;
  s.add(10, 20);
  s.add(30, 40);
  CHECK_EQUAL(2u, s.count());
  CHECK_EQUAL(20u, s.bytes());
  s.add(20, 30);  // touching both: one range
  CHECK_EQUAL(1u, s.count());
  CHECK_EQUAL(30u, s.bytes());
  s.add(5, 45);
  CHECK_EQUAL(40u, s.bytes());
  CHECK_TRUE(s.covers(5, 45));
  CHECK_FALSE(s.covers(4, 6));
  s.add(7, 7);
  CHECK_EQUAL(1u, s.count());
}

TEST(RangeSet, RemoveSplits) {
  RangeSet s;
  s.add(0, 100);
  s.remove(40, 60);
  CHECK_EQUAL(2u, s.count());
  CHECK_EQUAL(80u, s.bytes());
  CHECK_TRUE(s.covers(0, 40));
  CHECK_FALSE(s.covers(39, 41));
  s.remove(0, 100);
  CHECK_TRUE(s.empty());
  CHECK_EQUAL(0u, s.bytes());
}

TEST(RangeSet, Gaps) {
  RangeSet s;
  s.add(10, 20);
  s.add(30, 40);
  auto g = s.gaps(0, 50, 10);
  CHECK_EQUAL(3u, g.size());
  CHECK_EQUAL(0u, g[0].first);
  CHECK_EQUAL(10u, g[0].second);
  CHECK_EQUAL(20u, g[1].first);
  CHECK_EQUAL(30u, g[1].second);
  CHECK_EQUAL(40u, g[2].first);
  CHECK_EQUAL(50u, g[2].second);
  CHECK_EQUAL(1u, s.gaps(0, 50, 1).size());
  CHECK_EQUAL(0u, s.gaps(12, 18, 5).size());
  auto g2 = s.gaps(15, 35, 5);
  CHECK_EQUAL(1u, g2.size());
  CHECK_EQUAL(20u, g2[0].first);
  CHECK_EQUAL(30u, g2[0].second);
}

// Against a plain bitmap model with random operations.
TEST(RangeSet, MatchesBitmapModel) {
  std::mt19937 gen(7);
  auto rng = [&] { return static_cast<uint32_t>(gen()); };
  RangeSet s;
  std::vector<bool> model(300, false);
  for (int step = 0; step < 5000; step++) {
    uint32_t b = rng() % 300, e = b + rng() % 40;
    if (e > 300) e = 300;
    bool add = rng() % 3 != 0;
    if (add) s.add(b, e); else s.remove(b, e);
    for (uint32_t i = b; i < e; i++) model[i] = add;
    uint64_t n = 0;
    for (bool x : model) n += x;
    CHECK_EQUAL(n, s.bytes());
    uint32_t qb = rng() % 300, qe = qb + rng() % 20;
    if (qe > 300) qe = 300;
    bool all = true;
    for (uint32_t i = qb; i < qe; i++) all = all && model[i];
    CHECK_EQUAL(all, s.covers(qb, qe));
    uint64_t gapbytes = 0;
    for (auto& [gb, ge] : s.gaps(0, 300, 1000)) gapbytes += ge - gb;
    CHECK_EQUAL(300 - n, gapbytes);
  }
}

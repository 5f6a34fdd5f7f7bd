#include "prio.h"

#include <sys/resource.h>
#include <unistd.h>

#include <thread>

#include <CppUTest/TestHarness.h>

using namespace shoal;

TEST_GROUP(Prio){};

// Each case runs on a thread of its own: nice values are per thread, and
// the test runner's thread must keep its own.
TEST(Prio, LoweredForTheScopeAndRestored) {
  int before = -100, during = -100, after = -100;
  bool lowered = false;
  std::thread t([&] {
    before = thread_nice();
    {
      BulkPriority p;
      lowered = p.lowered();
      during = thread_nice();
    }
    after = thread_nice();
  });
  t.join();
  if (!may_return_to_nice(before)) {
    CHECK_FALSE(lowered);  // could not come back: not lowered at all
    CHECK_EQUAL(before, during);
    CHECK_EQUAL(before, after);
    return;
  }
  CHECK_TRUE(lowered);
  CHECK_EQUAL(before + kBulkNice > 19 ? 19 : before + kBulkNice, during);
  CHECK_EQUAL(before, after);
}

TEST(Prio, WithoutRestoreStaysLowAndOtherThreadsAreUntouched) {
  int mine = thread_nice();
  int before = -100, after = -100;
  std::thread t([&] {
    before = thread_nice();
    { BulkPriority p(false); }
    after = thread_nice();
  });
  t.join();
  CHECK_EQUAL(before + kBulkNice > 19 ? 19 : before + kBulkNice, after);
  CHECK_EQUAL(mine, thread_nice());
}

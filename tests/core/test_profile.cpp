// host/core/profile.h: off counts nothing; a scope counts its calls and time; an inner scope counts toward the
// outer one only; inside an OpenMP team each thread adds its share. host/core/parallel.h's parallel_items: a
// team started inside a scope counts toward that scope alone; the first exception of its items reaches the caller.
// cost_balanced_range: contiguous parts of equal cost.
#include "host/core/profile.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "host/core/parallel.h"

namespace {

double seconds_of(const char* kind, int64_t* calls = nullptr) {
  for (const rf::profile::Row& r : rf::profile::snapshot())
    if (r.kind == kind) {
      if (calls) *calls = r.calls;
      return r.seconds;
    }
  if (calls) *calls = 0;
  return -1;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST(Profile, CountsScopesOnlyWhenOnAndOuterWins) {
  rf::profile::set_enabled(false);
  rf::profile::reset();
  {
    RF_PROFILE("test outer");
    sleep_ms(1);
  }
  EXPECT_LT(seconds_of("test outer"), 0) << "off: nothing counted";
  rf::profile::set_enabled(true);
  for (int i = 0; i < 2; ++i) {
    RF_PROFILE("test outer");
    {
      RF_PROFILE("test inner");
      sleep_ms(5);
    }
  }
  int64_t calls = 0;
  EXPECT_GE(seconds_of("test outer", &calls), 0.009);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(seconds_of("test inner"), 0) << "an inner scope counts toward the outer one only";
  {
    RF_PROFILE("test inner");  // on its own it counts
    sleep_ms(1);
  }
  EXPECT_GT(seconds_of("test inner"), 0);
  rf::profile::set_enabled(false);
}

TEST(Profile, ATeamAddsItsShareOfTheWallTime) {
  rf::profile::set_enabled(true);
  rf::profile::reset();
  int team = 1;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    team = omp_get_num_threads();
    RF_PROFILE("test team");
    sleep_ms(20);
  }
  int64_t calls = 0;
  const double s = seconds_of("test team", &calls);
  EXPECT_EQ(calls, team);
  EXPECT_GE(s, 0.019);  // each of the team's threads adds 20 ms / team
  EXPECT_LT(s, 0.019 * 2 + 0.1);
  rf::profile::set_enabled(false);
}

TEST(Profile, ATeamOfItemsStartedInsideAScopeCountsTowardItAlone) {
  rf::profile::set_enabled(true);
  rf::profile::reset();
  {
    RF_PROFILE("test caller");
    rf::parallel_items(4, 2, [](int, int64_t) {
      RF_PROFILE("test item");
      sleep_ms(5);
    });
  }
  EXPECT_GE(seconds_of("test caller"), 0.009);
  EXPECT_LT(seconds_of("test item"), 0) << "the items' scopes were inside the caller's";
  rf::parallel_items(4, 2, [](int, int64_t) {  // no scope around the team: the items count
    RF_PROFILE("test item");
    sleep_ms(5);
  });
  int64_t calls = 0;
  EXPECT_GT(seconds_of("test item", &calls), 0);
  EXPECT_EQ(calls, 4);
  rf::profile::set_enabled(false);
}

TEST(Parallel, ItemsRunOnceEachAndTheFirstExceptionReachesTheCaller) {
  std::vector<std::atomic<int>> seen(37);
  rf::parallel_items(37, 2, [&](int t, int64_t i) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 2);
    ++seen[size_t(i)];
  });
  for (const auto& s : seen) EXPECT_EQ(s.load(), 1);
  std::atomic<int> ran{0};
  try {
    rf::parallel_items(10, 2, [&](int, int64_t i) {
      ++ran;
      if (i == 3) throw std::runtime_error("item 3 failed");
    });
    ADD_FAILURE() << "no exception reached the caller";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "item 3 failed");
  }
  EXPECT_EQ(ran.load(), 10) << "the other items still ran";
}

// cost_balanced_range: the parts tile [0, items) in order, each of about 1/parts of the total cost (within one
// item's cost), for uneven costs, more parts than items, and all-zero costs (equal counts).
TEST(Parallel, CostBalancedRangesTileTheItemsWithEqualShares) {
  const auto cost = [](int64_t i) { return 3 + 2 * ((i / 13) % 5); };  // the mixed pool's k + a constant
  for (int64_t items : {int64_t(0), int64_t(1), int64_t(5), int64_t(64), int64_t(320), int64_t(4096)})
    for (int parts : {1, 2, 3, 7}) {
      double total = 0, dearest = 0;
      for (int64_t i = 0; i < items; ++i) total += cost(i), dearest = std::max(dearest, double(cost(i)));
      int64_t next = 0;
      for (int t = 0; t < parts; ++t) {
        const auto [b, e] = rf::cost_balanced_range(items, t, parts, cost);
        ASSERT_EQ(b, next) << items << " items, part " << t << " of " << parts;
        ASSERT_LE(b, e);
        double share = 0;
        for (int64_t i = b; i < e; ++i) share += cost(i);
        if (items >= 4 * parts) {
          EXPECT_NEAR(share, total / parts, dearest) << items << " items, part " << t;
        }
        next = e;
      }
      EXPECT_EQ(next, items) << items << " items, " << parts << " parts";
    }
  const auto zero = [](int64_t) { return 0; };
  EXPECT_EQ(rf::cost_balanced_range(10, 0, 2, zero), std::make_pair(int64_t(0), int64_t(5)));
  EXPECT_EQ(rf::cost_balanced_range(10, 1, 2, zero), std::make_pair(int64_t(5), int64_t(10)));
  // A dear item at the front: the first part is that item alone.
  const auto front = [](int64_t i) { return i == 0 ? 100 : 1; };
  EXPECT_EQ(rf::cost_balanced_range(101, 0, 2, front), std::make_pair(int64_t(0), int64_t(1)));
}

}  // namespace

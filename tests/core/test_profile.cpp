// host/core/profile.h: off counts nothing; a scope counts its calls and time; an inner scope counts toward the
// outer one only; inside an OpenMP team each thread adds its share.
#include "host/core/profile.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <thread>

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

}  // namespace

// The process group in a world of one (host/core/comm.h): what a plain `reframe` run (no mpirun) and a build
// without MPI see. Rank groups: only 1 group is accepted, and the world-level calls are trivial. The multi-rank
// behaviour is checked under mpirun by tests/training/mpi_train.sh. Milliseconds.
#include <gtest/gtest.h>

#include "host/core/comm.h"
#include "testing.h"

using namespace rf;
using rf::testing::expect_error;

TEST(Comm, WorldOfOneHasOneRankGroup) {
  EXPECT_EQ(comm::rank(), 0);
  EXPECT_EQ(comm::size(), 1);
  EXPECT_FALSE(comm::active());
  EXPECT_EQ(comm::world_rank(), 0);
  EXPECT_EQ(comm::world_size(), 1);
  EXPECT_TRUE(comm::is_world_root());
  expect_error([] { comm::split(2); }, {"--rank-groups 2", "expected 1..1", "mpirun"});
  expect_error([] { comm::split(0, "--groups"); }, {"--groups 0", "expected 1..1"});
  comm::split(1);  // the whole world: nothing changes
  EXPECT_EQ(comm::groups(), 1);
  EXPECT_EQ(comm::group(), 0);
  EXPECT_EQ(comm::size(), 1);
  comm::world_barrier();
  comm::barrier();
  const std::vector<std::string> all = comm::gather_to_world_root(std::string("part\0json", 9));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], std::string("part\0json", 9));
}

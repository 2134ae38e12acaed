// The process group (see comm.h): MPI when RF_HAVE_MPI and started by mpirun, else one process; rank groups
// by MPI_Comm_split.
#include "host/core/comm.h"

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "host/core/check.h"

#if RF_HAVE_MPI
#include <mpi.h>
#endif

namespace rf::comm {

namespace {
int g_rank = 0, g_size = 1;              // in the caller's group
int g_world_rank = 0, g_world_size = 1, g_group = 0, g_groups = 1;
bool g_mpi = false;  // MPI_Init was called here
#if RF_HAVE_MPI
MPI_Comm g_comm = MPI_COMM_WORLD;  // the caller's group
#endif

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

#if RF_HAVE_MPI
// MPI counts are int: long buffers go in chunks. A reduce to rank 0 and a broadcast of its result rather than
// MPI_Allreduce: MPI does not promise the same bits on every rank for a float sum over more than two ranks (each
// may add in another order), and ranks whose weights drift apart by one bit train different models.
template <class T>
void allreduce_chunks(T* data, int64_t n, MPI_Datatype type) {
  constexpr int64_t kChunk = INT_MAX / 2;
  for (int64_t at = 0; at < n; at += kChunk) {
    const int c = int(std::min<int64_t>(kChunk, n - at));
    int rc = MPI_Reduce(g_rank == 0 ? MPI_IN_PLACE : data + at, data + at, c, type, MPI_SUM, 0, g_comm);
    RF_CHECK(rc == MPI_SUCCESS, "MPI_Reduce of {} values failed (error {})", c, rc);
    rc = MPI_Bcast(data + at, c, type, 0, g_comm);
    RF_CHECK(rc == MPI_SUCCESS, "MPI_Bcast of {} values failed (error {})", c, rc);
  }
}
#endif
}  // namespace

void init(int* argc, char*** argv) {
#if RF_HAVE_MPI
  if (g_mpi || !launched_by_mpi()) return;
  int provided = 0;
  // FUNNELED: only the main thread calls MPI; OpenMP threads inside ops never do.
  RF_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "MPI_Init_thread failed");
  g_mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_world_rank = g_rank, g_world_size = g_size;
#else
  (void)argc, (void)argv;
#endif
}

void finalize() {
#if RF_HAVE_MPI
  if (g_mpi) {
    if (g_comm != MPI_COMM_WORLD) MPI_Comm_free(&g_comm);
    g_comm = MPI_COMM_WORLD;
    MPI_Finalize();
  }
#endif
  g_mpi = false;
}

void abort_all(int code) {
#if RF_HAVE_MPI
  if (g_mpi && g_world_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int rank() { return g_rank; }
int size() { return g_size; }
bool active() { return g_size > 1; }
int group() { return g_group; }
int groups() { return g_groups; }
int world_rank() { return g_world_rank; }
int world_size() { return g_world_size; }

void split(int groups, const char* option) {
  RF_CHECK(g_groups == 1, "{}: the world is already split into {} groups", option, g_groups);
  RF_CHECK(groups >= 1 && groups <= g_world_size,
           "{} {}: expected 1..{} (the number of processes{})", option, groups, g_world_size,
           g_world_size == 1 ? "; more than 1 needs mpirun -np N and a build with MPI" : " started by mpirun");
  RF_CHECK(g_world_size % groups == 0,
           "{} {}: does not divide the {} processes (expected a divisor of {}: equal groups)", option, groups,
           g_world_size, g_world_size);
  if (groups == 1) return;
#if RF_HAVE_MPI
  const int n = g_world_size / groups;
  g_group = g_world_rank / n;
  RF_CHECK(MPI_Comm_split(MPI_COMM_WORLD, g_group, g_world_rank, &g_comm) == MPI_SUCCESS, "MPI_Comm_split failed");
  MPI_Comm_rank(g_comm, &g_rank);
  MPI_Comm_size(g_comm, &g_size);
  g_groups = groups;
#endif
}

void world_barrier() {
#if RF_HAVE_MPI
  if (g_world_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

std::vector<std::string> gather_to_world_root(const std::string& bytes) {
  if (g_world_size == 1) return {bytes};
  std::vector<std::string> out;
#if RF_HAVE_MPI
  RF_CHECK(bytes.size() <= size_t(INT_MAX), "gather of {} bytes (at most {})", bytes.size(), INT_MAX);
  const int mine = int(bytes.size());
  std::vector<int> sizes(size_t(g_world_rank == 0 ? g_world_size : 0)), offsets(sizes.size());
  RF_CHECK(MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD) == MPI_SUCCESS,
           "MPI_Gather of sizes failed");
  std::string all;
  if (g_world_rank == 0) {
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) offsets[i] = int(total), total += sizes[i];
    RF_CHECK(total <= INT_MAX, "gather of {} bytes in all (at most {})", total, INT_MAX);
    all.resize(size_t(total));
  }
  RF_CHECK(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0,
                       MPI_COMM_WORLD) == MPI_SUCCESS,
           "MPI_Gatherv failed");
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back(all.substr(size_t(offsets[i]), size_t(sizes[i])));
#endif
  return out;
}
const char* backend() { return g_mpi ? "mpi" : "none"; }

void allreduce_sum(float* data, int64_t n) {
  if (g_size == 1 || n == 0) return;
#if RF_HAVE_MPI
  allreduce_chunks(data, n, MPI_FLOAT);
#else
  (void)data;
#endif
}

void allreduce_sum(double* data, int64_t n) {
  if (g_size == 1 || n == 0) return;
#if RF_HAVE_MPI
  allreduce_chunks(data, n, MPI_DOUBLE);
#else
  (void)data;
#endif
}

void broadcast(void* data, int64_t bytes, int root) {
  if (g_size == 1 || bytes == 0) return;
#if RF_HAVE_MPI
  RF_CHECK(bytes <= INT_MAX, "broadcast of {} bytes (at most {})", bytes, INT_MAX);
  RF_CHECK(MPI_Bcast(data, int(bytes), MPI_BYTE, root, g_comm) == MPI_SUCCESS, "MPI_Bcast failed");
#else
  (void)data, (void)root;
#endif
}

void barrier() {
#if RF_HAVE_MPI
  if (g_size > 1) MPI_Barrier(g_comm);
#endif
}

}  // namespace rf::comm

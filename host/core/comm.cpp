// The process group (see comm.h): MPI when RF_HAVE_MPI and started by mpirun, else one process.
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
int g_rank = 0, g_size = 1;
bool g_mpi = false;  // MPI_Init was called here

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
    int rc = MPI_Reduce(g_rank == 0 ? MPI_IN_PLACE : data + at, data + at, c, type, MPI_SUM, 0, MPI_COMM_WORLD);
    RF_CHECK(rc == MPI_SUCCESS, "MPI_Reduce of {} values failed (error {})", c, rc);
    rc = MPI_Bcast(data + at, c, type, 0, MPI_COMM_WORLD);
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
#else
  (void)argc, (void)argv;
#endif
}

void finalize() {
#if RF_HAVE_MPI
  if (g_mpi) MPI_Finalize();
#endif
  g_mpi = false;
}

void abort_all(int code) {
#if RF_HAVE_MPI
  if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int rank() { return g_rank; }
int size() { return g_size; }
bool active() { return g_size > 1; }
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
  RF_CHECK(MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD) == MPI_SUCCESS, "MPI_Bcast failed");
#else
  (void)data, (void)root;
#endif
}

void barrier() {
#if RF_HAVE_MPI
  if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

}  // namespace rf::comm

// The process group of a data-parallel run (`mpirun -np N reframe train|bench ...`): rank, size, and the few
// collectives the trainer needs (sum all-reduce of float and double buffers, broadcast, barrier). MPI under the
// hood when the build found it (RF_HAVE_MPI) and the process was started by mpirun; otherwise, and in a build
// without MPI, the trivial world of one process, where every call is a no-op. Why only under mpirun: a plain
// `reframe` run must not pay for (or depend on) MPI's start-up, and behaves exactly as before.
// Checked by tests/training/mpi_train.sh (CTest label mpi: 2 ranks against 1) and tests/core/test_comm.cpp.
#pragma once
#include <cstdint>

namespace rf::comm {

// Starts MPI when the process was launched by an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
// environment) and the build has MPI; a second call is a no-op. finalize() ends it (at exit of main).
void init(int* argc, char*** argv);
void finalize();
// After an error on one rank: ends every rank (MPI_Abort), so that no rank waits forever in a collective.
[[noreturn]] void abort_all(int code);

int rank();                  // 0 in a world of one
int size();                  // 1 without MPI
inline bool is_root() { return rank() == 0; }
bool active();               // size() > 1

// In-place sums over all ranks; every rank gets the same bits (rank 0's sum, broadcast).
void allreduce_sum(float* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
void broadcast(void* data, int64_t bytes, int root = 0);
void barrier();

// Name of the backend: "mpi" or "none".
const char* backend();

}  // namespace rf::comm

// The process group of a data-parallel run (`mpirun -np N reframe train|bench ...`): rank, size, and the few
// collectives the trainer needs (sum all-reduce of float and double buffers, broadcast, barrier). MPI under the
// hood when the build found it (RF_HAVE_MPI) and the process was started by mpirun; otherwise, and in a build
// without MPI, the trivial world of one process, where every call is a no-op. Why only under mpirun: a plain
// `reframe` run must not pay for (or depend on) MPI's start-up, and behaves exactly as before.
// Rank groups (split): the world cut into G groups of consecutive world ranks, each a data-parallel run of its own;
// rank, size and the collectives then act on the caller's group, the world_* functions on every process.
// Checked by tests/training/mpi_train.sh (CTest label mpi: 2 ranks against 1, 2 rank groups) and
// tests/core/test_comm.cpp (the world of one, rank groups refused there).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rf::comm {

// Starts MPI when the process was launched by an MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
// environment) and the build has MPI; a second call is a no-op. finalize() ends it (at exit of main).
void init(int* argc, char*** argv);
void finalize();
// After an error on one rank: ends every rank (MPI_Abort), so that no rank waits forever in a collective.
[[noreturn]] void abort_all(int code);

// The caller's group (the whole world until split is called).
int rank();                  // 0 in a world of one
int size();                  // 1 without MPI
inline bool is_root() { return rank() == 0; }
bool active();               // size() > 1

// Cuts the world into `groups` groups of world_size() / groups consecutive world ranks (contiguous blocks, not
// round-robin: mpirun places consecutive ranks on one node, so a group's all-reduce stays on the node's shared
// memory when a group fits on a node): group g holds world ranks g * n .. g * n + n - 1, and its rank 0 is world
// rank g * n. Collective over the world; once per process. groups must divide world_size() (equal groups train
// with equal data-parallel batches); a world of one or a build without MPI accepts groups == 1 only. `option`
// names the option in errors.
void split(int groups, const char* option = "--rank-groups");
int group();                 // 0..groups()-1
int groups();                // 1 until split
int world_rank();
int world_size();
inline bool is_world_root() { return world_rank() == 0; }
void world_barrier();
// Every process's `bytes` in world rank order at world rank 0 (the others get an empty list).
std::vector<std::string> gather_to_world_root(const std::string& bytes);

// In-place sums over all ranks; every rank gets the same bits (rank 0's sum, broadcast).
void allreduce_sum(float* data, int64_t n);
void allreduce_sum(double* data, int64_t n);
void broadcast(void* data, int64_t bytes, int root = 0);
void barrier();

// Name of the backend: "mpi" or "none".
const char* backend();

}  // namespace rf::comm

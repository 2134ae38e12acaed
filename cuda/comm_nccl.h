// The GPU side of the process group (host/core/comm.h): sums of device buffers over every rank with NCCL, one
// GPU per rank. The NCCL communicator is bootstrapped through the MPI world: rank 0 creates the ncclUniqueId and
// comm::broadcast sends it to the others, then every rank joins with ncclCommInitRank. In a world of one process
// (no mpirun) NCCL runs a communicator of one rank. Built only when the CUDA backend is and NCCL is found (CMake:
// RF_HAVE_NCCL). The trainer does not call it yet: the models run on the CPU until the whole-model GPU path
// exists (host/core/device.h). Checked by tests/gpu/test_nccl_gpu.cpp (label gpu: a 1-rank all-reduce on a
// device); it has never run here (no GPU on the development machine).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

namespace rf::comm {

// Joins the NCCL communicator on CUDA device `device` (a second call is a no-op); collective over all ranks.
void nccl_init(int device);
// In-place sum of n floats in device memory over every rank, on `stream`; returns when it is enqueued.
void nccl_allreduce_sum(float* device_data, int64_t n, cudaStream_t stream);
// Destroys the communicator (before comm::finalize).
void nccl_finalize();

}  // namespace rf::comm

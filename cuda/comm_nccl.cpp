// NCCL all-reduce over the MPI-bootstrapped communicator (see comm_nccl.h).
#include "cuda/comm_nccl.h"

#include <nccl.h>

#include <algorithm>
#include <climits>

#include "cuda/cuda_check.h"
#include "host/core/check.h"
#include "host/core/comm.h"

#define NCCL_CHECK(call)                                                                                     \
  do {                                                                                                       \
    const ncclResult_t rf_nccl_status = (call);                                                              \
    RF_CHECK(rf_nccl_status == ncclSuccess, "{} failed: {}", #call, ncclGetErrorString(rf_nccl_status));   \
  } while (0)

namespace rf::comm {

namespace {
ncclComm_t g_nccl = nullptr;
}

void nccl_init(int device) {
  if (g_nccl) return;
  CUDA_CHECK(cudaSetDevice(device));
  ncclUniqueId id{};
  if (rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  broadcast(&id, int64_t(sizeof(id)), 0);  // the MPI world carries the id (no-op in a world of one)
  NCCL_CHECK(ncclCommInitRank(&g_nccl, size(), id, rank()));
}

void nccl_allreduce_sum(float* device_data, int64_t n, cudaStream_t stream) {
  RF_CHECK(g_nccl, "nccl_allreduce_sum: nccl_init was not called");
  // NCCL counts are size_t, but buckets stay well below 2^31 values; chunk anyway so the call is total.
  constexpr int64_t kChunk = INT_MAX;
  for (int64_t at = 0; at < n; at += kChunk) {
    const size_t c = size_t(std::min<int64_t>(kChunk, n - at));
    NCCL_CHECK(ncclAllReduce(device_data + at, device_data + at, c, ncclFloat, ncclSum, g_nccl, stream));
  }
}

void nccl_finalize() {
  if (g_nccl) ncclCommDestroy(g_nccl);
  g_nccl = nullptr;
}

}  // namespace rf::comm

// CUDA twin of host/core/philox.*: seeded normals on the GPU (bit-identical to seeded_normal_fill on the
// CPU) and, as a test oracle, cuRAND's own device API stream. Plain C++ header: callers need no CUDA headers.
// Implemented in cuda/ops/seeded_weights.cu; checked by tests/gpu/test_philox_gpu.cpp.
#pragma once
#include <cstdint>

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // the same typedef as CUDA's driver_types.h

namespace rf {

// Number of CUDA devices, 0 when there is none or the driver/runtime cannot be used (for skipping).
int cuda_device_count_or_zero();

// d_out[i] = std * seeded_normal(seed, i) for i < n, on the device, asynchronously on `stream`.
// Each thread computes whole Philox blocks (4 normals); the bits do not depend on block_size (1..1024).
void seeded_normal_fill_cuda(uint64_t seed, float std, int64_t n, float* d_out, int block_size = 256,
                             cudaStream_t stream = nullptr);

// d_out[j] = the j-th curand() after curand_init(seed, subsequence, offset, &state) with cuRAND's
// curandStatePhilox4_32_10_t (curand_kernel.h). One thread, synchronous: an oracle for tests, not a fast path.
void curand_device_stream_cuda(uint64_t seed, uint64_t subsequence, uint64_t offset, int64_t n, uint32_t* d_out);

}  // namespace rf

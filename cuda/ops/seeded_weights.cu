// Seeded normal weights on the GPU, bit-identical to rf::seeded_normal_fill on the CPU: the kernel calls the
// same RF_HD text (host/core/philox_impl.h), whose float operations are the _rn intrinsics on the device, so
// neither -fmad nor the launch shape changes a bit. Also cuRAND's device-API stream as a test oracle.
// Checked by tests/gpu/test_philox_gpu.cpp (GPU == CPU for several block sizes and n; our Philox == cuRAND).
#include "cuda/ops/seeded_weights.h"

#if !defined(RF_CUDA_EMU)
#include <curand_kernel.h>  // the oracle's cuRAND device API: a vendor library, absent from the emulation
#endif

#include <algorithm>

#include "cuda/cuda_check.h"
#include "host/core/philox.h"

namespace rf {
namespace {

// One thread per Philox block (4 normals: 10 rounds + 2 logs + 2 sincos amortised over 4 stores),
// grid-stride so any grid covers any n. out: (n,) floats. __launch_bounds__(1024): the launcher accepts block
// sizes up to 1024, and a block has 64K registers. ptxas -v, nvcc 13, sm_90: a debug build (-G) used 122
// registers per thread without the bound (a 1024-thread launch failed), 64 with it (272 bytes of spills, debug
// only); the release build uses 28 (32 before).
__global__ void __launch_bounds__(1024) seeded_normal_fill_kernel(uint64_t seed, float sigma, int64_t n, float* out) {
  const int64_t blocks = (n + 3) / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += stride) {
    float z[4];
    seeded_normal4(seed, uint64_t(b), z);
    const int64_t i0 = 4 * b;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (i0 + j < n) out[i0 + j] = __fmul_rn(sigma, z[j]);  // the host's one rounded multiply
  }
}

#if !defined(RF_CUDA_EMU)
__global__ void curand_device_stream_kernel(uint64_t seed, uint64_t subsequence, uint64_t offset, int64_t n,
                                            uint32_t* out) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, offset, &state);
  for (int64_t j = 0; j < n; ++j) out[j] = curand(&state);
}
#endif

}  // namespace

int cuda_device_count_or_zero() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return count;
}

void seeded_normal_fill_cuda(uint64_t seed, float sigma, int64_t n, float* d_out, int block_size,
                             cudaStream_t stream) {
  RF_CHECK(n >= 0, "seeded_normal_fill_cuda: n = {} must be >= 0", n);
  RF_CHECK(block_size >= 1 && block_size <= 1024, "seeded_normal_fill_cuda: block_size = {}, expected 1..1024",
           block_size);
  RF_CHECK(d_out != nullptr || n == 0, "seeded_normal_fill_cuda: null output for n = {}", n);
  if (n == 0) return;
  const int64_t blocks = (n + 3) / 4;
  // Enough CTAs to fill any current GPU; beyond that the grid-stride loop takes over.
  const int64_t grid = std::min<int64_t>((blocks + block_size - 1) / block_size, int64_t(1) << 16);
  RF_LAUNCH(unsigned(grid), unsigned(block_size), 0, stream, seeded_normal_fill_kernel)(seed, sigma, n, d_out);
  CUDA_CHECK(cudaGetLastError());
}

void curand_device_stream_cuda(uint64_t seed, uint64_t subsequence, uint64_t offset, int64_t n, uint32_t* d_out) {
  RF_CHECK(n >= 0, "curand_device_stream_cuda: n = {} must be >= 0", n);
  RF_CHECK(d_out != nullptr || n == 0, "curand_device_stream_cuda: null output for n = {}", n);
  if (n == 0) return;
#if defined(RF_CUDA_EMU)
  (void)seed, (void)subsequence, (void)offset;
  RF_FAIL("curand_device_stream_cuda: cuRAND's device API is a vendor library, not part of the CUDA emulation "
          "(RF_CUDA_EMU): this oracle runs on a real GPU only");
#else
  RF_LAUNCH(1, 1, 0, nullptr, curand_device_stream_kernel)(seed, subsequence, offset, n, d_out);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

}  // namespace rf

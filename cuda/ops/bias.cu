// CUDA kernels of a conv's bias (cuda/ops/bias.h). Checked by tests/gpu/test_bias_gpu.cpp.
#include "cuda/ops/bias.h"

#include <algorithm>

#include "cuda/cuda_check.h"
#include "host/core/check.h"

namespace rf {

namespace {

constexpr int kBiasThreads = 256;  // a power of two (the tree reduction halves it)

// y[n, k, :] += b[k] for y (N, K, plane) with batch stride ys.
__global__ void bias_add_kernel(float* y, const float* b, int K, int64_t plane, int64_t ys, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t per_sample = int64_t(K) * plane, n = i / per_sample, r = i % per_sample;
    y[n * ys + r] += b[r / plane];
  }
}

__global__ void __launch_bounds__(kBiasThreads) bias_grad_kernel(const float* dy, float* db, int N, int64_t plane,
                                                                 int64_t ys) {
  RF_SHARED(float, part, [kBiasThreads]);
  const int k = blockIdx.x, t = threadIdx.x;
  float sum = 0.0f;
  for (int64_t i = t; i < int64_t(N) * plane; i += kBiasThreads) sum += dy[(i / plane) * ys + int64_t(k) * plane + i % plane];
  part[t] = sum;
  __syncthreads();
  for (int half = kBiasThreads / 2; half > 0; half /= 2) {
    if (t < half) part[t] += part[t + half];
    __syncthreads();
  }
  if (t == 0) db[k] = part[0];
}

}  // namespace

void bias_add_cuda(const Conv2dShape& s, const float* b, float* y, cudaStream_t stream) {
  const int64_t plane = int64_t(s.OH()) * s.OW(), total = int64_t(s.N) * s.K * plane;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>((total + kBiasThreads - 1) / kBiasThreads, 65535);
  RF_LAUNCH(unsigned(blocks), kBiasThreads, 0, stream, bias_add_kernel)(y, b, s.K, plane, s.y_batch_stride(), total);
  CUDA_CHECK(cudaGetLastError());
}

void bias_grad_cuda(const Conv2dShape& s, const float* dy, float* db, cudaStream_t stream) {
  RF_CHECK(s.K >= 1 && s.K <= 2147483647, "bias_grad_cuda: K = {} (expected 1..2^31-1 channels)", s.K);
  const int64_t plane = int64_t(s.OH()) * s.OW();
  RF_LAUNCH(unsigned(s.K), kBiasThreads, 0, stream, bias_grad_kernel)(dy, db, s.N, plane, s.y_batch_stride());
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

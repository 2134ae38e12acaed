// Batch norm on the GPU (cuda/ops/batchnorm.h), PyTorch's BatchNorm2d semantics as host/ops/batchnorm.h.
// - train forward: one block per channel; two passes over the channel's M = N*HW values, each summed in double
//   per thread and then over the block by CUB's BlockReduce (cuda/cub.h: a fixed tree on the device, so a run
//   repeats its bits; the mean, then the squares about it: no cancellation whatever the mean); y = (x - mean) *
//   scale + beta in float, as batchnorm_forward_train_cpu.
// - eval forward: elementwise, grid.y over channels; the per-channel scale is the CPU op's double expression, so
//   y equals batchnorm_forward_eval_cpu bit for bit.
// - backward: one block per channel; sum dy and sum dy (x - mean) in double (two BlockReduce sums), then dx in
//   float with batchnorm_backward_cpu's expression.
// No atomics: every sum has one order, so a run repeats its bits. Checked by tests/gpu/test_batchnorm_gpu.cpp
// (against the double _ref ops; each barrier's removal fails it: the barrier-drop entries in CMakeLists.txt).
#include "cuda/ops/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "cuda/cub.h"
#include "cuda/cuda_check.h"
#include "host/core/check.h"

namespace rf {
namespace {

constexpr int kThreads = 256;  // a power of two (the tree halves it)
// Eval: at most this many blocks (grid.y over channels, grid.x along a channel's values), the kernel loops over
// the rest. 4096 x 256 threads fill any current GPU (an H100 holds 132 x 2048 resident threads), and the loops
// over channels are reachable in an emulated test (C > 4096 at 256 emulated threads per block).
constexpr int kMaxBlocks = 4096;

struct BnArgs {
  int N, C, HW;
  float eps, momentum;
};

BnArgs args_of(const BatchNormShape& s) { return BnArgs{s.N, s.C, s.HW, s.eps, s.momentum}; }

// Offset of value i (0 <= i < N*HW, n-major) of channel c in the (N, C, HW) tensor.
__device__ __forceinline__ int64_t channel_value(const BnArgs& a, int c, int64_t i) {
  const int64_t n = i / a.HW;
  return (n * a.C + c) * a.HW + (i - n * a.HW);
}

using BlockSum = cub::BlockReduce<double, kThreads>;

// Shared memory of block_sums: CUB's temp storage and the totals thread 0 broadcasts.
struct SumStorage {
  BlockSum::TempStorage temp;
  double total[2];
};

// Adds v[0..K) over the block's threads (CUB's BlockReduce: the same tree every run) and gives every thread the
// totals. The barrier after each sum publishes thread 0's total and frees the temp storage for the next sum; the
// next call's first write to `total` comes after its own sum's barrier, which every thread reaches only after
// reading this call's totals.
template <int K>
__device__ __forceinline__ void block_sums(double (&v)[K], SumStorage& s) {
  for (int k = 0; k < K; ++k) {
    const double sum = BlockSum(s.temp).Sum(v[k]);
    if (threadIdx.x == 0) s.total[k] = sum;
    __syncthreads();
    v[k] = s.total[k];
  }
}

__global__ void __launch_bounds__(kThreads)
    batchnorm_forward_train_kernel(BnArgs a, const float* x, const float* gamma, const float* beta, float* y,
                                   float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  RF_SHARED(SumStorage, part, );
  const int c = blockIdx.x, t = threadIdx.x;
  const int64_t M = int64_t(a.N) * a.HW;
  double v[1] = {0.0};
  for (int64_t i = t; i < M; i += kThreads) v[0] += double(x[channel_value(a, c, i)]);
  block_sums(v, part);
  const double mean = v[0] / double(M);
  v[0] = 0.0;
  for (int64_t i = t; i < M; i += kThreads) {
    const double d = double(x[channel_value(a, c, i)]) - mean;
    v[0] += d * d;
  }
  block_sums(v, part);
  const double sq = v[0];  // sum (x - mean)^2
  const double invstd = 1.0 / sqrt(sq / double(M) + double(a.eps));
  if (t == 0) {
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
    const double m = double(a.momentum);
    if (running_mean) running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = float((1.0 - m) * double(running_var[c]) + m * sq / double(M - 1));
  }
  const float fmean = float(mean), scale = float(double(gamma[c]) * invstd), b = beta[c];
  for (int64_t i = t; i < M; i += kThreads) {
    const int64_t j = channel_value(a, c, i);
    y[j] = (x[j] - fmean) * scale + b;
  }
}

__global__ void __launch_bounds__(kThreads)
    batchnorm_forward_eval_kernel(BnArgs a, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y) {
  const int64_t M = int64_t(a.N) * a.HW, first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (first >= M) return;  // no barrier in this kernel
  for (int c = blockIdx.y; c < a.C; c += gridDim.y) {
    const float k = float(double(gamma[c]) / sqrt(double(running_var[c]) + double(a.eps)));
    const float mean = running_mean[c], b = beta[c];
    for (int64_t i = first; i < M; i += int64_t(gridDim.x) * blockDim.x) {
      const int64_t j = channel_value(a, c, i);
      y[j] = (x[j] - mean) * k + b;
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    batchnorm_backward_kernel(BnArgs a, const float* x, const float* dy, const float* gamma, const float* save_mean,
                              const float* save_invstd, float* dx, float* dgamma, float* dbeta) {
  RF_SHARED(SumStorage, part, );
  const int c = blockIdx.x, t = threadIdx.x;
  const int64_t M = int64_t(a.N) * a.HW;
  const float mean = save_mean[c], invstd = save_invstd[c];
  double v[2] = {0.0, 0.0};  // sum dy, sum dy (x - mean): float products and differences are exact in double
  for (int64_t i = t; i < M; i += kThreads) {
    const int64_t j = channel_value(a, c, i);
    const double g = double(dy[j]);
    v[0] += g;
    v[1] += g * (double(x[j]) - double(mean));
  }
  block_sums(v, part);
  if (t == 0) {
    dbeta[c] = float(v[0]);
    dgamma[c] = float(v[1] * double(invstd));
  }
  // dx = gamma * invstd * (dy - sum dy / M - (x - mean) * invstd^2 * sum dy (x - mean) / M)
  const float k = float(double(gamma[c]) * double(invstd));
  const float mean_dy = float(v[0] / double(M));
  const float kx = float(v[1] * double(invstd) * double(invstd) / double(M));
  for (int64_t i = t; i < M; i += kThreads) {
    const int64_t j = channel_value(a, c, i);
    dx[j] = k * ((dy[j] - mean_dy) - (x[j] - mean) * kx);
  }
}

}  // namespace

void batchnorm_forward_train_cuda(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  float* y, float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, cudaStream_t stream) {
  check_batchnorm_shape(s);
  RF_CHECK(int64_t(s.N) * s.HW > 1,
           "batchnorm_forward_train_cuda: {}: train mode needs more than one value per channel (N*HW = {}), as "
           "the CPU op and PyTorch; use eval mode or a larger batch", s.str(), int64_t(s.N) * s.HW);
  RF_CHECK(x && gamma && beta && y && save_mean && save_invstd,
           "batchnorm_forward_train_cuda: {}: null x, gamma, beta, y, save_mean or save_invstd", s.str());
  // One block per channel: grid.x takes up to 2^31 - 1 blocks, any int C.
  RF_LAUNCH(unsigned(s.C), kThreads, 0, stream, batchnorm_forward_train_kernel)(
      args_of(s), x, gamma, beta, y, save_mean, save_invstd, running_mean, running_var);
  CUDA_CHECK(cudaGetLastError());
}

void batchnorm_forward_eval_cuda(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float* y,
                                 cudaStream_t stream) {
  check_batchnorm_shape(s);
  RF_CHECK(x && gamma && beta && running_mean && running_var && y,
           "batchnorm_forward_eval_cuda: {}: null x, gamma, beta, running_mean, running_var or y", s.str());
  const int64_t M = int64_t(s.N) * s.HW;
  const int gy = std::min(s.C, kMaxBlocks);
  const int64_t gx = std::max<int64_t>(1, std::min<int64_t>((M + kThreads - 1) / kThreads, kMaxBlocks / gy));
  RF_LAUNCH(dim3(unsigned(gx), unsigned(gy)), kThreads, 0, stream, batchnorm_forward_eval_kernel)(
      args_of(s), x, gamma, beta, running_mean, running_var, y);
  CUDA_CHECK(cudaGetLastError());
}

void batchnorm_backward_cuda(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                             float* dbeta, cudaStream_t stream) {
  check_batchnorm_shape(s);
  RF_CHECK(x && dy && gamma && save_mean && save_invstd && dx && dgamma && dbeta,
           "batchnorm_backward_cuda: {}: null pointer among x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta",
           s.str());
  RF_LAUNCH(unsigned(s.C), kThreads, 0, stream, batchnorm_backward_kernel)(args_of(s), x, dy, gamma, save_mean,
                                                                            save_invstd, dx, dgamma, dbeta);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

// CUDA kernels of a training step besides the layers (cuda/ops/train_step.h): softmax cross-entropy forward
// (a block per sample: max, sum of exponentials and sum of logits by tree reductions in shared memory, probs
// and the sample's smoothed loss), its backward, the top-1 correct count, the gradient's sum of squares and the
// SGD update. Every sum over the batch or a tensor goes through CUB's device-wide reduction (cuda/cub.h; the
// host twin under the emulation), never through atomics. Checked by tests/gpu/test_train_step_gpu.cpp.
//
// What matches the CPU and how: the backward and the SGD update do the float operations of
// softmax_cross_entropy_backward_cpu (host/ops/loss.cpp) and SGD::step (host/models/model.cpp) in the same
// order, so with -fmad=false (rf_cuda's flags) they are bit-identical to them; the loss, the correct count and
// the sum of squares are compared with tolerances (CUB's summation order is the device's).
#include "cuda/ops/train_step.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/cub.h"
#include "cuda/cuda_check.h"
#include "cuda/ops/scratch.h"
#include "host/core/check.h"

namespace rf {

namespace {

using cuda_scratch::at;
using cuda_scratch::Layout;
using cuda_scratch::Plus;

constexpr int kLossThreads = 128;  // a power of two (the tree reductions halve it)
constexpr int kThreads = 256;      // elementwise and per-sample kernels
constexpr int64_t kMaxBlocks = 65535;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }

// CUB's transform functor, callable on the device (nvcc) and the host (the emulation's twin).
struct SquareAsDouble {
  __host__ __device__ double operator()(float x) const { return double(x) * double(x); }
};

void check_loss_args(const char* op, int N, int C, float label_smoothing) {
  RF_CHECK(N >= 1 && C >= 1, "{}(N={},C={}): N and C must both be >= 1", op, N, C);
  RF_CHECK(label_smoothing >= 0.f && label_smoothing <= 1.f,
           "{}(N={},C={}): label_smoothing must lie in [0, 1] (got {})", op, N, C, label_smoothing);
}

// Block n: row n of the logits. probs = softmax (float exps scaled by the float reciprocal of their sum, as the
// CPU's fast path); row_loss[n] = lse - (1 - eps) * logit_y - eps * mean(logits) in double (the reference's
// formula); bad[n] = 1 when the label is outside [0, C) (then row_loss[n] = 0 and no logit_y is read).
__global__ void __launch_bounds__(kLossThreads)
    softmax_xent_forward_kernel(int C, const float* logits, const int32_t* labels, float* probs, float eps,
                                double* row_loss, int* bad) {
  RF_SHARED(float, part_max, [kLossThreads]);
  RF_SHARED(double, part_exp, [kLossThreads]);
  RF_SHARED(double, part_logit, [kLossThreads]);
  const int t = threadIdx.x;
  const int64_t n = blockIdx.x;
  const float* l = logits + n * C;
  float* p = probs + n * C;

  float mx = -INFINITY;
  for (int c = t; c < C; c += kLossThreads) mx = fmaxf(mx, l[c]);
  part_max[t] = mx;
  __syncthreads();
  for (int half = kLossThreads / 2; half > 0; half /= 2) {
    if (t < half) part_max[t] = fmaxf(part_max[t], part_max[t + half]);
    __syncthreads();
  }
  mx = part_max[0];

  double sum_exp = 0, sum_logit = 0;
  for (int c = t; c < C; c += kLossThreads) {
    const float e = expf(l[c] - mx);
    p[c] = e;  // scaled below by this same thread: no barrier between
    sum_exp += e;
    sum_logit += l[c];
  }
  part_exp[t] = sum_exp;
  part_logit[t] = sum_logit;
  __syncthreads();
  for (int half = kLossThreads / 2; half > 0; half /= 2) {
    if (t < half) {
      part_exp[t] += part_exp[t + half];
      part_logit[t] += part_logit[t + half];
    }
    __syncthreads();
  }
  sum_exp = part_exp[0];
  sum_logit = part_logit[0];

  const float inv = float(1.0 / sum_exp);
  for (int c = t; c < C; c += kLossThreads) p[c] *= inv;
  if (t == 0) {
    const int32_t y = labels[n];
    const bool ok = y >= 0 && y < C;
    bad[n] = ok ? 0 : 1;
    const double lse = double(mx) + log(sum_exp);
    row_loss[n] = ok ? lse - (1.0 - double(eps)) * double(l[y]) - double(eps) * sum_logit / C : 0.0;
  }
}

// The CPU's fast backward: d = (p - target) * (1/N) in float, target `on` for the label and `off` elsewhere.
// A label outside [0, C) (refused by the forward) only leaves its row without an `on` target: nothing is read or
// written out of bounds.
__global__ void softmax_xent_backward_kernel(int C, int64_t total, const float* probs, const int32_t* labels,
                                             float* dlogits, float off, float on, float inv_n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;
    const float target = c == labels[n] ? on : off;
    dlogits[i] = (probs[i] - target) * inv_n;
  }
}

// correct[n] = 1 when the first largest logit of row n is at its label (training/trainer.cpp's count_correct:
// a strict > scan, so ties go to the lower class and a NaN never wins over an earlier logit).
__global__ void correct_kernel(int N, int C, const float* logits, const int32_t* labels, int* correct) {
  for (int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x) {
    const float* row = logits + n * C;
    int best = 0;
    for (int c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    correct[n] = best == labels[n] ? 1 : 0;
  }
}

// SGD::step's inner loop, operation for operation.
__global__ void sgd_update_kernel(int64_t n, float* w, const float* g, float* v, float lr, float momentum,
                                  float wd, float scale) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float d = g[i] * scale + wd * w[i];
    v[i] = momentum * v[i] + d;
    w[i] -= lr * v[i];
  }
}

}  // namespace

double softmax_cross_entropy_forward_cuda(int N, int C, const float* logits, const int32_t* labels, float* probs,
                                          float label_smoothing, cudaStream_t stream) {
  const char* op = "softmax_cross_entropy_forward_cuda";
  check_loss_args(op, N, C, label_smoothing);
  struct Result {
    double loss_sum;
    int bad;
  };
  size_t sum_temp = 0, count_temp = 0;
  CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, sum_temp, static_cast<const double*>(nullptr),
                                    static_cast<double*>(nullptr), N, stream));
  CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, count_temp, static_cast<const int*>(nullptr),
                                    static_cast<int*>(nullptr), N, stream));
  size_t temp_bytes = std::max(sum_temp, count_temp);  // the two reductions run one after the other
  Layout lay;
  const size_t o_loss = lay.add<double>(size_t(N)), o_bad = lay.add<int>(size_t(N)), o_res = lay.add<Result>(1),
               o_temp = lay.add<char>(temp_bytes);
  char* base = cuda_scratch::thread_scratch().get(lay.bytes);
  double* row_loss = at<double>(base, o_loss);
  int* bad = at<int>(base, o_bad);
  Result* res = at<Result>(base, o_res);

  RF_LAUNCH(unsigned(N), kLossThreads, 0, stream, softmax_xent_forward_kernel)(C, logits, labels, probs,
                                                                               label_smoothing, row_loss, bad);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cub::DeviceReduce::Sum(base + o_temp, temp_bytes, row_loss, &res->loss_sum, N, stream));
  CUDA_CHECK(cub::DeviceReduce::Sum(base + o_temp, temp_bytes, bad, &res->bad, N, stream));
  Result host{};
  CUDA_CHECK(cudaMemcpyAsync(&host, res, sizeof host, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (host.bad > 0) {  // the error path: find the first bad sample on the host
    std::vector<int32_t> y(static_cast<size_t>(N));
    CUDA_CHECK(cudaMemcpy(y.data(), labels, y.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
    for (int n = 0; n < N; ++n)
      if (y[size_t(n)] < 0 || y[size_t(n)] >= C)
        RF_FAIL("{}(N={},C={}): sample {} has label {}, outside the valid range [0, {}] ({} of {} samples)", op, N,
                C, n, y[size_t(n)], C - 1, host.bad, N);
    RF_FAIL("{}(N={},C={}): the device flagged {} labels outside [0, {}] but the labels read back are all valid "
            "(were they changed during the call?)", op, N, C, host.bad, C - 1);
  }
  return host.loss_sum / N;
}

void softmax_cross_entropy_backward_cuda(int N, int C, const float* probs, const int32_t* labels, float* dlogits,
                                         float label_smoothing, cudaStream_t stream) {
  check_loss_args("softmax_cross_entropy_backward_cuda", N, C, label_smoothing);
  const float inv_n = 1.f / float(N);
  const float off = label_smoothing / float(C);  // as softmax_cross_entropy_backward_cpu
  const float on = 1.f - label_smoothing + off;
  const int64_t total = int64_t(N) * C;
  RF_LAUNCH(blocks_for(total), kThreads, 0, stream, softmax_xent_backward_kernel)(C, total, probs, labels, dlogits,
                                                                                  off, on, inv_n);
  CUDA_CHECK(cudaGetLastError());
}

int64_t count_correct_cuda(int N, int C, const float* logits, const int32_t* labels, cudaStream_t stream) {
  RF_CHECK(N >= 0 && C >= 1, "count_correct_cuda(N={},C={}): expected N >= 0 and C >= 1", N, C);
  if (N == 0) return 0;
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, temp_bytes, static_cast<const int*>(nullptr),
                                    static_cast<int64_t*>(nullptr), N, stream));
  Layout lay;
  const size_t o_flags = lay.add<int>(size_t(N)), o_res = lay.add<int64_t>(1), o_temp = lay.add<char>(temp_bytes);
  char* base = cuda_scratch::thread_scratch().get(lay.bytes);
  int* correct = at<int>(base, o_flags);
  int64_t* res = at<int64_t>(base, o_res);
  RF_LAUNCH(blocks_for(N), kThreads, 0, stream, correct_kernel)(N, C, logits, labels, correct);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cub::DeviceReduce::Sum(base + o_temp, temp_bytes, correct, res, N, stream));
  int64_t host = 0;
  CUDA_CHECK(cudaMemcpyAsync(&host, res, sizeof host, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// One CUB pass reading x directly (TransformReduce: no n-element scratch of squares).
double sum_squares_cuda(int64_t n, const float* x, cudaStream_t stream) {
  RF_CHECK(n >= 0, "sum_squares_cuda: n = {} (expected >= 0 floats)", n);
  if (n == 0) return 0.0;
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceReduce::TransformReduce(nullptr, temp_bytes, x, static_cast<double*>(nullptr), n, Plus{},
                                                SquareAsDouble{}, 0.0, stream));
  Layout lay;
  const size_t o_res = lay.add<double>(1), o_temp = lay.add<char>(temp_bytes);
  char* base = cuda_scratch::thread_scratch().get(lay.bytes);
  double* res = at<double>(base, o_res);
  CUDA_CHECK(cub::DeviceReduce::TransformReduce(base + o_temp, temp_bytes, x, res, n, Plus{}, SquareAsDouble{}, 0.0,
                                                stream));
  double host = 0;
  CUDA_CHECK(cudaMemcpyAsync(&host, res, sizeof host, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

void sgd_update_cuda(int64_t n, float* w, const float* g, float* v, float lr, float momentum, float weight_decay,
                     float grad_scale, cudaStream_t stream) {
  RF_CHECK(n >= 0, "sgd_update_cuda: n = {} (expected >= 0 floats)", n);
  if (n == 0) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, sgd_update_kernel)(n, w, g, v, lr, momentum, weight_decay,
                                                                   grad_scale);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

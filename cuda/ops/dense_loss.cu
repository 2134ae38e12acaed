// CUDA kernels of the dense heads' losses (cuda/ops/dense_loss.h): CenterNet focal loss, masked L1 and pixel-wise
// softmax cross-entropy with an ignore label, with the formulas, clamps and error messages of host/ops/dense_loss.h.
// Checked by tests/gpu/test_dense_loss_gpu.cpp against the _ref ops (and, emulated, the _cpu fast paths' bits).
//
// Every loss runs the same four steps on its stream, then one copy back and one stream sync:
//  1. CUB TransformReduce over the input that is validated (target / mask / labels): the count that scales the
//     loss (positives, mask cells, counted pixels) and the number of bad cells, into device scalars. The count
//     is thus on the device before the gradient kernel, which reads it there (no host round trip in between).
//  2. One grid-stride kernel: each cell's (pixel's) loss term and its gradient, already scaled by 1 / count.
//     Each thread adds its terms in double into its own slot of a per-thread partial buffer; the grid is capped
//     (kMaxBlocks), so the scratch holds at most kMaxBlocks * kThreads doubles whatever the tensor's size.
//  3. CUB Sum of the partials into a device scalar (the loss sum).
//  4. Back on the host: loss sum / count; on a bad count, the validated input is copied back and the first bad
//     cell is reported with rf::Error, worded as the CPU op (the gradient written is then meaningless).
// No atomics and no shared memory (no barriers): every sum goes through CUB. For a given shape the grid, each
// thread's cells and CUB's order are fixed, so a call is deterministic run to run on one device.
//
// The per-cell float arithmetic is the _cpu fast path's (host/ops/dense_loss.cpp), operation for operation
// (focal: float sigmoid, clamp, log; masked L1: the sign times 1/count; cross-entropy: float max, sum of
// exponentials in channel order, scale u / sum, minus u at the label), so under the emulation (host libm,
// -ffp-contract=off) the gradients equal the CPU's bits; on a device expf / logf round differently (within
// 2 ulp). The loss terms are added in double: the CPU sums per row first, so the loss differs in the last bits.
#include "cuda/ops/dense_loss.h"

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

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;  // 262144 threads: enough to fill a GPU, 2 MiB of partials
constexpr float kFocalClamp = 1e-4f;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }

void check_dims(const char* op, const char* cname, int N, int C, int H, int W) {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1, "{}: sizes must be positive, got N={} {}={} H={} W={}", op, N,
           cname, C, H, W);
}

// ---- CUB transforms: the count and the bad-cell flag of each validated value -------------------------------

struct IsOne {  // focal positives, mask cells
  __host__ __device__ int64_t operator()(float v) const { return v == 1.f ? 1 : 0; }
};
struct TargetOutside01 {  // NaN included
  __host__ __device__ int64_t operator()(float t) const { return t >= 0.f && t <= 1.f ? 0 : 1; }
};
struct MaskNotBinary {  // NaN included
  __host__ __device__ int64_t operator()(float m) const { return m == 0.f || m == 1.f ? 0 : 1; }
};
struct Counted {  // a label that is not ignored
  int ignore_label;
  __host__ __device__ int64_t operator()(uint8_t l) const { return int(l) != ignore_label ? 1 : 0; }
};
struct NotAClass {  // a label that is neither ignored nor < C
  int C, ignore_label;
  __host__ __device__ int64_t operator()(uint8_t l) const { return int(l) != ignore_label && int(l) >= C ? 1 : 0; }
};

// 1 / max(1, count) in float, as the CPU's fast paths; `zero_if_none` gives 0 for count == 0 (cross-entropy).
__device__ inline float inverse_count(int64_t count, bool zero_if_none) {
  if (count == 0 && zero_if_none) return 0.f;
  return float(1.0 / double(count > 1 ? count : 1));
}

// ---- kernels ------------------------------------------------------------------------------------------

__global__ void __launch_bounds__(kThreads)
    focal_kernel(int64_t total, const float* logits, const float* target, const int64_t* npos, float* dlogits,
                 double* partial) {
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float u = inverse_count(*npos, false);
  const float lo = kFocalClamp, hi = 1.f - kFocalClamp;
  double acc = 0;
  for (int64_t i = tid; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = logits[i], t = target[i];
    // p = sigmoid(x), q = 1 - p = sigmoid(-x), both without cancellation
    const float e = expf(-fabsf(x));
    const float inv = 1.f / (1.f + e);
    float p = x >= 0.f ? inv : e * inv;
    float q = x >= 0.f ? e * inv : inv;
    const bool clamped = p < lo || q < lo;  // the clamped loss is flat: zero gradient
    if (p < lo) p = lo, q = hi;
    if (q < lo) p = hi, q = lo;
    float term, g;
    if (t == 1.f) {
      const float lp = logf(p);
      term = -q * q * lp;
      g = q * q * (2.f * p * lp - q);
    } else {
      const float om = 1.f - t, w = (om * om) * (om * om);
      const float lq = logf(q);
      term = -w * p * p * lq;
      g = w * p * p * (p - 2.f * q * lq);
    }
    acc += double(term);
    if (dlogits) dlogits[i] = clamped ? 0.f : g * u;
  }
  partial[tid] = acc;
}

// Cells of (N, C, H, W); the mask is (N, H, W). The difference is taken in double (exact for floats), as the
// reference; its sign is the float difference's.
__global__ void __launch_bounds__(kThreads)
    masked_l1_kernel(int64_t total, int64_t C, int64_t HW, const float* pred, const float* target, const float* mask,
                     const int64_t* count, float* dpred, double* partial) {
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float u = inverse_count(*count, false);
  double acc = 0;
  for (int64_t i = tid; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const float m = mask[i / (C * HW) * HW + i % HW];
    const double d = double(pred[i]) - double(target[i]);
    acc += double(m) * fabs(d);
    if (dpred) dpred[i] = m * float((d > 0) - (d < 0)) * u;
  }
  partial[tid] = acc;
}

// Pixels of (N, H, W); channel c of pixel (n, px) at n * C * HW + c * HW + px, so neighbouring threads read
// neighbouring floats for every channel. A label that is neither ignored nor a class (reported by the host)
// reads nothing out of bounds: its pixel counts as ignored here.
__global__ void __launch_bounds__(kThreads)
    pixel_xent_kernel(int64_t pixels, int C, int64_t HW, const float* logits, const uint8_t* labels,
                      int ignore_label, const int64_t* count, float* dlogits, double* partial) {
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float u = inverse_count(*count, true);
  double acc = 0;
  for (int64_t i = tid; i < pixels; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = i / HW * C * HW + i % HW;
    const float* l = logits + base;
    float* d = dlogits ? dlogits + base : nullptr;
    const int label = labels[i];
    if (label == ignore_label || label >= C) {
      if (d)
        for (int c = 0; c < C; ++c) d[c * HW] = 0.f;
      continue;
    }
    float mx = l[0];
    for (int c = 1; c < C; ++c) mx = fmaxf(mx, l[c * HW]);
    float sum = 0.f;
    for (int c = 0; c < C; ++c) sum += expf(l[c * HW] - mx);
    acc += double(mx) + log(double(sum)) - double(l[label * HW]);
    if (d) {
      const float s = u / sum;
      for (int c = 0; c < C; ++c) d[c * HW] = expf(l[c * HW] - mx) * s;
      d[label * HW] -= u;
    }
  }
  partial[tid] = acc;
}

// ---- the host side: steps 1, 3 and 4 around the kernel ------------------------------------------------------

struct Result {
  double loss_sum;
  int64_t count;
  int64_t bad;
};

// Runs steps 1-3 on `stream` and returns the result copied back (after a stream sync). `values` (n_values
// items of type V) is the validated input; launch(blocks, count, partial) enqueues the kernel.
template <typename V, typename CountOp, typename BadOp, typename Launch>
Result reduce_loss(const V* values, int64_t n_values, CountOp count_op, BadOp bad_op, int64_t n_items,
                   Launch launch, cudaStream_t stream) {
  const unsigned blocks = blocks_for(n_items);
  const int64_t n_partial = int64_t(blocks) * kThreads;
  size_t count_temp = 0, sum_temp = 0;
  CUDA_CHECK(cub::DeviceReduce::TransformReduce(nullptr, count_temp, values, static_cast<int64_t*>(nullptr),
                                                n_values, Plus{}, count_op, int64_t(0), stream));
  CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, sum_temp, static_cast<const double*>(nullptr),
                                    static_cast<double*>(nullptr), n_partial, stream));
  size_t temp_bytes = std::max(count_temp, sum_temp);  // the reductions run one after the other
  Layout lay;
  const size_t o_partial = lay.add<double>(size_t(n_partial)), o_res = lay.add<Result>(1),
               o_temp = lay.add<char>(temp_bytes);
  char* base = cuda_scratch::thread_scratch().get(lay.bytes);
  double* partial = at<double>(base, o_partial);
  Result* res = at<Result>(base, o_res);

  CUDA_CHECK(cub::DeviceReduce::TransformReduce(base + o_temp, temp_bytes, values, &res->count, n_values, Plus{},
                                                count_op, int64_t(0), stream));
  CUDA_CHECK(cub::DeviceReduce::TransformReduce(base + o_temp, temp_bytes, values, &res->bad, n_values, Plus{},
                                                bad_op, int64_t(0), stream));
  launch(blocks, &res->count, partial);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cub::DeviceReduce::Sum(base + o_temp, temp_bytes, partial, &res->loss_sum, n_partial, stream));
  Result host{};
  CUDA_CHECK(cudaMemcpyAsync(&host, res, sizeof host, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// The error path: the validated input back on the host, to name its first bad cell.
template <typename V>
std::vector<V> to_host(const V* values, int64_t n) {
  std::vector<V> h(static_cast<size_t>(n));
  CUDA_CHECK(cudaMemcpy(h.data(), values, h.size() * sizeof(V), cudaMemcpyDeviceToHost));
  return h;
}

[[noreturn]] void fail_unlocated(const char* op, int64_t bad) {
  RF_FAIL("{}: the device flagged {} bad input cells but the values read back are all valid (were they changed "
          "during the call?)", op, bad);
}

}  // namespace

double centernet_focal_loss_cuda(int N, int K, int H, int W, const float* logits, const float* target,
                                 float* dlogits, cudaStream_t stream) {
  check_dims("centernet_focal_loss_cuda", "K", N, K, H, W);
  const int64_t total = int64_t(N) * K * H * W;
  const Result r = reduce_loss(
      target, total, IsOne{}, TargetOutside01{}, total,
      [&](unsigned blocks, const int64_t* npos, double* partial) {
        RF_LAUNCH(blocks, kThreads, 0, stream, focal_kernel)(total, logits, target, npos, dlogits, partial);
      },
      stream);
  if (r.bad > 0) {
    const std::vector<float> t = to_host(target, total);
    for (int64_t i = 0; i < total; ++i)
      if (!(t[size_t(i)] >= 0.f && t[size_t(i)] <= 1.f)) {
        const int64_t x = i % W, y = i / W % H, k = i / W / H % K, n = i / W / H / K;
        RF_FAIL("centernet_focal_loss_cuda(N={},K={},H={},W={}): target {} at (n={}, k={}, y={}, x={}) is outside "
                "[0, 1] ({} of {} cells)",
                N, K, H, W, double(t[size_t(i)]), n, k, y, x, r.bad, total);
      }
    fail_unlocated("centernet_focal_loss_cuda", r.bad);
  }
  return r.loss_sum / double(std::max<int64_t>(1, r.count));
}

double masked_l1_loss_cuda(int N, int C, int H, int W, const float* pred, const float* target, const float* mask,
                           float* dpred, cudaStream_t stream) {
  check_dims("masked_l1_loss_cuda", "C", N, C, H, W);
  const int64_t HW = int64_t(H) * W, cells = int64_t(N) * HW, total = cells * C;
  const Result r = reduce_loss(
      mask, cells, IsOne{}, MaskNotBinary{}, total,
      [&](unsigned blocks, const int64_t* count, double* partial) {
        RF_LAUNCH(blocks, kThreads, 0, stream, masked_l1_kernel)(total, int64_t(C), HW, pred, target, mask, count,
                                                                 dpred, partial);
      },
      stream);
  if (r.bad > 0) {
    const std::vector<float> m = to_host(mask, cells);
    for (int64_t i = 0; i < cells; ++i)
      if (!(m[size_t(i)] == 0.f || m[size_t(i)] == 1.f))
        RF_FAIL("masked_l1_loss_cuda(N={},C={},H={},W={}): mask value {} at (n={}, y={}, x={}) must be 0 or 1 ({} "
                "of {} cells)",
                N, C, H, W, double(m[size_t(i)]), i / W / H, i / W % H, i % W, r.bad, cells);
    fail_unlocated("masked_l1_loss_cuda", r.bad);
  }
  return r.loss_sum / double(std::max<int64_t>(1, r.count));
}

double pixel_cross_entropy_cuda(int N, int C, int H, int W, const float* logits, const uint8_t* labels,
                                int ignore_label, float* dlogits, cudaStream_t stream) {
  check_dims("pixel_cross_entropy_cuda", "C", N, C, H, W);
  const int64_t HW = int64_t(H) * W, pixels = int64_t(N) * HW;
  const Result r = reduce_loss(
      labels, pixels, Counted{ignore_label}, NotAClass{C, ignore_label}, pixels,
      [&](unsigned blocks, const int64_t* count, double* partial) {
        RF_LAUNCH(blocks, kThreads, 0, stream, pixel_xent_kernel)(pixels, C, HW, logits, labels, ignore_label,
                                                                  count, dlogits, partial);
      },
      stream);
  if (r.bad > 0) {
    const std::vector<uint8_t> l = to_host(labels, pixels);
    for (int64_t i = 0; i < pixels; ++i) {
      const int label = l[size_t(i)];
      if (label != ignore_label && label >= C)
        RF_FAIL("pixel_cross_entropy_cuda(N={},C={},H={},W={}): label {} at pixel (n={}, y={}, x={}) is not a "
                "class (valid [0, {}]) and not ignore_label={} ({} of {} pixels)",
                N, C, H, W, label, i / W / H, i / W % H, i % W, C - 1, ignore_label, r.bad, pixels);
    }
    fail_unlocated("pixel_cross_entropy_cuda", r.bad);
  }
  return r.count ? r.loss_sum / double(r.count) : 0.0;
}

}  // namespace rf

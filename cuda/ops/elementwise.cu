// The small ops between a GPU model's convs (cuda/ops/elementwise.h): ReLU, the residual add, y += x, channel
// shuffle, global average pool and the linear classifier. One thread per output, grid-stride loops with int64
// indices, no shared memory, no barriers and no atomics. Each output is computed as its CPU reference computes it
// (the same float expression, or the _ref's double sum in the same order for the pool and the linear layer), so
// the results equal the _ref ops bit for bit. Outputs may alias inputs where the header says so: every thread reads
// its element before writing it. Checked by tests/gpu/test_elementwise_gpu.cpp.
#include "cuda/ops/elementwise.h"

#include <algorithm>

#include "cuda/cuda_check.h"
#include "host/core/check.h"

namespace rf {
namespace {

constexpr int kThreads = 256;
// At most this many blocks, then the grid-stride loops: 4096 x 256 threads fill any current GPU (an H100 holds
// 132 x 2048 resident threads), and a test reaches the loop with ~1M elements under the emulation.
constexpr int64_t kMaxBlocks = 4096;

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)); }

__device__ __forceinline__ int64_t first_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float v = x[i];
    y[i] = v > 0.f ? v : 0.f;
  }
}

__global__ void relu_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

__global__ void add_forward_kernel(int64_t n, const float* a, const float* b, float* y, bool relu) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float s = a[i] + b[i];
    y[i] = relu ? (s > 0.f ? s : 0.f) : s;
  }
}

__global__ void add_backward_kernel(int64_t n, const float* y, const float* dy, float* da, float* db, bool relu) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float g = (!relu || y[i] > 0.f) ? dy[i] : 0.f;
    da[i] = g;
    if (db) db[i] = g;
  }
}

__global__ void accumulate_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] += x[i];
}

__global__ void scale_kernel(int64_t n, float a, float* x) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= a;
}

// dst channel a of each sample takes src channel (a % Cg) * G + a / Cg (the shuffle), or with inverse
// (a % G) * Cg + a / G (its backward), Cg = C / G.
__global__ void channel_permute_kernel(int N, int C, int HW, int G, bool inverse, const float* src, float* dst) {
  const int64_t total = int64_t(N) * C * HW;
  const int Cg = C / G;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t q = i / HW, e = i - q * HW, n = q / C;
    const int a = int(q - n * C);
    const int from = inverse ? (a % G) * Cg + a / G : (a % Cg) * G + a / Cg;
    dst[i] = src[(n * C + from) * HW + e];
  }
}

// As global_avg_pool_forward_ref: a double sum over the plane in ascending order, divided by HW in double.
__global__ void global_avg_pool_forward_kernel(int64_t planes, int HW, const float* x, float* y) {
  for (int64_t p = first_index(); p < planes; p += grid_stride()) {
    const float* xp = x + p * HW;
    double s = 0.0;
    for (int i = 0; i < HW; ++i) s += double(xp[i]);
    y[p] = float(s / HW);
  }
}

__global__ void global_avg_pool_backward_kernel(int64_t total, int HW, const float* dy, float* dx) {
  for (int64_t i = first_index(); i < total; i += grid_stride()) dx[i] = float(double(dy[i / HW]) / HW);
}

// s0 + sum over k < n of a[k sa] * b[k sb] in double, ascending k: linear_ref's dot_ref, the one sum of the
// linear layer's forward, dx and dw.
__device__ __forceinline__ double ordered_dot(double s0, const float* a, int64_t sa, const float* b, int64_t sb,
                                              int n) {
  double s = s0;
  for (int k = 0; k < n; ++k) s += double(a[k * sa]) * double(b[k * sb]);
  return s;
}

__global__ void linear_forward_kernel(int N, int IN, int OUT, const float* x, const float* w, const float* b,
                                      float* y) {
  for (int64_t j = first_index(); j < int64_t(N) * OUT; j += grid_stride()) {
    const int64_t n = j / OUT, o = j - n * OUT;
    y[j] = float(ordered_dot(b ? double(b[o]) : 0.0, x + n * IN, 1, w + o * IN, 1, IN));
  }
}

// dx (N, IN) = dy w: dx[n, i] = sum over o of dy[n, o] w[o, i].
__global__ void linear_backward_data_kernel(int N, int IN, int OUT, const float* w, const float* dy, float* dx) {
  for (int64_t j = first_index(); j < int64_t(N) * IN; j += grid_stride()) {
    const int64_t n = j / IN, i = j - n * IN;
    dx[j] = float(ordered_dot(0.0, dy + n * OUT, 1, w + i, IN, OUT));
  }
}

// dw (OUT, IN) = dy^T x: dw[o, i] = sum over n of dy[n, o] x[n, i].
__global__ void linear_backward_weight_kernel(int N, int IN, int OUT, const float* x, const float* dy, float* dw) {
  for (int64_t j = first_index(); j < int64_t(OUT) * IN; j += grid_stride()) {
    const int64_t o = j / IN, i = j - o * IN;
    dw[j] = float(ordered_dot(0.0, dy + o, OUT, x + i, IN, N));
  }
}

__global__ void linear_backward_bias_kernel(int N, int OUT, const float* dy, float* db) {
  for (int64_t o = first_index(); o < OUT; o += grid_stride()) {
    double s = 0.0;
    for (int n = 0; n < N; ++n) s += double(dy[int64_t(n) * OUT + o]);
    db[o] = float(s);
  }
}

// The flat ops' count: >= 0 (0 launches nothing); the pointers must be set when there is work.
bool has_work(const char* op, int64_t n, bool pointers_set) {
  RF_CHECK(n >= 0, "{}: element count must be >= 0 (got {})", op, n);
  RF_CHECK(n == 0 || pointers_set, "{}: null input or output pointer for {} elements", op, n);
  return n > 0;
}

void check_planes(const char* op, int N, int C, int HW) {
  RF_CHECK(N >= 1 && C >= 1 && HW >= 1, "{}(N={},C={},HW={}): N, C and HW must all be >= 1", op, N, C, HW);
}

void check_shuffle(const char* op, int N, int C, int HW, int G, const void* src, const void* dst) {
  check_planes(op, N, C, HW);
  RF_CHECK(G >= 1 && C % G == 0, "{}: groups G={} must be >= 1 and divide C={}", op, G, C);
  RF_CHECK(src && dst, "{}: null input or output pointer", op);
}

void check_linear(const char* op, int N, int IN, int OUT) {
  RF_CHECK(N >= 1 && IN >= 1 && OUT >= 1, "{}(N={},IN={},OUT={}): N, IN and OUT must all be >= 1", op, N, IN,
           OUT);
}

}  // namespace

void relu_forward_cuda(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (!has_work("relu_forward_cuda", n, x && y)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, relu_forward_kernel)(n, x, y);
  CUDA_CHECK(cudaGetLastError());
}

void relu_backward_cuda(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream) {
  if (!has_work("relu_backward_cuda", n, y && dy && dx)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, relu_backward_kernel)(n, y, dy, dx);
  CUDA_CHECK(cudaGetLastError());
}

void add_forward_cuda(int64_t n, const float* a, const float* b, float* y, bool relu, cudaStream_t stream) {
  if (!has_work("add_forward_cuda", n, a && b && y)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, add_forward_kernel)(n, a, b, y, relu);
  CUDA_CHECK(cudaGetLastError());
}

void add_backward_cuda(int64_t n, const float* y, const float* dy, float* da, float* db, bool relu,
                       cudaStream_t stream) {
  if (!has_work("add_backward_cuda", n, (y || !relu) && dy && da)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, add_backward_kernel)(n, y, dy, da, db, relu);
  CUDA_CHECK(cudaGetLastError());
}

void accumulate_cuda(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (!has_work("accumulate_cuda", n, x && y)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, accumulate_kernel)(n, x, y);
  CUDA_CHECK(cudaGetLastError());
}

void scale_cuda(int64_t n, float a, float* x, cudaStream_t stream) {
  if (!has_work("scale_cuda", n, x != nullptr)) return;
  RF_LAUNCH(blocks_for(n), kThreads, 0, stream, scale_kernel)(n, a, x);
  CUDA_CHECK(cudaGetLastError());
}

void channel_shuffle_forward_cuda(int N, int C, int HW, int G, const float* x, float* y, cudaStream_t stream) {
  check_shuffle("channel_shuffle_forward_cuda", N, C, HW, G, x, y);
  RF_LAUNCH(blocks_for(int64_t(N) * C * HW), kThreads, 0, stream, channel_permute_kernel)(N, C, HW, G, false, x, y);
  CUDA_CHECK(cudaGetLastError());
}

void channel_shuffle_backward_cuda(int N, int C, int HW, int G, const float* dy, float* dx, cudaStream_t stream) {
  check_shuffle("channel_shuffle_backward_cuda", N, C, HW, G, dy, dx);
  RF_LAUNCH(blocks_for(int64_t(N) * C * HW), kThreads, 0, stream, channel_permute_kernel)(N, C, HW, G, true, dy,
                                                                                           dx);
  CUDA_CHECK(cudaGetLastError());
}

void global_avg_pool_forward_cuda(int N, int C, int HW, const float* x, float* y, cudaStream_t stream) {
  check_planes("global_avg_pool_forward_cuda", N, C, HW);
  RF_CHECK(x && y, "global_avg_pool_forward_cuda: null x or y");
  const int64_t planes = int64_t(N) * C;
  RF_LAUNCH(blocks_for(planes), kThreads, 0, stream, global_avg_pool_forward_kernel)(planes, HW, x, y);
  CUDA_CHECK(cudaGetLastError());
}

void global_avg_pool_backward_cuda(int N, int C, int HW, const float* dy, float* dx, cudaStream_t stream) {
  check_planes("global_avg_pool_backward_cuda", N, C, HW);
  RF_CHECK(dy && dx, "global_avg_pool_backward_cuda: null dy or dx");
  const int64_t total = int64_t(N) * C * HW;
  RF_LAUNCH(blocks_for(total), kThreads, 0, stream, global_avg_pool_backward_kernel)(total, HW, dy, dx);
  CUDA_CHECK(cudaGetLastError());
}

void linear_forward_cuda(int N, int IN, int OUT, const float* x, const float* w, const float* b, float* y,
                         cudaStream_t stream) {
  check_linear("linear_forward_cuda", N, IN, OUT);
  RF_CHECK(x && w && y, "linear_forward_cuda: null x, w or y");
  RF_LAUNCH(blocks_for(int64_t(N) * OUT), kThreads, 0, stream, linear_forward_kernel)(N, IN, OUT, x, w, b, y);
  CUDA_CHECK(cudaGetLastError());
}

void linear_backward_cuda(int N, int IN, int OUT, const float* x, const float* w, const float* dy, float* dx,
                          float* dw, float* db, cudaStream_t stream) {
  check_linear("linear_backward_cuda", N, IN, OUT);
  RF_CHECK(dy && (!dx || w) && (!dw || x), "linear_backward_cuda: null dy, or null w with dx, or null x with dw");
  if (dx) {
    RF_LAUNCH(blocks_for(int64_t(N) * IN), kThreads, 0, stream, linear_backward_data_kernel)(N, IN, OUT, w, dy, dx);
    CUDA_CHECK(cudaGetLastError());
  }
  if (dw) {
    RF_LAUNCH(blocks_for(int64_t(OUT) * IN), kThreads, 0, stream, linear_backward_weight_kernel)(N, IN, OUT, x, dy,
                                                                                               dw);
    CUDA_CHECK(cudaGetLastError());
  }
  if (db) {
    RF_LAUNCH(blocks_for(OUT), kThreads, 0, stream, linear_backward_bias_kernel)(N, OUT, dy, db);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace rf

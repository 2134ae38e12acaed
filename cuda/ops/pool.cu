// Pooling on the GPU (NL module branches b and c), NCHW, outputs in channel slices (batch stride y_nstride).
// - max pool: one thread per output, the reference's window scan (strict >, so the first maximum wins);
//   backward gathers per input over the windows that contain it, in ascending window order, and adds dy where
//   it is that window's first maximum: the CPU reference's additions in the same order, so dx is bit-exact.
// - mixed average pool: one block per (plane, 16x32 output tile); the block's input region (zero-padded) goes to
//   shared memory, then a row pass (k taps per output column) and a column pass (k taps per output): 2k adds per
//   output instead of k^2 (k up to 11: 22 vs 121). Backward is the adjoint: dy / k^2 staged the same way and
//   box-summed over the windows containing each input.
// Checked by tests/gpu/test_pool_gpu.cpp against host/ops/pool.h's reference.
#include "cuda/ops/pool.h"

#include "cuda/cuda_check.h"

namespace rf {
namespace {

constexpr int kThreads = 256;
constexpr int kTileH = 16, kTileW = 32;  // mixed pool output (forward) / input (backward) tile

__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }  // b > 0
__device__ __forceinline__ int ceil_div(int a, int b) { return -floor_div(-a, b); }

struct PoolArgs {
  int N, C, H, W, OH, OW, k, stride, pad;
  int64_t y_nstride;
};

__global__ void max_pool2d_forward_kernel(PoolArgs a, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t total = int64_t(a.N) * a.C * a.OH * a.OW;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int ow = int(i % a.OW), oh = int((i / a.OW) % a.OH);
    const int64_t nc = i / (int64_t(a.OW) * a.OH);
    const int c = int(nc % a.C), n = int(nc / a.C);
    const float* xp = x + nc * a.H * a.W;
    float best = 0.0f;
    bool any = false;
    for (int kh = 0; kh < a.k; ++kh) {
      const int ih = oh * a.stride - a.pad + kh;
      if (ih < 0 || ih >= a.H) continue;
      for (int kw = 0; kw < a.k; ++kw) {
        const int iw = ow * a.stride - a.pad + kw;
        if (iw < 0 || iw >= a.W) continue;
        const float v = __ldg(xp + int64_t(ih) * a.W + iw);
        if (!any || v > best) best = v, any = true;
      }
    }
    y[int64_t(n) * a.y_nstride + (int64_t(c) * a.OH + oh) * a.OW + ow] = best;
  }
}

// Flat index (ih * W + iw) of window (oh, ow)'s first maximum, as the reference's max_window_argmax.
__device__ int max_window_argmax(const PoolArgs& a, const float* __restrict__ xp, int oh, int ow) {
  int arg = -1;
  float best = 0.0f;
  for (int kh = 0; kh < a.k; ++kh) {
    const int ih = oh * a.stride - a.pad + kh;
    if (ih < 0 || ih >= a.H) continue;
    for (int kw = 0; kw < a.k; ++kw) {
      const int iw = ow * a.stride - a.pad + kw;
      if (iw < 0 || iw >= a.W) continue;
      const float v = __ldg(xp + ih * a.W + iw);
      if (arg < 0 || v > best) best = v, arg = ih * a.W + iw;
    }
  }
  return arg;
}

__global__ void max_pool2d_backward_kernel(PoolArgs a, const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dx) {
  const int64_t total = int64_t(a.N) * a.C * a.H * a.W;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int iw = int(i % a.W), ih = int((i / a.W) % a.H);
    const int64_t nc = i / (int64_t(a.W) * a.H);
    const int c = int(nc % a.C), n = int(nc / a.C);
    const float* xp = x + nc * a.H * a.W;
    const float* dyp = dy + int64_t(n) * a.y_nstride + int64_t(c) * a.OH * a.OW;
    // Windows containing ih: oh * s - p <= ih <= oh * s - p + k - 1.
    const int oh_lo = max(0, ceil_div(ih + a.pad - a.k + 1, a.stride));
    const int oh_hi = min(a.OH - 1, floor_div(ih + a.pad, a.stride));
    const int ow_lo = max(0, ceil_div(iw + a.pad - a.k + 1, a.stride));
    const int ow_hi = min(a.OW - 1, floor_div(iw + a.pad, a.stride));
    const int me = ih * a.W + iw;
    float g = 0.0f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
      for (int ow = ow_lo; ow <= ow_hi; ++ow)
        if (max_window_argmax(a, xp, oh, ow) == me) g += __ldg(dyp + oh * a.OW + ow);
    dx[i] = g;
  }
}

struct MixedArgs {
  int N, C, H, W, OH, OW, stride;
  int tiles_h, tiles_w;
  int64_t y_nstride;
};

// Group of channel c: group_begin(j) = 0 for j = 0, C % 5 + j * (C / 5) otherwise.
__device__ __forceinline__ int mixed_kernel_size(int C, int c) {
  const int q = C / 5, r = C % 5;
  const int j = c < r + q ? 0 : (c - r) / q;
  return 3 + 2 * j;
}

// The block's (n, c) plane, its mixed kernel size and its tile (row, col in tiles): blocks run over planes, then
// tiles within a plane, in both kernels.
struct MixedTile {
  int64_t plane;
  int c, n, k, row, col;
};
__device__ __forceinline__ MixedTile mixed_tile(const MixedArgs& a) {
  const int tiles = a.tiles_h * a.tiles_w;
  const int64_t plane = blockIdx.x / tiles;
  const int tile = int(blockIdx.x - plane * tiles);
  const int c = int(plane % a.C);
  return {plane, c, int(plane / a.C), mixed_kernel_size(a.C, c), tile / a.tiles_w, tile % a.tiles_w};
}

// Per block: one (n, c) plane's 16x32 output tile. Shared: region (RH x RW) then row sums (RH x kTileW), sized by
// the launcher for k = 11.
__global__ void mixed_avg_pool_forward_kernel(MixedArgs a, const float* __restrict__ x, float* __restrict__ y) {
  RF_DYNAMIC_SHARED(float, smem);
  const MixedTile t = mixed_tile(a);
  const int64_t plane = t.plane;
  const int c = t.c, n = t.n, k = t.k, p = k / 2, s = a.stride;
  const int oh0 = t.row * kTileH, ow0 = t.col * kTileW;
  const int RH = (kTileH - 1) * s + k, RW = (kTileW - 1) * s + k;
  const int ih0 = oh0 * s - p, iw0 = ow0 * s - p;
  float* in_s = smem;                // (RH, RW)
  float* hs = smem + RH * RW;        // (RH, kTileW)
  const float* xp = x + plane * a.H * a.W;
  for (int i = threadIdx.x; i < RH * RW; i += blockDim.x) {
    const int r = i / RW, q = i - r * RW, ih = ih0 + r, iw = iw0 + q;
    in_s[i] = (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W) ? __ldg(xp + int64_t(ih) * a.W + iw) : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < RH * kTileW; i += blockDim.x) {
    const int r = i / kTileW, tw = i - r * kTileW;
    const float* row = in_s + r * RW + tw * s;
    float sum = 0.0f;
    for (int kw = 0; kw < k; ++kw) sum += row[kw];
    hs[i] = sum;
  }
  __syncthreads();
  const float kk = float(k * k);
  float* yp = y + int64_t(n) * a.y_nstride + int64_t(c) * a.OH * a.OW;
  for (int i = threadIdx.x; i < kTileH * kTileW; i += blockDim.x) {
    const int th = i / kTileW, tw = i - th * kTileW, oh = oh0 + th, ow = ow0 + tw;
    if (oh >= a.OH || ow >= a.OW) continue;
    float sum = 0.0f;
    for (int kh = 0; kh < k; ++kh) sum += hs[(th * s + kh) * kTileW + tw];
    float v = sum / kk;                                          // count_include_pad: k^2 always
    if (s == 1) v -= in_s[(th + p) * RW + tw + p];               // stride 1: pooled - x (x[oh][ow])
    yp[int64_t(oh) * a.OW + ow] = v;
  }
}

// Per block: one (n, c) plane's 16x32 input tile of dx. The dy rows/columns of windows touching the tile
// (at most (16 + k - 2) / s + 2 of them) are staged as dy / k^2, then box-summed like the forward.
__global__ void mixed_avg_pool_backward_kernel(MixedArgs a, int GRmax, int GCmax, const float* __restrict__ dy,
                                               float* __restrict__ dx) {
  RF_DYNAMIC_SHARED(float, smem);
  const MixedTile t = mixed_tile(a);
  const int64_t plane = t.plane;
  const int c = t.c, n = t.n, k = t.k, p = k / 2, s = a.stride;
  const int ih0 = t.row * kTileH, iw0 = t.col * kTileW;
  const int oh_lo = ceil_div(ih0 + p - k + 1, s), oh_hi = floor_div(ih0 + kTileH - 1 + p, s);
  const int ow_lo = ceil_div(iw0 + p - k + 1, s), ow_hi = floor_div(iw0 + kTileW - 1 + p, s);
  const int GR = oh_hi - oh_lo + 1, GC = ow_hi - ow_lo + 1;  // <= GRmax, GCmax (launcher's bound)
  float* g_s = smem;                 // (GRmax, GCmax)
  float* hs = smem + GRmax * GCmax;  // (GRmax, kTileW)
  const float* dyp = dy + int64_t(n) * a.y_nstride + int64_t(c) * a.OH * a.OW;
  const float kk = float(k * k);
  for (int i = threadIdx.x; i < GR * GC; i += blockDim.x) {
    const int r = i / GC, q = i - r * GC, oh = oh_lo + r, ow = ow_lo + q;
    g_s[r * GCmax + q] = (oh >= 0 && oh < a.OH && ow >= 0 && ow < a.OW) ? __ldg(dyp + int64_t(oh) * a.OW + ow) / kk
                                                                        : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < GR * kTileW; i += blockDim.x) {
    const int r = i / kTileW, tw = i - r * kTileW, iw = iw0 + tw;
    const int lo = ceil_div(iw + p - k + 1, s) - ow_lo, hi = floor_div(iw + p, s) - ow_lo;
    float sum = 0.0f;
    for (int q = lo; q <= hi; ++q) sum += g_s[r * GCmax + q];
    hs[r * kTileW + tw] = sum;
  }
  __syncthreads();
  float* dxp = dx + plane * a.H * a.W;
  for (int i = threadIdx.x; i < kTileH * kTileW; i += blockDim.x) {
    const int th = i / kTileW, tw = i - th * kTileW, ih = ih0 + th, iw = iw0 + tw;
    if (ih >= a.H || iw >= a.W) continue;
    const int lo = ceil_div(ih + p - k + 1, s) - oh_lo, hi = floor_div(ih + p, s) - oh_lo;
    float sum = 0.0f;
    for (int r = lo; r <= hi; ++r) sum += hs[r * kTileW + tw];
    if (s == 1) sum -= __ldg(dyp + int64_t(ih) * a.OW + iw);  // the "- x" term (OH == H at stride 1)
    dxp[int64_t(ih) * a.W + iw] = sum;
  }
}

unsigned grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return unsigned(blocks < (int64_t(1) << 20) ? blocks : (int64_t(1) << 20));  // grid-stride beyond
}

PoolArgs pool_args(const Pool2dShape& s) {
  return PoolArgs{s.N, s.C, s.H, s.W, s.OH(), s.OW(), s.k, s.stride, s.pad, s.y_batch_stride()};
}

MixedArgs mixed_args(const MixedPoolShape& s, int tile_rows_of, int tile_cols_of) {
  MixedArgs a{s.N, s.C, s.H, s.W, s.OH(), s.OW(), s.stride, 0, 0, s.y_batch_stride()};
  a.tiles_h = (tile_rows_of + kTileH - 1) / kTileH;
  a.tiles_w = (tile_cols_of + kTileW - 1) / kTileW;
  return a;
}

constexpr int kMaxMixedK = 11;
constexpr size_t kSmemLimit = 48 * 1024;  // the default dynamic shared-memory limit, no opt-in needed

}  // namespace

void max_pool2d_forward_cuda(const Pool2dShape& s, const float* x, float* y, cudaStream_t stream) {
  s.validate();
  RF_CHECK(x != nullptr && y != nullptr, "max_pool2d_forward_cuda: {}: null x or y", s.str());
  RF_LAUNCH(grid_for(int64_t(s.N) * s.C * s.OH() * s.OW()), kThreads, 0, stream, max_pool2d_forward_kernel)(
      pool_args(s), x, y);
  CUDA_CHECK(cudaGetLastError());
}

void max_pool2d_backward_cuda(const Pool2dShape& s, const float* x, const float* dy, float* dx, cudaStream_t stream) {
  s.validate();
  RF_CHECK(x != nullptr && dy != nullptr && dx != nullptr, "max_pool2d_backward_cuda: {}: null pointer", s.str());
  RF_CHECK(int64_t(s.H) * s.W < (int64_t(1) << 31), "max_pool2d_backward_cuda: {}: plane too large", s.str());
  RF_LAUNCH(grid_for(int64_t(s.N) * s.C * s.H * s.W), kThreads, 0, stream, max_pool2d_backward_kernel)(
      pool_args(s), x, dy, dx);
  CUDA_CHECK(cudaGetLastError());
}

void mixed_avg_pool_forward_cuda(const MixedPoolShape& s, const float* x, float* y, cudaStream_t stream) {
  s.validate();
  RF_CHECK(x != nullptr && y != nullptr, "mixed_avg_pool_forward_cuda: {}: null x or y", s.str());
  const MixedArgs a = mixed_args(s, s.OH(), s.OW());
  const int RH = (kTileH - 1) * s.stride + kMaxMixedK, RW = (kTileW - 1) * s.stride + kMaxMixedK;
  const size_t smem = size_t(RH) * (RW + kTileW) * sizeof(float);
  RF_CHECK(smem <= kSmemLimit, "mixed_avg_pool_forward_cuda: {}: stride {} needs {} bytes of shared memory, "
           "more than {}", s.str(), s.stride, smem, kSmemLimit);
  const int64_t blocks = int64_t(s.N) * s.C * a.tiles_h * a.tiles_w;
  RF_CHECK(blocks < (int64_t(1) << 31), "mixed_avg_pool_forward_cuda: {}: {} blocks exceed the grid", s.str(), blocks);
  RF_LAUNCH(unsigned(blocks), kThreads, smem, stream, mixed_avg_pool_forward_kernel)(a, x, y);
  CUDA_CHECK(cudaGetLastError());
}

void mixed_avg_pool_backward_cuda(const MixedPoolShape& s, const float* dy, float* dx, cudaStream_t stream) {
  s.validate();
  RF_CHECK(dy != nullptr && dx != nullptr, "mixed_avg_pool_backward_cuda: {}: null dy or dx", s.str());
  const MixedArgs a = mixed_args(s, s.H, s.W);
  const int GRmax = (kTileH + kMaxMixedK - 2) / s.stride + 2, GCmax = (kTileW + kMaxMixedK - 2) / s.stride + 2;
  const size_t smem = (size_t(GRmax) * GCmax + size_t(GRmax) * kTileW) * sizeof(float);
  RF_CHECK(smem <= kSmemLimit, "mixed_avg_pool_backward_cuda: {}: needs {} bytes of shared memory", s.str(), smem);
  const int64_t blocks = int64_t(s.N) * s.C * a.tiles_h * a.tiles_w;
  RF_CHECK(blocks < (int64_t(1) << 31), "mixed_avg_pool_backward_cuda: {}: {} blocks exceed the grid", s.str(),
           blocks);
  RF_LAUNCH(unsigned(blocks), kThreads, smem, stream, mixed_avg_pool_backward_kernel)(a, GRmax, GCmax, dy, dx);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

// Direct CUDA convolutions (cuda/ops/conv.h): forward (+ bias), input gradient, weight (+ bias) gradient, NCHW,
// groups, stride, padding, y / dy in a channel slice (batch stride s.y_batch_stride()). The FALLBACK of the GPU
// model path: what runs where cuDNN is absent (the CUDA emulation in CI, a build without cuDNN) and the twin
// that cuDNN's results are checked against on a device; cuDNN (cuda/cudnn_ops.h) is the fast path.
//
// Precision: the reference (host/ops/conv_ref.cpp) accumulates in double and rounds once to float, for T = float
// too. These kernels do the same, in the same order: a product of two floats is exact in double (24 + 24 < 53
// significand bits), so every addition is the reference's addition, whether or not the compiler contracts it
// into a DFMA (-fmad true or false). Forward and input gradient are therefore bit-identical to
// conv2d_*_ref<float> on any device and under any launch shape. The price, estimated (not measured): two
// float -> double conversions per multiply-add, which sm_90 issues at 16 per clock per SM, cap these loops at
// ~8 multiply-adds per clock per SM, half of what their two loads per multiply-add would allow in float (DFMA
// itself runs at half the FP32 rate on an H100/H200); on GPUs with slow FP64 (1/64 rate) the cap is lower.
// - forward: one thread per output (grid-stride), sum over (c, kh, kw) in the reference's order, bias first.
// - input gradient: one thread per input element gathering over (o, kh, kw) of the outputs that read it (only
//   the taps with kh = ih + pad (mod stride): the reference's ascending order without its skipped taps); dx
//   is overwritten, no atomics.
// - weight gradient: `lanes` threads per weight element (a power of two, ~32 positions each, from the shape:
//   weight_grad_lanes), each summing a fixed strided share of the N*OH*OW positions in double, then a
//   fixed-order tree reduction over the lanes in shared memory (as bias_grad_kernel, cuda/ops/bias.cu): the same
//   bits on every run, within one float rounding of the exact sum (the reference adds in another order). Few
//   positions per weight give one thread per weight (the emulation runs ResNet-18's 11M weights as 11M threads,
//   not 11M blocks). db through bias_grad_cuda. Napkin math (not measured), ResNet-18 CIFAR layer4 3x3 at batch
//   256: 2.4M weights x 128 lanes, 32 positions per lane: ~10 ms per conv on an H100, against a fraction of a
//   millisecond for cuDNN (19 GFLOP): the fallback, not the fast path.
// Checked by tests/gpu/test_conv_gpu.cpp (emulated in CI under label gpu-emu, on a device under gpu).
#include "cuda/ops/conv.h"

#include <algorithm>
#include <climits>

#include "cuda/cuda_check.h"
#include "cuda/ops/bias.h"
#include "host/core/check.h"

namespace rf {
namespace {

constexpr int kThreads = 256;        // forward / input-gradient blocks (grid-stride)
constexpr int kWeightThreads = 256;  // weight-gradient blocks: a power of two (the tree reduction halves it)

struct ConvArgs {
  int N, C, H, W, K, k, stride, pad;
  int Cg, Kg, OH, OW;  // channels per group (input, output); output size
  int64_t ys;          // batch stride of y / dy
};

ConvArgs conv_args(const Conv2dShape& s) {
  return ConvArgs{s.N, s.C, s.H, s.W, s.K, s.k, s.stride, s.pad, s.C / s.groups, s.K / s.groups,
                  s.OH(), s.OW(), s.y_batch_stride()};
}

// The (n, c, h, w) of flat index i of an (N, C, H, W) tensor.
struct Nchw {
  int n, c, h, w;
};
__device__ __forceinline__ Nchw unflatten(int64_t i, int C, int H, int W) {
  const int64_t nch = i / W, nc = nch / H;
  return Nchw{int(nc / C), int(nc % C), int(nch % H), int(i % W)};
}

// y[n, ko, oh, ow] = b[ko] + sum_{c, kh, kw} x[n, g*Cg + c, oh*s - p + kh, ow*s - p + kw] w[ko, c, kh, kw].
__global__ void __launch_bounds__(kThreads) conv2d_forward_kernel(ConvArgs a, const float* __restrict__ x,
                                                                  const float* __restrict__ w,
                                                                  const float* __restrict__ b, float* __restrict__ y) {
  const int64_t total = int64_t(a.N) * a.K * a.OH * a.OW, plane = int64_t(a.H) * a.W, kk = int64_t(a.k) * a.k;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const Nchw o = unflatten(i, a.K, a.OH, a.OW);
    const int n = o.n, ko = o.c, oh = o.h, ow = o.w, g = ko / a.Kg;
    const int ih0 = oh * a.stride - a.pad, iw0 = ow * a.stride - a.pad;
    const float* xg = x + (int64_t(n) * a.C + int64_t(g) * a.Cg) * plane;
    const float* wk = w + int64_t(ko) * a.Cg * kk;
    double acc = b ? double(__ldg(b + ko)) : 0.0;
    for (int c = 0; c < a.Cg; ++c) {
      const float* xc = xg + int64_t(c) * plane;
      const float* wc = wk + int64_t(c) * kk;
      for (int kh = 0; kh < a.k; ++kh) {
        const int ih = ih0 + kh;
        if (ih < 0 || ih >= a.H) continue;
        for (int kw = 0; kw < a.k; ++kw) {
          const int iw = iw0 + kw;
          if (iw < 0 || iw >= a.W) continue;
          acc += double(__ldg(xc + int64_t(ih) * a.W + iw)) * double(__ldg(wc + int64_t(kh) * a.k + kw));
        }
      }
    }
    y[int64_t(n) * a.ys + (int64_t(ko) * a.OH + oh) * a.OW + ow] = float(acc);
  }
}

// dx[n, ci, ih, iw] = sum_{o, kh, kw: oh*s - p + kh = ih, ow*s - p + kw = iw} dy[n, g*Kg + o, oh, ow] w[., c, kh, kw].
__global__ void __launch_bounds__(kThreads) conv2d_backward_data_kernel(ConvArgs a, const float* __restrict__ dy,
                                                                        const float* __restrict__ w,
                                                                        float* __restrict__ dx) {
  const int64_t total = int64_t(a.N) * a.C * a.H * a.W, oplane = int64_t(a.OH) * a.OW, kk = int64_t(a.k) * a.k;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const Nchw in = unflatten(i, a.C, a.H, a.W);
    const int n = in.n, ci = in.c, ih = in.h, iw = in.w, g = ci / a.Cg, c = ci - g * a.Cg;
    const int th = ih + a.pad, tw = iw + a.pad;  // = oh*s + kh, ow*s + kw for the taps that read (ih, iw)
    const int kh0 = th % a.stride, kw0 = tw % a.stride;
    const float* dyn = dy + int64_t(n) * a.ys;
    double acc = 0.0;
    for (int o = 0; o < a.Kg; ++o) {
      const int64_t ko = int64_t(g) * a.Kg + o;
      const float* dyk = dyn + ko * oplane;
      const float* wk = w + (ko * a.Cg + c) * kk;
      for (int kh = kh0; kh < a.k && kh <= th; kh += a.stride) {
        const int oh = (th - kh) / a.stride;
        if (oh >= a.OH) continue;
        for (int kw = kw0; kw < a.k && kw <= tw; kw += a.stride) {
          const int ow = (tw - kw) / a.stride;
          if (ow >= a.OW) continue;
          acc += double(__ldg(dyk + int64_t(oh) * a.OW + ow)) * double(__ldg(wk + int64_t(kh) * a.k + kw));
        }
      }
    }
    dx[i] = float(acc);
  }
}

// dw[e] for e = ((ko * Cg + c) * k + kh) * k + kw: the sum over (n, oh, ow) of dy[n, ko, oh, ow] x[n, g*Cg + c,
// oh*s - p + kh, ow*s - p + kw]. Each weight gets `lanes` threads (a power of two <= kWeightThreads, chosen by the
// launcher from the positions per weight), a block holds kWeightThreads / lanes weights. Lane l takes positions
// l, l + lanes, l + 2 lanes, ... of the flattened (n, oh, ow), stepping its (n, oh, ow) without divisions; then a
// fixed-order tree over the weight's lanes in shared memory.
__global__ void __launch_bounds__(kWeightThreads) conv2d_backward_weight_kernel(ConvArgs a, int lanes,
                                                                               int64_t weights,
                                                                               const float* __restrict__ x,
                                                                               const float* __restrict__ dy,
                                                                               float* __restrict__ dw) {
  RF_SHARED(double, part, [kWeightThreads]);
  const int t = threadIdx.x, lane = t % lanes;
  const int64_t e = int64_t(blockIdx.x) * (kWeightThreads / lanes) + t / lanes;
  double sum = 0.0;
  if (e < weights) {
    const int kw = int(e % a.k), kh = int((e / a.k) % a.k), c = int((e / (int64_t(a.k) * a.k)) % a.Cg);
    const int64_t ko = e / (int64_t(a.k) * a.k * a.Cg);
    const int g = int(ko / a.Kg);
    const int64_t plane = int64_t(a.H) * a.W, oplane = int64_t(a.OH) * a.OW;
    const float* xc = x + (int64_t(g) * a.Cg + c) * plane;
    const float* dyk = dy + ko * oplane;
    // Start (n, oh, ow) = position `lane`; step = `lanes` positions = (sn, soh, sow).
    int ow = lane % a.OW, oh = (lane / a.OW) % a.OH;
    int64_t n = lane / oplane;
    const int sow = lanes % a.OW, soh = (lanes / a.OW) % a.OH;
    const int64_t sn = lanes / oplane;
    for (; n < a.N;) {
      const int ih = oh * a.stride - a.pad + kh, iw = ow * a.stride - a.pad + kw;
      if (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W)
        sum += double(__ldg(dyk + n * a.ys + int64_t(oh) * a.OW + ow)) *
               double(__ldg(xc + n * a.C * plane + int64_t(ih) * a.W + iw));
      ow += sow;
      oh += soh;
      if (ow >= a.OW) ow -= a.OW, ++oh;
      n += sn;
      if (oh >= a.OH) oh -= a.OH, ++n;
    }
  }
  part[t] = sum;
  __syncthreads();
  for (int half = lanes / 2; half > 0; half /= 2) {
    if (lane < half) part[t] += part[t + half];
    __syncthreads();
  }
  if (lane == 0 && e < weights) dw[e] = float(part[t]);
}

// Lanes per weight: about 32 positions per lane, a power of two in 1..kWeightThreads. Few positions (a small
// batch, the last stage's 4x4 planes) give one lane per weight and no idle threads; a large batch gives up to a
// whole block per weight. Fixed by the shape, so a shape's bits are the same on every run.
int weight_grad_lanes(const Conv2dShape& s) {
  const int64_t positions = int64_t(s.N) * s.OH() * s.OW();
  int lanes = 1;
  while (lanes < kWeightThreads && int64_t(lanes) * 2 * 32 <= positions) lanes *= 2;
  return lanes;
}

unsigned grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(1) << 20)));  // grid-stride beyond
}

// The shape's own checks, then what the kernels need beyond them: ints for every row / column coordinate
// (ih = oh*s - p + kh stays within -pad .. H + pad) and one block per weight element within grid.x.
void check_shape(const Conv2dShape& s, const char* who) {
  RF_CHECK(int64_t(s.H) + 2 * int64_t(s.pad) <= INT_MAX && int64_t(s.W) + 2 * int64_t(s.pad) <= INT_MAX,
           "{}: {}: H + 2*pad or W + 2*pad exceeds {} (the kernels' int coordinates)", who, s.str(), INT_MAX);
  s.validate();
  RF_CHECK(s.weight_numel() <= INT_MAX, "{}: {}: {} weights exceed the grid's {} blocks (at most one per weight)",
           who, s.str(), s.weight_numel(), INT_MAX);
}

}  // namespace

void conv2d_forward_cuda(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                         cudaStream_t stream) {
  check_shape(s, "conv2d_forward_cuda");
  RF_CHECK(x != nullptr && w != nullptr && y != nullptr, "conv2d_forward_cuda: {}: null x, w or y", s.str());
  const int64_t total = int64_t(s.N) * s.K * s.OH() * s.OW();
  RF_LAUNCH(grid_for(total), kThreads, 0, stream, conv2d_forward_kernel)(conv_args(s), x, w, b, y);
  CUDA_CHECK(cudaGetLastError());
}

void conv2d_backward_data_cuda(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                               cudaStream_t stream) {
  check_shape(s, "conv2d_backward_data_cuda");
  RF_CHECK(dy != nullptr && w != nullptr && dx != nullptr, "conv2d_backward_data_cuda: {}: null dy, w or dx",
           s.str());
  const int64_t total = int64_t(s.N) * s.C * s.H * s.W;
  RF_LAUNCH(grid_for(total), kThreads, 0, stream, conv2d_backward_data_kernel)(conv_args(s), dy, w, dx);
  CUDA_CHECK(cudaGetLastError());
}

void conv2d_backward_weight_cuda(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db,
                                 cudaStream_t stream) {
  check_shape(s, "conv2d_backward_weight_cuda");
  RF_CHECK(x != nullptr && dy != nullptr && dw != nullptr, "conv2d_backward_weight_cuda: {}: null x, dy or dw",
           s.str());
  const int lanes = weight_grad_lanes(s), per_block = kWeightThreads / lanes;
  const int64_t blocks = (s.weight_numel() + per_block - 1) / per_block;
  RF_LAUNCH(unsigned(blocks), kWeightThreads, 0, stream, conv2d_backward_weight_kernel)(conv_args(s), lanes,
                                                                                       s.weight_numel(), x, dy, dw);
  CUDA_CHECK(cudaGetLastError());
  if (db) bias_grad_cuda(s, dy, db, stream);
}

}  // namespace rf

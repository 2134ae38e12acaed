// Seeded 3x3 conv on the GPU (NL module branch a): forward (+ fused ReLU) and input gradient, NCHW, any groups.
// Each block owns a tile of TC channels x blockDim.x positions (flattened over N*OH*OW, so the small late-stage
// maps of a batch still fill a block) and, per chunk of input channels, first builds the weights it needs in
// shared memory: regenerated from (seed, index) with the shared RF_HD Philox text (one seeded_normal4 call per
// 4 consecutive weights, times the layer's std with one rounded multiply, exactly as the CPU's
// seeded_normal_fill), or copied from materialised weights (kRegen = false: the same kernel otherwise).
// Weight i's bits depend on (seed, i) only, never on the tile: tests/gpu/test_seeded_conv_gpu.cpp hashes the
// tiles of several launch shapes against the CPU, and compares forward / backward with the CPU reference.
//
// Napkin math, forward: a position tile is 256 positions x TC channels x Cg_in x 9 MACs against TC x Cg_in x 9
// weights, so a regenerated weight is used 256 times per tile; a Philox call (10 rounds, 2 logs, 2 sincos, ~250
// instructions) makes 4 weights: ~0.25 instruction of regeneration per MAC if rebuilt per tile. Blocks therefore
// loop over several position tiles (about 8 blocks per SM in all) and build their tile once when a group's input
// channels fit one chunk (every NL layer: Cg_in <= 2), cutting that by the tiles per block (~4 for the dw layers
// at batch 256, ~50 for the 768 ones). The convs are memory-bound (dw: 9 MACs per 8 bytes of x and y).
// x is read through L1 (the 3x3 halo reuse), not staged.
#include "cuda/ops/seeded_conv.h"

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/ops/seeded_weights.h"
#include "host/core/philox.h"

namespace rf {
namespace {

constexpr int kTaps = 9;  // 3x3
// At TC = 32 the forward holds ~150 registers per thread (ptxas, sm_90): 256 threads x 150 fits the SM's 64K
// registers, 1024 would not launch. __launch_bounds__(256, 1) caps registers at 255 (a fit) without pushing
// ptxas to trade registers for occupancy (plain __launch_bounds__(256) made it spill, nvcc 13.0).
constexpr int kMaxThreads = 256;

struct ConvArgs {
  int N, C_in, H, W, C_out, OH, OW, stride, pad;
  int Cg_in, Cg_out;  // channels per group
  int chunk;          // forward: input channels (per group) per weight tile; backward: output channels
  int64_t y_nstride;
  uint64_t seed;
  float sigma;
  bool relu;
};

// Fills w_s[r * L + i] = weight(start(r) + i) for rows r < R, i < L. Regenerating: one work item per Philox
// block touching a row (at most (L + 2) / 4 + 1 of them: a row of L weights starting anywhere), each keeps the
// normals of its block that fall inside the row. Blocks shared by two adjacent rows are computed twice; rows
// are long (forward: merged into one row whenever the chunk covers whole groups) except in the backward's
// 9-weight rows. All threads of the block must call it (it has no barrier itself).
template <bool kRegen, typename StartOf>
__device__ void load_weight_rows(float* w_s, int R, int L, StartOf start_of, const ConvArgs& a,
                                 const float* __restrict__ w) {
  if (kRegen) {
    const int nb = (L + 2) / 4 + 1;
    for (int item = threadIdx.x; item < R * nb; item += blockDim.x) {
      const int r = item / nb, jb = item - r * nb;
      const int64_t s = start_of(r);
      const int64_t b = (s >> 2) + jb, lo = 4 * b;
      if (lo >= s + L) continue;
      float z[4];
      seeded_normal4(a.seed, uint64_t(b), z);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int64_t idx = lo + q;
        if (idx >= s && idx < s + L) w_s[r * L + int(idx - s)] = __fmul_rn(a.sigma, z[q]);  // CPU: sigma * z
      }
    }
  } else {
    for (int item = threadIdx.x; item < R * L; item += blockDim.x) {
      const int r = item / L, i = item - r * L;
      w_s[item] = __ldg(w + start_of(r) + i);
    }
  }
}

// Forward tile rows: row t = output channel co0 + t, its weights [cl0, cl0 + cn) x 9 of (C_out, Cg_in, 3, 3).
struct ForwardRows {
  int64_t first, step;
  __device__ int64_t operator()(int r) const { return first + int64_t(r) * step; }
};

template <bool kRegen>
__device__ void load_forward_tile(float* w_s, int co0, int tc, int cl0, int cn, const ConvArgs& a,
                                  const float* __restrict__ w) {
  const int64_t per_co = int64_t(a.Cg_in) * kTaps;
  const ForwardRows rows{int64_t(co0) * per_co + int64_t(cl0) * kTaps, per_co};
  if (cn == a.Cg_in)  // the tile is one contiguous range of the weight tensor: one long row, 4 weights a call
    load_weight_rows<kRegen>(w_s, 1, tc * cn * kTaps, rows, a, w);
  else
    load_weight_rows<kRegen>(w_s, tc, cn * kTaps, rows, a, w);
}

// y[n, co, oh, ow] = [relu](sum_{ci in group(co), kh, kw} w[co, ci, kh, kw] x[n, ci, oh*s - p + kh, ow*s - p + kw]).
// Grid: y = channel tiles of TC; x = blocks that stride over the position tiles of blockDim.x, so that one weight
// tile serves several position tiles when the whole group fits one chunk (every NL layer: Cg_in <= 2).
// Shared: TC * chunk * 9 floats.
template <int TC, bool kRegen>
__global__ void __launch_bounds__(kMaxThreads, 1)
    seeded_conv3x3_forward_kernel(ConvArgs a, const float* __restrict__ x, const float* __restrict__ w,
                                  float* __restrict__ y) {
  RF_DYNAMIC_SHARED(float, w_s);
  const int64_t plane = int64_t(a.OH) * a.OW, M = int64_t(a.N) * plane;
  const int64_t tiles = (M + blockDim.x - 1) / blockDim.x;
  const int co0 = blockIdx.y * TC, tc = min(TC, a.C_out - co0);
  const bool one_chunk = a.chunk >= a.Cg_in;

  int ci_base[TC];  // first input channel of output channel co0 + t's group
#pragma unroll
  for (int t = 0; t < TC; ++t) ci_base[t] = ((co0 + min(t, tc - 1)) / a.Cg_out) * a.Cg_in;

  if (one_chunk) {  // the block's whole weight tile, built once for all its position tiles
    load_forward_tile<kRegen>(w_s, co0, tc, 0, a.Cg_in, a, w);
    __syncthreads();
  }
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {  // uniform per block: barriers are safe
    const int64_t m = tile * blockDim.x + threadIdx.x;
    const bool active = m < M;
    const int n = active ? int(m / plane) : 0;
    const int rem = active ? int(m - int64_t(n) * plane) : 0;
    const int oh = rem / a.OW, ow = rem - (rem / a.OW) * a.OW;
    float acc[TC];
#pragma unroll
    for (int t = 0; t < TC; ++t) acc[t] = 0.0f;
    const float* xn = x + int64_t(n) * a.C_in * a.H * a.W;
    const int ih0 = oh * a.stride - a.pad, iw0 = ow * a.stride - a.pad;
    for (int cl0 = 0; cl0 < a.Cg_in; cl0 += a.chunk) {
      const int cn = min(a.chunk, a.Cg_in - cl0);
      if (!one_chunk) {
        __syncthreads();  // the previous chunk's tile is no longer read
        load_forward_tile<kRegen>(w_s, co0, tc, cl0, cn, a, w);
        __syncthreads();
      }
      if (!active) continue;
      for (int cl = 0; cl < cn; ++cl) {
        float xv[kTaps];
        int loaded = -1;  // input channel held in xv: adjacent channels of one group share it
#pragma unroll
        for (int t = 0; t < TC; ++t) {
          if (t < tc) {
            const int ci = ci_base[t] + cl0 + cl;
            if (ci != loaded) {
              const float* xc = xn + int64_t(ci) * a.H * a.W;
#pragma unroll
              for (int kh = 0; kh < 3; ++kh)
#pragma unroll
                for (int kw = 0; kw < 3; ++kw) {
                  const int ih = ih0 + kh, iw = iw0 + kw;
                  xv[kh * 3 + kw] =
                      (ih >= 0 && ih < a.H && iw >= 0 && iw < a.W) ? __ldg(xc + int64_t(ih) * a.W + iw) : 0.0f;
                }
              loaded = ci;
            }
            const float* ws = w_s + (t * cn + cl) * kTaps;
#pragma unroll
            for (int kk = 0; kk < kTaps; ++kk) acc[t] = __fmaf_rn(ws[kk], xv[kk], acc[t]);
          }
        }
      }
    }
    if (!active) continue;
    float* yp = y + int64_t(n) * a.y_nstride + rem;
#pragma unroll
    for (int t = 0; t < TC; ++t)
      if (t < tc) yp[int64_t(co0 + t) * plane] = a.relu ? fmaxf(acc[t], 0.0f) : acc[t];
  }
}

// Backward tile rows: row r = (t, jl) with t = r / jn: input channel ci0 + t, output channel j0 + jl of its group;
// the 9 weights w[co, cil, :, :].
struct BackwardRows {
  int ci0, jn, j0, Cg_in, Cg_out;
  __device__ int64_t operator()(int r) const {
    const int t = r / jn, jl = r - t * jn;
    const int ci = ci0 + t, g = ci / Cg_in, cil = ci - g * Cg_in;
    return ((int64_t(g) * Cg_out + j0 + jl) * Cg_in + cil) * kTaps;
  }
};

// dx[n, ci, ih, iw] = sum_{co in group(ci), kh, kw: oh*s - p + kh = ih, ow*s - p + kw = iw}
//                     w[co, cil, kh, kw] dy[n, co, oh, ow] [y > 0].
// Grid: y = input-channel tiles of TC; x = blocks striding over input-position tiles (as the forward).
// Shared: TC * chunk * 9 floats.
template <int TC, bool kRegen>
__global__ void __launch_bounds__(kMaxThreads, 1)
    seeded_conv3x3_backward_data_kernel(ConvArgs a, const float* __restrict__ y, const float* __restrict__ dy,
                                        const float* __restrict__ w, float* __restrict__ dx) {
  RF_DYNAMIC_SHARED(float, w_s);
  const int64_t plane = int64_t(a.H) * a.W, M = int64_t(a.N) * plane, oplane = int64_t(a.OH) * a.OW;
  const int64_t tiles = (M + blockDim.x - 1) / blockDim.x;
  const int ci0 = blockIdx.y * TC, tc = min(TC, a.C_in - ci0);
  const bool one_chunk = a.chunk >= a.Cg_out;

  int co_base[TC];  // first output channel of input channel ci0 + t's group
#pragma unroll
  for (int t = 0; t < TC; ++t) co_base[t] = ((ci0 + min(t, tc - 1)) / a.Cg_in) * a.Cg_out;

  if (one_chunk) {
    load_weight_rows<kRegen>(w_s, tc * a.Cg_out, kTaps, BackwardRows{ci0, a.Cg_out, 0, a.Cg_in, a.Cg_out}, a, w);
    __syncthreads();
  }
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t m = tile * blockDim.x + threadIdx.x;
    const bool active = m < M;
    const int n = active ? int(m / plane) : 0;
    const int rem = active ? int(m - int64_t(n) * plane) : 0;
    const int ih = rem / a.W, iw = rem - (rem / a.W) * a.W;
    float acc[TC];
#pragma unroll
    for (int t = 0; t < TC; ++t) acc[t] = 0.0f;
    const float* dyn = dy + int64_t(n) * a.y_nstride;
    const float* yn = y + int64_t(n) * a.y_nstride;
    for (int j0 = 0; j0 < a.Cg_out; j0 += a.chunk) {
      const int jn = min(a.chunk, a.Cg_out - j0);
      if (!one_chunk) {
        __syncthreads();
        load_weight_rows<kRegen>(w_s, tc * jn, kTaps, BackwardRows{ci0, jn, j0, a.Cg_in, a.Cg_out}, a, w);
        __syncthreads();
      }
      if (!active) continue;
      for (int jl = 0; jl < jn; ++jl) {
        float dv[kTaps];
        int loaded = -1;  // output channel held in dv
#pragma unroll
        for (int t = 0; t < TC; ++t) {
          if (t < tc) {
            const int co = co_base[t] + j0 + jl;
            if (co != loaded) {
#pragma unroll
              for (int kh = 0; kh < 3; ++kh)
#pragma unroll
                for (int kw = 0; kw < 3; ++kw) {
                  const int th = ih + a.pad - kh, tw = iw + a.pad - kw;  // = oh * s, ow * s when a window hits
                  float v = 0.0f;
                  if (th >= 0 && tw >= 0 && th % a.stride == 0 && tw % a.stride == 0) {
                    const int oh = th / a.stride, ow = tw / a.stride;
                    if (oh < a.OH && ow < a.OW) {
                      const int64_t o = int64_t(co) * oplane + int64_t(oh) * a.OW + ow;
                      v = __ldg(dyn + o);
                      if (a.relu && !(__ldg(yn + o) > 0.0f)) v = 0.0f;
                    }
                  }
                  dv[kh * 3 + kw] = v;
                }
              loaded = co;
            }
            const float* ws = w_s + (t * jn + jl) * kTaps;
#pragma unroll
            for (int kk = 0; kk < kTaps; ++kk) acc[t] = __fmaf_rn(ws[kk], dv[kk], acc[t]);
          }
        }
      }
    }
    if (!active) continue;
    float* dxp = dx + int64_t(n) * a.C_in * plane + rem;
#pragma unroll
    for (int t = 0; t < TC; ++t)
      if (t < tc) dxp[int64_t(ci0 + t) * plane] = acc[t];
  }
}

// Test hook kernel: block (co tile, ci chunk) builds its forward tile exactly as the conv does, then writes it
// back to its place in the (C_out, Cg_in, 3, 3) tensor.
__global__ void __launch_bounds__(kMaxThreads, 1) seeded_conv_regen_tile_kernel(ConvArgs a, int TC,
                                                                             float* __restrict__ w_out) {
  RF_DYNAMIC_SHARED(float, w_s);
  const int co0 = blockIdx.y * TC, tc = min(TC, a.C_out - co0);
  const int cl0 = blockIdx.x * a.chunk, cn = min(a.chunk, a.Cg_in - cl0);
  load_forward_tile<true>(w_s, co0, tc, cl0, cn, a, nullptr);
  __syncthreads();
  for (int i = threadIdx.x; i < tc * cn * kTaps; i += blockDim.x) {
    const int t = i / (cn * kTaps), r = i - t * (cn * kTaps);
    w_out[(int64_t(co0 + t) * a.Cg_in + cl0) * kTaps + r] = w_s[i];
  }
}

// ---- launchers -----------------------------------------------------------------------------------------

void check_launch(const SeededConvLaunch& l, const char* who) {
  RF_CHECK(l.threads >= 32 && l.threads <= kMaxThreads && l.threads % 32 == 0,
           "{}: launch.threads = {}, expected a multiple of 32 in 32..{}", who, l.threads, kMaxThreads);
  RF_CHECK(l.tile_c == 4 || l.tile_c == 8 || l.tile_c == 16 || l.tile_c == 32,
           "{}: launch.tile_c = {}, expected 4, 8, 16 or 32", who, l.tile_c);
  RF_CHECK(l.grid_x >= 0, "{}: launch.grid_x = {}, expected >= 0 (0 = automatic)", who, l.grid_x);
}

ConvArgs make_args(const SeededConvSpec& spec, int N, int H, int W, int64_t y_nstride, const char* who) {
  spec.validate();
  RF_CHECK(spec.k == 3, "{}: {}: the CUDA seeded conv is 3x3 only, got k={}", who, spec.str(), spec.k);
  RF_CHECK(N >= 1 && H >= 1 && W >= 1, "{}: sizes must be positive, got N={} H={} W={}", who, N, H, W);
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  RF_CHECK(s.OH() >= 1 && s.OW() >= 1, "{}: {} on {}x{} gives an empty output", who, spec.str(), H, W);
  RF_CHECK(y_nstride == 0 || y_nstride >= int64_t(spec.C_out) * s.OH() * s.OW(),
           "{}: y_nstride={} is smaller than one output sample C_out*OH*OW={}", who, y_nstride,
           int64_t(spec.C_out) * s.OH() * s.OW());
  ConvArgs a{};
  a.N = N, a.C_in = spec.C_in, a.H = H, a.W = W, a.C_out = spec.C_out, a.OH = s.OH(), a.OW = s.OW();
  a.stride = spec.stride, a.pad = spec.pad;
  a.Cg_in = spec.C_in / spec.groups, a.Cg_out = spec.C_out / spec.groups;
  a.y_nstride = s.y_batch_stride();
  a.seed = spec.seed;
  a.sigma = spec.weight_std();  // the host's correctly rounded sqrt(2 / fan_out): the CPU's bits
  a.relu = spec.relu;
  return a;
}

// Up to 32 channels of a group per weight tile: 32 x 32 x 9 floats = 36 KB of shared memory at TC = 32.
constexpr int kMaxChunk = 32;

// Position-tile blocks: launch.grid_x, or enough blocks for ~kBlocksPerSm per multiprocessor over all channel
// tiles (each then loops over several position tiles, regenerating its weight tile once), never more than tiles.
constexpr int kBlocksPerSm = 8;
int multiprocessor_count() {
  static const int count = [] {
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return sms;
  }();
  return count;
}
unsigned position_blocks(int64_t positions, int threads, int channel_tiles, int grid_x) {
  const int64_t tiles = (positions + threads - 1) / threads;
  int64_t want = grid_x > 0 ? grid_x
                            : (int64_t(kBlocksPerSm) * multiprocessor_count() + channel_tiles - 1) / channel_tiles;
  want = std::max<int64_t>(1, std::min<int64_t>(want, tiles));
  return unsigned(std::min<int64_t>(want, int64_t(1) << 30));
}

template <int TC>
void launch_forward(const ConvArgs& a, const float* x, const float* w, float* y, int threads, int grid_x,
                    cudaStream_t stream) {
  const int64_t M = int64_t(a.N) * a.OH * a.OW;
  const int ctiles = (a.C_out + TC - 1) / TC;
  const dim3 grid(position_blocks(M, threads, ctiles, grid_x), unsigned(ctiles));
  RF_CHECK(grid.y <= 65535u, "seeded_conv_forward_cuda: {} channel tiles exceed the grid limit", grid.y);
  const size_t smem = size_t(TC) * a.chunk * kTaps * sizeof(float);
  if (w) RF_LAUNCH(grid, threads, smem, stream, seeded_conv3x3_forward_kernel<TC, false>)(a, x, w, y);
  else RF_LAUNCH(grid, threads, smem, stream, seeded_conv3x3_forward_kernel<TC, true>)(a, x, nullptr, y);
  CUDA_CHECK(cudaGetLastError());
}

template <int TC>
void launch_backward(const ConvArgs& a, const float* y, const float* dy, const float* w, float* dx, int threads,
                     int grid_x, cudaStream_t stream) {
  const int64_t M = int64_t(a.N) * a.H * a.W;
  const int ctiles = (a.C_in + TC - 1) / TC;
  const dim3 grid(position_blocks(M, threads, ctiles, grid_x), unsigned(ctiles));
  RF_CHECK(grid.y <= 65535u, "seeded_conv_backward_data_cuda: {} channel tiles exceed the grid limit", grid.y);
  const size_t smem = size_t(TC) * a.chunk * kTaps * sizeof(float);
  if (w) RF_LAUNCH(grid, threads, smem, stream, seeded_conv3x3_backward_data_kernel<TC, false>)(a, y, dy, w, dx);
  else RF_LAUNCH(grid, threads, smem, stream, seeded_conv3x3_backward_data_kernel<TC, true>)(a, y, dy, nullptr, dx);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void seeded_conv_forward_cuda(const SeededConvSpec& spec, int N, int H, int W, const float* x, float* y,
                              int64_t y_nstride, cudaStream_t stream, const float* w_materialised_or_null,
                              const SeededConvLaunch& launch) {
  check_launch(launch, "seeded_conv_forward_cuda");
  ConvArgs a = make_args(spec, N, H, W, y_nstride, "seeded_conv_forward_cuda");
  RF_CHECK(x != nullptr && y != nullptr, "seeded_conv_forward_cuda: null x or y");
  a.chunk = std::min(a.Cg_in, kMaxChunk);
  const float* w = w_materialised_or_null;
  switch (launch.tile_c) {
    case 4: launch_forward<4>(a, x, w, y, launch.threads, launch.grid_x, stream); break;
    case 8: launch_forward<8>(a, x, w, y, launch.threads, launch.grid_x, stream); break;
    case 16: launch_forward<16>(a, x, w, y, launch.threads, launch.grid_x, stream); break;
    default: launch_forward<32>(a, x, w, y, launch.threads, launch.grid_x, stream); break;
  }
}

void seeded_conv_backward_data_cuda(const SeededConvSpec& spec, int N, int H, int W, const float* y,
                                    const float* dy, float* dx, int64_t y_nstride, cudaStream_t stream,
                                    const float* w_materialised_or_null, const SeededConvLaunch& launch) {
  check_launch(launch, "seeded_conv_backward_data_cuda");
  ConvArgs a = make_args(spec, N, H, W, y_nstride, "seeded_conv_backward_data_cuda");
  RF_CHECK(dy != nullptr && dx != nullptr, "seeded_conv_backward_data_cuda: null dy or dx");
  RF_CHECK(y != nullptr || !spec.relu, "seeded_conv_backward_data_cuda: {} needs the forward output y for the "
           "ReLU mask, got null", spec.str());
  a.chunk = std::min(a.Cg_out, kMaxChunk);
  const float* w = w_materialised_or_null;
  switch (launch.tile_c) {
    case 4: launch_backward<4>(a, y, dy, w, dx, launch.threads, launch.grid_x, stream); break;
    case 8: launch_backward<8>(a, y, dy, w, dx, launch.threads, launch.grid_x, stream); break;
    case 16: launch_backward<16>(a, y, dy, w, dx, launch.threads, launch.grid_x, stream); break;
    default: launch_backward<32>(a, y, dy, w, dx, launch.threads, launch.grid_x, stream); break;
  }
}

void seeded_conv_weights_cuda(const SeededConvSpec& spec, float* d_w, cudaStream_t stream) {
  spec.validate();
  seeded_normal_fill_cuda(spec.seed, spec.weight_std(), spec.weight_numel(), d_w, 256, stream);
}

void seeded_conv_regen_weights_cuda(const SeededConvSpec& spec, float* d_w, const SeededConvLaunch& launch,
                                    int ci_chunk, cudaStream_t stream) {
  check_launch(launch, "seeded_conv_regen_weights_cuda");
  RF_CHECK(d_w != nullptr, "seeded_conv_regen_weights_cuda: null output");
  ConvArgs a = make_args(spec, 1, 3, 3, 0, "seeded_conv_regen_weights_cuda");
  RF_CHECK(ci_chunk >= 0 && ci_chunk <= kMaxChunk, "seeded_conv_regen_weights_cuda: ci_chunk={}, expected 0..{}",
           ci_chunk, kMaxChunk);
  a.chunk = ci_chunk > 0 ? std::min(ci_chunk, a.Cg_in) : std::min(a.Cg_in, kMaxChunk);
  const int TC = launch.tile_c;
  const dim3 grid(unsigned((a.Cg_in + a.chunk - 1) / a.chunk), unsigned((a.C_out + TC - 1) / TC));
  const size_t smem = size_t(TC) * a.chunk * kTaps * sizeof(float);
  RF_LAUNCH(grid, launch.threads, smem, stream, seeded_conv_regen_tile_kernel)(a, TC, d_w);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

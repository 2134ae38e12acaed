// NL module forward on the GPU: branches a (seeded conv + ReLU, weights regenerated in shared memory), b (3x3 max
// pool) and c (mixed average pool) each write their channel slice of the concat buffer (batch stride
// C_cat * OH * OW), then a grouped 1x1 conv with bias reads it and writes every output channel straight to its
// shuffled position. The 1x1 conv is a per-group tiled SGEMM: (C_out/G x C_cat/G) x (C_cat/G x N*OH*OW), 64x64
// tiles, 16-deep chunks of the reduction in shared memory, 4x4 outputs per thread (16 FMAs per 8 shared loads).
// Columns run over N*OH*OW so the 4x4 maps of the last stage still fill tiles.
// Checked by tests/gpu/test_nl_module_gpu.cpp against the host op's reference (nl_module_forward_ref).
#include "cuda/ops/nl_module.h"

#include <numeric>

#include "cuda/cuda_check.h"
#include "cuda/ops/pool.h"
#include "cuda/ops/seeded_conv.h"
#include "host/ops/pool.h"

namespace rf {

namespace {

constexpr int kBO = 64, kBM = 64, kBK = 16, kThreads = 256;

struct PwArgs {
  int N, C, K, HW, Cg_in, Cg_out, o_tiles, shuffle_groups;
};

__global__ void __launch_bounds__(kThreads, 1) grouped_pointwise_conv_kernel(PwArgs a, const float* __restrict__ x,
                                                                         const float* __restrict__ w,
                                                                         const float* __restrict__ b,
                                                                         float* __restrict__ y) {
  RF_SHARED(float, Ws, [kBK][kBO]);
  RF_SHARED(float, Xs, [kBK][kBM]);
  const int g = blockIdx.y / a.o_tiles, o0 = (blockIdx.y - g * a.o_tiles) * kBO;
  const int64_t M = int64_t(a.N) * a.HW, m0 = int64_t(blockIdx.x) * kBM;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < a.Cg_in; k0 += kBK) {
    for (int i = threadIdx.x; i < kBO * kBK; i += kThreads) {
      const int ol = i / kBK, kl = i - ol * kBK, o = o0 + ol, kc = k0 + kl;
      Ws[kl][ol] = (o < a.Cg_out && kc < a.Cg_in) ? __ldg(w + (int64_t(g) * a.Cg_out + o) * a.Cg_in + kc) : 0.0f;
    }
    for (int i = threadIdx.x; i < kBK * kBM; i += kThreads) {
      const int kl = i / kBM, ml = i - kl * kBM, kc = k0 + kl;
      const int64_t m = m0 + ml;
      float v = 0.0f;
      if (kc < a.Cg_in && m < M) {
        const int64_t n = m / a.HW, p = m - n * a.HW;
        v = __ldg(x + (n * a.C + int64_t(g) * a.Cg_in + kc) * a.HW + p);
      }
      Xs[kl][ml] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float wv[4], xv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) wv[i] = Ws[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) xv[j] = Xs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = __fmaf_rn(wv[i], xv[j], acc[i][j]);
    }
    __syncthreads();
  }
  const int G = a.shuffle_groups;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int ol = o0 + ty * 4 + i;
    if (ol >= a.Cg_out) continue;
    const int o = g * a.Cg_out + ol;
    const int oc = G > 0 ? (o % G) * (a.K / G) + o / G : o;  // shuffle: channel j*(K/G) + i takes i*G + j
    const float bias = b ? __ldg(b + o) : 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + tx + 16 * j;
      if (m >= M) continue;
      const int64_t n = m / a.HW, p = m - n * a.HW;
      y[(n * a.K + oc) * a.HW + p] = acc[i][j] + bias;
    }
  }
}

}  // namespace

void grouped_pointwise_conv_forward_cuda(int N, int C, int K, int HW, int groups, int shuffle_groups, const float* x,
                                         const float* w, const float* b, float* y, cudaStream_t stream) {
  RF_CHECK(N >= 1 && C >= 1 && K >= 1 && HW >= 1, "grouped_pointwise_conv_forward_cuda: sizes must be positive, got "
           "N={} C={} K={} HW={}", N, C, K, HW);
  RF_CHECK(groups >= 1 && C % groups == 0 && K % groups == 0,
           "grouped_pointwise_conv_forward_cuda: groups={} must divide C={} and K={}", groups, C, K);
  RF_CHECK(shuffle_groups >= 0 && (shuffle_groups == 0 || K % shuffle_groups == 0),
           "grouped_pointwise_conv_forward_cuda: shuffle_groups={} must divide K={}", shuffle_groups, K);
  RF_CHECK(x && w && y, "grouped_pointwise_conv_forward_cuda: null x, w or y");
  PwArgs a{N, C, K, HW, C / groups, K / groups, 0, shuffle_groups};
  a.o_tiles = (a.Cg_out + kBO - 1) / kBO;
  const int64_t M = int64_t(N) * HW;
  const dim3 grid(unsigned((M + kBM - 1) / kBM), unsigned(groups * a.o_tiles));
  RF_CHECK(grid.y <= 65535u, "grouped_pointwise_conv_forward_cuda: {} output tiles exceed the grid", grid.y);
  RF_LAUNCH(grid, kThreads, 0, stream, grouped_pointwise_conv_kernel)(a, x, w, b, y);
  CUDA_CHECK(cudaGetLastError());
}

void nl_module_forward_cuda(const NLModuleShape& s, const float* x, const float* w_pw, const float* b_pw, float* cat,
                            float* y, cudaStream_t stream, const float* w_seeded_materialised_or_null) {
  s.validate();
  RF_CHECK(x && w_pw && cat && y, "nl_module_forward_cuda: {}: null x, w_pw, cat or y", s.str());
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane;
  // Branches, each into its slice of cat (batch stride ns): [0, C_nl) | [C_nl, C_nl + C_in) | [.., C_cat).
  seeded_conv_forward_cuda(s.seeded_spec(), s.N, s.H, s.W, x, cat, ns, stream, w_seeded_materialised_or_null);
  max_pool2d_forward_cuda(Pool2dShape{s.N, s.C_in, s.H, s.W, 3, s.stride, 1, ns}, x, cat + s.C_nl * plane, stream);
  mixed_avg_pool_forward_cuda(MixedPoolShape{s.N, s.C_in, s.H, s.W, s.stride, ns}, x,
                              cat + (s.C_nl + s.C_in) * plane, stream);
  grouped_pointwise_conv_forward_cuda(s.N, s.C_cat(), s.C_out, int(plane), s.gpw, s.shuffle ? s.gpw : 0, cat, w_pw,
                                      b_pw, y, stream);
}

}  // namespace rf

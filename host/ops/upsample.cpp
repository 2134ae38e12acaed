// Bilinear resize (PyTorch align_corners=False, output-size form), NCHW, forward and backward. First the plain
// reference loops (float and double, accumulating in double), then the fast CPU path.
// Checked by tests/ops/test_upsample.cpp: a hand-computed 2x2 -> 4x4 case, fast vs reference over a sweep of
// scales (2x, 3x, 8x, 17 -> 40, 40 -> 17, 1x1 input, N and C > 1), finite differences in double, bad shapes.
//
// Fast path, per (n, c) plane, OpenMP over planes (no two threads touch the same plane). Separable:
// - forward: a horizontal pass turns an input row into an output-width row (2 taps per output column, from the
//   column tables), kept in a two-row cache because consecutive output rows share source rows (at 8x, 8 output
//   rows per source row); then each output row is a vectorised blend a0 * row[i0] + a1 * row[i1].
//   Work per plane: H * Wo gathers + Ho * Wo vector FMAs-worth (no contraction: mul + add) instead of
//   Ho * Wo * 4 scattered reads. The exact 2x width case skips the gather (taps are x[i-1], x[i], x[i+1] with
//   weights 1/4, 3/4), same expression order, so the same bits as the general table.
// - backward: the adjoint in reverse order: vertical pass accumulates a0 * dy_row / a1 * dy_row into an
//   (H, Wo) buffer (vectorised), then a horizontal scatter per input row into dx.
// Rounding: the fast path evaluates the reference's expression in float, with weights rounded from the same
// double taps: |fast - ref| <= ~4 u max|x| forward; backward sums of up to ~(Ho/H + 2)(Wo/W + 2) terms.
#include "host/ops/upsample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "host/core/check.h"

namespace rf {

// ---- shapes --------------------------------------------------------------------------------------

void UpsampleShape::validate() const {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1,
           "upsample_bilinear: input sizes must be positive, got N={} C={} H={} W={}", N, C, H, W);
  RF_CHECK(Ho >= 1 && Wo >= 1, "upsample_bilinear: output sizes must be positive, got Ho={} Wo={} (input {}x{})",
           Ho, Wo, H, W);
}

std::string UpsampleShape::str() const {
  return fmt::format("upsample_bilinear(N={},C={},H={},W={},Ho={},Wo={})", N, C, H, W, Ho, Wo);
}

BilinearTaps bilinear_taps(int in, int out, int dst) {
  const double scale = double(in) / double(out);
  const double src = std::max(0.0, (dst + 0.5) * scale - 0.5);
  const int i0 = std::min(int(src), in - 1);  // src >= 0: the cast is floor
  const int i1 = std::min(i0 + 1, in - 1);
  const double l = src - i0;
  return {i0, i1, 1.0 - l, l};
}

// ---- reference -----------------------------------------------------------------------------------

template <typename T>
void upsample_bilinear_forward_ref(const UpsampleShape& s, const T* x, T* y) {
  s.validate();
  for (int64_t p = 0; p < int64_t(s.N) * s.C; ++p) {
    const T* xp = x + p * s.H * s.W;
    T* yp = y + p * s.Ho * s.Wo;
    for (int oy = 0; oy < s.Ho; ++oy) {
      const BilinearTaps ty = bilinear_taps(s.H, s.Ho, oy);
      for (int ox = 0; ox < s.Wo; ++ox) {
        const BilinearTaps tx = bilinear_taps(s.W, s.Wo, ox);
        const double top = tx.w0 * double(xp[ty.i0 * s.W + tx.i0]) + tx.w1 * double(xp[ty.i0 * s.W + tx.i1]);
        const double bot = tx.w0 * double(xp[ty.i1 * s.W + tx.i0]) + tx.w1 * double(xp[ty.i1 * s.W + tx.i1]);
        yp[oy * s.Wo + ox] = T(ty.w0 * top + ty.w1 * bot);
      }
    }
  }
}

template <typename T>
void upsample_bilinear_backward_ref(const UpsampleShape& s, const T* dy, T* dx) {
  s.validate();
  std::vector<double> acc(size_t(s.H) * s.W);
  for (int64_t p = 0; p < int64_t(s.N) * s.C; ++p) {
    const T* dyp = dy + p * s.Ho * s.Wo;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int oy = 0; oy < s.Ho; ++oy) {
      const BilinearTaps ty = bilinear_taps(s.H, s.Ho, oy);
      for (int ox = 0; ox < s.Wo; ++ox) {
        const BilinearTaps tx = bilinear_taps(s.W, s.Wo, ox);
        const double g = double(dyp[oy * s.Wo + ox]);
        acc[ty.i0 * s.W + tx.i0] += ty.w0 * tx.w0 * g;
        acc[ty.i0 * s.W + tx.i1] += ty.w0 * tx.w1 * g;
        acc[ty.i1 * s.W + tx.i0] += ty.w1 * tx.w0 * g;
        acc[ty.i1 * s.W + tx.i1] += ty.w1 * tx.w1 * g;
      }
    }
    T* dxp = dx + p * s.H * s.W;
    for (size_t i = 0; i < acc.size(); ++i) dxp[i] = T(acc[i]);
  }
}

template void upsample_bilinear_forward_ref<float>(const UpsampleShape&, const float*, float*);
template void upsample_bilinear_forward_ref<double>(const UpsampleShape&, const double*, double*);
template void upsample_bilinear_backward_ref<float>(const UpsampleShape&, const float*, float*);
template void upsample_bilinear_backward_ref<double>(const UpsampleShape&, const double*, double*);

// ---- fast CPU path -------------------------------------------------------------------------------

namespace {

constexpr int64_t kParallelMin = int64_t(1) << 14;  // output elements; below this one thread is faster

struct AxisTable {
  std::vector<int> i0, i1;
  std::vector<float> w0, w1;
  AxisTable(int in, int out) : i0(out), i1(out), w0(out), w1(out) {
    for (int d = 0; d < out; ++d) {
      const BilinearTaps t = bilinear_taps(in, out, d);
      i0[d] = t.i0;
      i1[d] = t.i1;
      w0[d] = float(t.w0);
      w1[d] = float(t.w1);
    }
  }
};

// One input row (W) -> one output-width row (Wo).
void horizontal_row(const AxisTable& cx, int W, int Wo, const float* xr, float* t) {
  const int* __restrict i0 = cx.i0.data();
  const int* __restrict i1 = cx.i1.data();
  const float* __restrict w0 = cx.w0.data();
  const float* __restrict w1 = cx.w1.data();
  if (Wo == 2 * W && W >= 2) {
    // Exact 2x: t[0] = x[0] (taps 0,1 with weights 1,0), t[2i] = x[i-1]/4 + 3x[i]/4,
    // t[2i+1] = 3x[i]/4 + x[i+1]/4, t[2W-1] = 3x/4 + x/4 of the last column: the table's weights and order.
    t[0] = w0[0] * xr[0] + w1[0] * xr[1];
    for (int i = 1; i < W; ++i) t[2 * i] = 0.25f * xr[i - 1] + 0.75f * xr[i];
    for (int i = 0; i < W - 1; ++i) t[2 * i + 1] = 0.75f * xr[i] + 0.25f * xr[i + 1];
    t[2 * W - 1] = 0.75f * xr[W - 1] + 0.25f * xr[W - 1];
    return;
  }
  for (int ox = 0; ox < Wo; ++ox) t[ox] = w0[ox] * xr[i0[ox]] + w1[ox] * xr[i1[ox]];
}

}  // namespace

void upsample_bilinear_forward_cpu(const UpsampleShape& s, const float* x, float* y) {
  s.validate();
  const AxisTable ry(s.H, s.Ho), cx(s.W, s.Wo);
  const int64_t planes = int64_t(s.N) * s.C;
#pragma omp parallel if (planes > 1 && s.y_numel() >= kParallelMin)
  {
    std::vector<float> rows(2 * size_t(s.Wo));
    float* buf[2] = {rows.data(), rows.data() + s.Wo};
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* xp = x + p * s.H * s.W;
      float* yp = y + p * s.Ho * s.Wo;
      int have[2] = {-1, -1};  // source row held by each buffer
      auto fetch = [&](int r, int keep) -> const float* {
        for (int b = 0; b < 2; ++b)
          if (have[b] == r) return buf[b];
        const int b = have[0] == keep ? 1 : 0;  // never evict the other row of this output row
        horizontal_row(cx, s.W, s.Wo, xp + int64_t(r) * s.W, buf[b]);
        have[b] = r;
        return buf[b];
      };
      for (int oy = 0; oy < s.Ho; ++oy) {
        const int i0 = ry.i0[oy], i1 = ry.i1[oy];
        const float* __restrict t0 = fetch(i0, i1);
        const float* __restrict t1 = fetch(i1, i0);
        const float a0 = ry.w0[oy], a1 = ry.w1[oy];
        float* __restrict yr = yp + int64_t(oy) * s.Wo;
#pragma omp simd
        for (int ox = 0; ox < s.Wo; ++ox) yr[ox] = a0 * t0[ox] + a1 * t1[ox];
      }
    }
  }
}

void upsample_bilinear_backward_cpu(const UpsampleShape& s, const float* dy, float* dx) {
  s.validate();
  const AxisTable ry(s.H, s.Ho), cx(s.W, s.Wo);
  const int64_t planes = int64_t(s.N) * s.C;
#pragma omp parallel if (planes > 1 && s.y_numel() >= kParallelMin)
  {
    std::vector<float> tmp(size_t(s.H) * s.Wo);  // dy summed over output rows onto source rows
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* dyp = dy + p * s.Ho * s.Wo;
      float* dxp = dx + p * s.H * s.W;
      std::fill(tmp.begin(), tmp.end(), 0.f);
      for (int oy = 0; oy < s.Ho; ++oy) {
        const float* __restrict g = dyp + int64_t(oy) * s.Wo;
        float* __restrict t0 = tmp.data() + int64_t(ry.i0[oy]) * s.Wo;
        const float a0 = ry.w0[oy], a1 = ry.w1[oy];
#pragma omp simd
        for (int ox = 0; ox < s.Wo; ++ox) t0[ox] += a0 * g[ox];
        float* __restrict t1 = tmp.data() + int64_t(ry.i1[oy]) * s.Wo;
#pragma omp simd
        for (int ox = 0; ox < s.Wo; ++ox) t1[ox] += a1 * g[ox];
      }
      const int* i0 = cx.i0.data();
      const int* i1 = cx.i1.data();
      const float* w0 = cx.w0.data();
      const float* w1 = cx.w1.data();
      for (int r = 0; r < s.H; ++r) {
        const float* t = tmp.data() + int64_t(r) * s.Wo;
        float* d = dxp + int64_t(r) * s.W;
        std::fill(d, d + s.W, 0.f);
        for (int ox = 0; ox < s.Wo; ++ox) {
          d[i0[ox]] += w0[ox] * t[ox];
          d[i1[ox]] += w1[ox] * t[ox];
        }
      }
    }
  }
}

}  // namespace rf

// Bilinear resize, NCHW: (N, C, H, W) -> (N, C, Ho, Wo), any scale up or down, PyTorch's
// interpolate(mode="bilinear", align_corners=False) with an output size. Forward and backward, reference + fast.
// Checked by tests/ops/test_upsample.cpp.
//
// Per axis (in -> out samples): src = (dst + 0.5) * in / out - 0.5, clamped below at 0;
// i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - l, l) with l = src - i0.
// y[oy][ox] = sum of the 4 taps (rows i0/i1 of the row axis x columns i0/i1 of the column axis), weight product.
#pragma once
#include <cstdint>
#include <string>

namespace rf {

struct UpsampleShape {
  int N = 1, C = 1, H = 1, W = 1;  // input
  int Ho = 1, Wo = 1;               // output

  int64_t x_numel() const { return int64_t(N) * C * H * W; }
  int64_t y_numel() const { return int64_t(N) * C * Ho * Wo; }
  void validate() const;  // every size >= 1; throws rf::Error naming the bad field
  std::string str() const;
};

// One axis of the resize: the two source taps and their weights for each output index (the fast path's
// tables; exposed so that tests and other ops can see the exact sample positions).
struct BilinearTaps {
  int i0, i1;
  double w0, w1;  // w0 + w1 == 1
};
BilinearTaps bilinear_taps(int in, int out, int dst);

// x (N, C, H, W) -> y (N, C, Ho, Wo). The reference accumulates in double.
template <typename T> void upsample_bilinear_forward_ref(const UpsampleShape& s, const T* x, T* y);
// dx (N, C, H, W) = adjoint of the forward applied to dy (N, C, Ho, Wo); dx is overwritten.
template <typename T> void upsample_bilinear_backward_ref(const UpsampleShape& s, const T* dy, T* dx);

// Fast path: precomputed per-row / per-column tap tables, OpenMP over the N*C planes, separable (a horizontal
// pass per needed input row, then a vectorised vertical blend per output row). Equals the reference to rounding.
void upsample_bilinear_forward_cpu(const UpsampleShape& s, const float* x, float* y);
void upsample_bilinear_backward_cpu(const UpsampleShape& s, const float* dy, float* dx);

}  // namespace rf

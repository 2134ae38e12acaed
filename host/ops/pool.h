// Pooling, NCHW: max pool (padding never wins), average pool (count_include_pad: divide by k*k), and the
// NL module's mixed average pool. Forward and backward, reference + fast. Checked by tests/ops/test_pool.cpp.
#pragma once
#include <cstdint>
#include <string>

namespace rf {

struct Pool2dShape {
  int N = 1, C = 1, H = 1, W = 1;
  int k = 3, stride = 1, pad = 1;
  int64_t y_nstride = 0;  // elements between samples of y / dy; 0 = contiguous C*OH*OW (see Conv2dShape)

  int OH() const { return (H + 2 * pad - k) / stride + 1; }
  int OW() const { return (W + 2 * pad - k) / stride + 1; }
  int64_t y_batch_stride() const { return y_nstride ? y_nstride : int64_t(C) * OH() * OW(); }
  int64_t window_reads() const { return int64_t(N) * C * OH() * OW() * k * k; }
  void validate() const;
  std::string str() const;
};

template <typename T> void max_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y);
// Gradient goes to the first maximum of each window in row-major window order (ties: first wins).
template <typename T> void max_pool2d_backward_ref(const Pool2dShape& s, const T* x, const T* dy, T* dx);
void max_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y);
void max_pool2d_backward_cpu(const Pool2dShape& s, const float* x, const float* dy, float* dx);

template <typename T> void avg_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y);
template <typename T> void avg_pool2d_backward_ref(const Pool2dShape& s, const T* dy, T* dx);
void avg_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward_cpu(const Pool2dShape& s, const float* dy, float* dx);

// Mixed average pool (MODELS.md, NL module branch c): channels split into 5 contiguous groups of C/5
// (remainder to the first); group j average-pooled with k_j = 3,5,7,9,11, pad k_j/2, divisor k_j^2;
// at stride 1 the output is pooled - x, at stride 2 the pooled map alone. Output (N, C, OH, OW).
struct MixedPoolShape {
  int N = 1, C = 5, H = 1, W = 1;
  int stride = 1;
  int64_t y_nstride = 0;
  static constexpr int kGroups = 5;

  int OH() const { return (H - 1) / stride + 1; }  // the same for every odd k with pad k/2
  int OW() const { return (W - 1) / stride + 1; }
  int64_t y_batch_stride() const { return y_nstride ? y_nstride : int64_t(C) * OH() * OW(); }
  int group_begin(int j) const;  // first channel of group j (j = 0..5; group_begin(5) == C)
  static int group_kernel(int j) { return 3 + 2 * j; }
  int64_t window_reads() const;  // sum over outputs of k_j^2 (MODELS.md's "pool window reads")
  void validate() const;
  std::string str() const;
};

template <typename T> void mixed_avg_pool_forward_ref(const MixedPoolShape& s, const T* x, T* y);
template <typename T> void mixed_avg_pool_backward_ref(const MixedPoolShape& s, const T* dy, T* dx);
// Fast path: separable running sums, O(1) per output instead of O(k^2); equals the reference to rounding.
void mixed_avg_pool_forward_cpu(const MixedPoolShape& s, const float* x, float* y);
void mixed_avg_pool_backward_cpu(const MixedPoolShape& s, const float* dy, float* dx);

// Eval fast path of an NL module's two pooling branches: max_pool2d_forward_cpu(mp, x, ymax) and
// mixed_avg_pool_forward_cpu(mx, x, ymix) in one pass over x (same N, C, H, W, stride). Bit-identical to
// the two separate calls.
void nl_pools_forward_cpu(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x, float* ymax,
                          float* ymix);
// Backward of both: dx += max_pool2d_backward(mp, x, dymax) + mixed_avg_pool_backward(mx, dymix), in one pass
// per plane that writes dx once. Bit-identical to the two separate backward calls into a scratch, each
// added to dx with add_forward_cpu, max pool first: dx = (dx + dmax) + dmix. res (may be null; laid out as dx, not
// overlapping it): added last in the same pass, dx = ((dx + dmax) + dmix) + res, the bits of add_forward_cpu(dx,
// res) after the call (a residual block's shortcut gradient, without a pass of its own over dx).
void nl_pools_backward_cpu(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x, const float* dymax,
                           const float* dymix, float* dx, const float* res = nullptr);

}  // namespace rf

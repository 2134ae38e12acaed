// Pooling shapes (checks, names, window reads) and the reference loops (float and double) of max pool, average
// pool and the NL module's mixed average pool, forward and backward. Checked by tests/ops/test_pool.cpp
// (reference gradients against finite differences in double; every fast path against these).
#include <algorithm>

#include "host/core/check.h"
#include "host/ops/pool.h"
#include "host/ops/pool_kernels.h"

namespace rf {

using pool_detail::mixed_group_of;

void Pool2dShape::validate() const {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1, "pool2d: sizes must be positive, got N={} C={} H={} W={}",
           N, C, H, W);
  RF_CHECK(k >= 1, "pool2d: kernel size k must be >= 1, got {}", k);
  RF_CHECK(stride >= 1, "pool2d: stride must be >= 1, got {}", stride);
  RF_CHECK(pad >= 0 && pad <= k / 2, "pool2d: pad must be in [0, k/2] = [0, {}] for k={}, got {}", k / 2, k, pad);
  RF_CHECK(H + 2 * pad >= k && W + 2 * pad >= k,
           "pool2d: kernel k={} larger than the padded input {}x{} (H={}, W={}, pad={})", k, H + 2 * pad,
           W + 2 * pad, H, W, pad);
  RF_CHECK(y_nstride == 0 || y_nstride >= int64_t(C) * OH() * OW(),
           "pool2d: y_nstride={} is smaller than one output sample C*OH*OW={}", y_nstride,
           int64_t(C) * OH() * OW());
}

std::string Pool2dShape::str() const {
  std::string s = fmt::format("pool2d(N={},C={},H={},W={},k={},s={},p={}", N, C, H, W, k, stride, pad);
  if (y_nstride) s += fmt::format(",y_nstride={}", y_nstride);
  return s + ")";
}

int MixedPoolShape::group_begin(int j) const {
  RF_CHECK(j >= 0 && j <= kGroups, "mixed_avg_pool: group index must be in [0, {}], got {}", kGroups, j);
  // Group 0 takes C/5 + C%5 channels, groups 1..4 take C/5 each.
  return j == 0 ? 0 : C % kGroups + j * (C / kGroups);
}

int64_t MixedPoolShape::window_reads() const {
  int64_t per_plane = int64_t(OH()) * OW(), total = 0;
  for (int j = 0; j < kGroups; ++j) {
    const int kj = group_kernel(j);
    total += int64_t(N) * (group_begin(j + 1) - group_begin(j)) * per_plane * kj * kj;
  }
  return total;
}

void MixedPoolShape::validate() const {
  RF_CHECK(C >= kGroups, "mixed_avg_pool: C={} but each of the {} groups needs at least one channel (C >= 5)",
           C, kGroups);
  RF_CHECK(N >= 1 && H >= 1 && W >= 1, "mixed_avg_pool: sizes must be positive, got N={} H={} W={}", N, H, W);
  RF_CHECK(stride >= 1, "mixed_avg_pool: stride must be >= 1, got {}", stride);
  RF_CHECK(y_nstride == 0 || y_nstride >= int64_t(C) * OH() * OW(),
           "mixed_avg_pool: y_nstride={} is smaller than one output sample C*OH*OW={}", y_nstride,
           int64_t(C) * OH() * OW());
}

std::string MixedPoolShape::str() const {
  std::string s = fmt::format("mixed_avg_pool(N={},C={},H={},W={},s={}", N, C, H, W, stride);
  if (y_nstride) s += fmt::format(",y_nstride={}", y_nstride);
  return s + ")";
}

namespace {
// Index (ih*W + iw) of the first maximum of window (oh, ow) in row-major window order; pads skipped.
template <typename T>
int64_t max_window_argmax(const Pool2dShape& s, const T* xp, int oh, int ow) {
  int64_t arg = -1;
  T best = T(0);
  for (int kh = 0; kh < s.k; ++kh)
    for (int kw = 0; kw < s.k; ++kw) {
      const int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
      if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
      const T v = xp[int64_t(ih) * s.W + iw];
      if (arg < 0 || v > best) best = v, arg = int64_t(ih) * s.W + iw;
    }
  return arg;  // >= 0: validate() guarantees every window holds an input element (pad <= k/2)
}

// Sum of the k x k window (oh, ow) of plane xp (H x W) at stride st, pad p, in row-major order; pads add
// nothing (count_include_pad: the caller divides by k*k).
template <typename T>
T box_window_sum(const T* xp, int H, int W, int k, int st, int p, int oh, int ow) {
  T sum = T(0);
  for (int kh = 0; kh < k; ++kh)
    for (int kw = 0; kw < k; ++kw) {
      const int ih = oh * st - p + kh, iw = ow * st - p + kw;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) sum += xp[ih * W + iw];
    }
  return sum;
}

// dxp[window (oh, ow)] += g for the window's pixels inside the plane (the adjoint of box_window_sum).
template <typename T>
void box_window_add(T* dxp, int H, int W, int k, int st, int p, int oh, int ow, T g) {
  for (int kh = 0; kh < k; ++kh)
    for (int kw = 0; kw < k; ++kw) {
      const int ih = oh * st - p + kh, iw = ow * st - p + kw;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) dxp[ih * W + iw] += g;
    }
}

// f(c, xo, o, oh, ow) for every window (oh, ow) of every (n, c) plane, in (n, c, oh, ow) order: xo the offset of
// the input plane, o that of the window's output (batch stride y_batch_stride()).
template <class S, class F>
void for_each_window(const S& s, F f) {
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const int64_t xo = (int64_t(n) * s.C + c) * s.H * s.W, yo = n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) f(c, xo, yo + oh * OW + ow, oh, ow);
    }
}
}  // namespace

template <typename T>
void max_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y) {
  s.validate();
  for_each_window(s, [&](int, int64_t xo, int64_t o, int oh, int ow) {
    y[o] = x[xo + max_window_argmax(s, x + xo, oh, ow)];
  });
}

template <typename T>
void max_pool2d_backward_ref(const Pool2dShape& s, const T* x, const T* dy, T* dx) {
  s.validate();
  std::fill(dx, dx + int64_t(s.N) * s.C * s.H * s.W, T(0));
  for_each_window(s, [&](int, int64_t xo, int64_t o, int oh, int ow) {
    dx[xo + max_window_argmax(s, x + xo, oh, ow)] += dy[o];
  });
}

template <typename T>
void avg_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y) {
  s.validate();
  for_each_window(s, [&](int, int64_t xo, int64_t o, int oh, int ow) {  // count_include_pad: padded zeros count
    y[o] = box_window_sum(x + xo, s.H, s.W, s.k, s.stride, s.pad, oh, ow) / T(s.k * s.k);
  });
}

template <typename T>
void avg_pool2d_backward_ref(const Pool2dShape& s, const T* dy, T* dx) {
  s.validate();
  std::fill(dx, dx + int64_t(s.N) * s.C * s.H * s.W, T(0));
  for_each_window(s, [&](int, int64_t xo, int64_t o, int oh, int ow) {
    box_window_add(dx + xo, s.H, s.W, s.k, s.stride, s.pad, oh, ow, dy[o] / T(s.k * s.k));
  });
}

template <typename T>
void mixed_avg_pool_forward_ref(const MixedPoolShape& s, const T* x, T* y) {
  s.validate();
  for_each_window(s, [&](int c, int64_t xo, int64_t o, int oh, int ow) {
    const int k = MixedPoolShape::group_kernel(mixed_group_of(s, c));
    T v = box_window_sum(x + xo, s.H, s.W, k, s.stride, k / 2, oh, ow) / T(k * k);
    if (s.stride == 1) v -= x[xo + oh * s.W + ow];  // stride 1: pooled - x (OH == H, OW == W)
    y[o] = v;
  });
}

template <typename T>
void mixed_avg_pool_backward_ref(const MixedPoolShape& s, const T* dy, T* dx) {
  s.validate();
  std::fill(dx, dx + int64_t(s.N) * s.C * s.H * s.W, T(0));
  if (s.stride == 1)  // the "- x" term (OH == H, OW == W)
    for_each_window(s, [&](int, int64_t xo, int64_t o, int oh, int ow) { dx[xo + oh * s.W + ow] = -dy[o]; });
  for_each_window(s, [&](int c, int64_t xo, int64_t o, int oh, int ow) {
    const int k = MixedPoolShape::group_kernel(mixed_group_of(s, c));
    box_window_add(dx + xo, s.H, s.W, k, s.stride, k / 2, oh, ow, dy[o] / T(k * k));
  });
}

#define RF_POOL_INSTANTIATE(T)                                                                  \
  template void max_pool2d_forward_ref<T>(const Pool2dShape&, const T*, T*);                    \
  template void max_pool2d_backward_ref<T>(const Pool2dShape&, const T*, const T*, T*);         \
  template void avg_pool2d_forward_ref<T>(const Pool2dShape&, const T*, T*);                    \
  template void avg_pool2d_backward_ref<T>(const Pool2dShape&, const T*, T*);                   \
  template void mixed_avg_pool_forward_ref<T>(const MixedPoolShape&, const T*, T*);             \
  template void mixed_avg_pool_backward_ref<T>(const MixedPoolShape&, const T*, T*);
RF_POOL_INSTANTIATE(float)
RF_POOL_INSTANTIATE(double)
#undef RF_POOL_INSTANTIATE

}  // namespace rf

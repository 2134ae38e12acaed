// Private to the pool op (host/ops/pool*.cpp, not to be included elsewhere): what the fast paths in pool.cpp
// (small planes, max pool) and pool_box.cpp (average and mixed pool, the fused NL pools) share. Covered by
// tests/ops/test_pool.cpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "host/core/parallel.h"
#include "host/core/simd.h"
#include "host/ops/pool.h"

namespace rf::pool_detail {

// The mixed-pool group (0..4) of channel c.
inline int mixed_group_of(const MixedPoolShape& s, int c) {
  int j = 0;
  while (c >= s.group_begin(j + 1)) ++j;
  return j;
}

// planes (n, c) of work_per_plane element operations each: more than one plane and over 64K operations.
inline bool worth_threads(int64_t planes, int64_t work_per_plane) {
  return planes > 1 && worth_threading(planes * work_per_plane, kMinThreadedWork + 1);
}

// pool.cpp: planes this small run with the lanes across planes (pools_small_planes); the choice depends on
// the shape alone, so the fused and the separate pools stay bit-identical.
inline bool small_plane(int H, int W, int stride) { return H * W <= 64 || (H * W <= 256 && stride > 1); }
// Max pool (mp) and/or mixed average pool (mx) of small planes; either may be null, both see the same x.
void pools_small_planes(const Pool2dShape* mp, const MixedPoolShape* mx, const float* x, float* ymax,
                        float* ymix);

#if defined(__AVX512F__)
// The row passes in registers (pool.cpp's max pool, pool_box.cpp's box sums at stride 1) take rows up to
// kRowPassChunks vectors wide and windows up to kMaxRowPassK wide; each tap of a chunk is a masked load of the
// source row: tap_mask(n0, kw, pad, W) = the lanes j of the chunk at column n0 whose tap kw (column
// n0 + j + kw - pad) lies in [0, W).
constexpr int kRowPassChunks = 8, kMaxRowPassK = 16;
inline __mmask16 tap_mask(int n0, int kw, int pad, int W) {
  const int lo = std::max(0, pad - kw - n0), hi = std::min(16, W + pad - kw - n0);
  return hi <= lo ? 0 : __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
}
#endif

// pool.cpp: one thread's max pool of one (n, c) plane at a time (separable passes, see pool.cpp).
struct MaxPlane {
  int H = 0, W = 0, k = 0, s = 1, pad = 0, OH = 0, OW = 0, rows = 0, Wl = 0;
  std::vector<float> rowpad, hv, col;
  std::vector<int32_t> hi;

  void setup(const Pool2dShape& sh, bool with_idx);  // with_idx: keep the argmax (the backward)
  // Row pass of plane xp into hv (and hi, the flat index of each row window's first maximum, WithIdx).
  template <bool WithIdx>
  void row_pass(const float* xp);
  // row_pass<false> with each tap a masked load of xp (-inf in the padding): AVX-512, Wl and k as above.
  void row_pass_regs(const float* xp);
  // Column pass for output row oh: col[j] (or out[j]) = max over its rows; with WithIdx, at[j] = flat
  // index (r*W + column) of the first maximum in row-major order.
  template <bool WithIdx>
  void col_pass(int oh, int32_t* at, float* out = nullptr);
  // The forward of plane xp into yp (OH x OW): the plane loop of max_pool2d_forward_cpu and the fused NL pools.
  void forward(const float* xp, float* yp);
};

// pool.cpp: one thread's max-pool backward of one (n, c) plane at a time, as a gather (see
// max_pool2d_backward_cpu): prepare() finds every window's first maximum and lays dy out by it, then
// gather(r, c0) is the gradient of input row r, columns [c0, c0 + kLanes), bit-identical to the reference's
// (the lanes past W hold garbage, not to be stored). Used by max_pool2d_backward_cpu and the fused NL pools.
struct MaxBackPlane {
  Pool2dShape sh;
  int OH = 0, OW = 0, off = 0, Wc = 0, Lt = 0;  // Wc: W rounded up to whole chunks
  MaxPlane mp;
  std::vector<int32_t> at, target;
  std::vector<float> g;

  void setup(const Pool2dShape& s);
  void prepare(const float* xp, const float* dyp);
  simd::Lanes gather(int r, int c0) const {  // inline: called per chunk from pool.cpp and pool_box.cpp
    return sh.k == 3 ? gather_k<3>(r, c0) : gather_k<0>(r, c0);
  }

 private:
  template <int K>  // K: k, known to the compiler, or 0 for any k
  simd::Lanes gather_k(int r, int c0) const {
    using namespace simd;
    const int k = K ? K : sh.k, st = sh.stride, pad = sh.pad;
    // Output rows whose windows cover input row r: oh*st - pad <= r <= oh*st - pad + k - 1.
    const int lo = r + pad - k + 1, oh0 = std::max(0, lo <= 0 ? 0 : (lo + st - 1) / st);
    const int oh1 = std::min(OH - 1, (r + pad) / st);
    const LanesI me = lane_iota() + int32_t(r * sh.W + c0);
    Lanes acc = {}, gv;
    LanesI tv;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int t = 0; t < k; ++t) {  // ascending output column
        lanes_load(tv, target.data() + int64_t(oh) * Lt + c0 + t);
        lanes_load(gv, g.data() + int64_t(oh) * Lt + c0 + t);
        acc = tv == me ? acc + gv : acc;
      }
    return acc;
  }
};

// pool_small.cpp: the fused NL pools' backward on small planes (nl_pools_backward_cpu), lanes across planes.
void nl_pools_backward_small_planes(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x,
                                    const float* dymax, const float* dymix, float* dx, const float* res);

}  // namespace rf::pool_detail

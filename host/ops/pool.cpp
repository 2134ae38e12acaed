// Pooling, NCHW: max pool, average pool (count_include_pad) and the NL module's mixed average pool,
// forward and backward. First the plain reference loops (float and double), then the fast CPU path.
// Checked by tests/ops/test_pool.cpp: fast vs reference over a shape sweep (exact for max pool),
// reference gradients vs finite differences in double, strided output slices, bad shapes.
//
// Fast path, per (n, c) plane, OpenMP over planes (no two threads touch the same plane), inner loops on
// 16-float vector chunks of output columns:
// - max pool: separable. Row pass: max over the k taps of the row between -inf pads; column pass: max
//   over the window's rows. Max is exact and strict > keeps the first maximum, so values and argmax
//   (row-major first maximum) equal the reference's bit for bit. Backward carries the flat argmax
//   through both passes, then every input gathers the dy of the windows it wins, in the reference's
//   order: dx is bit-identical too, and no two lanes ever write the same dx. O(k) per output forward.
// - average / mixed pool: separable box sums on the zero-padded plane. Row pass: k taps per (row,
//   output column), as vector adds (k/16 vector adds per output). Column pass: for k > 2s+1 the
//   van Herk / Gil-Werman block trick: prefix and suffix sums inside blocks of k rows, each window =
//   suffix[a] + prefix[a+k-1]: O(1) per output and never a subtraction (no cancellation, unlike
//   running sums or summed-area tables); for small k a direct k-term sum. At stride s only the needed
//   output rows are summed (the row pass at s = 2 sums all columns, then keeps the even ones).
//   Error bound: every output is a sum of the same window values as the reference, in a tree of depth
//   <= 2k-2, so |fast - exact| <= (2k+2) u mean|x_window| + 2u |y| with u = 2^-24 (the extra terms
//   cover the 1/k^2 rounding, the product and the "- x"); the reference's sequential k^2-term sum has
//   the larger bound k^2 u mean|x_window|. The test checks the fast bound element by element.
//   Backward is the adjoint: the box with pad k-1-p applied to dy (dilated by s at stride s > 1), so
//   the same kernel and the same bound.
// - small planes (<= 64 elements, or <= 256 at stride > 1), forward: the lanes run across 16 planes of one
//   channel group instead of along a row (transpose in, pool, transpose out); the same separable
//   arithmetic, so the same guarantees (bit-identical max pool, the same box-sum bound).
#include "host/ops/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "host/core/check.h"

namespace rf {

// ---- shapes --------------------------------------------------------------------------------------

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
int mixed_group_of(const MixedPoolShape& s, int c) {
  int j = 0;
  while (c >= s.group_begin(j + 1)) ++j;
  return j;
}
}  // namespace

// ---- reference -----------------------------------------------------------------------------------

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
}  // namespace

template <typename T>
void max_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const T* xp = x + (int64_t(n) * s.C + c) * s.H * s.W;
      T* yp = y + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) yp[oh * OW + ow] = xp[max_window_argmax(s, xp, oh, ow)];
    }
}

template <typename T>
void max_pool2d_backward_ref(const Pool2dShape& s, const T* x, const T* dy, T* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  std::fill(dx, dx + int64_t(s.N) * s.C * s.H * s.W, T(0));
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const int64_t plane = (int64_t(n) * s.C + c) * s.H * s.W;
      const T* dyp = dy + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) dx[plane + max_window_argmax(s, x + plane, oh, ow)] += dyp[oh * OW + ow];
    }
}

template <typename T>
void avg_pool2d_forward_ref(const Pool2dShape& s, const T* x, T* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const T* xp = x + (int64_t(n) * s.C + c) * s.H * s.W;
      T* yp = y + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          T sum = T(0);
          for (int kh = 0; kh < s.k; ++kh)
            for (int kw = 0; kw < s.k; ++kw) {
              const int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
              if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) sum += xp[ih * s.W + iw];
            }
          yp[oh * OW + ow] = sum / T(s.k * s.k);  // count_include_pad: padded zeros count
        }
    }
}

template <typename T>
void avg_pool2d_backward_ref(const Pool2dShape& s, const T* dy, T* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  std::fill(dx, dx + int64_t(s.N) * s.C * s.H * s.W, T(0));
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      T* dxp = dx + (int64_t(n) * s.C + c) * s.H * s.W;
      const T* dyp = dy + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const T g = dyp[oh * OW + ow] / T(s.k * s.k);
          for (int kh = 0; kh < s.k; ++kh)
            for (int kw = 0; kw < s.k; ++kw) {
              const int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
              if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) dxp[ih * s.W + iw] += g;
            }
        }
    }
}

template <typename T>
void mixed_avg_pool_forward_ref(const MixedPoolShape& s, const T* x, T* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, c)), pad = k / 2;
      const T* xp = x + (int64_t(n) * s.C + c) * s.H * s.W;
      T* yp = y + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          T sum = T(0);
          for (int kh = 0; kh < k; ++kh)
            for (int kw = 0; kw < k; ++kw) {
              const int ih = oh * s.stride - pad + kh, iw = ow * s.stride - pad + kw;
              if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) sum += xp[ih * s.W + iw];
            }
          T v = sum / T(k * k);
          if (s.stride == 1) v -= xp[oh * s.W + ow];  // stride 1: pooled - x (OH == H, OW == W)
          yp[oh * OW + ow] = v;
        }
    }
}

template <typename T>
void mixed_avg_pool_backward_ref(const MixedPoolShape& s, const T* dy, T* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, c)), pad = k / 2;
      T* dxp = dx + (int64_t(n) * s.C + c) * s.H * s.W;
      const T* dyp = dy + n * s.y_batch_stride() + int64_t(c) * OH * OW;
      for (int i = 0; i < s.H * s.W; ++i) dxp[i] = s.stride == 1 ? -dyp[i] : T(0);  // the "- x" term
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const T g = dyp[oh * OW + ow] / T(k * k);
          for (int kh = 0; kh < k; ++kh)
            for (int kw = 0; kw < k; ++kw) {
              const int ih = oh * s.stride - pad + kh, iw = ow * s.stride - pad + kw;
              if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) dxp[ih * s.W + iw] += g;
            }
        }
    }
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

// ---- fast path: shared -----------------------------------------------------------------------------

namespace {

// The kernels run on chunks of kLanes output columns held in GCC/Clang vector types: one AVX-512
// register (two AVX2 ones), so running sums and maxima stay in registers instead of going through
// memory once per kernel tap. (Left to itself GCC 12 turned such chunk loops into scalar per-lane code.)
constexpr int kLanes = 16;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t LanesI __attribute__((vector_size(kLanes * sizeof(int32_t))));
int round_up_lanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }
#define RF_LOAD(v, p) std::memcpy(&(v), (p), sizeof(v))  // unaligned; macros keep vectors off the ABI
#define RF_STORE(p, v) std::memcpy((p), &(v), sizeof(v))

// Copies n floats in kLanes chunks inline: the row copies here are 8-64 floats, where a libc memmove
// call (size unknown at compile time) cost more than the copy itself (memmove was ~10% of an NL forward).
inline void copy_row(float* __restrict dst, const float* __restrict src, int n) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Lanes v;
    RF_LOAD(v, src + i);
    RF_STORE(dst + i, v);
  }
  for (; i < n; ++i) dst[i] = src[i];
}

// Below ~64k element operations a call takes ~10 us on one core, about what waking a team costs.
bool worth_threads(int64_t planes, int64_t work_per_plane) { return planes > 1 && planes * work_per_plane > (1 << 16); }

}  // namespace

// ---- fast path: small planes, lanes across planes ------------------------------------------------

namespace {

// On small planes (the 8x8 and 4x4 maps of a 32x32 network) a 16-float chunk
// of one plane's row is mostly padding, and the per-plane set-up outweighs the work: 4x4 planes cost
// ~5 ns per input element, 32x32 ones ~1.2. Here the 16 lanes hold 16 planes instead (consecutive
// planes in channel-major order q = c*N + n, all of one mixed-pool group, so they share a kernel size):
// the block is transposed to position-major order (v[i] lane l = element i of plane l), both pools run
// as scalar code on whole vectors, and the outputs are transposed back.
// Same arithmetic as the per-plane path: max pool separable with strict > in tap order (bit-identical to
// the reference, first maximum kept); box sums separable, row sums then column sums over the clipped
// window, then scale and "- x" (a tree of depth <= 2k-2: the same error bound).
// Where measured faster (2 threads; the fused NL pools at N=64 and the separate pools at N=8): planes of
// <= 64 elements at any stride (8x8: 2.3 -> 1.0 ms per NL module at N=64, C=256; 4x4: 2.5 -> 0.56 ms),
// 16x16 at stride 2 (2.5 -> 0.9 ms at C=128). 16x16 at stride 1 stays per plane, where a row is one whole
// chunk (the separate max and mixed pools were 1.4x and 1.25x faster that way; the fused pair 1.1x slower).
// The choice depends on the shape alone, so the fused and the separate calls stay bit-identical.
bool small_plane(int H, int W, int stride) { return H * W <= 64 || (H * W <= 256 && stride > 1); }

struct SmallPlanes {
  int H = 0, W = 0, HW = 0;
  std::vector<Lanes> in, rows, out_max, out_mix;  // position-major blocks of kLanes planes

  void setup(int H_, int W_, int OH, int OW) {
    H = H_, W = W_, HW = H * W;
    in.resize(HW);
    rows.resize(size_t(H) * OW);
    out_max.resize(size_t(OH) * OW);
    out_mix.resize(size_t(OH) * OW);
  }

  // in[i] lane l = src[l][i] for l < nl; lanes past nl are zero.
  void gather(const float* const* src, int nl) {
    if (nl < kLanes) std::fill(in.begin(), in.end(), Lanes{});
    for (int l = 0; l < nl; ++l)
      for (int i = 0; i < HW; ++i) in[i][l] = src[l][i];
  }

  static void scatter(const std::vector<Lanes>& v, int n, float* const* dst, int nl) {
    for (int l = 0; l < nl; ++l)
      for (int i = 0; i < n; ++i) dst[l][i] = v[i][l];
  }

  // Max pool of window k, stride s, pad p (pads never win: windows are clipped to the plane).
  void max_pool(int k, int s, int pad, int OH, int OW) {
    for (int i = 0; i < H; ++i)
      for (int oj = 0; oj < OW; ++oj) {
        const int j0 = std::max(0, oj * s - pad), j1 = std::min(W, oj * s - pad + k);
        Lanes acc = in[i * W + j0];
        for (int j = j0 + 1; j < j1; ++j) {
          const Lanes v = in[i * W + j];
          acc = v > acc ? v : acc;
        }
        rows[i * OW + oj] = acc;
      }
    for (int oi = 0; oi < OH; ++oi) {
      const int i0 = std::max(0, oi * s - pad), i1 = std::min(H, oi * s - pad + k);
      for (int oj = 0; oj < OW; ++oj) {
        Lanes acc = rows[i0 * OW + oj];
        for (int i = i0 + 1; i < i1; ++i) {
          const Lanes v = rows[i * OW + oj];
          acc = v > acc ? v : acc;
        }
        out_max[oi * OW + oj] = acc;
      }
    }
  }

  // scale * (box sum of window k, stride s, pad p over the zero-padded plane), minus x when sub (s = 1).
  void box_sum(int k, int s, int pad, int OH, int OW, float scale, bool sub) {
    for (int i = 0; i < H; ++i)
      for (int oj = 0; oj < OW; ++oj) {
        const int j0 = std::max(0, oj * s - pad), j1 = std::min(W, oj * s - pad + k);
        Lanes acc = in[i * W + j0];
        for (int j = j0 + 1; j < j1; ++j) acc += in[i * W + j];
        rows[i * OW + oj] = acc;
      }
    for (int oi = 0; oi < OH; ++oi) {
      const int i0 = std::max(0, oi * s - pad), i1 = std::min(H, oi * s - pad + k);
      for (int oj = 0; oj < OW; ++oj) {
        Lanes acc = rows[i0 * OW + oj];
        for (int i = i0 + 1; i < i1; ++i) acc += rows[i * OW + oj];
        acc *= scale;
        if (sub) acc -= in[oi * W + oj];
        out_mix[oi * OW + oj] = acc;
      }
    }
  }
};

// Max pool (mp) and/or mixed average pool (mx) of small planes; either may be null, both see the same x.
void pools_small_planes(const Pool2dShape* mp, const MixedPoolShape* mx, const float* x, float* ymax,
                        float* ymix) {
  const int N = mp ? mp->N : mx->N, C = mp ? mp->C : mx->C, H = mp ? mp->H : mx->H, W = mp ? mp->W : mx->W;
  const int s = mp ? mp->stride : mx->stride;
  const int OH = (H - 1) / s + 1, OW = (W - 1) / s + 1;  // mixed pool: pad k/2 keeps this for every k
  const int MOH = mp ? mp->OH() : OH, MOW = mp ? mp->OW() : OW;  // the max pool's own k and pad
  const int64_t HW = int64_t(H) * W, ybs = mp ? mp->y_batch_stride() : 0, zbs = mx ? mx->y_batch_stride() : 0;
  // Blocks of kLanes consecutive q = c*N + n inside each mixed-pool group (one group for the max pool alone).
  std::vector<std::pair<int64_t, int64_t>> blocks;  // [q0, q1)
  const int groups = mx ? MixedPoolShape::kGroups : 1;
  for (int j = 0; j < groups; ++j) {
    const int64_t q_lo = int64_t(mx ? mx->group_begin(j) : 0) * N, q_hi = int64_t(mx ? mx->group_begin(j + 1) : C) * N;
    for (int64_t q = q_lo; q < q_hi; q += kLanes) blocks.emplace_back(q, std::min(q_hi, q + kLanes));
  }
  const int64_t nb = int64_t(blocks.size());
  const int64_t work_per_block = kLanes * (HW + int64_t(OH) * OW) * 12;
#pragma omp parallel if (worth_threads(nb, work_per_block))
  {
    SmallPlanes sp;
    sp.setup(H, W, std::max(OH, MOH), std::max(OW, MOW));
    const float* src[kLanes];
    float* dst[kLanes];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t q0 = blocks[size_t(b)].first;
      const int nl = int(blocks[size_t(b)].second - q0);
      for (int l = 0; l < nl; ++l) {
        const int64_t c = (q0 + l) / N, n = (q0 + l) % N;
        src[l] = x + (n * C + c) * HW;
      }
      sp.gather(src, nl);
      if (mp) {
        sp.max_pool(mp->k, s, mp->pad, MOH, MOW);
        for (int l = 0; l < nl; ++l) {
          const int64_t c = (q0 + l) / N, n = (q0 + l) % N;
          dst[l] = ymax + n * ybs + c * MOH * MOW;
        }
        SmallPlanes::scatter(sp.out_max, MOH * MOW, dst, nl);
      }
      if (mx) {
        const int k = MixedPoolShape::group_kernel(mixed_group_of(*mx, int(q0 / N)));
        sp.box_sum(k, s, k / 2, OH, OW, 1.f / float(k * k), s == 1);
        for (int l = 0; l < nl; ++l) {
          const int64_t c = (q0 + l) / N, n = (q0 + l) % N;
          dst[l] = ymix + n * zbs + c * OH * OW;
        }
        SmallPlanes::scatter(sp.out_mix, OH * OW, dst, nl);
      }
    }
  }
}

}  // namespace

// ---- fast path: max pool -------------------------------------------------------------------------

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per-plane max pool in two separable passes, both at full (stride-1) column resolution j = ow*s:
// row pass hv[r][j] = max over kw of rowpad[r][j + kw] (rowpad = the row between `pad` -inf columns),
// then the column pass over the clamped rows of each output row. Strict > in tap order keeps the first
// maximum, so values are bit-identical to the reference and, with WithIdx, hi[r][j] = flat index
// r*W + column of the first maximum of the row window (the first valid column when all are -inf, as
// in the reference).
// At stride s > 1 the passes compute s times the columns needed and keep every s-th (one k=3 pass is
// cheaper than reshuffling the row).
struct MaxPlane {
  int H = 0, W = 0, k = 0, s = 1, pad = 0, OH = 0, OW = 0, rows = 0, Wl = 0;
  std::vector<float> rowpad, hv, col;
  std::vector<int32_t> hi;

  void setup(const Pool2dShape& sh, bool with_idx) {
    H = sh.H, W = sh.W, k = sh.k, s = sh.stride, pad = sh.pad, OH = sh.OH(), OW = sh.OW();
    rows = std::min(H, (OH - 1) * s - pad + k);  // rows past the last window are never read
    Wl = round_up_lanes((OW - 1) * s + 1);
    rowpad.assign(2 * (size_t(Wl) + k), kNegInf);
    hv.resize(size_t(rows) * Wl);
    col.resize(Wl);
    if (with_idx) hi.resize(size_t(rows) * Wl);
  }

  template <bool WithIdx>
  void row_pass(const float* xp) {
    const int ncopy = std::min(W, Wl + k - 1 - pad);  // columns any window reads
    LanesI iota;
    for (int j = 0; j < kLanes; ++j) iota[j] = j;
    // Two row buffers alternate: row r+1 is copied before row r is read, so the copy's stores have
    // drained by the time the (differently aligned) vector loads read them.
    const size_t len = size_t(Wl) + k;
    copy_row(rowpad.data() + pad, xp, ncopy);
    for (int r = 0; r < rows; ++r) {
      const float* rp = rowpad.data() + (r & 1) * len;
      if (r + 1 < rows)
        copy_row(rowpad.data() + ((r + 1) & 1) * len + pad, xp + int64_t(r + 1) * W, ncopy);
      for (int n0 = 0; n0 < Wl; n0 += kLanes) {
        Lanes acc, v;
        RF_LOAD(acc, rp + n0);
        // Flat index r*W + column; starts at the first valid column of each window.
        LanesI c = iota + (n0 - pad), arg = (c < 0 ? 0 : c) + r * W;
        c += r * W;
        for (int kw = 1; kw < k; ++kw) {
          RF_LOAD(v, rp + n0 + kw);
          const LanesI gt = v > acc;
          acc = gt ? v : acc;
          if (WithIdx) arg = gt ? c + kw : arg;
        }
        RF_STORE(hv.data() + int64_t(r) * Wl + n0, acc);
        if (WithIdx) RF_STORE(hi.data() + int64_t(r) * Wl + n0, arg);
      }
    }
  }

  // Column pass for output row oh: col[j] = max over its rows; with WithIdx, at[j] = flat index
  // (r*W + column) of the first maximum in row-major order.
  template <bool WithIdx>
  void col_pass(int oh, int32_t* at, float* out = nullptr) {  // out: where col goes (default col)
    const int r0 = std::max(0, oh * s - pad), r1 = std::min(H, oh * s - pad + k);
    for (int n0 = 0; n0 < Wl; n0 += kLanes) {
      Lanes acc, v;
      LanesI arg, a;
      RF_LOAD(acc, hv.data() + int64_t(r0) * Wl + n0);
      if (WithIdx) RF_LOAD(arg, hi.data() + int64_t(r0) * Wl + n0);
      for (int r = r0 + 1; r < r1; ++r) {
        RF_LOAD(v, hv.data() + int64_t(r) * Wl + n0);
        const LanesI gt = v > acc;
        acc = gt ? v : acc;
        if (WithIdx) {
          RF_LOAD(a, hi.data() + int64_t(r) * Wl + n0);
          arg = gt ? a : arg;
        }
      }
      RF_STORE((out ? out : col.data()) + n0, acc);
      if (WithIdx) RF_STORE(at + n0, arg);
    }
  }
};

}  // namespace

void max_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y) {
  s.validate();
  if (small_plane(s.H, s.W, s.stride)) return pools_small_planes(&s, nullptr, x, y, nullptr);
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * s.k;  // row pass + column pass
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    MaxPlane mp;
    mp.setup(s, false);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      float* yp = y + n * ybs + c * OH * OW;
      mp.row_pass<false>(x + p * HW);
      for (int oh = 0; oh < OH; ++oh) {
        float* yr = yp + int64_t(oh) * OW;
        // Stride 1 with whole chunks: the column pass stores straight into the output row.
        if (s.stride == 1 && OW % kLanes == 0) {
          mp.col_pass<false>(oh, nullptr, yr);
          continue;
        }
        mp.col_pass<false>(oh, nullptr);
        if (s.stride == 1)
          copy_row(yr, mp.col.data(), OW);
        else
          for (int ow = 0; ow < OW; ++ow) yr[ow] = mp.col[int64_t(ow) * s.stride];
      }
    }
  }
}

// Backward as a gather, so that no two lanes ever write the same dx: each output's target (the flat
// index of its first maximum) and dy are laid out on the dilated output grid (column j = ow*s), then
// every input pixel sums the dy of the windows covering it whose target it is, visiting them in the
// reference's (oh, ow) order: the same additions in the same order, so dx is bit-identical to the
// reference. k^2/s compare-and-adds per input, vectorised over input columns; the scatter it replaces
// (dx[target] += dy) ran at ~7 cycles per output, serialised through memory where windows share a max.
void max_pool2d_backward_cpu(const Pool2dShape& s, const float* x, const float* dy, float* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), k = s.k, st = s.stride, pad = s.pad;
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * k + HW * k * k / st;
  // Input column c is covered by the dilated output columns j in [c + pad - k + 1, c + pad]; stored at
  // jj = j + off with off = k - 1 - pad >= 0, so input chunk c0 reads entries [c0, c0 + kLanes + k - 1).
  const int off = k - 1 - pad, Wc = round_up_lanes(s.W), Lt = std::max(Wc + k - 1, round_up_lanes(OW) + off);
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    MaxPlane mp;
    mp.setup(s, true);
    // Rows of Lt >= Wl + off entries: the column pass may store a whole chunk past the last output.
    std::vector<int32_t> at(mp.Wl), target(size_t(OH) * Lt, -1);  // -1: no output at this column
    std::vector<float> g(size_t(OH) * Lt, 0.f);
    LanesI iota;
    for (int j = 0; j < kLanes; ++j) iota[j] = j;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const float* dyp = dy + n * ybs + c * OH * OW;
      float* dxp = dx + p * HW;
      mp.row_pass<true>(x + p * HW);
      for (int oh = 0; oh < OH; ++oh) {
        int32_t* tr = target.data() + int64_t(oh) * Lt + off;
        float* gr = g.data() + int64_t(oh) * Lt + off;
        if (st == 1) {  // the column pass writes the targets in place
          mp.col_pass<true>(oh, tr);
          for (int j = OW; j < mp.Wl; ++j) tr[j] = -1;  // lanes past the last output
          std::memcpy(gr, dyp + int64_t(oh) * OW, sizeof(float) * OW);
        } else {
          mp.col_pass<true>(oh, at.data());
          for (int ow = 0; ow < OW; ++ow) tr[ow * st] = at[ow * st], gr[ow * st] = dyp[int64_t(oh) * OW + ow];
        }
      }
      for (int r = 0; r < s.H; ++r) {
        // Output rows whose windows cover input row r: oh*st - pad <= r <= oh*st - pad + k - 1.
        const int lo = r + pad - k + 1, oh0 = std::max(0, lo <= 0 ? 0 : (lo + st - 1) / st);
        const int oh1 = std::min(OH - 1, (r + pad) / st);
        for (int c0 = 0; c0 < Wc; c0 += kLanes) {
          const LanesI me = iota + int32_t(r * s.W + c0);
          Lanes acc = {}, gv;
          LanesI tv;
          for (int oh = oh0; oh <= oh1; ++oh)
            for (int t = 0; t < k; ++t) {  // ascending output column
              RF_LOAD(tv, target.data() + int64_t(oh) * Lt + c0 + t);
              RF_LOAD(gv, g.data() + int64_t(oh) * Lt + c0 + t);
              acc = tv == me ? acc + gv : acc;
            }
          float* d = dxp + int64_t(r) * s.W + c0;
          if (c0 + kLanes <= s.W) {
            RF_STORE(d, acc);
          } else {
            float tmp[kLanes];
            RF_STORE(tmp, acc);
            for (int j = 0; j < s.W - c0; ++j) d[j] = tmp[j];
          }
        }
      }
    }
  }
}

// ---- fast path: box sums (average and mixed pool) ------------------------------------------------

namespace {

// Sum of taps kw < k of the chunk starting at ph + n0, tap kw at offset tap[kw]. Four partial sums
// (taps kw = j mod 4) then (a0 + a1) + (a2 + a3): a chain of ~k/4 + 2 dependent adds instead of k-1,
// and a summation tree of depth <= k-1.
inline void sum_taps(const float* ph, const int* tap, int k, float* out) {
  Lanes acc, v;
  RF_LOAD(acc, ph + tap[0]);
  if (k <= 4) {
    for (int kw = 1; kw < k; ++kw) RF_LOAD(v, ph + tap[kw]), acc += v;
  } else {
    Lanes a1, a2, a3;
    RF_LOAD(a1, ph + tap[1]);
    RF_LOAD(a2, ph + tap[2]);
    RF_LOAD(a3, ph + tap[3]);
    int kw = 4;
    for (; kw + 3 < k; kw += 4) {
      RF_LOAD(v, ph + tap[kw]), acc += v;
      RF_LOAD(v, ph + tap[kw + 1]), a1 += v;
      RF_LOAD(v, ph + tap[kw + 2]), a2 += v;
      RF_LOAD(v, ph + tap[kw + 3]), a3 += v;
    }
    if (kw < k) RF_LOAD(v, ph + tap[kw]), acc += v;
    if (kw + 1 < k) RF_LOAD(v, ph + tap[kw + 1]), a1 += v;
    if (kw + 2 < k) RF_LOAD(v, ph + tap[kw + 2]), a2 += v;
    acc = (acc + a1) + (a2 + a3);
  }
  RF_STORE(out, acc);
}

// Horizontal pass of the box sums: out[n] = sum_{kw < k} rowpad[n*s + kw] for n < Wl (a multiple of
// kLanes), rowpad = one src row with `pad` zeros in front and zeros after. Error <= (k-1) u sum|row|.
// - s = 1: taps are contiguous vector loads from rowpad.
// - s = 2: the same sums at every column j of two chunks (2 kLanes columns), then the even lanes kept:
//   twice the adds of the exact stride-2 sums, but no per-row reshuffle (which measured slower).
// - s > 2: rowpad split into s phases ph_f[t] = rowpad[t*s + f], so that tap kw reads
//   ph_{kw%s}[n + kw/s] with contiguous loads.
// Two buffers alternate: a row is filled one step before it is summed, so its stores have left the
// store buffer by the time the (differently aligned) vector loads read them.
struct RowPass {
  int k = 0, s = 1, pad = 0, ncopy = 0, Wl = 0, plen = 0;
  std::vector<float> buf[2];
  std::vector<int> tap;

  // ncopy: columns of the src row any window reads.
  void setup(int k_, int s_, int pad_, int ncopy_, int Wl_) {
    // Same geometry as the last plane: fill() writes the same entries, the rest are still zero, so the
    // buffers can be reused as they are (re-zeroing them per plane showed up at ~3% of an NL forward).
    if (k == k_ && s == s_ && pad == pad_ && ncopy == ncopy_ && Wl == Wl_ && !tap.empty()) return;
    k = k_, s = s_, pad = pad_, ncopy = ncopy_, Wl = Wl_;
    tap.resize(k);
    if (s <= 2) {
      plen = s * Wl + k;  // one phase: rowpad itself, read up to column s*Wl - 1 + k - 1
      for (int kw = 0; kw < k; ++kw) tap[kw] = kw;
    } else {
      plen = Wl + (k - 1) / s + 1;  // covers n + kw/s for n < Wl, kw < k
      for (int kw = 0; kw < k; ++kw) tap[kw] = (kw % s) * plen + kw / s;
    }
    for (auto& b : buf) b.assign(size_t(s <= 2 ? 1 : s) * plen, 0.f);  // never-written entries stay zero
  }

  void fill(const float* src_row, int slot) {
    float* ph = buf[slot].data();
    if (s <= 2) {
      copy_row(ph + pad, src_row, ncopy);
      return;
    }
    for (int f = 0; f < s; ++f) {
      // Phase f, entry t holds src column t*s + f - pad, for the columns in [0, ncopy).
      const int t0 = pad >= f ? (pad - f + s - 1) / s : 0;
      const int last = ncopy - 1 + pad - f;
      if (last < 0) continue;
      float* dst = ph + int64_t(f) * plen;
      for (int t = t0; t <= last / s; ++t) dst[t] = src_row[t * s + f - pad];
    }
  }

  void sum(int slot, float* __restrict out) const {
    const float* ph = buf[slot].data();
    if (s == 2) {
      alignas(64) float full[2 * kLanes];
      for (int n0 = 0; n0 < Wl; n0 += kLanes) {
        sum_taps(ph + 2 * n0, tap.data(), k, full);
        sum_taps(ph + 2 * n0 + kLanes, tap.data(), k, full + kLanes);
        Lanes lo, hi;
        RF_LOAD(lo, full);
        RF_LOAD(hi, full + kLanes);
        Lanes even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        RF_STORE(out + n0, even);
      }
      return;
    }
    for (int n0 = 0; n0 < Wl; n0 += kLanes) sum_taps(ph + n0, tap.data(), k, out + n0);
  }
};

struct BoxScratch {
  RowPass rows;
  std::vector<float> R, Sfx, P;
};

// d[j] = scale * V[j] - (sub ? sb[j] : 0) for the len <= kLanes valid columns of a chunk.
inline void finish_chunk(const float* V, float scale, const float* sb, float* d, int len) {
  Lanes v, x;
  RF_LOAD(v, V);
  v *= scale;
  if (len == kLanes) {
    if (sb) {
      RF_LOAD(x, sb);
      v -= x;
    }
    RF_STORE(d, v);
  } else {
    float t[kLanes];
    RF_STORE(t, v);
    for (int j = 0; j < len; ++j) d[j] = sb ? t[j] - sb[j] : t[j];
  }
}

// dst[m*Wo + n] = scale * sum over the window (m, n) of the zero-padded src - (sub ? sub[m*Wo + n] : 0),
// window rows [m*s - pad, m*s - pad + k), columns likewise. src (Hs, Ws), dst (Ho, Wo).
void box_sum_plane(const float* src, int Hs, int Ws, int k, int s, int pad, int Ho, int Wo, float scale,
                   const float* sub, float* dst, BoxScratch& sc) {
  // Padded rows the windows cover: index r' = r + pad, r' in [0, Hp). Columns: Wl >= Wo lanes computed
  // (the extra ones read zeros and are never stored).
  const int Hp = (Ho - 1) * s + k, Wl = round_up_lanes(Wo);
  sc.rows.setup(k, s, pad, std::max(0, std::min(Ws, (Wo - 1) * s + k - pad)), Wl);
  sc.R.resize(size_t(Hp) * Wl);
  // Padded row r' reads src row r' - pad; rows outside src sum to zero.
  const int r_lo = std::min(Hp, pad), r_hi = std::max(r_lo, std::min(Hp, Hs + pad));
  std::fill(sc.R.begin(), sc.R.begin() + int64_t(r_lo) * Wl, 0.f);
  std::fill(sc.R.begin() + int64_t(r_hi) * Wl, sc.R.end(), 0.f);
  if (r_lo < r_hi) sc.rows.fill(src + int64_t(r_lo - pad) * Ws, 0);
  for (int rp = r_lo; rp < r_hi; ++rp) {
    const int slot = (rp - r_lo) & 1;
    if (rp + 1 < r_hi) sc.rows.fill(src + int64_t(rp + 1 - pad) * Ws, slot ^ 1);
    sc.rows.sum(slot, sc.R.data() + int64_t(rp) * Wl);
  }

  float* R = sc.R.data();
  float V[kLanes];
  if (k <= 2 * s + 1) {
    // Direct column sum, k-1 adds per output: for small k no dearer than the block trick below.
    for (int n0 = 0; n0 < Wl; n0 += kLanes) {
      const int len = std::min(kLanes, Wo - n0);
      for (int m = 0; m < Ho; ++m) {
        const float* R0 = R + int64_t(m) * s * Wl + n0;
        Lanes acc, v;
        RF_LOAD(acc, R0);
        for (int kh = 1; kh < k; ++kh) {
          RF_LOAD(v, R0 + int64_t(kh) * Wl);
          acc += v;
        }
        RF_STORE(V, acc);
        finish_chunk(V, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      }
    }
    return;
  }

  // van Herk / Gil-Werman: rows split into blocks of k; Sfx = suffix sums and P = prefix sums inside
  // each block. A window [a, a+k-1] spans at most two blocks:
  // sum = Sfx[a] + P[a+k-1] (or P[a+k-1] alone when a starts a block). No subtraction anywhere.
  sc.Sfx.resize(size_t(Hp) * Wl);
  sc.P.resize(size_t(Hp) * Wl);
  float* Sfx = sc.Sfx.data();
  float* P = sc.P.data();
  for (int n0 = 0; n0 < Wl; n0 += kLanes) {
    const int len = std::min(kLanes, Wo - n0);
    for (int b = 0; b < Hp; b += k) {
      // Suffix (downwards from e-1) and prefix (upwards from b) chains interleaved: independent adds.
      const int e = std::min(Hp, b + k);
      Lanes sa, pa, v;
      RF_LOAD(sa, R + int64_t(e - 1) * Wl + n0);
      RF_STORE(Sfx + int64_t(e - 1) * Wl + n0, sa);
      RF_LOAD(pa, R + int64_t(b) * Wl + n0);
      RF_STORE(P + int64_t(b) * Wl + n0, pa);
      for (int i = 1; i < e - b; ++i) {
        RF_LOAD(v, R + int64_t(e - 1 - i) * Wl + n0);
        sa += v;
        RF_STORE(Sfx + int64_t(e - 1 - i) * Wl + n0, sa);
        RF_LOAD(v, R + int64_t(b + i) * Wl + n0);
        pa += v;
        RF_STORE(P + int64_t(b + i) * Wl + n0, pa);
      }
    }
    for (int m = 0; m < Ho; ++m) {
      const int a = m * s;
      const float* Pa = P + int64_t(a + k - 1) * Wl + n0;
      if (a % k == 0) {
        finish_chunk(Pa, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      } else {
        Lanes p, q;
        RF_LOAD(p, Pa);
        RF_LOAD(q, Sfx + int64_t(a) * Wl + n0);
        q += p;
        RF_STORE(V, q);
        finish_chunk(V, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      }
    }
  }
}

// Backward of y = scale * box(x) (- x when sub_dy): dx (Hs, Ws) from dy (Ho, Wo). The adjoint of a
// stride-1 box with pad p is the box with pad k-1-p applied to dy. At stride s the same holds for dy
// dilated by s (dy[m][n] placed at (m*s, n*s), zeros between): a dx value sums the dy whose windows
// cover it. Adding the zeros costs k taps per dx element in the row pass instead of k/s (the column
// pass is O(1) either way), and leaves the values and the error bound unchanged (x + 0 == x).
// `dilated` is the caller's (Ho-1)*s+1 by (Wo-1)*s+1 scratch, zero off the lattice.
void box_sum_backward_plane(const float* dy, int Ho, int Wo, int k, int s, int pad, int Hs, int Ws, float scale,
                            bool sub_dy, float* dx, BoxScratch& sc, std::vector<float>& dilated) {
  if (s == 1) {
    box_sum_plane(dy, Ho, Wo, k, 1, k - 1 - pad, Hs, Ws, scale, sub_dy ? dy : nullptr, dx, sc);
    return;
  }
  // sub_dy only exists at stride 1 (the mixed pool's "pooled - x").
  const int Hd = (Ho - 1) * s + 1, Wd = (Wo - 1) * s + 1;
  if (dilated.size() != size_t(Hd) * Wd) dilated.assign(size_t(Hd) * Wd, 0.f);
  for (int m = 0; m < Ho; ++m)
    for (int n = 0; n < Wo; ++n) dilated[int64_t(m) * s * Wd + int64_t(n) * s] = dy[int64_t(m) * Wo + n];
  box_sum_plane(dilated.data(), Hd, Wd, k, 1, k - 1 - pad, Hs, Ws, scale, nullptr, dx, sc);
}

}  // namespace

void avg_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * (s.k + 3);
  const float scale = 1.f / float(s.k * s.k);
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      box_sum_plane(x + p * HW, s.H, s.W, s.k, s.stride, s.pad, OH, OW, scale, nullptr,
                    y + n * ybs + c * OH * OW, sc);
    }
  }
}

void avg_pool2d_backward_cpu(const Pool2dShape& s, const float* dy, float* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * (s.k + 3);
  const float scale = 1.f / float(s.k * s.k);
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
    std::vector<float> dilated;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      box_sum_backward_plane(dy + n * ybs + c * OH * OW, OH, OW, s.k, s.stride, s.pad, s.H, s.W, scale, false,
                             dx + p * HW, sc, dilated);
    }
  }
}

void mixed_avg_pool_forward_cpu(const MixedPoolShape& s, const float* x, float* y) {
  s.validate();
  if (small_plane(s.H, s.W, s.stride)) return pools_small_planes(nullptr, &s, x, nullptr, y);
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * 10;  // mean k is ~6.4 at C=64
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
    // Planes in channel-major order (q = c*N + n): a thread's run of planes then changes kernel size a
    // handful of times instead of at every group boundary of every sample, so the row-pass buffers are
    // set up ~5 times per call rather than 5N times.
#pragma omp for schedule(static)
    for (int64_t q = 0; q < planes; ++q) {
      const int64_t c = q / s.N, n = q % s.N, p = n * s.C + c;
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, int(c)));
      const float* xp = x + p * HW;
      box_sum_plane(xp, s.H, s.W, k, s.stride, k / 2, OH, OW, 1.f / float(k * k), s.stride == 1 ? xp : nullptr,
                    y + n * ybs + c * OH * OW, sc);
    }
  }
}

// Both pooling branches of an NL module in one parallel region: per (n, c) plane the max pool and the
// mixed average pool run back to back on the same input plane, which the second reads from L1 (a 32x32
// plane is 4 KB), and one team wake-up serves both. The per-plane kernels are the ones above, so the
// outputs equal those of the two separate calls bit for bit (checked by the pool tests).
void nl_pools_forward_cpu(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x, float* ymax,
                          float* ymix) {
  mp.validate();
  mx.validate();
  RF_CHECK(mp.N == mx.N && mp.C == mx.C && mp.H == mx.H && mp.W == mx.W && mp.stride == mx.stride,
           "nl_pools_forward: the two pools must see the same input and stride, got {} and {}", mp.str(), mx.str());
  if (small_plane(mp.H, mp.W, mp.stride)) return pools_small_planes(&mp, &mx, x, ymax, ymix);
  const int OH = mp.OH(), OW = mp.OW(), MH = mx.OH(), MW = mx.OW();
  const int64_t planes = int64_t(mp.N) * mp.C, HW = int64_t(mp.H) * mp.W;
  const int64_t ybs = mp.y_batch_stride(), zbs = mx.y_batch_stride();
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * (mp.k + 10);
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    MaxPlane mpl;
    mpl.setup(mp, false);
    BoxScratch sc;
    // Channel-major plane order, as in mixed_avg_pool_forward_cpu: few kernel-size changes per thread.
#pragma omp for schedule(static)
    for (int64_t q = 0; q < planes; ++q) {
      const int64_t c = q / mp.N, n = q % mp.N, p = n * mp.C + c;
      const float* xp = x + p * HW;
      float* yp = ymax + n * ybs + c * OH * OW;
      mpl.row_pass<false>(xp);
      for (int oh = 0; oh < OH; ++oh) {
        float* yr = yp + int64_t(oh) * OW;
        // Stride 1 with whole chunks: the column pass stores straight into the output row.
        if (mp.stride == 1 && OW % kLanes == 0) {
          mpl.col_pass<false>(oh, nullptr, yr);
          continue;
        }
        mpl.col_pass<false>(oh, nullptr);
        if (mp.stride == 1)
          copy_row(yr, mpl.col.data(), OW);
        else
          for (int ow = 0; ow < OW; ++ow) yr[ow] = mpl.col[int64_t(ow) * mp.stride];
      }
      const int k = MixedPoolShape::group_kernel(mixed_group_of(mx, int(c)));
      box_sum_plane(xp, mx.H, mx.W, k, mx.stride, k / 2, MH, MW, 1.f / float(k * k), mx.stride == 1 ? xp : nullptr,
                    ymix + n * zbs + c * MH * MW, sc);
    }
  }
}

void mixed_avg_pool_backward_cpu(const MixedPoolShape& s, const float* dy, float* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * 10;
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
    std::vector<float> dilated;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, int(c)));
      box_sum_backward_plane(dy + n * ybs + c * OH * OW, OH, OW, k, s.stride, k / 2, s.H, s.W, 1.f / float(k * k),
                             s.stride == 1, dx + p * HW, sc, dilated);
    }
  }
}

}  // namespace rf

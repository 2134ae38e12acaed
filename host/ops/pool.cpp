// Pooling, NCHW: max pool, average pool (count_include_pad) and the NL module's mixed average pool,
// forward and backward. First the plain reference loops (float and double), then the fast CPU path.
// Checked by tests/ops/test_pool.cpp: fast vs reference over a shape sweep (exact for max pool),
// reference gradients vs finite differences in double, strided output slices, bad shapes.
//
// Fast path, per (n, c) plane, OpenMP over planes (no two threads touch the same plane):
// - max pool: separable. Row pass: max over k columns for each needed output column (vectorised on
//   the interior, clamped on the borders, padding never read); column pass: max over the clamped
//   rows. Max is exact and ties keep the first (strict >), so the value and the argmax (row-major first
//   maximum) equal the reference's bit for bit. Backward reuses the same passes carrying the column
//   index, then scatters dy: O(k) per output instead of O(k^2).
// - average / mixed pool: separable box sums on the zero-padded plane. Row pass: k adds per needed
//   (row, output column), vectorised over output columns (k/16 vector adds per output with AVX-512).
//   Column pass: for k > 2s+1 the van Herk / Gil-Werman block trick: prefix and suffix sums inside
//   blocks of k rows, then each window = suffix[a] + prefix[a+k-1], 1 add per output and never a
//   subtraction (no cancellation, unlike running sums or summed-area tables); for small k a direct
//   k-term sum. Only the output rows/columns the stride needs are computed.
//   Error bound: every output is a sum of the same window values as the reference, in a tree of depth
//   <= 2k-2, so |fast - exact| <= ((2k+2) u mean|x_window| + 2u |y|) with u = 2^-24 (the +4 covers
//   the 1/k^2 rounding, the product and the "- x"); the reference's sequential k^2-term sum has the
//   larger bound (k^2 u mean|x_window|). The test checks the fast bound element by element.
//   Backward is the adjoint: at stride 1 a box sum of dy with pad k-1-p (so the same kernel), at
//   stride > 1 a scatter of each dy row/column into its k input rows/columns (k/s adds per input).
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

// ---- fast path: max pool -------------------------------------------------------------------------

namespace {

// Output columns [lo, hi) whose window [ow*s - pad, ow*s - pad + k) lies inside [0, W).
struct Interior {
  int lo, hi;
};
Interior interior(int W, int OW, int k, int stride, int pad) {
  const int lo = std::min(OW, (pad + stride - 1) / stride);
  const int hi = W - k + pad >= 0 ? std::min(OW, (W - k + pad) / stride + 1) : 0;
  return {lo, std::max(lo, hi)};
}

// Row pass of the max pool: hv[ow] = max over the window's columns of one input row, hi[ow] = the
// column of its first maximum (only when WithIdx). S = the stride as a compile-time constant (0: s).
template <int S, bool WithIdx>
void max_row(const float* __restrict xr, int W, int OW, int k, int s_rt, int pad, Interior in, float* __restrict hv,
             int* __restrict hi) {
  const int s = S > 0 ? S : s_rt;
  auto border = [&](int ow) {
    const int c0 = std::max(0, ow * s - pad), c1 = std::min(W, ow * s - pad + k);
    float best = xr[c0];
    int arg = c0;
    for (int c = c0 + 1; c < c1; ++c)
      if (xr[c] > best) best = xr[c], arg = c;
    hv[ow] = best;
    if (WithIdx) hi[ow] = arg;
  };
  for (int ow = 0; ow < in.lo; ++ow) border(ow);
  for (int ow = in.lo; ow < in.hi; ++ow) {
    hv[ow] = xr[ow * s - pad];
    if (WithIdx) hi[ow] = ow * s - pad;
  }
  for (int kw = 1; kw < k; ++kw)
    for (int ow = in.lo; ow < in.hi; ++ow) {  // vectorised: compare + blend, strict > keeps the first
      const float v = xr[ow * s - pad + kw];
      const bool gt = v > hv[ow];
      hv[ow] = gt ? v : hv[ow];
      if (WithIdx) hi[ow] = gt ? ow * s - pad + kw : hi[ow];
    }
  for (int ow = in.hi; ow < OW; ++ow) border(ow);
}

template <bool WithIdx>
void max_rows(const float* xp, const Pool2dShape& s, int rows, float* hv, int* hi) {
  const int OW = s.OW();
  const Interior in = interior(s.W, OW, s.k, s.stride, s.pad);
  for (int ih = 0; ih < rows; ++ih) {
    const float* xr = xp + int64_t(ih) * s.W;
    float* v = hv + int64_t(ih) * OW;
    int* i = WithIdx ? hi + int64_t(ih) * OW : nullptr;
    if (s.stride == 1)
      max_row<1, WithIdx>(xr, s.W, OW, s.k, 1, s.pad, in, v, i);
    else if (s.stride == 2)
      max_row<2, WithIdx>(xr, s.W, OW, s.k, 2, s.pad, in, v, i);
    else
      max_row<0, WithIdx>(xr, s.W, OW, s.k, s.stride, s.pad, in, v, i);
  }
}

// Input rows any window reads: rows past the last window are never needed.
int rows_needed(int H, int OH, int k, int stride, int pad) { return std::min(H, (OH - 1) * stride - pad + k); }

// Below ~64k element operations a call takes ~10 us on one core, about what waking a team costs.
bool worth_threads(int64_t planes, int64_t work_per_plane) { return planes > 1 && planes * work_per_plane > (1 << 16); }

}  // namespace

void max_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), rows = rows_needed(s.H, OH, s.k, s.stride, s.pad);
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride();
  const int64_t work_per_plane = (int64_t(rows) + OH) * OW * s.k;  // row pass + column pass
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    std::vector<float> hv(size_t(rows) * OW);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const float* xp = x + p * s.H * s.W;
      float* yp = y + n * ybs + c * OH * OW;
      max_rows<false>(xp, s, rows, hv.data(), nullptr);
      for (int oh = 0; oh < OH; ++oh) {  // column pass over the clamped rows, vectorised over ow
        const int r0 = std::max(0, oh * s.stride - s.pad), r1 = std::min(s.H, oh * s.stride - s.pad + s.k);
        float* yr = yp + int64_t(oh) * OW;
        const float* h0 = hv.data() + int64_t(r0) * OW;
        for (int ow = 0; ow < OW; ++ow) yr[ow] = h0[ow];
        for (int r = r0 + 1; r < r1; ++r) {
          const float* hr = hv.data() + int64_t(r) * OW;
          for (int ow = 0; ow < OW; ++ow) yr[ow] = hr[ow] > yr[ow] ? hr[ow] : yr[ow];
        }
      }
    }
  }
}

void max_pool2d_backward_cpu(const Pool2dShape& s, const float* x, const float* dy, float* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), rows = rows_needed(s.H, OH, s.k, s.stride, s.pad);
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (int64_t(rows) + OH) * OW * s.k;
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    std::vector<float> hv(size_t(rows) * OW), best(OW);
    std::vector<int> hi(size_t(rows) * OW), best_r(OW);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const float* xp = x + p * HW;
      const float* dyp = dy + n * ybs + c * OH * OW;
      float* dxp = dx + p * HW;
      std::memset(dxp, 0, sizeof(float) * HW);
      max_rows<true>(xp, s, rows, hv.data(), hi.data());
      for (int oh = 0; oh < OH; ++oh) {
        const int r0 = std::max(0, oh * s.stride - s.pad), r1 = std::min(s.H, oh * s.stride - s.pad + s.k);
        const float* h0 = hv.data() + int64_t(r0) * OW;
        for (int ow = 0; ow < OW; ++ow) best[ow] = h0[ow], best_r[ow] = r0;
        for (int r = r0 + 1; r < r1; ++r) {
          const float* hr = hv.data() + int64_t(r) * OW;
          for (int ow = 0; ow < OW; ++ow) {
            const bool gt = hr[ow] > best[ow];  // strict: the earliest row keeps a tie
            best[ow] = gt ? hr[ow] : best[ow];
            best_r[ow] = gt ? r : best_r[ow];
          }
        }
        // Scatter: windows overlap, so this stays serial within the plane.
        for (int ow = 0; ow < OW; ++ow) {
          const int r = best_r[ow];
          dxp[int64_t(r) * s.W + hi[int64_t(r) * OW + ow]] += dyp[oh * OW + ow];
        }
      }
    }
  }
}

// ---- fast path: box sums (average and mixed pool) ------------------------------------------------

namespace {

// Box sums run on chunks of kLanes output columns held in a GCC/Clang vector type: one AVX-512
// register (two AVX2 ones), so running sums stay in registers instead of going through memory once per
// kernel tap. (Left to itself GCC 12 interchanged the chunk loops into scalar per-lane sums.)
constexpr int kLanes = 16;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
int round_up_lanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }
#define RF_LOAD(v, p) std::memcpy(&(v), (p), sizeof(Lanes))  // unaligned; macros keep Lanes off the ABI
#define RF_STORE(p, v) std::memcpy((p), &(v), sizeof(Lanes))

struct BoxScratch {
  std::vector<float> row, phases, R, Sfx;
};

// out[n] = sum_{kw < k} row[n*s + kw] for n < Wl (a multiple of kLanes); row is zero-padded to
// (Wl-1)*s + k. At stride s > 1 the row is first split into s phases (ph_f[i] = row[i*s + f]) so that
// tap kw reads ph_{kw%s}[n + kw/s]: contiguous loads for any stride. Summed in kw order: k-1 adds,
// error <= (k-1) u sum|row|.
// ph[f*plen + t] = row[t*s + f] for t*s + f < Wp. S: the stride as a constant (0: s_rt), so that GCC
// turns the stride-2 loads into vector permutes.
template <int S>
void deinterleave(const float* __restrict row, int Wp, int s_rt, int plen, float* __restrict ph) {
  const int s = S > 0 ? S : s_rt;
  for (int f = 0; f < s; ++f) {
    const int count = (Wp - f + s - 1) / s;
    float* dst = ph + size_t(f) * plen;
    for (int t = 0; t < count; ++t) dst[t] = row[t * s + f];
  }
}

int phase_len(int Wl, int k, int s) { return Wl + (k - 1) / s + 1; }  // covers n + kw/s, n < Wl, kw < k
void box_row(const float* row, int Wl, int k, int s, std::vector<float>& phases, float* out) {
  const float* ph = row;
  const int plen = phase_len(Wl, k, s);
  if (s > 1) {  // phases was zero-filled by the caller, entries past the row's end stay zero
    const int Wp = (Wl - 1) * s + k;
    if (s == 2)
      deinterleave<2>(row, Wp, 2, plen, phases.data());
    else
      deinterleave<0>(row, Wp, s, plen, phases.data());
    ph = phases.data();
  }
  for (int n0 = 0; n0 < Wl; n0 += kLanes) {
    Lanes acc, v;
    RF_LOAD(acc, ph + n0);
    for (int kw = 1; kw < k; ++kw) {
      RF_LOAD(v, ph + (s > 1 ? int64_t(kw % s) * plen + kw / s : kw) + n0);
      acc += v;
    }
    RF_STORE(out + n0, acc);
  }
}

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
  // (the extra ones read zeros and are never stored), from a zero-padded row of Wp columns.
  const int Hp = (Ho - 1) * s + k, Wl = round_up_lanes(Wo), Wp = (Wl - 1) * s + k;
  sc.row.assign(Wp, 0.f);
  if (s > 1) sc.phases.assign(size_t(s) * phase_len(Wl, k, s), 0.f);
  sc.R.resize(size_t(Hp) * Wl);
  const int ncopy = std::max(0, std::min(Ws, (Wo - 1) * s + k - pad));  // columns of src any window reads
  for (int rp = 0; rp < Hp; ++rp) {
    float* Rr = sc.R.data() + int64_t(rp) * Wl;
    const int r = rp - pad;
    if (r < 0 || r >= Hs) {
      std::fill(Rr, Rr + Wl, 0.f);
      continue;
    }
    std::memcpy(sc.row.data() + pad, src + int64_t(r) * Ws, sizeof(float) * ncopy);  // borders stay 0
    box_row(sc.row.data(), Wl, k, s, sc.phases, Rr);
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

  // van Herk / Gil-Werman: rows split into blocks of k; Sfx = suffix sums inside each block, R becomes
  // prefix sums P inside each block. A window [a, a+k-1] spans at most two blocks:
  // sum = Sfx[a] + P[a+k-1] (or P[a+k-1] alone when a starts a block). No subtraction anywhere.
  sc.Sfx.resize(size_t(Hp) * Wl);
  float* Sfx = sc.Sfx.data();
  for (int n0 = 0; n0 < Wl; n0 += kLanes) {
    const int len = std::min(kLanes, Wo - n0);
    for (int b = 0; b < Hp; b += k) {
      const int e = std::min(Hp, b + k);
      Lanes acc, v;
      RF_LOAD(acc, R + int64_t(e - 1) * Wl + n0);
      RF_STORE(Sfx + int64_t(e - 1) * Wl + n0, acc);
      for (int r = e - 2; r >= b; --r) {
        RF_LOAD(v, R + int64_t(r) * Wl + n0);
        acc += v;
        RF_STORE(Sfx + int64_t(r) * Wl + n0, acc);
      }
      RF_LOAD(acc, R + int64_t(b) * Wl + n0);
      for (int r = b + 1; r < e; ++r) {
        RF_LOAD(v, R + int64_t(r) * Wl + n0);
        acc += v;
        RF_STORE(R + int64_t(r) * Wl + n0, acc);
      }
    }
    for (int m = 0; m < Ho; ++m) {
      const int a = m * s;
      const float* P = R + int64_t(a + k - 1) * Wl + n0;
      if (a % k == 0) {
        finish_chunk(P, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      } else {
        Lanes p, q;
        RF_LOAD(p, P);
        RF_LOAD(q, Sfx + int64_t(a) * Wl + n0);
        q += p;
        RF_STORE(V, q);
        finish_chunk(V, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      }
    }
  }
}

// Adjoint of box_sum_plane (without sub) at stride s > 1: dst (Hs, Ws) = scale * sum of src(m, n) over
// the windows that contain the pixel. Scatter each src row into its k padded rows, then each column.
void box_sum_adjoint_strided(const float* src, int Ho, int Wo, int k, int s, int pad, int Hs, int Ws,
                             float scale, float* dst, BoxScratch& sc) {
  const int Hp = (Ho - 1) * s + k, Wp = (Wo - 1) * s + k;
  sc.R.assign(size_t(Hp) * Wo, 0.f);
  sc.row.resize(Wp);
  for (int m = 0; m < Ho; ++m) {
    const float* sr = src + int64_t(m) * Wo;
    for (int kh = 0; kh < k; ++kh) {
      float* G = sc.R.data() + int64_t(m * s + kh) * Wo;
      for (int n = 0; n < Wo; ++n) G[n] += sr[n];
    }
  }
  for (int r = 0; r < Hs; ++r) {
    float* d = dst + int64_t(r) * Ws;
    const int rp = r + pad;
    if (rp >= Hp) {  // no window reads this row
      std::fill(d, d + Ws, 0.f);
      continue;
    }
    const float* G = sc.R.data() + int64_t(rp) * Wo;
    float* row = sc.row.data();
    std::fill(row, row + Wp, 0.f);
    for (int kw = 0; kw < k; ++kw)
      for (int n = 0; n < Wo; ++n) row[n * s + kw] += G[n];
    const int q1 = std::min(Ws, Wp - pad);
    for (int q = 0; q < q1; ++q) d[q] = scale * row[q + pad];
    for (int q = std::max(0, q1); q < Ws; ++q) d[q] = 0.f;
  }
}

// Backward of y = scale * box(x) (- x when sub_dy): dx (Hs, Ws) from dy (Ho, Wo).
void box_sum_backward_plane(const float* dy, int Ho, int Wo, int k, int s, int pad, int Hs, int Ws, float scale,
                            bool sub_dy, float* dx, BoxScratch& sc) {
  if (s == 1) {
    // The adjoint of a stride-1 box with pad p is the box with pad k-1-p applied to dy.
    box_sum_plane(dy, Ho, Wo, k, 1, k - 1 - pad, Hs, Ws, scale, sub_dy ? dy : nullptr, dx, sc);
  } else {
    box_sum_adjoint_strided(dy, Ho, Wo, k, s, pad, Hs, Ws, scale, dx, sc);
    // sub_dy only exists at stride 1 (the mixed pool's "pooled - x").
  }
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
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      box_sum_backward_plane(dy + n * ybs + c * OH * OW, OH, OW, s.k, s.stride, s.pad, s.H, s.W, scale, false,
                             dx + p * HW, sc);
    }
  }
}

void mixed_avg_pool_forward_cpu(const MixedPoolShape& s, const float* x, float* y) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * 10;  // mean k is ~6.4 at C=64
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, int(c)));
      const float* xp = x + p * HW;
      box_sum_plane(xp, s.H, s.W, k, s.stride, k / 2, OH, OW, 1.f / float(k * k), s.stride == 1 ? xp : nullptr,
                    y + n * ybs + c * OH * OW, sc);
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
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      const int k = MixedPoolShape::group_kernel(mixed_group_of(s, int(c)));
      box_sum_backward_plane(dy + n * ybs + c * OH * OW, OH, OW, k, s.stride, k / 2, s.H, s.W, 1.f / float(k * k),
                             s.stride == 1, dx + p * HW, sc);
    }
  }
}

}  // namespace rf

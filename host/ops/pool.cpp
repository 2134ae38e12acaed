// Pooling, NCHW, the fast CPU path: max pool here; the box sums (average and mixed pool) and the fused NL
// pools in pool_box.cpp; small planes (lanes across planes) in pool_small.cpp; shapes and the reference loops in
// pool_ref.cpp; what they share in pool_kernels.h. Checked by tests/ops/test_pool.cpp: fast vs reference
// over a shape sweep (exact for max pool), reference gradients vs finite differences in double, strided
// output slices, bad shapes.
//
// Fast path, per (n, c) plane, OpenMP over planes (no two threads touch the same plane), inner loops on
// vector chunks (host/core/simd.h's Lanes, 16 floats on AVX-512) of output columns:
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
// - small planes (<= 64 elements, or <= 256 at stride > 1), forward: the lanes run across kLanes planes of one
//   channel group instead of along a row (transpose in, pool, transpose out); the same separable
//   arithmetic, so the same guarantees (bit-identical max pool, the same box-sum bound).
// - the NL module's two pools' backward, fused (nl_pools_backward_cpu, pool_box.cpp): per plane, the max
//   pool's gather and the mixed pool's box are added into dx in one pass; small planes lanes across
//   planes (pool_small.cpp) with the per-plane path's exact operations, so dx is the same bits either way.
#include "host/ops/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "host/core/check.h"
#include "host/core/simd.h"
#include "host/ops/pool_kernels.h"

namespace rf {
namespace pool_detail {

using namespace simd;

// ---- max pool --------------------------------------------------------------------------------------

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
}  // namespace

void MaxPlane::setup(const Pool2dShape& sh, bool with_idx) {
  H = sh.H, W = sh.W, k = sh.k, s = sh.stride, pad = sh.pad, OH = sh.OH(), OW = sh.OW();
  rows = std::min(H, (OH - 1) * s - pad + k);  // rows past the last window are never read
  Wl = round_up_lanes((OW - 1) * s + 1);
  rowpad.assign(2 * (size_t(Wl) + k), kNegInf);
  hv.resize(size_t(rows) * Wl);
  col.resize(Wl);
  if (with_idx) hi.resize(size_t(rows) * Wl);
}

template <bool WithIdx>
void MaxPlane::row_pass(const float* xp) {
  const int ncopy = std::min(W, Wl + k - 1 - pad);  // columns any window reads
  const LanesI iota = lane_iota();
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
      lanes_load(acc, rp + n0);
      // Flat index r*W + column; starts at the first valid column of each window.
      LanesI c = iota + (n0 - pad), arg = (c < 0 ? 0 : c) + r * W;
      c += r * W;
      for (int kw = 1; kw < k; ++kw) {
        lanes_load(v, rp + n0 + kw);
        const LanesI gt = v > acc;
        acc = gt ? v : acc;
        if (WithIdx) arg = gt ? c + kw : arg;
      }
      lanes_store(hv.data() + int64_t(r) * Wl + n0, acc);
      if (WithIdx) lanes_store(hi.data() + int64_t(r) * Wl + n0, arg);
    }
  }
}

template <bool WithIdx>
void MaxPlane::col_pass(int oh, int32_t* at, float* out) {
  const int r0 = std::max(0, oh * s - pad), r1 = std::min(H, oh * s - pad + k);
  for (int n0 = 0; n0 < Wl; n0 += kLanes) {
    Lanes acc, v;
    LanesI arg, a;
    lanes_load(acc, hv.data() + int64_t(r0) * Wl + n0);
    if (WithIdx) lanes_load(arg, hi.data() + int64_t(r0) * Wl + n0);
    for (int r = r0 + 1; r < r1; ++r) {
      lanes_load(v, hv.data() + int64_t(r) * Wl + n0);
      const LanesI gt = v > acc;
      acc = gt ? v : acc;
      if (WithIdx) {
        lanes_load(a, hi.data() + int64_t(r) * Wl + n0);
        arg = gt ? a : arg;
      }
    }
    lanes_store((out ? out : col.data()) + n0, acc);
    if (WithIdx) lanes_store(at + n0, arg);
  }
}

#if defined(__AVX512F__)
namespace {
// vmaxps(v, acc) is v > acc ? v : acc lane by lane (NaN or equal: acc), the select of row_pass and col_pass; the
// masked form with every lane set, as _mm512_max_ps reads an undefined vector GCC 12 warns about.
inline __m512 max_sel(__m512 v, __m512 acc) { return _mm512_mask_max_ps(acc, 0xFFFF, v, acc); }

// The k = 3, pad 1 row maxima of a plane up to NCH * 16 wide, at every column, as row_pass_regs makes them.
template <int NCH>
struct RowMax3 {
  const float* xp;
  int W;
  __mmask16 mk[NCH][3];
  RowMax3(const float* x, int w) : xp(x), W(w) {
    for (int c = 0; c < NCH; ++c)
      for (int kw = 0; kw < 3; ++kw) mk[c][kw] = tap_mask(c * kLanes, kw, 1, W);
  }
  void operator()(int r, __m512 (&h)[NCH]) const {
    const __m512 ninf = _mm512_set1_ps(kNegInf);
    const float* at = xp + int64_t(r) * W - 1;
    for (int c = 0; c < NCH; ++c) {
      const float* a = at + c * kLanes;
      __m512 acc = _mm512_mask_loadu_ps(ninf, mk[c][0], a);
      acc = max_sel(_mm512_mask_loadu_ps(ninf, mk[c][1], a + 1), acc);
      h[c] = max_sel(_mm512_mask_loadu_ps(ninf, mk[c][2], a + 2), acc);
    }
  }
};
}  // namespace

void MaxPlane::row_pass_regs(const float* xp) {
  const int nch = Wl / kLanes;
  __mmask16 mk[kRowPassChunks][kMaxRowPassK];  // the masks of chunk c's taps, the same on every row
  for (int c = 0; c < nch; ++c)
    for (int kw = 0; kw < k; ++kw) mk[c][kw] = tap_mask(c * kLanes, kw, pad, W);
  const __m512 ninf = _mm512_set1_ps(kNegInf);
  for (int r = 0; r < rows; ++r) {
    const float* row = xp + int64_t(r) * W - pad;
    float* out = hv.data() + int64_t(r) * Wl;
    for (int c = 0; c < nch; ++c) {
      const float* at = row + c * kLanes;
      __m512 acc = _mm512_mask_loadu_ps(ninf, mk[c][0], at);
      for (int kw = 1; kw < k; ++kw) acc = max_sel(_mm512_mask_loadu_ps(ninf, mk[c][kw], at + kw), acc);
      _mm512_storeu_ps(out + c * kLanes, acc);
    }
  }
}
#endif

#if defined(__AVX512F__)
namespace {
// The max pool's k = 3, stride 1, pad 1 plane of width <= NCH * 16 in registers: row maxes as row_pass_regs
// makes them, each output row the column pass's select over its (clamped) rows in the same order, the last
// three rows' maxes held in registers. 3x the speed of the two passes through memory (1 thread, 32x32).
template <int NCH>
void max3x3_s1_plane(const float* xp, float* yp, int H, int W) {
  const RowMax3<NCH> row_max(xp, W);
  __mmask16 ms[NCH];
  for (int c = 0; c < NCH; ++c) ms[c] = tap_mask(c * kLanes, 0, 0, W);  // the lanes inside the row
  const auto store = [&](int oh, const __m512(&v)[NCH]) {
    for (int c = 0; c < NCH; ++c) _mm512_mask_storeu_ps(yp + int64_t(oh) * W + c * kLanes, ms[c], v[c]);
  };
  __m512 h0[NCH], h1[NCH], h2[NCH], o[NCH];
  row_max(0, h0);
  if (H == 1) return store(0, h0);
  row_max(1, h1);
  for (int c = 0; c < NCH; ++c) o[c] = max_sel(h1[c], h0[c]);  // output row 0: rows 0, 1
  store(0, o);
  for (int oh = 1; oh + 1 < H; ++oh) {  // rows oh - 1, oh, oh + 1
    row_max(oh + 1, h2);
    for (int c = 0; c < NCH; ++c) o[c] = max_sel(h2[c], max_sel(h1[c], h0[c])), h0[c] = h1[c], h1[c] = h2[c];
    store(oh, o);
  }
  for (int c = 0; c < NCH; ++c) o[c] = max_sel(h1[c], h0[c]);  // the last row: rows H - 2, H - 1
  store(H - 1, o);
}

// The same at stride 2 for planes 17 to 32 wide: the row maxes at every column (two chunks), the output row the
// column select over rows 2 oh - 1, 2 oh, 2 oh + 1 (clamped), then its even columns, as the two passes keep
// every second column.
void max3x3_s2_plane32(const float* xp, float* yp, int H, int W, int OH, int OW) {
  const RowMax3<2> row_max(xp, W);
  const __mmask16 ms = tap_mask(0, 0, 0, OW);
  // even lanes of (lo, hi): columns 0, 2, .., 30
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 prev[2], h0[2], h1[2], o[2];  // prev: the row maxes of row 2 oh - 1
  for (int oh = 0; oh < OH; ++oh) {
    const int r = 2 * oh;  // rows r - 1 (when >= 0), r, r + 1 (when < H)
    row_max(r, h0);
    for (int c = 0; c < 2; ++c) o[c] = oh > 0 ? max_sel(h0[c], prev[c]) : h0[c];
    if (r + 1 < H) {
      row_max(r + 1, h1);
      for (int c = 0; c < 2; ++c) o[c] = max_sel(h1[c], o[c]), prev[c] = h1[c];
    }
    _mm512_mask_storeu_ps(yp + int64_t(oh) * OW, ms, _mm512_permutex2var_ps(o[0], even, o[1]));
  }
}
}  // namespace
#endif

void MaxPlane::forward(const float* xp, float* yp) {
#if defined(__AVX512F__)
  if (k == 3 && s == 1 && pad == 1 && W <= 2 * kLanes)
    return W > kLanes ? max3x3_s1_plane<2>(xp, yp, H, W) : max3x3_s1_plane<1>(xp, yp, H, W);
  if (k == 3 && s == 2 && pad == 1 && W > kLanes && W <= 2 * kLanes) return max3x3_s2_plane32(xp, yp, H, W, OH, OW);
  if (Wl <= kRowPassChunks * kLanes && k <= kMaxRowPassK)
    row_pass_regs(xp);
  else
#endif
    row_pass<false>(xp);
  for (int oh = 0; oh < OH; ++oh) {
    float* yr = yp + int64_t(oh) * OW;
    // Stride 1 with whole chunks: the column pass stores straight into the output row.
    if (s == 1 && OW % kLanes == 0) {
      col_pass<false>(oh, nullptr, yr);
      continue;
    }
    col_pass<false>(oh, nullptr);
    if (s == 1)
      copy_row(yr, col.data(), OW);
    else
      for (int ow = 0; ow < OW; ++ow) yr[ow] = col[int64_t(ow) * s];
  }
}

}  // namespace pool_detail

using namespace pool_detail;

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
      mp.forward(x + p * HW, y + n * ybs + c * OH * OW);
    }
  }
}

namespace pool_detail {

// Backward as a gather, so that no two lanes ever write the same dx: each output's target (the flat
// index of its first maximum) and dy are laid out on the dilated output grid (column j = ow*s), then
// every input pixel sums the dy of the windows covering it whose target it is, visiting them in the
// reference's (oh, ow) order: the same additions in the same order, so dx is bit-identical to the
// reference. k^2/s compare-and-adds per input, vectorised over input columns; the scatter it replaces
// (dx[target] += dy) ran at ~7 cycles per output, serialised through memory where windows share a max.
// Input column c is covered by the dilated output columns j in [c + pad - k + 1, c + pad]; stored at
// jj = j + off with off = k - 1 - pad >= 0, so input chunk c0 reads entries [c0, c0 + kLanes + k - 1).
void MaxBackPlane::setup(const Pool2dShape& s) {
  sh = s;
  OH = s.OH(), OW = s.OW();
  off = s.k - 1 - s.pad, Wc = round_up_lanes(s.W), Lt = std::max(Wc + s.k - 1, round_up_lanes(OW) + off);
  mp.setup(s, true);
  // Rows of Lt >= Wl + off entries: the column pass may store a whole chunk past the last output.
  at.assign(mp.Wl, 0);
  target.assign(size_t(OH) * Lt, -1);  // -1: no output at this column
  g.assign(size_t(OH) * Lt, 0.f);
}

#if defined(__AVX512F__)
namespace {
// MaxBackPlane::prepare's targets for k = 3, stride 1, pad 1, planes up to NCH * 16 wide, in registers: the
// row pass and the column pass with the argmax (row_pass<true>, col_pass<true>: strict > in tap order, the
// first valid column of an all -inf row window), the last three rows' maxes and indices held in registers;
// tr(oh) is the target row of output row oh, its lanes past W set to -1.
template <int NCH, typename TargetRow>
void max3x3_s1_targets(const float* xp, int H, int W, TargetRow tr) {
  __mmask16 mk[NCH][3], ms[NCH];
  __m512i col[NCH], first[NCH];  // per lane: the column of tap 0, the first valid one
  for (int c = 0; c < NCH; ++c) {
    for (int kw = 0; kw < 3; ++kw) mk[c][kw] = tap_mask(c * kLanes, kw, 1, W);
    ms[c] = tap_mask(c * kLanes, 0, 0, W);
    col[c] = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32(c * kLanes - 1));
    first[c] = _mm512_mask_mov_epi32(col[c], _mm512_cmplt_epi32_mask(col[c], _mm512_setzero_si512()),
                                     _mm512_setzero_si512());
  }
  const __m512 ninf = _mm512_set1_ps(kNegInf);
  const __m512i none = _mm512_set1_epi32(-1);
  struct Row {
    __m512 v[NCH];
    __m512i i[NCH];
  };
  const auto row_max = [&](int r, Row& h) {
    const float* at = xp + int64_t(r) * W - 1;
    const __m512i base = _mm512_set1_epi32(r * W);
    for (int c = 0; c < NCH; ++c) {
      const float* a = at + c * kLanes;
      const __m512i cr = _mm512_add_epi32(col[c], base);
      __m512 acc = _mm512_mask_loadu_ps(ninf, mk[c][0], a);
      __m512i arg = _mm512_add_epi32(first[c], base);
      for (int kw = 1; kw < 3; ++kw) {
        const __m512 v = _mm512_mask_loadu_ps(ninf, mk[c][kw], a + kw);
        const __mmask16 gt = _mm512_cmp_ps_mask(v, acc, _CMP_GT_OQ);
        acc = _mm512_mask_mov_ps(acc, gt, v);
        arg = _mm512_mask_mov_epi32(arg, gt, _mm512_add_epi32(cr, _mm512_set1_epi32(kw)));
      }
      h.v[c] = acc, h.i[c] = arg;
    }
  };
  const auto emit = [&](int oh, const Row* rows, int n) {  // the column select over rows[0..n), in order
    for (int c = 0; c < NCH; ++c) {
      __m512 acc = rows[0].v[c];
      __m512i arg = rows[0].i[c];
      for (int j = 1; j < n; ++j) {
        const __mmask16 gt = _mm512_cmp_ps_mask(rows[j].v[c], acc, _CMP_GT_OQ);
        acc = _mm512_mask_mov_ps(acc, gt, rows[j].v[c]);
        arg = _mm512_mask_mov_epi32(arg, gt, rows[j].i[c]);
      }
      _mm512_storeu_si512(tr(oh) + c * kLanes, _mm512_mask_mov_epi32(none, ms[c], arg));
    }
  };
  Row h[3];
  row_max(0, h[0]);
  if (H == 1) return emit(0, h, 1);
  row_max(1, h[1]);
  emit(0, h, 2);
  for (int oh = 1; oh + 1 < H; ++oh) {  // rows oh - 1, oh, oh + 1
    row_max(oh + 1, h[2]);
    emit(oh, h, 3);
    h[0] = h[1], h[1] = h[2];
  }
  emit(H - 1, h, 2);
}
}  // namespace
#endif

void MaxBackPlane::prepare(const float* xp, const float* dyp) {
  const int st = sh.stride;
#if defined(__AVX512F__)
  if (sh.k == 3 && st == 1 && sh.pad == 1 && sh.W <= 2 * kLanes) {
    const auto tr = [&](int oh) { return target.data() + int64_t(oh) * Lt + off; };
    if (sh.W > kLanes)
      max3x3_s1_targets<2>(xp, sh.H, sh.W, tr);
    else
      max3x3_s1_targets<1>(xp, sh.H, sh.W, tr);
    for (int oh = 0; oh < OH; ++oh) copy_row(g.data() + int64_t(oh) * Lt + off, dyp + int64_t(oh) * OW, OW);
    return;
  }
#endif
  mp.row_pass<true>(xp);
  for (int oh = 0; oh < OH; ++oh) {
    int32_t* tr = target.data() + int64_t(oh) * Lt + off;
    float* gr = g.data() + int64_t(oh) * Lt + off;
    if (st == 1) {  // the column pass writes the targets in place
      mp.col_pass<true>(oh, tr);
      for (int j = OW; j < mp.Wl; ++j) tr[j] = -1;  // lanes past the last output
      copy_row(gr, dyp + int64_t(oh) * OW, OW);
    } else {
      mp.col_pass<true>(oh, at.data());
      for (int ow = 0; ow < OW; ++ow) tr[ow * st] = at[ow * st], gr[ow * st] = dyp[int64_t(oh) * OW + ow];
    }
  }
}

}  // namespace pool_detail

void max_pool2d_backward_cpu(const Pool2dShape& s, const float* x, const float* dy, float* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), k = s.k, st = s.stride;
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * k + HW * k * k / st;
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    MaxBackPlane mb;
    mb.setup(s);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      float* dxp = dx + p * HW;
      mb.prepare(x + p * HW, dy + n * ybs + c * OH * OW);
      for (int r = 0; r < s.H; ++r)
        for (int c0 = 0; c0 < mb.Wc; c0 += kLanes) {
          const Lanes acc = mb.gather(r, c0);
          float* d = dxp + int64_t(r) * s.W + c0;
          if (c0 + kLanes <= s.W) {
            lanes_store(d, acc);
          } else {
            float tmp[kLanes];
            lanes_store(tmp, acc);
            for (int j = 0; j < s.W - c0; ++j) d[j] = tmp[j];
          }
        }
    }
  }
}

}  // namespace rf

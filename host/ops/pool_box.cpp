// Pooling, NCHW, the fast CPU path of the box sums: average pool and the NL module's mixed average pool,
// forward and backward (separable box sums, see pool.cpp's header for the method and the error bound), and
// the fused NL pools (max pool and mixed pool per plane in one pass). Checked by tests/ops/test_pool.cpp
// (against the reference within the stated bound, element by element; the fused pools bit-identical to the
// two separate calls).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "host/core/check.h"
#include "host/core/simd.h"
#include "host/ops/pool.h"
#include "host/ops/pool_kernels.h"

namespace rf {

using namespace pool_detail;
using namespace simd;

namespace {

// Sum of the k taps tap(0) .. tap(k-1) of a chunk: four partial sums (taps kw = j mod 4) then
// (a0 + a1) + (a2 + a3): a chain of ~k/4 + 2 dependent adds instead of k-1, and a summation tree of depth <= k-1.
// K > 0: k == K, known to the compiler; K == 0: any k. The same sums in the same order either way.
template <int K, typename Tap>
inline Lanes sum_taps(Tap tap, int k_) {
  const int k = K ? K : k_;
  Lanes acc = tap(0);
  if (k <= 4) {
    for (int kw = 1; kw < k; ++kw) acc += tap(kw);
  } else {
    Lanes a1 = tap(1), a2 = tap(2), a3 = tap(3);
    int kw = 4;
    for (; kw + 3 < k; kw += 4) {
      acc += tap(kw);
      a1 += tap(kw + 1);
      a2 += tap(kw + 2);
      a3 += tap(kw + 3);
    }
    if (kw < k) acc += tap(kw);
    if (kw + 1 < k) a1 += tap(kw + 1);
    if (kw + 2 < k) a2 += tap(kw + 2);
    acc = (acc + a1) + (a2 + a3);
  }
  return acc;
}

// The sum of taps kw < k of the chunk at ph, tap kw at offset tap[kw].
inline void sum_taps(const float* ph, const int* tap, int k, float* out) {
  lanes_store(out, sum_taps<0>([&](int kw) { return vload(ph + tap[kw]); }, k));
}

// The kernel sizes the box sums meet in the models (the mixed pool's 3..11) compiled for their k: fn is
// called as fn(std::integral_constant<int, K>) with K = k, or K = 0 (any k) for the others.
template <typename Fn>
inline void with_box_k(int k, Fn&& fn) {
  switch (k) {
    case 3: return fn(std::integral_constant<int, 3>());
    case 5: return fn(std::integral_constant<int, 5>());
    case 7: return fn(std::integral_constant<int, 7>());
    case 9: return fn(std::integral_constant<int, 9>());
    case 11: return fn(std::integral_constant<int, 11>());
    default: return fn(std::integral_constant<int, 0>());
  }
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
        lanes_load(lo, full);
        lanes_load(hi, full + kLanes);
        lanes_store(out + n0, even_lanes(lo, hi));
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
  lanes_load(v, V);
  v *= scale;
  if (len == kLanes) {
    if (sb) {
      lanes_load(x, sb);
      v -= x;
    }
    lanes_store(d, v);
  } else {
    float t[kLanes];
    lanes_store(t, v);
    for (int j = 0; j < len; ++j) d[j] = sb ? t[j] - sb[j] : t[j];
  }
}

#if defined(__AVX512F__)
// The row pass at stride 1 in registers: R row r + pad = the sums RowPass::sum makes of src row r, in the same
// order (sum_taps' tree), each tap a masked load of src (lanes in the padding load +0, the zeros of the padded
// row copy), the masks made once per plane. It replaces the copy into the padded row and its reload: with the
// max pool's row pass likewise (pool.cpp), the NL pools' forward at 32x32 took 0.85x the time, at 16x16 0.75x
// (1 thread, batch 1, bench_kernels BM_nl_pools). K: k, or 0 for any k.
template <int K>
void row_pass_s1(const float* src, int Hs, int Ws, int k_, int pad, int Wl, float* R) {
  const int k = K ? K : k_, nch = Wl / kLanes;
  __mmask16 mk[kRowPassChunks][kMaxRowPassK];  // the masks of chunk c's taps, the same on every row
  for (int c = 0; c < nch; ++c)
    for (int kw = 0; kw < k; ++kw) mk[c][kw] = tap_mask(c * kLanes, kw, pad, Ws);
  for (int r = 0; r < Hs; ++r) {
    const float* row = src + int64_t(r) * Ws - pad;
    float* out = R + int64_t(r + pad) * Wl;
    for (int c = 0; c < nch; ++c) {
      const float* at = row + c * kLanes;
      const __mmask16* m = mk[c];
      const auto tap = [&](int kw) { return Lanes(_mm512_maskz_loadu_ps(m[kw], at + kw)); };
      lanes_store(out + c * kLanes, sum_taps<K>(tap, k));
    }
  }
}
#endif

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
#if defined(__AVX512F__)
  // Stride 1 with every src row summed: the row pass in registers.
  if (s == 1 && Wl <= kRowPassChunks * kLanes && k <= kMaxRowPassK && r_lo == pad && r_hi == Hs + pad) {
    with_box_k(k, [&](auto kc) { row_pass_s1<decltype(kc)::value>(src, Hs, Ws, k, pad, Wl, sc.R.data()); });
  } else
#endif
  {
    if (r_lo < r_hi) sc.rows.fill(src + int64_t(r_lo - pad) * Ws, 0);
    for (int rp = r_lo; rp < r_hi; ++rp) {
      const int slot = (rp - r_lo) & 1;
      if (rp + 1 < r_hi) sc.rows.fill(src + int64_t(rp + 1 - pad) * Ws, slot ^ 1);
      sc.rows.sum(slot, sc.R.data() + int64_t(rp) * Wl);
    }
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
        lanes_load(acc, R0);
        for (int kh = 1; kh < k; ++kh) {
          lanes_load(v, R0 + int64_t(kh) * Wl);
          acc += v;
        }
        lanes_store(V, acc);
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
      lanes_load(sa, R + int64_t(e - 1) * Wl + n0);
      lanes_store(Sfx + int64_t(e - 1) * Wl + n0, sa);
      lanes_load(pa, R + int64_t(b) * Wl + n0);
      lanes_store(P + int64_t(b) * Wl + n0, pa);
      for (int i = 1; i < e - b; ++i) {
        lanes_load(v, R + int64_t(e - 1 - i) * Wl + n0);
        sa += v;
        lanes_store(Sfx + int64_t(e - 1 - i) * Wl + n0, sa);
        lanes_load(v, R + int64_t(b + i) * Wl + n0);
        pa += v;
        lanes_store(P + int64_t(b + i) * Wl + n0, pa);
      }
    }
    for (int m = 0; m < Ho; ++m) {
      const int a = m * s;
      const float* Pa = P + int64_t(a + k - 1) * Wl + n0;
      if (a % k == 0) {
        finish_chunk(Pa, scale, sub ? sub + int64_t(m) * Wo + n0 : nullptr, dst + int64_t(m) * Wo + n0, len);
      } else {
        Lanes p, q;
        lanes_load(p, Pa);
        lanes_load(q, Sfx + int64_t(a) * Wl + n0);
        q += p;
        lanes_store(V, q);
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

// Mixed average pool of plane xp (channel c) into yp: the plane loop of mixed_avg_pool_forward_cpu and
// nl_pools_forward_cpu.
void mixed_pool_plane(const MixedPoolShape& s, int c, const float* xp, float* yp, BoxScratch& sc) {
  const int k = MixedPoolShape::group_kernel(mixed_group_of(s, c));
  box_sum_plane(xp, s.H, s.W, k, s.stride, k / 2, s.OH(), s.OW(), 1.f / float(k * k), s.stride == 1 ? xp : nullptr,
                yp, sc);
}

}  // namespace

namespace {
// The average pool's plane loop: forward (in = x, out = y) or backward (in = dy, out = dx).
void avg_pool_planes(const Pool2dShape& s, const float* in, float* out, bool backward) {
  s.validate();
  const int OH = s.OH(), OW = s.OW();
  const int64_t planes = int64_t(s.N) * s.C, ybs = s.y_batch_stride(), HW = int64_t(s.H) * s.W;
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * (s.k + 3);
  const float scale = 1.f / float(s.k * s.k);
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    BoxScratch sc;
    std::vector<float> dilated;  // the backward's at stride > 1
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / s.C, c = p % s.C;
      if (backward)
        box_sum_backward_plane(in + n * ybs + c * OH * OW, OH, OW, s.k, s.stride, s.pad, s.H, s.W, scale, false,
                               out + p * HW, sc, dilated);
      else
        box_sum_plane(in + p * HW, s.H, s.W, s.k, s.stride, s.pad, OH, OW, scale, nullptr, out + n * ybs + c * OH * OW,
                      sc);
    }
  }
}
}  // namespace

void avg_pool2d_forward_cpu(const Pool2dShape& s, const float* x, float* y) { avg_pool_planes(s, x, y, false); }

void avg_pool2d_backward_cpu(const Pool2dShape& s, const float* dy, float* dx) { avg_pool_planes(s, dy, dx, true); }

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
      mixed_pool_plane(s, int(c), x + p * HW, y + n * ybs + c * OH * OW, sc);
    }
  }
}

// The NL pools' loops below (forward and backward) split their planes into one contiguous range per thread of
// about equal cost (cost_balanced_range), a plane costing k + kNlPlaneCost: the mixed pool's groups differ in
// cost (k = 3..11; measured per plane, 1 thread, 32x32 and 16x16: max pool + box sum ~ k + 6 units), so equal
// counts of channel-major planes left the thread with the large kernels 1.4-1.7x the work of the other (each
// thread's CPU time on NL-dw's 5-sample ranges at 32x32, passive wait: 1.16-1.27 of the mean; 1.00-1.09 now).
// Handing the planes out one at a time, costliest first (schedule(dynamic), reversed) was measured and dropped:
// 1.04x on the pools of NL-dw's batch-1 forward, 0.92x in its training step (the rebuild 26 -> 28 ms per step,
// the pools' input gradient 37 -> 41: the two threads no longer walk neighbouring planes).
// In the backward the max pool (targets, then a 9-tap gather per input) is about 2/3 of a plane's time and the
// box (the k units) 1/4: ~28 units for the mean k of 7.
constexpr int kNlPlaneCost = 6, kNlPlaneBackwardCost = 21;

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
    const auto [q0, q1] = cost_balanced_range(planes, omp_get_thread_num(), omp_get_num_threads(), [&](int64_t q) {
      return kNlPlaneCost + MixedPoolShape::group_kernel(mixed_group_of(mx, int(q / mp.N)));
    });
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t c = q / mp.N, n = q % mp.N, p = n * mp.C + c;
      const float* xp = x + p * HW;
      mpl.forward(xp, ymax + n * ybs + c * OH * OW);
      mixed_pool_plane(mx, int(c), xp, ymix + n * zbs + c * MH * MW, sc);
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


// Backward of both NL pools, per (n, c) plane: the mixed pool's gradient into a plane of scratch (L1), then
// per chunk of an input row the max pool's gather, and dx = (dx + dmax) + dmix (+ res) stored once. The kernels are
// those of max_pool2d_backward_cpu and mixed_avg_pool_backward_cpu and the adds those of add_forward_cpu,
// in the order the NL module ran them, so dx is bit-identical to the separate calls (tests/ops/test_pool.cpp).
// Small planes go lanes across planes (pool_small.cpp), with the same arithmetic; measured (1 thread, N=64,
// against the separate calls): 8x8 0.52x (stride 1) and 0.32x (stride 2), 4x4 0.21x, 16x16 at stride 2
// 0.77x; 16x16 at stride 1 stays per plane (lanes across planes were 1.48x slower than per plane there).
void nl_pools_backward_cpu(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x, const float* dymax,
                           const float* dymix, float* dx, const float* res) {
  mp.validate();
  mx.validate();
  RF_CHECK(mp.N == mx.N && mp.C == mx.C && mp.H == mx.H && mp.W == mx.W && mp.stride == mx.stride,
           "nl_pools_backward: the two pools must see the same input and stride, got {} and {}", mp.str(), mx.str());
  if (small_plane(mp.H, mp.W, mp.stride)) return nl_pools_backward_small_planes(mp, mx, x, dymax, dymix, dx, res);
  const int H = mp.H, W = mp.W, OH = mp.OH(), OW = mp.OW(), MH = mx.OH(), MW = mx.OW(), st = mp.stride;
  const int64_t planes = int64_t(mp.N) * mp.C, HW = int64_t(H) * W;
  const int64_t ybs = mp.y_batch_stride(), zbs = mx.y_batch_stride();
  const int64_t work_per_plane = (HW + int64_t(OH) * OW) * (mp.k + 10) + HW * mp.k * mp.k / st;
#pragma omp parallel if (worth_threads(planes, work_per_plane))
  {
    MaxBackPlane mb;
    mb.setup(mp);
    // Planes in memory order (consecutive planes are neighbours in x, dy and dx: measured 1.15x faster than
    // channel-major on 16x16 planes at N=64), with a box scratch per kernel size, so that the row-pass buffers
    // are set up once per group and call, not at every group boundary.
    BoxScratch sc[MixedPoolShape::kGroups];
    std::vector<float> dilated, gmix(size_t(HW) + kLanes);
    const auto [p0, p1] = cost_balanced_range(planes, omp_get_thread_num(), omp_get_num_threads(), [&](int64_t p) {
      return kNlPlaneBackwardCost + MixedPoolShape::group_kernel(mixed_group_of(mx, int(p % mp.C)));
    });
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / mp.C, c = p % mp.C;
      const int j = mixed_group_of(mx, int(c)), k = MixedPoolShape::group_kernel(j);
      box_sum_backward_plane(dymix + n * zbs + c * MH * MW, MH, MW, k, st, k / 2, H, W, 1.f / float(k * k), st == 1,
                             gmix.data(), sc[j], dilated);
      mb.prepare(x + p * HW, dymax + n * ybs + c * OH * OW);
      float* dxp = dx + p * HW;
      const float* rp = res ? res + p * HW : nullptr;
      for (int r = 0; r < H; ++r)
        for (int c0 = 0; c0 < mb.Wc; c0 += kLanes) {
          const Lanes gmax = mb.gather(r, c0);
          const int64_t at = int64_t(r) * W + c0;
          float* d = dxp + at;
          const float* gm = gmix.data() + at;
          Lanes v, m, e;
          if (c0 + kLanes <= W) {
            lanes_load(v, d);
            lanes_load(m, gm);
            v = (v + gmax) + m;
            if (rp) {
              lanes_load(e, rp + at);
              v += e;
            }
            lanes_store(d, v);
          } else {
            float t[kLanes];
            lanes_store(t, gmax);
            for (int j = 0; j < W - c0; ++j) d[j] = rp ? ((d[j] + t[j]) + gm[j]) + rp[at + j] : (d[j] + t[j]) + gm[j];
          }
        }
    }
  }
}

}  // namespace rf

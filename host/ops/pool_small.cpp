// Pooling, NCHW, the fast CPU path on small planes (<= 64 elements, or <= 256 at stride > 1): the lanes of a
// vector run across planes instead of along a row. Forward: max and/or mixed pool (pools_small_planes);
// backward: the fused NL pools (nl_pools_backward_small_planes). The method and its guarantees are in
// pool.cpp's header. Checked by tests/ops/test_pool.cpp (forward against the reference within the bound and
// the max pool bit for bit; the fused backward bit for bit against the separate per-plane calls).
#include <algorithm>
#include <utility>
#include <vector>

#include "host/core/simd.h"
#include "host/ops/pool.h"
#include "host/ops/pool_kernels.h"

namespace rf::pool_detail {

using namespace simd;

// ---- small planes, lanes across planes -----------------------------------------------------------

namespace {

// v[i] lane l = src[l][i] for i < n, l < nl; lanes past nl are zero.
void to_lanes(Lanes* v, const float* const* src, int n, int nl) {
  Lanes r[kLanes];
  for (int i0 = 0; i0 < n; i0 += kLanes) {
    const int len = std::min(kLanes, n - i0);
    for (int l = 0; l < kLanes; ++l) {
      r[l] = Lanes{};
      if (l >= nl) continue;
      if (len == kLanes) lanes_load(r[l], src[l] + i0);
      else
        for (int t = 0; t < len; ++t) r[l][t] = src[l][i0 + t];
    }
    transpose(r);
    for (int t = 0; t < len; ++t) v[i0 + t] = r[t];
  }
}

// dst[l][i] = v[i] lane l, for i < n, l < nl.
void from_lanes(const Lanes* v, int n, float* const* dst, int nl) {
  Lanes r[kLanes];
  for (int i0 = 0; i0 < n; i0 += kLanes) {
    const int len = std::min(kLanes, n - i0);
    for (int t = 0; t < kLanes; ++t) r[t] = t < len ? v[i0 + t] : Lanes{};
    transpose(r);
    for (int l = 0; l < nl; ++l) {
      if (len == kLanes) lanes_store(dst[l] + i0, r[l]);
      else
        for (int t = 0; t < len; ++t) dst[l][i0 + t] = r[l][t];
    }
  }
}

// The planes (n, c) in block order: by mixed-pool group j (one group without the mixed pool), then sample,
// then channel, so that a block of kLanes consecutive entries shares a kernel size and mostly lies in one
// sample, contiguous in memory (measured faster at N=64 than channel-major blocks, whose planes are a
// sample apart). Blocks are [b*kLanes, ...) inside a group: block_begin lists each block's first entry.
struct PlaneOrder {
  std::vector<std::pair<int, int>> planes;  // (n, c)
  std::vector<int64_t> block_begin;         // and planes.size() at the end

  PlaneOrder(int N, int C, const MixedPoolShape* mx) {
    const int groups = mx ? MixedPoolShape::kGroups : 1;
    for (int j = 0; j < groups; ++j) {
      const int c_lo = mx ? mx->group_begin(j) : 0, c_hi = mx ? mx->group_begin(j + 1) : C;
      const int64_t first = int64_t(planes.size());
      for (int n = 0; n < N; ++n)
        for (int c = c_lo; c < c_hi; ++c) planes.emplace_back(n, c);
      for (int64_t q = first; q < int64_t(planes.size()); q += kLanes) block_begin.push_back(q);
    }
    block_begin.push_back(int64_t(planes.size()));
  }
  int64_t blocks() const { return int64_t(block_begin.size()) - 1; }
  // Block b: its first plane, and in nl its number of planes.
  const std::pair<int, int>* block(int64_t b, int& nl) const {
    nl = int(block_begin[size_t(b) + 1] - block_begin[size_t(b)]);
    return planes.data() + block_begin[size_t(b)];
  }
  // out[l] = base + n*nstride + c*cstride for the planes (n, c) = pl[l], l < nl.
  template <class T>
  static void pointers(const std::pair<int, int>* pl, int nl, T* base, int64_t nstride, int64_t cstride, T** out) {
    for (int l = 0; l < nl; ++l) out[l] = base + pl[l].first * nstride + pl[l].second * cstride;
  }
};

// On small planes (the 8x8 and 4x4 maps of a 32x32 network) a 16-float chunk
// of one plane's row is mostly padding, and the per-plane set-up outweighs the work: 4x4 planes cost
// ~5 ns per input element, 32x32 ones ~1.2. Here the 16 lanes hold 16 planes instead (consecutive
// planes of PlaneOrder, all of one mixed-pool group, so they share a kernel size):
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
// With the vector transposes and PlaneOrder's blocks the fused forward went (1 thread, N=64) 0.33x at 8x8,
// 0.61x at 8x8 stride 2, 0.44x at 4x4, 0.51x at 16x16 stride 2: the same operations on the same values.
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

  void gather(const float* const* src, int nl) { to_lanes(in.data(), src, HW, nl); }
  static void scatter(const std::vector<Lanes>& v, int n, float* const* dst, int nl) {
    from_lanes(v.data(), n, dst, nl);
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

}  // namespace

void pools_small_planes(const Pool2dShape* mp, const MixedPoolShape* mx, const float* x, float* ymax,
                        float* ymix) {
  const int N = mp ? mp->N : mx->N, C = mp ? mp->C : mx->C, H = mp ? mp->H : mx->H, W = mp ? mp->W : mx->W;
  const int s = mp ? mp->stride : mx->stride;
  const int OH = (H - 1) / s + 1, OW = (W - 1) / s + 1;  // mixed pool: pad k/2 keeps this for every k
  const int MOH = mp ? mp->OH() : OH, MOW = mp ? mp->OW() : OW;  // the max pool's own k and pad
  const int64_t HW = int64_t(H) * W, ybs = mp ? mp->y_batch_stride() : 0, zbs = mx ? mx->y_batch_stride() : 0;
  const PlaneOrder order(N, C, mx);
  const int64_t nb = order.blocks();
  const int64_t work_per_block = kLanes * (HW + int64_t(OH) * OW) * 12;
  // Equal counts of blocks per thread (here and in the backward below), although PlaneOrder goes group by group:
  // on these planes the windows clip and the transposes dominate, so the kernel size barely changes a block's
  // cost; cost_balanced_range with a cost model by kernel size (as the per-plane NL pools use) measured worse
  // (each thread's CPU time at 5 and 20 samples: up to 1.1-1.2 of the mean, against 1.0-1.1 with equal counts).
#pragma omp parallel if (worth_threads(nb, work_per_block))
  {
    SmallPlanes sp;
    sp.setup(H, W, std::max(OH, MOH), std::max(OW, MOW));
    const float* src[kLanes];
    float* dst[kLanes];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b) {
      int nl = 0;
      const auto* pl = order.block(b, nl);
      PlaneOrder::pointers(pl, nl, x, C * HW, HW, src);
      sp.gather(src, nl);
      if (mp) {
        sp.max_pool(mp->k, s, mp->pad, MOH, MOW);
        PlaneOrder::pointers(pl, nl, ymax, ybs, int64_t(MOH) * MOW, dst);
        SmallPlanes::scatter(sp.out_max, MOH * MOW, dst, nl);
      }
      if (mx) {
        const int k = MixedPoolShape::group_kernel(mixed_group_of(*mx, pl[0].second));
        sp.box_sum(k, s, k / 2, OH, OW, 1.f / float(k * k), s == 1);
        PlaneOrder::pointers(pl, nl, ymix, zbs, int64_t(OH) * OW, dst);
        SmallPlanes::scatter(sp.out_mix, OH * OW, dst, nl);
      }
    }
  }
}

// ---- backward of the fused NL pools -----------------------------------------------------------------

namespace {

// The backward of one block of kLanes planes, position-major like SmallPlanes. Both gradients with the
// arithmetic of the per-plane path, so the result is the same bits whichever path a shape takes:
// - max pool: every window's first maximum in row-major order (strict >, as the reference), then its dy
//   added to that input, windows in (oh, ow) order: the reference's additions in its order.
// - mixed pool: box_sum_plane's (pool_box.cpp) operations on the same operands: the backward is the
//   stride-1 box with pad k-1-p on dy (dilated at stride > 1); its row pass adds the taps of the
//   zero-padded row in sum_taps' tree (zeros included: 0 + -0 is +0), rows outside the source are 0,
//   its column pass is the direct sum for k <= 3 and the van Herk / Gil-Werman blocks of k rows from
//   padded row 0 above, then * scale, then - dy at stride 1.
struct SmallBack {
  std::vector<Lanes> x, dmax, dmix, dil, g, gm, dx, R, Sfx, P;

  // g = the max pool's input gradient (H x W) from x and dmax (OH x OW).
  void max_backward(const Pool2dShape& s) {
    const int H = s.H, W = s.W, OH = s.OH(), OW = s.OW(), k = s.k, st = s.stride, pad = s.pad;
    g.assign(size_t(H) * W, Lanes{});
    for (int oi = 0; oi < OH; ++oi) {
      const int i0 = std::max(0, oi * st - pad), i1 = std::min(H, oi * st - pad + k);
      for (int oj = 0; oj < OW; ++oj) {
        const int j0 = std::max(0, oj * st - pad), j1 = std::min(W, oj * st - pad + k);
        Lanes best = x[size_t(i0) * W + j0];
        LanesI arg = LanesI{} + int32_t(i0 * W + j0);
        for (int i = i0; i < i1; ++i)
          for (int j = (i == i0 ? j0 + 1 : j0); j < j1; ++j) {
            const Lanes v = x[size_t(i) * W + j];
            const LanesI gt = v > best;
            best = gt ? v : best;
            arg = gt ? LanesI{} + int32_t(i * W + j) : arg;
          }
        const Lanes d = dmax[size_t(oi) * OW + oj];
        for (int i = i0; i < i1; ++i)
          for (int j = j0; j < j1; ++j) {
            Lanes& t = g[size_t(i) * W + j];
            t = arg == int32_t(i * W + j) ? t + d : t;
          }
      }
    }
  }

  // gm (Ho x Wo) = scale * (stride-1 box of k, pad p, over the zero-padded src (Hs x Ws)) - sub.
  void box(const Lanes* src, int Hs, int Ws, int k, int pad, int Ho, int Wo, float scale, const Lanes* sub) {
    const int Hp = Ho - 1 + k;
    R.resize(size_t(Hp) * Wo);
    gm.resize(size_t(Ho) * Wo);
    for (int rp = 0; rp < Hp; ++rp) {
      Lanes* Rr = R.data() + size_t(rp) * Wo;
      const int r = rp - pad;
      if (r < 0 || r >= Hs) {
        std::fill(Rr, Rr + Wo, Lanes{});
        continue;
      }
      const Lanes* row = src + size_t(r) * Ws;
      for (int n = 0; n < Wo; ++n) {
        auto tap = [&](int kw) {
          const int c = n + kw - pad;
          return c >= 0 && c < Ws ? row[c] : Lanes{};
        };
        Lanes acc = tap(0);
        if (k <= 4) {
          for (int kw = 1; kw < k; ++kw) acc += tap(kw);
        } else {  // sum_taps' four partial sums
          Lanes a1 = tap(1), a2 = tap(2), a3 = tap(3);
          int kw = 4;
          for (; kw + 3 < k; kw += 4) acc += tap(kw), a1 += tap(kw + 1), a2 += tap(kw + 2), a3 += tap(kw + 3);
          if (kw < k) acc += tap(kw);
          if (kw + 1 < k) a1 += tap(kw + 1);
          if (kw + 2 < k) a2 += tap(kw + 2);
          acc = (acc + a1) + (a2 + a3);
        }
        Rr[n] = acc;
      }
    }
    auto finish = [&](int m, int n, Lanes v) {
      v *= scale;
      if (sub) v -= sub[size_t(m) * Wo + n];
      gm[size_t(m) * Wo + n] = v;
    };
    if (k <= 3) {
      for (int m = 0; m < Ho; ++m)
        for (int n = 0; n < Wo; ++n) {
          Lanes acc = R[size_t(m) * Wo + n];
          for (int kh = 1; kh < k; ++kh) acc += R[size_t(m + kh) * Wo + n];
          finish(m, n, acc);
        }
      return;
    }
    Sfx.resize(R.size());
    P.resize(R.size());
    for (int n = 0; n < Wo; ++n) {
      for (int b = 0; b < Hp; b += k) {
        const int e = std::min(Hp, b + k);
        Lanes sa = R[size_t(e - 1) * Wo + n], pa = R[size_t(b) * Wo + n];
        Sfx[size_t(e - 1) * Wo + n] = sa;
        P[size_t(b) * Wo + n] = pa;
        for (int i = 1; i < e - b; ++i) {
          sa += R[size_t(e - 1 - i) * Wo + n];
          Sfx[size_t(e - 1 - i) * Wo + n] = sa;
          pa += R[size_t(b + i) * Wo + n];
          P[size_t(b + i) * Wo + n] = pa;
        }
      }
      for (int m = 0; m < Ho; ++m) {
        const Lanes p = P[size_t(m + k - 1) * Wo + n];
        finish(m, n, m % k == 0 ? p : Sfx[size_t(m) * Wo + n] + p);
      }
    }
  }

  // gm = the mixed pool's input gradient (H x W) of a group of kernel k from dmix.
  void mixed_backward(const MixedPoolShape& s, int k) {
    const int OH = s.OH(), OW = s.OW(), st = s.stride, pad = k / 2;
    const float scale = 1.f / float(k * k);
    if (st == 1) return box(dmix.data(), OH, OW, k, k - 1 - pad, s.H, s.W, scale, dmix.data());
    const int Hd = (OH - 1) * st + 1, Wd = (OW - 1) * st + 1;
    dil.assign(size_t(Hd) * Wd, Lanes{});
    for (int m = 0; m < OH; ++m)
      for (int n = 0; n < OW; ++n) dil[size_t(m) * st * Wd + size_t(n) * st] = dmix[size_t(m) * OW + n];
    box(dil.data(), Hd, Wd, k, k - 1 - pad, s.H, s.W, scale, nullptr);
  }
};

}  // namespace

void nl_pools_backward_small_planes(const Pool2dShape& mp, const MixedPoolShape& mx, const float* x,
                                    const float* dymax, const float* dymix, float* dx, const float* res) {
  const int N = mp.N, C = mp.C, H = mp.H, W = mp.W;
  const int64_t HW = int64_t(H) * W, MP = int64_t(mp.OH()) * mp.OW(), XP = int64_t(mx.OH()) * mx.OW();
  const int64_t ybs = mp.y_batch_stride(), zbs = mx.y_batch_stride();
  const PlaneOrder order(N, C, &mx);
  const int64_t nb = order.blocks();
  const int64_t work_per_block = kLanes * (HW * (mp.k * mp.k + 20) + MP * mp.k * mp.k * 2);
#pragma omp parallel if (worth_threads(nb, work_per_block))
  {
    SmallBack sb;
    sb.x.resize(size_t(HW)), sb.dx.resize(size_t(HW)), sb.dmax.resize(size_t(MP)), sb.dmix.resize(size_t(XP));
    const float* src[kLanes];
    float* dst[kLanes];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b) {
      int nl = 0;
      const auto* pl = order.block(b, nl);
      PlaneOrder::pointers(pl, nl, x, C * HW, HW, src);
      to_lanes(sb.x.data(), src, int(HW), nl);
      PlaneOrder::pointers(pl, nl, dymax, ybs, MP, src);
      to_lanes(sb.dmax.data(), src, int(MP), nl);
      PlaneOrder::pointers(pl, nl, dymix, zbs, XP, src);
      to_lanes(sb.dmix.data(), src, int(XP), nl);
      PlaneOrder::pointers(pl, nl, dx, C * HW, HW, dst);
      to_lanes(sb.dx.data(), dst, int(HW), nl);
      sb.max_backward(mp);
      sb.mixed_backward(mx, MixedPoolShape::group_kernel(mixed_group_of(mx, pl[0].second)));
      for (int64_t i = 0; i < HW; ++i) sb.dx[size_t(i)] = (sb.dx[size_t(i)] + sb.g[size_t(i)]) + sb.gm[size_t(i)];
      from_lanes(sb.dx.data(), int(HW), dst, nl);
      // res added to the planes just stored (in L1), in their own layout: no transposes for it.
      if (res)
        for (int l = 0; l < nl; ++l) {
          const float* r = res + (dst[l] - dx);
          for (int64_t i = 0; i < HW; ++i) dst[l][i] += r[i];
        }
    }
  }
}

}  // namespace rf::pool_detail

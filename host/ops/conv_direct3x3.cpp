// The direct kernel's 3x3 / pad 1 / stride 1 or 2 path for few channels per group (the NL module's seeded
// convs: depthwise, or C/groups <= 4 with K/groups <= 8 or 12), forward and input gradient, AVX-512 builds
// only (elsewhere direct3x3_applies() is false and conv_direct.cpp's general kernel runs). Checked by
// tests/ops/test_conv.cpp (Conv2d.Direct3x3PathMatchesGeneralKernelAndReference: sizes 1..33, strides 1/2,
// C/groups 1..4, K/groups 1..12, strided y, against the reference and the forward bit for bit against the
// general direct kernel).
//
// Idea: an output plane is one flat run of OH*OW floats computed 16 at a time, whatever its width: lane l of
// chunk f is output pixel p = f + l, (oh, ow) = (p / OW, p % OW), and tap (kh, kw) of a stride-1 conv is the
// input plane read at p + (kh-1)*W + (kw-1), a plain unaligned load with the lanes whose pixel falls into the
// padding masked off (AVX-512 masked loads do not fault on masked lanes). So a 4x4 plane is one vector, an 8x8
// one four, and no padded copy of the input is made. Stride 2 first splits each input channel into its four
// (row, column) parity planes on the OH x OW grid; tap (kh, kw) is then parity plane (kh != 1, kw != 1) read
// at p - OW*(kh == 0) - (kw == 0). The masks depend only on the chunk and the tap: one table per call.
// The input gradient runs the same scheme backwards: stride 1 reads dy at p + (1-kh)*W + (1-kw); stride 2
// computes dx's four parity planes (each gets the taps of its parity) and interleaves them into dx.
//
// Summation order: every output is one FMA chain from +0 over the taps in the general kernel's order,
// forward (c, kh, kw), input gradient (o, kh, kw); a tap that reads padding (or dy masked by the ReLU) is an
// FMA with +0 in both kernels. So the results are bit-identical to conv_direct.cpp's general kernel, and
// where this path replaces oneDNN (depthwise at <= 16x16, stride 1) the model outputs came out bit-identical
// too (oneDNN's jit_dw sums the taps in the same order).

#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "host/core/simd.h"
#include "host/ops/conv_kernels.h"

namespace rf::conv_detail {

#if defined(__AVX512F__)

namespace {

using simd::deinterleave_row;
using simd::interleave_row;

// One tap of a flat plane: read src plane `plane` at p + off; the lane is valid when its source row
// gr*ar + br lies in [0, hr) and its source column gc*ac + bc in [0, wc), (gr, gc) being the lane's grid
// position. w_idx: the tap's index kh*3 + kw in the weights.
struct Tap {
  int plane, w_idx;
  int64_t off;
  int ar, br, hr, ac, bc, wc;
};

// masks[ch * ntaps + t] for every 16-lane chunk of a GH x GW grid, and store[ch] (lanes inside the grid).
struct MaskTable {
  int nch = 0, ntaps = 0;
  std::vector<__mmask16> tap, store;
  MaskTable(int GH, int GW, const std::vector<Tap>& taps)
      : nch(int((int64_t(GH) * GW + 15) / 16)), ntaps(int(taps.size())) {
    tap.assign(size_t(nch) * ntaps, 0);
    store.assign(size_t(nch), 0);
    int gr = 0, gc = 0;
    for (int64_t p = 0; p < int64_t(nch) * 16; ++p) {
      const int ch = int(p / 16), l = int(p % 16);
      if (gr < GH) {
        store[ch] |= __mmask16(1u << l);
        for (int t = 0; t < ntaps; ++t) {
          const Tap& q = taps[t];
          const int r = gr * q.ar + q.br, c = gc * q.ac + q.bc;
          if (r >= 0 && r < q.hr && c >= 0 && c < q.wc) tap[size_t(ch) * ntaps + t] |= __mmask16(1u << l);
        }
      }
      if (++gc == GW) gc = 0, ++gr;
    }
  }
};

constexpr int kMaxCg = 4, kMaxKb = 8;  // C/groups taken; output channels per kernel call

inline __m512 relu_exact(__m512 a) {  // std::max(a, 0.f) lane by lane: -0 and NaN stay
  return _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
}

// A kernel call computes one 16-lane chunk ch of NC consecutive groups side by side: every output is a serial
// FMA chain (the fixed order), so NC * (chains per group) >= 8 independent chains hide the FMA latency, and
// the NC groups share the chunk's masks. Group q's planes lie q*gx floats after the first's in the source
// and q*gy in the destination; the weights are read in place (groups a compile-time distance apart).
struct FwdArgs {
  const MaskTable* mt;
  const float* src[kMaxCg][9];  // tap t of input channel c of the item's first group, offset by the shift
  float* dst[kMaxKb];           // output channel o of the KB of the item's first group
  const float* b;               // bias of the first group's first output channel of the block, or null
  int64_t gx, gy, gbias;
  bool relu;
};

// Forward of chunk ch for KB output channels of groups j0 .. j0+NC-1: y_o = [relu](sum_{c,t} w * tap + b_o).
// w: the item's first group's weights from the block's first output channel; groups GK*CG*9 floats apart.
template <int CG, int KB, int NC, int GK>
void forward_call(const FwdArgs& a, int j0, int ch, const float* w) {
  const __mmask16* m = a.mt->tap.data() + size_t(ch) * 9;
  const int64_t f = int64_t(ch) * 16, x0 = j0 * a.gx + f;
  w += int64_t(j0) * GK * CG * 9;
  __m512 acc[NC][KB];
  for (int q = 0; q < NC; ++q)
    for (int o = 0; o < KB; ++o) acc[q][o] = _mm512_setzero_ps();
  for (int c = 0; c < CG; ++c)
    for (int t = 0; t < 9; ++t) {
      const float* src = a.src[c][t] + x0;
      const __mmask16 mt = m[t];
      for (int q = 0; q < NC; ++q) {
        const __m512 v = _mm512_maskz_loadu_ps(mt, src + q * a.gx);
        for (int o = 0; o < KB; ++o)
          acc[q][o] = _mm512_fmadd_ps(_mm512_set1_ps(w[((q * GK + o) * CG + c) * 9 + t]), v, acc[q][o]);
      }
    }
  const __mmask16 ms = a.mt->store[ch];
  for (int q = 0; q < NC; ++q)
    for (int o = 0; o < KB; ++o) {
      __m512 r = acc[q][o];
      if (a.b) r = _mm512_add_ps(r, _mm512_set1_ps(a.b[(j0 + q) * a.gbias + o]));
      if (a.relu) r = relu_exact(r);
      _mm512_mask_storeu_ps(a.dst[o] + (j0 + q) * a.gy + f, ms, r);
    }
}

constexpr int fwd_nc(int kb) { return kb == 1 ? 8 : kb == 2 ? 4 : kb == 3 ? 3 : 2; }
using FwdFn = void (*)(const FwdArgs&, int, int, const float*);
struct FwdFns { FwdFn many, one; int nc; };
template <int CG, int KB, int GK>
constexpr FwdFns fwd_fns() {
  return {forward_call<CG, KB, fwd_nc(KB), GK>, forward_call<CG, KB, 1, GK>, fwd_nc(KB)};
}
template <int CG, int... KB>
constexpr std::array<FwdFns, sizeof...(KB)> fwd_row(std::integer_sequence<int, KB...>) {
  return {fwd_fns<CG, KB + 1, KB + 1>()...};
}
// [C/groups - 1][K/groups - 1] for K/groups <= 8 (one block of output channels), and K/groups = 12 (the
// 768-wide module at 64 input channels) as two blocks of 6.
const std::array<std::array<FwdFns, kMaxKb>, kMaxCg> kForward = {
    fwd_row<1>(std::make_integer_sequence<int, kMaxKb>()), fwd_row<2>(std::make_integer_sequence<int, kMaxKb>()),
    fwd_row<3>(std::make_integer_sequence<int, kMaxKb>()), fwd_row<4>(std::make_integer_sequence<int, kMaxKb>())};
const FwdFns kForward12[kMaxCg] = {fwd_fns<1, 6, 12>(), fwd_fns<2, 6, 12>(), fwd_fns<3, 6, 12>(),
                                   fwd_fns<4, 6, 12>()};

struct BwdArgs {
  const MaskTable* mt;
  const Tap* taps;
  int Kg;
  const float* D;      // the item's first group's (masked) dy, output channel o at o * dpitch
  float* dst[kMaxCg];  // the item's first group's dx planes (or dx parity planes)
  int64_t dpitch, gd, gx;
};

// Input gradient of chunk ch of groups j0 .. j0+NC-1: dx_c = sum over (o, tap) of w[o][c][tap] * D_o[p + off].
// w: the item's first group's weights; groups KG*CG*9 floats apart.
template <int CG, int KG, int NC>
void backward_call(const BwdArgs& a, int j0, int ch, const float* w) {
  const int nt = a.mt->ntaps;
  const __mmask16* m = a.mt->tap.data() + size_t(ch) * nt;
  const int64_t f = int64_t(ch) * 16, d0 = j0 * a.gd + f;
  w += int64_t(j0) * KG * CG * 9;
  __m512 acc[NC][CG];
  for (int q = 0; q < NC; ++q)
    for (int c = 0; c < CG; ++c) acc[q][c] = _mm512_setzero_ps();
  for (int o = 0; o < KG; ++o)
    for (int t = 0; t < nt; ++t) {
      const float* d = a.D + o * a.dpitch + a.taps[t].off + d0;
      const float* wt = w + o * CG * 9 + a.taps[t].w_idx;
      const __mmask16 mt = m[t];
      for (int q = 0; q < NC; ++q) {
        const __m512 v = _mm512_maskz_loadu_ps(mt, d + q * a.gd);
        for (int c = 0; c < CG; ++c)
          acc[q][c] = _mm512_fmadd_ps(_mm512_set1_ps(wt[(q * KG * CG + c) * 9]), v, acc[q][c]);
      }
    }
  const __mmask16 ms = a.mt->store[ch];
  for (int q = 0; q < NC; ++q)
    for (int c = 0; c < CG; ++c) _mm512_mask_storeu_ps(a.dst[c] + (j0 + q) * a.gx + f, ms, acc[q][c]);
}

constexpr int bwd_nc(int cg) { return cg == 1 ? 8 : cg == 2 ? 4 : 2; }
using BwdFn = void (*)(const BwdArgs&, int, int, const float*);
struct BwdFns { BwdFn many, one; int nc; };
template <int CG, int KG>
constexpr BwdFns bwd_fns() { return {backward_call<CG, KG, bwd_nc(CG)>, backward_call<CG, KG, 1>, bwd_nc(CG)}; }
template <int CG, int... KG>
constexpr std::array<BwdFns, sizeof...(KG) + 1> bwd_row(std::integer_sequence<int, KG...>) {
  return {bwd_fns<CG, KG + 1>()..., bwd_fns<CG, 12>()};
}
// [C/groups - 1][K/groups - 1], the last entry for K/groups = 12
const std::array<std::array<BwdFns, kMaxKb + 1>, kMaxCg> kBackward = {
    bwd_row<1>(std::make_integer_sequence<int, kMaxKb>()), bwd_row<2>(std::make_integer_sequence<int, kMaxKb>()),
    bwd_row<3>(std::make_integer_sequence<int, kMaxKb>()), bwd_row<4>(std::make_integer_sequence<int, kMaxKb>())};

// Runs the calls of an item's ng groups (NC at a time, the rest one by one) over its nch chunks; wb: the
// weights of the item's first group.
template <class Fns, class Args>
void run_calls(const Fns& fn, const Args& a, int ng, int nch, const float* wb) {
  for (int j0 = 0; j0 < ng;) {
    const int nb = j0 + fn.nc <= ng ? fn.nc : 1;
    for (int ch = 0; ch < nch; ++ch) (nb > 1 ? fn.many : fn.one)(a, j0, ch, wb);
    j0 += nb;
  }
}

// Groups per work item, a multiple of nc: >= 8 groups and a contiguous run of >= 32 KB of input per item (one 4 KB
// plane at a time defeats the hardware prefetcher, which stops at page ends), leaving >= 4 items per thread.
int groups_per_item(const Conv2dShape& s, int nc) {
  const int64_t group_bytes = int64_t(sizeof(float)) * (s.C / s.groups) * s.H * s.W;
  int64_t gb = std::max<int64_t>(8, (32768 + group_bytes - 1) / group_bytes);
  const int64_t want = 4 * int64_t(omp_get_max_threads());
  const int64_t per_sample = std::max<int64_t>(1, (want + s.N - 1) / s.N);  // items wanted per sample
  gb = std::min<int64_t>(gb, std::max<int64_t>(8, s.groups / per_sample));
  gb = round_up(gb, nc);
  return int(std::min<int64_t>(gb, s.groups));
}

// The forward taps, (kh, kw) in order; planes index the stride-2 parity planes (row parity * 2 + column parity).
std::vector<Tap> forward_taps3(const Conv2dShape& s) {
  std::vector<Tap> taps;
  const int S = s.stride, OW = s.OW();
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw) {
      Tap t{};
      t.w_idx = kh * 3 + kw;
      t.ar = S, t.br = kh - 1, t.hr = s.H, t.ac = S, t.bc = kw - 1, t.wc = s.W;
      if (S == 1) {
        t.plane = 0, t.off = int64_t(kh - 1) * s.W + (kw - 1);
      } else {
        t.plane = (kh != 1) * 2 + (kw != 1), t.off = -int64_t(OW) * (kh == 0) - (kw == 0);
      }
      taps.push_back(t);
    }
  return taps;
}

// The input-gradient taps of dx's parity plane (a, bb) at stride 2 (every tap at stride 1: a = bb = -1), in
// (kh, kw) order; the grid is dx's (H x W at stride 1, the parity plane on OH x OW at stride 2), D has pitch OW.
std::vector<Tap> backward_taps3(const Conv2dShape& s, int a, int bb) {
  std::vector<Tap> taps;
  const int OH = s.OH(), OW = s.OW();
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw) {
      Tap t{};
      t.plane = 0, t.w_idx = kh * 3 + kw;
      t.ar = 1, t.hr = OH, t.ac = 1, t.wc = OW;
      if (s.stride == 1) {  // dy pixel (ih + 1 - kh, iw + 1 - kw)
        t.br = 1 - kh, t.bc = 1 - kw, t.off = int64_t(1 - kh) * OW + (1 - kw);
      } else {  // padded dx row 2r + a + 1 = 2*oh + kh: kh = 1 for a = 0, kh in {0, 2} for a = 1
        if ((kh == 1) != (a == 0) || (kw == 1) != (bb == 0)) continue;
        t.br = kh == 0, t.bc = kw == 0, t.off = int64_t(OW) * (kh == 0) + (kw == 0);
      }
      taps.push_back(t);
    }
  return taps;
}

}  // namespace

// Where this path runs instead of the general kernel (bit-identical results: a choice by speed only, so it
// may depend on the batch size) and instead of oneDNN for depthwise at <= 16x16 (stride 1 only: oneDNN's
// jit_dw stays faster at stride 2 there). Measured on 1 thread of the Zen 4 host, BM_seeded_stage, ratios
// to the old choice (batch 64 | batch 1): forward at <= 16x16 0.2-0.65 | 0.16-0.9 (but 16x16 with 6 per
// group 1.55 | 0.73: general at batch >= 4), at 32x32 stride 1 0.46-0.72 | 1.1-1.4 (general at batch < 4),
// at 32x32 stride 2 1.06-1.66 | 0.85-0.93 (general at batch >= 4); input gradient at <= 8x8 stride 1
// 0.3-0.66 | 0.17-0.8, stride 2 at <= 16x16 0.66-0.84 | 0.45-0.78 (K/groups > 1), 16x16 depthwise stride 1
// 0.66 | 1.12 (vs oneDNN); 32x32, and 16x16 with K/groups > 1, stay general (1.0-1.4).
bool direct3x3_applies(const Conv2dShape& s, ConvPass pass) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, HW = s.H * s.W;
  if (!(s.k == 3 && s.pad == 1 && (s.stride == 1 || s.stride == 2) && Cg <= kMaxCg && (Kg <= kMaxKb || Kg == 12)))
    return false;
  if (pass == ConvPass::forward) {
    if (HW > 64 && HW <= 256 && Kg >= 6 && s.N >= 4) return false;
    return HW <= 256 || (s.stride == 1 ? s.N >= 4 : s.N < 4);
  }
  if (pass != ConvPass::backward_data) return false;
  if (s.stride == 1) return HW <= 64 || (HW <= 256 && Cg == 1 && Kg == 1);
  return HW <= 256;
}

void direct3x3_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, S = s.stride, OH = s.OH(), OW = s.OW();
  const int64_t ys = s.y_batch_stride(), xs = int64_t(s.C) * s.H * s.W, xplane = int64_t(s.H) * s.W;
  const int64_t oplane = int64_t(OH) * OW, pplane = round_up(oplane, 16);
  const std::vector<Tap> taps = forward_taps3(s);
  const MaskTable mt(OH, OW, taps);
  const int kb = Kg <= kMaxKb ? Kg : 6;  // K/groups = 12: two blocks of 6
  const FwdFns& fn = Kg <= kMaxKb ? kForward[Cg - 1][Kg - 1] : kForward12[Cg - 1];
  const int gb = groups_per_item(s, fn.nc), ngb = (s.groups + gb - 1) / gb;
  const int64_t items = int64_t(s.N) * ngb;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> P(S == 2 ? size_t(gb) * Cg * 4 * pplane : 0);  // stride 2: the parity planes
    FwdArgs a{};
    a.mt = &mt, a.relu = relu, a.gy = int64_t(Kg) * oplane, a.gbias = Kg;
    a.gx = S == 2 ? int64_t(Cg) * 4 * pplane : int64_t(Cg) * xplane;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / ngb), g0 = int(it % ngb) * gb, ng = std::min(gb, s.groups - g0);
      const float* xg = x + n * xs + int64_t(g0) * Cg * xplane;
      if (S == 2)
        for (int jc = 0; jc < ng * Cg; ++jc) {  // (group, channel) pairs: contiguous in x and in P
          const float* xc = xg + jc * xplane;
          float* pc = P.data() + size_t(jc) * 4 * pplane;
          for (int ih = 0; ih < s.H; ++ih) {
            float* row = pc + (ih & 1) * 2 * pplane + int64_t(ih >> 1) * OW;
            deinterleave_row(row, row + pplane, xc + int64_t(ih) * s.W, s.W);
          }
        }
      for (int c = 0; c < Cg; ++c)
        for (int t = 0; t < 9; ++t)
          a.src[c][t] = S == 2 ? P.data() + (size_t(c) * 4 + taps[t].plane) * pplane + taps[t].off
                               : xg + c * xplane + taps[t].off;
      for (int o0 = 0; o0 < Kg; o0 += kb) {
        const int ko = g0 * Kg + o0;
        for (int o = 0; o < kb; ++o) a.dst[o] = y + n * ys + int64_t(ko + o) * oplane;
        a.b = b ? b + ko : nullptr;
        run_calls(fn, a, ng, mt.nch, w + int64_t(ko) * Cg * 9);
      }
    }
  }
}

void direct3x3_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, S = s.stride, OH = s.OH(), OW = s.OW();
  const int64_t ys = s.y_batch_stride(), xs = int64_t(s.C) * s.H * s.W, xplane = int64_t(s.H) * s.W;
  const int64_t oplane = int64_t(OH) * OW, dpitch = round_up(oplane, 16);
  // Stride 1: one grid (dx itself); stride 2: dx's four parity planes, each with its own taps.
  std::vector<std::vector<Tap>> taps;
  std::vector<MaskTable> mts;
  for (int a = 0; a < S; ++a)
    for (int bb = 0; bb < S; ++bb) {
      taps.push_back(backward_taps3(s, S == 1 ? -1 : a, S == 1 ? -1 : bb));
      mts.emplace_back(S == 1 ? s.H : OH, S == 1 ? s.W : OW, taps.back());
    }
  const BwdFns& fn = kBackward[Cg - 1][Kg <= kMaxKb ? Kg - 1 : kMaxKb];
  const int gb = groups_per_item(s, fn.nc), ngb = (s.groups + gb - 1) / gb;
  const int64_t items = int64_t(s.N) * ngb;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> D(relu_y ? size_t(gb) * Kg * dpitch : 0);      // dy masked by [y > 0]
    std::vector<float> Q(S == 2 ? size_t(gb) * Cg * 4 * dpitch : 0);  // stride 2: dx's parity planes
    BwdArgs a{};
    a.Kg = Kg;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / ngb), g0 = int(it % ngb) * gb, ng = std::min(gb, s.groups - g0);
      const int64_t yo = n * ys + int64_t(g0) * Kg * oplane;
      a.D = dy + yo, a.dpitch = oplane, a.gd = int64_t(Kg) * oplane;
      if (relu_y) {
        for (int jo = 0; jo < ng * Kg; ++jo)  // (group, output channel) pairs
          for (int64_t f = 0; f < oplane; f += 16) {
            const __mmask16 mk = oplane - f >= 16 ? __mmask16(0xffff) : __mmask16((1u << (oplane - f)) - 1);
            const __m512 yv = _mm512_maskz_loadu_ps(mk, relu_y + yo + jo * oplane + f);
            const __mmask16 pos = _mm512_mask_cmp_ps_mask(mk, yv, _mm512_setzero_ps(), _CMP_GT_OQ);
            _mm512_storeu_ps(D.data() + jo * dpitch + f, _mm512_maskz_loadu_ps(pos, dy + yo + jo * oplane + f));
          }
        a.D = D.data(), a.dpitch = dpitch, a.gd = int64_t(Kg) * dpitch;
      }
      float* dxg = dx + n * xs + int64_t(g0) * Cg * xplane;
      for (int ph = 0; ph < S * S; ++ph) {  // stride 1: one grid, dx itself
        const std::vector<Tap>& tp = taps[ph];
        for (int c = 0; c < Cg; ++c) a.dst[c] = S == 1 ? dxg + c * xplane : Q.data() + (size_t(c) * 4 + ph) * dpitch;
        a.mt = &mts[ph], a.taps = tp.data(), a.gx = S == 1 ? int64_t(Cg) * xplane : int64_t(Cg) * 4 * dpitch;
        run_calls(fn, a, ng, mts[ph].nch, w + int64_t(g0) * Kg * Cg * 9);
      }
      if (S == 1) continue;
      for (int jc = 0; jc < ng * Cg; ++jc) {
        const float* qc = Q.data() + size_t(jc) * 4 * dpitch;
        for (int ih = 0; ih < s.H; ++ih) {
          const float* row = qc + (ih & 1) * 2 * dpitch + int64_t(ih >> 1) * OW;
          interleave_row(dxg + jc * xplane + int64_t(ih) * s.W, row, row + dpitch, s.W);
        }
      }
    }
  }
}

#else  // no AVX-512: the general direct kernel runs

bool direct3x3_applies(const Conv2dShape&, ConvPass) { return false; }
void direct3x3_forward(const Conv2dShape&, const float*, const float*, const float*, float*, bool) {}
void direct3x3_backward_data(const Conv2dShape&, const float*, const float*, float*, const float*) {}

#endif

}  // namespace rf::conv_detail

// The direct kernel's 3x3 / pad 1 / stride 1 or 2 path for few channels per group (the NL module's seeded
// convs: depthwise, or C/groups <= 4 with K/groups <= 8 or 12), forward and input gradient, AVX-512 builds
// only (elsewhere direct3x3_applies() is false and conv_direct.cpp's general kernel runs). Checked by
// tests/ops/test_conv.cpp (Conv2d.Direct3x3PathMatchesGeneralKernelAndReference: sizes 1..33, strides 1/2,
// C/groups 1..4, K/groups 1..12, batch 1 to 4, strided y, against the reference and bit for bit against the
// general direct kernel, forward and input gradient; Conv2d.Direct3x3PathHasOneDnnDepthwiseBits where it
// replaces oneDNN).
//
// Idea: an output plane is one flat run of OH*OW floats computed 16 at a time, whatever its width: lane l of
// chunk f is output pixel p = f + l, (oh, ow) = (p / OW, p % OW), and tap (kh, kw) of a stride-1 conv is the
// input plane read at p + (kh-1)*W + (kw-1), a plain unaligned load with the lanes whose pixel falls into the
// padding masked off (AVX-512 masked loads do not fault on masked lanes). So a 4x4 plane is one vector, an 8x8
// one four, and no padded copy of the input is made. Stride 2 first splits each input channel into its four
// (row, column) parity planes on the OH x OW grid; tap (kh, kw) is then parity plane (kh != 1, kw != 1) read
// at p - OW*(kh == 0) - (kw == 0). The masks depend only on the chunk and the tap: one table per call.
// Forward, the loop order: planes of >= 16 chunks one group and a block of its output channels at a time, 2-8
// consecutive chunks per kernel call (the group's input plane stays in L1 over its blocks, and the block's
// output planes are written in sequence); smaller planes several groups per call, all chunks.
// The input gradient runs the same scheme backwards: stride 1 reads dy at p + (1-kh)*W + (1-kw); stride 2
// computes dx's four parity planes (each gets the taps of its parity) and interleaves them into dx. Its loop
// order likewise: grids of >= 16 chunks one group at a time, 2-8 chunks per step; smaller ones by groups.
//
// Summation order: every output is one FMA chain from +0 over the taps in the general kernel's order,
// forward (c, kh, kw), input gradient (o, kh, kw); a tap that reads padding (or dy masked by the ReLU) is an
// FMA with +0 in both kernels. So the results are bit-identical to conv_direct.cpp's general kernel, and
// where this path replaces oneDNN (depthwise at <= 16x16, stride 1) the model outputs came out bit-identical
// too (oneDNN's jit_dw sums the taps in the same order; so does it at stride 2, where the forward replaces it
// too: checked op by op).

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
// Built 16 lanes at a time (the lanes' grid positions, stepped along, then compares): lane by lane it cost
// 7% (NL-512) to 25% (depthwise) of a 32x32 forward at batch 1.
struct MaskTable {
  int nch = 0, ntaps = 0;
  std::vector<__mmask16> tap, store;
  MaskTable(int GH, int GW, const std::vector<Tap>& taps)
      : nch(int((int64_t(GH) * GW + 15) / 16)), ntaps(int(taps.size())) {
    tap.resize(size_t(nch) * ntaps);
    store.resize(size_t(nch));
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1), gw = _mm512_set1_epi32(GW);
    __m512i gr = zero, gc = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int ch = 0; ch < nch; ++ch, gc = _mm512_add_epi32(gc, _mm512_set1_epi32(16))) {
      for (__mmask16 wrap; (wrap = _mm512_cmpge_epi32_mask(gc, gw));)  // columns past the row: next row
        gc = _mm512_mask_sub_epi32(gc, wrap, gc, gw), gr = _mm512_mask_add_epi32(gr, wrap, gr, one);
      const __mmask16 in = _mm512_cmplt_epi32_mask(gr, _mm512_set1_epi32(GH));
      store[ch] = in;
      for (int t = 0; t < ntaps; ++t) {
        const Tap& q = taps[t];
        const __m512i r = _mm512_add_epi32(_mm512_mullo_epi32(gr, _mm512_set1_epi32(q.ar)), _mm512_set1_epi32(q.br));
        const __m512i c = _mm512_add_epi32(_mm512_mullo_epi32(gc, _mm512_set1_epi32(q.ac)), _mm512_set1_epi32(q.bc));
        __mmask16 mk = _mm512_mask_cmpge_epi32_mask(in, r, zero);
        mk = _mm512_mask_cmplt_epi32_mask(mk, r, _mm512_set1_epi32(q.hr));
        mk = _mm512_mask_cmpge_epi32_mask(mk, c, zero);
        tap[size_t(ch) * ntaps + t] = _mm512_mask_cmplt_epi32_mask(mk, c, _mm512_set1_epi32(q.wc));
      }
    }
  }
};

constexpr int kMaxCg = 4, kMaxKb = 8;  // C/groups taken; output channels per kernel call

inline __m512 relu_exact(__m512 a) {  // std::max(a, 0.f) lane by lane: -0 and NaN stay
  return _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
}

// The register block both kernels share. A step's accumulators acc[q][k][r]: group q (of NC), chunk k (of NCH),
// output r (of R: output channels forward, input channels backward). Always inlined, the register loops
// unrolled: what keeps acc[] in registers under GCC 12 (see forward_call).
template <int NC, int NCH, int R>
__attribute__((always_inline)) inline void zero_block(__m512 (&acc)[NC][NCH][R]) {
#pragma GCC unroll 16
  for (int q = 0; q < NC; ++q)
#pragma GCC unroll 16
    for (int k = 0; k < NCH; ++k)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[q][k][r] = _mm512_setzero_ps();
}

// One tap t of one source plane for the whole block: acc[q][k][r] += wt[q * WQ + r * WR] * (the source of group q
// at src + q * gs, chunk k, its lanes masked by m[k * mstride + t]).
template <int WQ, int WR, int NC, int NCH, int R>
__attribute__((always_inline)) inline void fma_block(__m512 (&acc)[NC][NCH][R], const float* wt, const __mmask16* m,
                                                     int mstride, int t, const float* src, int64_t gs) {
#pragma GCC unroll 16
  for (int q = 0; q < NC; ++q) {
    __m512 wv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) wv[r] = _mm512_set1_ps(wt[q * WQ + r * WR]);
#pragma GCC unroll 16
    for (int k = 0; k < NCH; ++k) {
      const __m512 v = _mm512_maskz_loadu_ps(m[k * mstride + t], src + q * gs + k * 16);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[q][k][r] = _mm512_fmadd_ps(wv[r], v, acc[q][k][r]);
    }
  }
}

// A kernel step computes NCH consecutive 16-lane chunks of KB output channels of NC consecutive groups side by
// side: every output is a serial FMA chain (the fixed order), so NC * NCH * KB >= 8 (by chunks 8-16)
// independent chains hide the FMA latency. A call runs nsteps steps from chunk ch0 (one call per group and
// block, not per step: 0.9-0.95 at 32x32). Group q's planes lie q*gx floats after the first's in the source
// and q*gy in the destination; the weights are read in place.
struct FwdArgs {
  const MaskTable* mt;
  const float* src[kMaxCg][9];  // tap t of input channel c of the item's first group, offset by the shift
  float* dst[kMaxKb];           // output channel o of the block, of the item's first group
  const float* b;               // bias of the first group's first output channel of the block, or null
  int64_t gx, gy, gw, gbias;
  bool relu;
};

// Forward of chunks ch0 .. ch0+nsteps*NCH-1 for KB output channels of groups j0 .. j0+NC-1:
// y_o = [relu](sum_{c,t} w * tap + b_o). w: the item's first group's weights from the block's first output
// channel; groups j0 on a.gw floats apart (GK*CG*9: the NC groups' distance a constant, as the weights' address
// offsets).
// The pragmas matter (GCC 12): without them GCC kept acc[] in memory too, a store per FMA (2.1x the time at
// 32x32); unrolling the tap loop as well, it regrouped the FMAs into one serial chain per output (1.45x).
template <int CG, int KB, int NC, int NCH, int GK>
void forward_call(const FwdArgs& a, int j0, int ch0, int nsteps, const float* w) {
  w += j0 * a.gw;
  // FwdArgs read once: the stores might alias it
  const float* bias = a.b;
  const bool relu = a.relu;
  const int64_t gy = a.gy, gbias = a.gbias, gx = a.gx;
  const __mmask16* mtap = a.mt->tap.data();
  const __mmask16* mstore = a.mt->store.data();
  float* dst[KB];
#pragma GCC unroll 16
  for (int o = 0; o < KB; ++o) dst[o] = a.dst[o] + int64_t(j0) * gy;
  for (int st = 0, ch = ch0; st < nsteps; ++st, ch += NCH) {
    const __mmask16* m = mtap + size_t(ch) * 9;
    const int64_t f = int64_t(ch) * 16, x0 = j0 * gx + f;
    __m512 acc[NC][NCH][KB];
    zero_block(acc);
#pragma GCC unroll 1
    for (int c = 0; c < CG; ++c)
#pragma GCC unroll 1
      for (int t = 0; t < 9; ++t)
        fma_block<GK * CG * 9, CG * 9>(acc, w + c * 9 + t, m, 9, t, a.src[c][t] + x0, gx);
#pragma GCC unroll 16
    for (int q = 0; q < NC; ++q)
#pragma GCC unroll 16
      for (int k = 0; k < NCH; ++k) {
        const __mmask16 ms = mstore[ch + k];
#pragma GCC unroll 16
        for (int o = 0; o < KB; ++o) {
          __m512 r = acc[q][k][o];
          if (bias) r = _mm512_add_ps(r, _mm512_set1_ps(bias[(j0 + q) * gbias + o]));
          if (relu) r = relu_exact(r);
          _mm512_mask_storeu_ps(dst[o] + q * gy + f + k * 16, ms, r);
        }
      }
  }
}

constexpr int fwd_nc(int kb) { return kb == 1 ? 8 : kb == 2 ? 4 : kb == 3 ? 3 : 2; }
// Chunks per call by chunks: 8-16 chains (at 32x32 with 4 channels per block 2, 3, 4 or 6 chunks measured the
// same, within 3%).
constexpr int fwd_nch(int kb) { return kb <= 2 ? 8 : kb <= 4 ? 4 : 2; }
using FwdFn = void (*)(const FwdArgs&, int, int, int, const float*);
// groups: NC groups x 1 chunk; chunks: 1 group x NCH chunks; one: 1 x 1 (the tails)
struct FwdFns { FwdFn groups, chunks, one; int nc, nch; };
template <int CG, int KB, int GK>
constexpr FwdFns fwd_fns() {
  return {forward_call<CG, KB, fwd_nc(KB), 1, GK>, forward_call<CG, KB, 1, fwd_nch(KB), GK>,
          forward_call<CG, KB, 1, 1, GK>, fwd_nc(KB), fwd_nch(KB)};
}
template <int CG, int... KB>
constexpr std::array<FwdFns, sizeof...(KB)> fwd_row(std::integer_sequence<int, KB...>) {
  return {fwd_fns<CG, KB + 1, KB + 1>()...};
}
// [C/groups - 1][KB - 1]: KB output channels per call, K/groups <= 8; and K/groups = 12, blocks of 6
const std::array<std::array<FwdFns, kMaxKb>, kMaxCg> kForward = {
    fwd_row<1>(std::make_integer_sequence<int, kMaxKb>()), fwd_row<2>(std::make_integer_sequence<int, kMaxKb>()),
    fwd_row<3>(std::make_integer_sequence<int, kMaxKb>()), fwd_row<4>(std::make_integer_sequence<int, kMaxKb>())};
const FwdFns kForward12[kMaxCg] = {fwd_fns<1, 6, 12>(), fwd_fns<2, 6, 12>(), fwd_fns<3, 6, 12>(),
                                   fwd_fns<4, 6, 12>()};

struct BwdArgs {
  const MaskTable* mt;
  const Tap* taps;
  const float* D;      // the item's first group's (masked) dy, output channel o at o * dpitch
  float* dst[kMaxCg];  // the item's first group's dx planes (or dx parity planes)
  int64_t dpitch, gd, gx;
};

// Input gradient of chunks ch0 .. ch0+nsteps*NCH-1 of groups j0 .. j0+NC-1: dx_c = sum over (o, tap) of
// w[o][c][tap] * D_o[p + off], NC * NCH * CG >= 8 independent chains (by groups: NC groups x 1 chunk; by chunks:
// 1 group x NCH chunks). w: the item's first group's weights; groups KG*CG*9 floats apart.
// As forward_call: the register loops unrolled, the (o, tap) loops kept as loops (GCC 12 kept acc[] in memory
// without the pragmas, a store per FMA), the chunk loop inside the call.
template <int CG, int KG, int NC, int NCH>
void backward_call(const BwdArgs& a, int j0, int ch0, int nsteps, const float* w) {
  // BwdArgs read once: the stores might alias it
  const int nt = a.mt->ntaps;
  const __mmask16* mtap = a.mt->tap.data();
  const __mmask16* mstore = a.mt->store.data();
  int64_t off[9];
  int widx[9];
  for (int t = 0; t < nt; ++t) off[t] = a.taps[t].off, widx[t] = a.taps[t].w_idx;
  const int64_t dpitch = a.dpitch, gd = a.gd, gx = a.gx;
  const float* D = a.D + j0 * gd;
  float* dst[CG];
#pragma GCC unroll 16
  for (int c = 0; c < CG; ++c) dst[c] = a.dst[c] + j0 * gx;
  w += int64_t(j0) * KG * CG * 9;
  for (int st = 0, ch = ch0; st < nsteps; ++st, ch += NCH) {
    const __mmask16* m = mtap + size_t(ch) * nt;
    const int64_t f = int64_t(ch) * 16;
    __m512 acc[NC][NCH][CG];
    zero_block(acc);
#pragma GCC unroll 1
    for (int o = 0; o < KG; ++o)
#pragma GCC unroll 1
      for (int t = 0; t < nt; ++t)
        fma_block<KG * CG * 9, 9>(acc, w + o * CG * 9 + widx[t], m, nt, t, D + o * dpitch + off[t] + f, gd);
#pragma GCC unroll 16
    for (int q = 0; q < NC; ++q)
#pragma GCC unroll 16
      for (int k = 0; k < NCH; ++k) {
        const __mmask16 ms = mstore[ch + k];
#pragma GCC unroll 16
        for (int c = 0; c < CG; ++c) _mm512_mask_storeu_ps(dst[c] + q * gx + f + k * 16, ms, acc[q][k][c]);
      }
  }
}

constexpr int bwd_nc(int cg) { return cg == 1 ? 8 : cg == 2 ? 4 : 2; }
constexpr int bwd_nch(int cg) { return cg == 1 ? 8 : cg == 2 ? 4 : cg == 3 ? 3 : 2; }
using BwdFn = void (*)(const BwdArgs&, int, int, int, const float*);
// groups: NC groups x 1 chunk; chunks: 1 group x NCH chunks; one: 1 x 1 (the tails)
struct BwdFns { BwdFn groups, chunks, one; int nc, nch; };
template <int CG, int KG>
constexpr BwdFns bwd_fns() {
  return {backward_call<CG, KG, bwd_nc(CG), 1>, backward_call<CG, KG, 1, bwd_nch(CG)>, backward_call<CG, KG, 1, 1>,
          bwd_nc(CG), bwd_nch(CG)};
}
template <int CG, int... KG>
constexpr std::array<BwdFns, sizeof...(KG) + 1> bwd_row(std::integer_sequence<int, KG...>) {
  return {bwd_fns<CG, KG + 1>()..., bwd_fns<CG, 12>()};
}
// [C/groups - 1][K/groups - 1], the last entry for K/groups = 12
const std::array<std::array<BwdFns, kMaxKb + 1>, kMaxCg> kBackward = {
    bwd_row<1>(std::make_integer_sequence<int, kMaxKb>()), bwd_row<2>(std::make_integer_sequence<int, kMaxKb>()),
    bwd_row<3>(std::make_integer_sequence<int, kMaxKb>()), bwd_row<4>(std::make_integer_sequence<int, kMaxKb>())};

// Runs the calls of an item's ng groups over a grid of nch chunks: by groups (NC at a time, all chunks per call,
// the rest one group at a time) or, by_chunks, one group at a time, NCH chunks per step; wb: the weights of the
// item's first group.
void run_backward(const BwdFns& fn, const BwdArgs& a, int ng, int nch, bool by_chunks, const float* wb) {
  for (int j0 = 0; j0 < ng;) {
    const int nj = !by_chunks && j0 + fn.nc <= ng ? fn.nc : 1;
    int ch = 0;
    if (nj > 1) {
      fn.groups(a, j0, 0, nch, wb);
      ch = nch;
    } else if (by_chunks) {
      fn.chunks(a, j0, 0, nch / fn.nch, wb);
      ch = nch / fn.nch * fn.nch;
    }
    if (ch < nch) fn.one(a, j0, ch, nch - ch, wb);
    j0 += nj;
  }
}

// The four (row, column) parity planes of an H x W input channel x on the OH x OW grid: plane
// (ih % 2) * 2 + iw % 2 at pc + plane * pplane holds pixel (ih, iw) at (ih / 2) * OW + iw / 2. Widths 8 and 16
// in whole vectors (two rows, one row per permute): row by row (deinterleave_row) they took most of the
// time of the 8x8 stride-2 forward at batch 1 (a 256-channel conv: 2048 rows of 8 floats).
void split_parity(const float* x, int H, int W, int OW, float* pc, int64_t pplane) {
  if (W == 16) {  // one row: even columns to the low half, odd ones to the high half
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int ih = 0; ih < H; ++ih) {
      const __m512 r = _mm512_loadu_ps(x + ih * 16), v = _mm512_permutex2var_ps(r, idx, r);
      float* row = pc + (ih & 1) * 2 * pplane + int64_t(ih >> 1) * OW;
      _mm256_storeu_ps(row, __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
      _mm256_storeu_ps(row + pplane, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
    }
    return;
  }
  if (W == 8 && H % 2 == 0) {  // rows ih, ih + 1: their even and odd columns, one 4-float quarter each
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    for (int ih = 0; ih < H; ih += 2) {
      const __m512 r = _mm512_loadu_ps(x + ih * 8), v = _mm512_permutex2var_ps(r, idx, r);
      float* row = pc + int64_t(ih >> 1) * OW;
      _mm_storeu_ps(row, __builtin_shufflevector(v, v, 0, 1, 2, 3));
      _mm_storeu_ps(row + pplane, __builtin_shufflevector(v, v, 4, 5, 6, 7));
      _mm_storeu_ps(row + 2 * pplane, __builtin_shufflevector(v, v, 8, 9, 10, 11));
      _mm_storeu_ps(row + 3 * pplane, __builtin_shufflevector(v, v, 12, 13, 14, 15));
    }
    return;
  }
  for (int ih = 0; ih < H; ++ih) {
    float* row = pc + (ih & 1) * 2 * pplane + int64_t(ih >> 1) * OW;
    deinterleave_row(row, row + pplane, x + int64_t(ih) * W, W);
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

// Depthwise, stride 1, rows of 16 or 32 (the NL-dw seeded convs at 16x16 and 32x32), forward and input
// gradient: row by row instead of flat chunks. Each source row is loaded once per output row it feeds, as whole
// vectors, and its left and right neighbours (src[col - 1], src[col + 1], zero past the row's ends) are shifted
// in registers (valignd), where the flat kernels made every tap a masked unaligned load (line-crossing, and its
// mask loaded too). R output rows of NV vectors are R x NV independent chains. Every output is the flat
// kernels' chain: acc = +0, then fma(w[kh*3 + kw], tap, acc) in (kh, kw) order (forward: tap (kh, kw) reads x
// at (r + kh - 1, col + kw - 1); input gradient: dy at (r + 1 - kh, col + 1 - kw)), a padding tap adding
// w * (+0), which leaves acc as it is (acc is never -0; w finite, as seeded weights are): rows past the plane's
// top and bottom are skipped for that reason. The same bits (tested against the general kernel by
// Conv2d.Direct3x3PathMatchesGeneralKernelAndReference). Measured (bench_kernels BM_seeded_stage, 1 thread):
// forward 32x32 2.1x (batch 1) and 1.9x (batch 64, where it reaches DRAM speed), 16x16 1.65x and 1.8x.

template <int NV, int R, bool BWD>
__attribute__((always_inline)) inline void dw_rows_block(const float* xp, const float* relu_y, int H, int r0,
                                                         const __m512 (&wv)[9], __m512 (&acc)[R][NV]) {
  constexpr int W = NV * 16;
#pragma GCC unroll 8
  for (int q = 0; q < R; ++q)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[q][v] = _mm512_setzero_ps();
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; ++kh) {
#pragma GCC unroll 8
    for (int q = 0; q < R; ++q) {
      const int i = BWD ? r0 + q + 1 - kh : r0 + q + kh - 1;
      if (i < 0 || i >= H) continue;
      __m512i row[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const int64_t at = int64_t(i) * W + v * 16;  // relu_y: dy where y > 0, else +0 (the flat kernel's D)
        const __mmask16 keep =
            relu_y ? _mm512_cmp_ps_mask(_mm512_loadu_ps(relu_y + at), _mm512_setzero_ps(), _CMP_GT_OQ)
                   : __mmask16(0xffff);
        row[v] = _mm512_castps_si512(_mm512_maskz_loadu_ps(keep, xp + at));
      }
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const __m512i zero = _mm512_setzero_si512(), prev = v > 0 ? row[v - 1] : zero,
                      next = v + 1 < NV ? row[v + 1] : zero;
        // (maskz with every lane set: plain valignd; GCC 12 warns about the unmasked intrinsic's undefined source)
        const __m512 l = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xffff, row[v], prev, 15));  // x[col - 1]
        const __m512 r = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xffff, next, row[v], 1));   // x[col + 1]
        acc[q][v] = _mm512_fmadd_ps(wv[kh * 3], BWD ? r : l, acc[q][v]);
        acc[q][v] = _mm512_fmadd_ps(wv[kh * 3 + 1], _mm512_castsi512_ps(row[v]), acc[q][v]);
        acc[q][v] = _mm512_fmadd_ps(wv[kh * 3 + 2], BWD ? l : r, acc[q][v]);
      }
    }
  }
}

template <int NV, bool BWD>
void dw_rows_plane(const float* xp, const float* relu_y, int H, const float* w, const float* b, bool relu,
                   float* yp) {
  constexpr int R = NV == 1 ? 8 : 4;  // 8 chains
  __m512 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm512_set1_ps(w[t]);
  const auto store = [&](__m512 a, float* dst) {
    if (b) a = _mm512_add_ps(a, _mm512_set1_ps(*b));
    if (relu) a = relu_exact(a);
    _mm512_storeu_ps(dst, a);
  };
  int r0 = 0;
  for (; r0 + R <= H; r0 += R) {
    __m512 acc[R][NV];
    dw_rows_block<NV, R, BWD>(xp, relu_y, H, r0, wv, acc);
    for (int q = 0; q < R; ++q)
      for (int v = 0; v < NV; ++v) store(acc[q][v], yp + int64_t(r0 + q) * NV * 16 + v * 16);
  }
  for (; r0 < H; ++r0) {
    __m512 acc[1][NV];
    dw_rows_block<NV, 1, BWD>(xp, relu_y, H, r0, wv, acc);
    for (int v = 0; v < NV; ++v) store(acc[0][v], yp + int64_t(r0) * NV * 16 + v * 16);
  }
}

// The same for planes of width 4 or 8 (NL-dw at 4x4 and 8x8) of at most 4 vectors: a vector holds 16 / W whole
// rows; the rows above and below come from valignd by W lanes across the plane's vectors (zero past its top and
// bottom), the left and right neighbours from valignd by one lane with the lanes at a row's start or end zeroed.
// Padding taps are FMAs with +0, as in the flat kernel; P planes side by side give P x NV chains. Measured as
// above: 8x8 forward 1.6x, input gradient (ReLU) 2.2x; 4x4 1.5x and 1.7x (batch 1 and 64 alike).
template <int W, int NV, int P, bool BWD>
void dw_small_planes(const float* const (&src)[P], const float* const (&relu_y)[P], const float* const (&w)[P],
                     const float* const (&b)[P], bool relu, float* const (&dst)[P]) {
  constexpr __mmask16 kNotFirst = W == 4 ? 0xeeee : 0xfefe, kNotLast = W == 4 ? 0x7777 : 0x7f7f;
  const __m512i zero = _mm512_setzero_si512();
  __m512i S[P][NV];
  __m512 acc[P][NV];
#pragma GCC unroll 4
  for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 keep =
          relu_y[q] ? _mm512_cmp_ps_mask(_mm512_loadu_ps(relu_y[q] + v * 16), _mm512_setzero_ps(), _CMP_GT_OQ)
                    : __mmask16(0xffff);
      S[q][v] = _mm512_castps_si512(_mm512_maskz_loadu_ps(keep, src[q] + v * 16));
      acc[q][v] = _mm512_setzero_ps();
    }
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; ++kh)
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const __m512i up = _mm512_maskz_alignr_epi32(0xffff, S[q][v], v > 0 ? S[q][v - 1] : zero, 16 - W);
        const __m512i down = _mm512_maskz_alignr_epi32(0xffff, v + 1 < NV ? S[q][v + 1] : zero, S[q][v], W);
        const __m512i t = kh == 1 ? S[q][v] : (kh == 0) != BWD ? up : down;
        const __m512 l = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(kNotFirst, t, zero, 15));  // t[col - 1]
        const __m512 r = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(kNotLast, zero, t, 1));    // t[col + 1]
        acc[q][v] = _mm512_fmadd_ps(_mm512_set1_ps(w[q][kh * 3]), BWD ? r : l, acc[q][v]);
        acc[q][v] = _mm512_fmadd_ps(_mm512_set1_ps(w[q][kh * 3 + 1]), _mm512_castsi512_ps(t), acc[q][v]);
        acc[q][v] = _mm512_fmadd_ps(_mm512_set1_ps(w[q][kh * 3 + 2]), BWD ? l : r, acc[q][v]);
      }
#pragma GCC unroll 4
  for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 a = acc[q][v];
      if (b[q]) a = _mm512_add_ps(a, _mm512_set1_ps(*b[q]));
      if (relu) a = relu_exact(a);
      _mm512_storeu_ps(dst[q] + v * 16, a);
    }
}

// Where the two kernels above run: depthwise, stride 1, rows of 16 or 32, or planes of width 4 or 8 in 1-4 vectors.
bool dw_shift_applies(const Conv2dShape& s) {
  if (!(s.groups == s.C && s.K == s.C && s.stride == 1)) return false;
  return s.W == 16 || s.W == 32 || ((s.W == 4 || s.W == 8) && s.H * s.W % 16 == 0 && s.H * s.W <= 64);
}

// Plane p's source, ReLU mask source, weights, bias and destination, for the forward or the input gradient.
struct DwPlane {
  const float *src, *relu_y, *w, *b;
  float* dst;
};
template <int W, int NV, bool BWD, typename PlaneFn>
void dw_small_run(int64_t planes, bool relu, bool threads, const PlaneFn& plane) {
  constexpr int P = NV == 1 ? 4 : NV == 2 ? 2 : 1;  // >= 4 chains
#pragma omp parallel for schedule(static) if (threads)
  for (int64_t p0 = 0; p0 < planes; p0 += P) {
    if (p0 + P <= planes) {
      const float *src[P], *ry[P], *w[P], *b[P];
      float* dst[P];
      for (int q = 0; q < P; ++q) {
        const DwPlane d = plane(p0 + q);
        src[q] = d.src, ry[q] = d.relu_y, w[q] = d.w, b[q] = d.b, dst[q] = d.dst;
      }
      dw_small_planes<W, NV, P, BWD>(src, ry, w, b, relu, dst);
    } else {
      for (int64_t p = p0; p < planes; ++p) {
        const DwPlane d = plane(p);
        const float* const src[1] = {d.src};
        const float* const ry[1] = {d.relu_y};
        const float* const w[1] = {d.w};
        const float* const b[1] = {d.b};
        float* const dst[1] = {d.dst};
        dw_small_planes<W, NV, 1, BWD>(src, ry, w, b, relu, dst);
      }
    }
  }
}

// Both kernels over the planes of s (dw_shift_applies), plane(p) giving plane p's pointers.
template <bool BWD, typename PlaneFn>
void dw_shift(const Conv2dShape& s, bool relu, const PlaneFn& plane) {
  const int64_t planes = int64_t(s.N) * s.C;
  const bool threads = parallel_worth(s);
  if (s.W >= 16) {
#pragma omp parallel for schedule(static) if (threads)
    for (int64_t p = 0; p < planes; ++p) {
      const DwPlane d = plane(p);
      if (s.W == 16) dw_rows_plane<1, BWD>(d.src, d.relu_y, s.H, d.w, d.b, relu, d.dst);
      else dw_rows_plane<2, BWD>(d.src, d.relu_y, s.H, d.w, d.b, relu, d.dst);
    }
    return;
  }
  const int nv = s.H * s.W / 16;
  if (s.W == 4) {
    if (nv == 1) return dw_small_run<4, 1, BWD>(planes, relu, threads, plane);
    if (nv == 2) return dw_small_run<4, 2, BWD>(planes, relu, threads, plane);
    if (nv == 3) return dw_small_run<4, 3, BWD>(planes, relu, threads, plane);
    return dw_small_run<4, 4, BWD>(planes, relu, threads, plane);
  }
  if (nv == 1) return dw_small_run<8, 1, BWD>(planes, relu, threads, plane);
  if (nv == 2) return dw_small_run<8, 2, BWD>(planes, relu, threads, plane);
  if (nv == 3) return dw_small_run<8, 3, BWD>(planes, relu, threads, plane);
  return dw_small_run<8, 4, BWD>(planes, relu, threads, plane);
}

void dw_shift_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu) {
  const int64_t plane = int64_t(s.H) * s.W, ys = s.y_batch_stride();
  dw_shift<false>(s, relu, [&](int64_t p) {
    const int64_t n = p / s.C, c = p % s.C;
    return DwPlane{x + p * plane, nullptr, w + c * 9, b ? b + c : nullptr, y + n * ys + c * plane};
  });
}

void dw_shift_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
  const int64_t plane = int64_t(s.H) * s.W, ys = s.y_batch_stride();
  dw_shift<true>(s, false, [&](int64_t p) {
    const int64_t n = p / s.C, c = p % s.C, yo = n * ys + c * plane;
    return DwPlane{dy + yo, relu_y ? relu_y + yo : nullptr, w + c * 9, nullptr, dx + p * plane};
  });
}

}  // namespace

// Where this path runs instead of the general kernel (bit-identical results: a choice by speed only, so it
// may depend on the batch size) and instead of oneDNN for depthwise at <= 16x16 (conv.cpp). Measured on 1
// thread of the Zen 4 host, BM_seeded_stage, ratios to the general kernel (batch 64 | batch 1): forward at
// 32x32 stride 1 0.57-0.59 | 0.64-0.7 (NL-512/768 and depthwise), 32x32 stride 2 0.88-0.95 | 0.54-0.79, at
// <= 16x16 0.5-0.77 | 0.27-0.7; depthwise stride 2 at <= 16x16 vs oneDNN's jit_dw 0.5-1.0 | 0.67-0.95. (Before
// its kernel kept the accumulators in registers and ran planes by chunks, 32x32 stride 1 had been 1.1-1.4 of
// the general kernel at batch 1, 16x16 with 6 per group 1.55 at batch 64.) Input gradient up to 32x32 (its
// kernel with the accumulators in registers, planes >= 16x16 by chunks), to the general kernel: 32x32 stride 1
// 0.75-0.88 | 0.70-0.82, stride 2 0.70-0.96 | 0.61-0.75, 16x16 stride 1 with K/groups 4 or 6 0.63-0.69 |
// 0.52-0.65 (these had stayed general: the old kernel, its accumulators in memory, was 1.0-1.4 there); to the
// old kernel: 16x16 depthwise stride 1 0.67-0.76 | 0.74-0.83, 16x16 stride 2 0.75-0.87 | 0.76-0.88, 8x8
// stride 1 0.65-0.79 | 0.69-0.85, stride 2 0.83-0.93 | 0.84-0.97, 4x4 0.62-0.90 | 0.67-0.89 (the old kernel had
// been 0.3-0.84 | 0.17-0.8 of the general one there, depthwise 16x16 stride 1 0.66 | 1.12 of oneDNN). Depthwise
// stride 2 at <= 16x16 stays on oneDNN's jit_dw (conv.cpp): this path measured 1.12-1.37 | 0.77-1.58 of it.
bool direct3x3_applies(const Conv2dShape& s, ConvPass pass) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, HW = s.H * s.W;
  if (!(s.k == 3 && s.pad == 1 && (s.stride == 1 || s.stride == 2) && Cg <= kMaxCg && (Kg <= kMaxKb || Kg == 12)))
    return false;
  return (pass == ConvPass::forward || pass == ConvPass::backward_data) && HW <= 1024;  // measured up to 32x32
}

void direct3x3_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu) {
  if (dw_shift_applies(s)) return dw_shift_forward(s, x, w, b, y, relu);
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, S = s.stride, OH = s.OH(), OW = s.OW();
  const int64_t ys = s.y_batch_stride(), xs = int64_t(s.C) * s.H * s.W, xplane = int64_t(s.H) * s.W;
  const int64_t oplane = int64_t(OH) * OW, pplane = round_up(oplane, 16);
  const std::vector<Tap> taps = forward_taps3(s);
  const MaskTable mt(OH, OW, taps);
  // Planes of >= 16 chunks (16x16 and up) by chunks, one group at a time; smaller ones by groups side by side
  // (measured at batch 1: by chunks 0.9 at 16x16 stride 1 with K/groups 4, 1.3 at 8x8 depthwise).
  const bool by_chunks = mt.nch >= 16;
  // Output channels per call: K/groups 12 in two blocks of 6; by chunks 8 in two blocks of 4 (0.94 of one block
  // of 8 at 32x32, NL-512; 4 or 6 the same for 12).
  const int kb = Kg > kMaxKb ? 6 : by_chunks && Kg == 8 ? 4 : Kg;
  const FwdFns& fn = Kg > kMaxKb ? kForward12[Cg - 1] : kForward[Cg - 1][kb - 1];
  const int gb = groups_per_item(s, by_chunks ? 1 : fn.nc), ngb = (s.groups + gb - 1) / gb;
  const int64_t items = int64_t(s.N) * ngb;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> P(S == 2 ? size_t(gb) * Cg * 4 * pplane : 0);  // stride 2: the parity planes
    FwdArgs a{};
    a.mt = &mt, a.relu = relu, a.gy = int64_t(Kg) * oplane, a.gbias = Kg, a.gw = int64_t(Kg) * Cg * 9;
    a.gx = S == 2 ? int64_t(Cg) * 4 * pplane : int64_t(Cg) * xplane;
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / ngb), g0 = int(it % ngb) * gb, ng = std::min(gb, s.groups - g0);
      const float* xg = x + n * xs + int64_t(g0) * Cg * xplane;
      if (S == 2)
        for (int jc = 0; jc < ng * Cg; ++jc)  // (group, channel) pairs: contiguous in x and in P
          split_parity(xg + jc * xplane, s.H, s.W, OW, P.data() + size_t(jc) * 4 * pplane, pplane);
      for (int c = 0; c < Cg; ++c)
        for (int t = 0; t < 9; ++t)
          a.src[c][t] = S == 2 ? P.data() + (size_t(c) * 4 + taps[t].plane) * pplane + taps[t].off
                               : xg + c * xplane + taps[t].off;
      for (int j0 = 0; j0 < ng;) {
        const int nj = !by_chunks && j0 + fn.nc <= ng ? fn.nc : 1;
        for (int o0 = 0; o0 < Kg; o0 += kb) {
          const int ko = g0 * Kg + o0;
          for (int o = 0; o < kb; ++o) a.dst[o] = y + n * ys + int64_t(ko + o) * oplane;
          a.b = b ? b + ko : nullptr;
          const float* wb = w + int64_t(ko) * Cg * 9;
          int ch = 0;
          if (nj > 1) {
            fn.groups(a, j0, 0, mt.nch, wb);
            ch = mt.nch;
          } else if (by_chunks) {
            fn.chunks(a, j0, 0, mt.nch / fn.nch, wb);
            ch = mt.nch / fn.nch * fn.nch;
          }
          if (ch < mt.nch) fn.one(a, j0, ch, mt.nch - ch, wb);
        }
        j0 += nj;
      }
    }
  }
}

void direct3x3_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
  if (dw_shift_applies(s)) return dw_shift_backward_data(s, dy, w, dx, relu_y);
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
  const bool by_chunks = mts[0].nch >= 16;
  const int gb = groups_per_item(s, by_chunks ? 1 : fn.nc), ngb = (s.groups + gb - 1) / gb;
  const int64_t items = int64_t(s.N) * ngb;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> D(relu_y ? size_t(gb) * Kg * dpitch : 0);      // dy masked by [y > 0]
    std::vector<float> Q(S == 2 ? size_t(gb) * Cg * 4 * dpitch : 0);  // stride 2: dx's parity planes
    BwdArgs a{};
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
        run_backward(fn, a, ng, mts[ph].nch, by_chunks, w + int64_t(g0) * Kg * Cg * 9);
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

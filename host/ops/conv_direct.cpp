// conv2d's direct kernel (ConvAlgo::direct): OpenMP over groups x samples, SIMD over pixels, for depthwise
// and few-channels-per-group convs (the seeded convs), forward (also with weights made per group on demand:
// conv2d_forward_direct_cpu_fn), input and weight gradients. Checked by tests/ops/test_conv.cpp (against the
// reference over a sweep of shapes, strides, paddings and strided outputs).
//
// Idea: copy the group's input channels into zero-padded "phase planes" (for stride s, plane (a, b) holds the
// padded pixels (i*s + a, j*s + b)), all with the same row pitch Wq. Then every tap (c, kh, kw) of the kernel
// is one contiguous shifted window of one plane, and an output plane, computed over Wq-wide rows (the extra
// Wq - OW columns are computed and dropped), is sum_t w_t * window_t: unit-stride loads, no bounds checks,
// any stride and padding. Backward data runs the same sum over zero-padded dy planes with the taps' shifts
// negated (one output phase plane at a time), backward weights takes dot products of dy with the windows.
// Napkin math for depthwise 3x3 at 32x32: 9 MACs per output on 9 loads from L1, written once: memory bound.

#include <omp.h>

#include <algorithm>
#include <vector>

#include "host/core/simd.h"
#include "host/ops/conv_kernels.h"

namespace rf {
namespace conv_detail {
namespace {

using namespace simd;

constexpr int kBlk = 2 * kLanes;  // pixels per inner iteration: two vector accumulators per output channel
// Geometry of the phase planes. A stack of ns samples shares each plane (sample j at offset j*pp), so that
// tiny planes (4x4 at stage 4: 144 MACs each) are computed in one long run instead of paying the per-plane
// overhead ns times; outputs of one sample never read another sample's pixels (OH + e <= Hq).
struct Geom {
  int Cg, Kg, k, s, p, H, W, OH, OW;
  int Hq, Wq;     // phase plane rows and row pitch, per sample
  int ns;         // samples stacked per plane
  int64_t pp;     // floats per sample in a plane: Hq*Wq
  int64_t L;      // longest computed run, ns*pp rounded up to kBlk
  int64_t M0;     // largest tap shift (kh/s)*Wq + kw/s: the dy planes' zero margin in front
  int64_t plane;  // floats per phase plane: L + M0 (the shifted windows), rounded
  int64_t dyq;    // floats per dy plane: margin M0, ns samples of pp, rounded
  int T() const { return Cg * k * k; }
  int64_t run(int m) const { return round_up(m * pp, kBlk); }  // computed length for m stacked samples

  Geom(const Conv2dShape& sh, int ns_) : ns(ns_) {
    Cg = sh.C / sh.groups, Kg = sh.K / sh.groups, k = sh.k, s = sh.stride, p = sh.pad, H = sh.H, W = sh.W;
    OH = sh.OH(), OW = sh.OW();
    const int e = (k - 1) / s;  // largest whole-row shift of a tap
    Hq = std::max((H + 2 * p + s - 1) / s, OH + e);
    Wq = std::max((W + 2 * p + s - 1) / s, OW + e);  // >= OW + e: the shifted dy windows wrap into zeros
    pp = int64_t(Hq) * Wq;
    L = run(ns);
    M0 = int64_t(e) * Wq + e;
    plane = round_up(L + M0, kLanes);
    dyq = round_up(M0 + L, kLanes);
  }
};

// Work items are (block of consecutive groups, block of samples), processed as stacks of ns samples. Per
// sample an item reads its groups' channels as one contiguous run of up to 32 KB (one 4 KB plane at a time
// defeats the hardware prefetcher, which stops at page ends), and it fetches the weights once.
struct Blocking {
  int ns;                // samples per stack: stacked runs of >= ~512 floats
  int gb, ngb, nb, nnb;  // groups per block and blocks of groups; samples per block and blocks of samples
  int64_t items() const { return int64_t(ngb) * nnb; }
  explicit Blocking(const Conv2dShape& s) {
    const Geom g1(s, 1);
    const int64_t want = 8 * int64_t(omp_get_max_threads());  // items, for load balance
    // At most 8: the stacked samples sit N*C*H*W*4 bytes apart, often a multiple of 4 KB, i.e. in one L1
    // set; more than its 8 ways thrash (measured: 8 best, 64 25% slower, 1 40% slower at 4x4).
    ns = int(std::clamp<int64_t>((512 + g1.pp - 1) / g1.pp, 1, std::min(8, s.N)));
    const int64_t group_bytes = int64_t(sizeof(float)) * g1.Cg * s.H * s.W;
    gb = int(std::clamp<int64_t>(32768 / group_bytes, 1, s.groups));
    ngb = (s.groups + gb - 1) / gb;
    nnb = int(std::clamp<int64_t>((want + ngb - 1) / ngb, 1, (s.N + ns - 1) / ns));
    if (int64_t(ngb) * nnb < want) {  // few sample blocks: split the groups finer
      ngb = int(std::min<int64_t>(s.groups, (want + nnb - 1) / nnb));
      gb = (s.groups + ngb - 1) / ngb;
      ngb = (s.groups + gb - 1) / gb;
    }
    nb = (s.N + nnb - 1) / nnb;
    nnb = (s.N + nb - 1) / nb;
    ns = std::min(ns, nb);
  }
  // item -> groups [g0, g1) x samples [n0, n1)
  void range(int64_t it, int G, int N, int& g0, int& g1, int& n0, int& n1) const {
    g0 = int(it / nnb) * gb, g1 = std::min(G, g0 + gb);
    n0 = int(it % nnb) * nb, n1 = std::min(N, n0 + nb);
  }
};

// Phase planes of one sample's group of Cg input channels x (Cg, H, W): P[(c*s + a)*s + b][i*Wq + j] =
// x[c][i*s + a - p][j*s + b - p], zero outside; sample j of the stack at P + j*pp. Only the
// positions that hold pixels are written: the planes are zeroed once per call and thread, and the padding
// positions are the same for every sample.
// m samples at once (x advancing by xs, P by pp): the setup costs as much as a 4x4 plane's copy.
void fill_phase_planes(const Geom& g, const float* x, int64_t xs, int m, float* P) {
  const int s = g.s, p = g.p;
  for (int jc = 0, c = 0; jc < m * g.Cg; ++jc, x += g.H * g.W) {  // (sample, channel) pairs
    if (jc && ++c == g.Cg) c = 0, x += xs - int64_t(g.Cg) * g.H * g.W, P += g.pp;
    int a = p % s, i = p / s;  // row phase and phase-plane row of input row r, stepped along
    for (int r = 0; r < g.H; ++r) {
      const float* xr = x + int64_t(r) * g.W;
      float* row0 = P + int64_t((c * s + a) * s) * g.plane + int64_t(i) * g.Wq;
      if (s == 1) {
        copy_row(row0 + p, xr, g.W);
      } else if (s == 2) {  // even pixels q = 2m go to phase p % 2, column m + p/2; odd ones to the other
        deinterleave_row(row0 + (p % 2) * g.plane + p / 2, row0 + ((p + 1) % 2) * g.plane + (p + 1) / 2, xr, g.W);
      } else {
        for (int b = 0; b < s; ++b) {
          const int qb = ((b - p) % s + s) % s;
          float* dst = row0 + b * g.plane + (qb + p) / s;
          for (int q = qb, j = 0; q < g.W; q += s, ++j) dst[j] = xr[q];
        }
      }
      if (++a == s) a = 0, ++i;
    }
  }
}

// One sample's dy plane of one output channel at D (its place in the stack, after the margin M0): OH rows
// of pitch Wq, masked by [y > 0] when y is given (the fused ReLU). Columns >= OW and rows >= OH stay zero.
void fill_dy_plane(const Geom& g, const float* dy, const float* y, float* D) {
  for (int oh = 0; oh < g.OH; ++oh) {
    const float* src = dy + int64_t(oh) * g.OW;
    float* row = D + int64_t(oh) * g.Wq;
    if (y) {
      const float* yr = y + int64_t(oh) * g.OW;
      for (int ow = 0; ow < g.OW; ++ow) row[ow] = yr[ow] > 0 ? src[ow] : 0.f;
    } else {
      copy_row(row, src, g.OW);
    }
  }
}

// dst[oh][ow] = [relu](src[oh*Wq + ow] + bias) for m stacked samples (src advancing by pp, dst by ys):
// the dropped columns stay behind.
void store_planes(const Geom& g, const float* src, int m, float bias, bool relu, float* dst, int64_t ys) {
  for (int jr = 0, j = 0, oh = 0; jr < m * g.OH; ++jr, ++oh) {  // (sample, row) pairs
    if (oh == g.OH) oh = 0, ++j;
    const float* sr = src + j * g.pp + int64_t(oh) * g.Wq;
    float* dr = dst + j * ys + int64_t(oh) * g.OW;
    if (relu) {
      for (int ow = 0; ow < g.OW; ++ow) dr[ow] = std::max(sr[ow] + bias, 0.f);
    } else {
      for (int ow = 0; ow < g.OW; ++ow) dr[ow] = sr[ow] + bias;
    }
  }
}

// out[f] = sum_t wt[t] * base[off[t] + f] for f < len (len a multiple of kBlk), two output channels at once
// when w2 is given (they share every load: 2 loads feed 4 FMAs).
void shifted_sum(int T, const float* wt, const float* wt2, const int64_t* off, const float* base, int64_t len,
                 float* out, float* out2) {
  if (wt2) {
    for (int64_t f = 0; f < len; f += kBlk) {
      Lanes a0 = vzero(), a1 = vzero(), b0 = vzero(), b1 = vzero();
      for (int t = 0; t < T; ++t) {
        const float* q = base + off[t] + f;
        const Lanes x0 = vload(q), x1 = vload(q + kLanes), w1 = vset1(wt[t]), w2 = vset1(wt2[t]);
        a0 = vfma(w1, x0, a0), a1 = vfma(w1, x1, a1);
        b0 = vfma(w2, x0, b0), b1 = vfma(w2, x1, b1);
      }
      vstore(out + f, a0), vstore(out + f + kLanes, a1);
      vstore(out2 + f, b0), vstore(out2 + f + kLanes, b1);
    }
  } else {
    for (int64_t f = 0; f < len; f += kBlk) {
      Lanes a0 = vzero(), a1 = vzero();
      for (int t = 0; t < T; ++t) {
        const float* q = base + off[t] + f;
        const Lanes w1 = vset1(wt[t]);
        a0 = vfma(w1, vload(q), a0), a1 = vfma(w1, vload(q + kLanes), a1);
      }
      vstore(out + f, a0), vstore(out + f + kLanes, a1);
    }
  }
}

// acc[t] += sum_f d[f] * base[off[t] + f] for NT taps at once: one load of dy feeds NT FMAs.
template <int NT>
void tap_dots(const float* d, const float* base, const int64_t* off, int64_t len, float* acc) {
  Lanes a[NT];
  for (int t = 0; t < NT; ++t) a[t] = vzero();
  for (int64_t f = 0; f < len; f += kLanes) {
    const Lanes dv = vload(d + f);
    for (int t = 0; t < NT; ++t) a[t] = vfma(dv, vload(base + off[t] + f), a[t]);
  }
  for (int t = 0; t < NT; ++t) acc[t] += vhsum(a[t]);
}

void tap_dots_n(int nt, const float* d, const float* base, const int64_t* off, int64_t len, float* acc) {
  switch (nt) {
    case 1: return tap_dots<1>(d, base, off, len, acc);
    case 2: return tap_dots<2>(d, base, off, len, acc);
    case 3: return tap_dots<3>(d, base, off, len, acc);
    case 4: return tap_dots<4>(d, base, off, len, acc);
    case 5: return tap_dots<5>(d, base, off, len, acc);
    case 6: return tap_dots<6>(d, base, off, len, acc);
    case 7: return tap_dots<7>(d, base, off, len, acc);
    case 8: return tap_dots<8>(d, base, off, len, acc);
    default: return tap_dots<9>(d, base, off, len, acc);
  }
}

// Offsets of the forward taps t = (c*k + kh)*k + kw in the phase planes.
std::vector<int64_t> forward_taps(const Geom& g) {
  std::vector<int64_t> off(g.T());
  for (int c = 0; c < g.Cg; ++c)
    for (int kh = 0; kh < g.k; ++kh)
      for (int kw = 0; kw < g.k; ++kw)
        off[(c * g.k + kh) * g.k + kw] =
            int64_t((c * g.s + kh % g.s) * g.s + kw % g.s) * g.plane + int64_t(kh / g.s) * g.Wq + kw / g.s;
  return off;
}

template <class GetW>  // GetW(g, float* buf) -> pointer to group g's weights (Kg, Cg, k, k), maybe buf
void direct_forward_with(const Conv2dShape& s, const float* x, GetW get_w, const float* b, float* y, bool relu) {
  const Blocking bl(s);
  const Geom g(s, bl.ns);
  const int T = g.T();
  const int64_t ys = s.y_batch_stride(), wg_n = int64_t(g.Kg) * T, xs = int64_t(s.C) * s.H * s.W;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> P(int64_t(g.Cg) * g.s * g.s * g.plane), out(2 * g.L), wbuf(bl.gb * wg_n);
    std::vector<const float*> wg(bl.gb);
    const std::vector<int64_t> off = forward_taps(g);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < bl.items(); ++it) {
      int g0, g1, n0, n1;
      bl.range(it, s.groups, s.N, g0, g1, n0, n1);
      for (int gi = g0; gi < g1; ++gi) wg[gi - g0] = get_w(gi, wbuf.data() + (gi - g0) * wg_n);
      for (int n = n0; n < n1; n += g.ns) {
        const int m = std::min(g.ns, n1 - n);
        for (int gi = g0; gi < g1; ++gi) {
          const float* xg = x + n * xs + int64_t(gi) * g.Cg * s.H * s.W;
          fill_phase_planes(g, xg, xs, m, P.data());
          for (int o = 0; o < g.Kg; o += 2) {
            const bool two = o + 1 < g.Kg;
            const float* w1 = wg[gi - g0] + int64_t(o) * T;
            shifted_sum(T, w1, two ? w1 + T : nullptr, off.data(), P.data(), g.run(m), out.data(),
                        out.data() + g.L);
            for (int u = 0; u < (two ? 2 : 1); ++u) {
              const int ko = gi * g.Kg + o + u;
              store_planes(g, out.data() + u * g.L, m, b ? b[ko] : 0.f, relu, y + n * ys + int64_t(ko) * g.OH * g.OW,
                           ys);
            }
          }
        }
      }
    }
  }
}

}  // namespace

void direct_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu) {
  if (direct3x3_applies(s, ConvPass::forward)) return direct3x3_forward(s, x, w, b, y, relu);
  const int64_t wg = s.weight_numel() / s.groups;
  direct_forward_with(s, x, [&](int g, float*) { return w + g * wg; }, b, y, relu);
}

// dx = conv^T(dy): padded input pixel (i*s + a, j*s + b) collects the taps kh = a, kw = b (mod s) from dy
// pixel (i - kh/s, j - kw/s), i.e. a dy window shifted back by (kh/s)*Wq + kw/s; one phase plane of dx at
// a time, then interleaved back into NCHW.
void direct_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
  if (direct3x3_applies(s, ConvPass::backward_data)) return direct3x3_backward_data(s, dy, w, dx, relu_y);
  direct_backward_data_general(s, dy, w, dx, relu_y);
}

void direct_backward_data_general(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                  const float* relu_y) {
  const Blocking bl(s);
  const Geom g(s, bl.ns);
  const int k = g.k, S = g.s;
  const int64_t ys = s.y_batch_stride(), xs = int64_t(s.C) * s.H * s.W, oplane = int64_t(g.OH) * g.OW;
  const int max_taps = g.Kg * ((k + S - 1) / S) * ((k + S - 1) / S);
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> D(int64_t(g.Kg) * g.dyq), out(int64_t(S) * S * g.L), wt(max_taps);
    std::vector<int64_t> off(max_taps);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < bl.items(); ++it) {
      int g0, g1, n0, n1;
      bl.range(it, s.groups, s.N, g0, g1, n0, n1);
      for (int n = n0; n < n1; n += g.ns) {
        const int m = std::min(g.ns, n1 - n);  // samples past m in the stack only feed dropped outputs
        for (int gi = g0; gi < g1; ++gi) {
          for (int o = 0; o < g.Kg; ++o)
            for (int j = 0; j < m; ++j) {
              const int64_t yo = (n + j) * ys + int64_t(gi * g.Kg + o) * oplane;
              fill_dy_plane(g, dy + yo, relu_y ? relu_y + yo : nullptr, D.data() + o * g.dyq + g.M0 + j * g.pp);
            }
          for (int c = 0; c < g.Cg; ++c) {
            for (int a = 0; a < S; ++a)
              for (int bb = 0; bb < S; ++bb) {
                int T = 0;
                for (int o = 0; o < g.Kg; ++o)
                  for (int kh = a; kh < k; kh += S)
                    for (int kw = bb; kw < k; kw += S) {
                      wt[T] = w[((int64_t(gi * g.Kg + o) * g.Cg + c) * k + kh) * k + kw];
                      off[T++] = o * g.dyq + g.M0 - (int64_t(kh / S) * g.Wq + kw / S);
                    }
                shifted_sum(T, wt.data(), nullptr, off.data(), D.data(), g.run(m),
                            out.data() + (a * S + bb) * g.L, nullptr);
              }
            for (int j = 0; j < m; ++j) {
              float* dst = dx + (n + j) * xs + (int64_t(gi) * g.Cg + c) * s.H * s.W;
              int a = g.p % S, i = g.p / S;  // the inverse of fill_phase_planes
              for (int ih = 0; ih < s.H; ++ih) {
                const float* row0 = out.data() + int64_t(a) * S * g.L + j * g.pp + int64_t(i) * g.Wq;
                float* dr = dst + int64_t(ih) * s.W;
                if (S == 1) {
                  copy_row(dr, row0 + g.p, s.W);
                } else if (S == 2) {
                  interleave_row(dr, row0 + (g.p % 2) * g.L + g.p / 2,
                                 row0 + ((g.p + 1) % 2) * g.L + (g.p + 1) / 2, s.W);
                } else {
                  for (int bb = 0; bb < S; ++bb) {
                    const int q0 = ((bb - g.p) % S + S) % S;
                    const float* row = row0 + bb * g.L + (q0 + g.p) / S;
                    for (int q = q0, jj = 0; q < s.W; q += S, ++jj) dr[q] = row[jj];
                  }
                }
                if (++a == S) a = 0, ++i;
              }
            }
          }
        }
      }
    }
  }
}

void direct_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  const Blocking bl(s);
  const Geom g(s, bl.ns);
  const int T = g.T();
  const int64_t ys = s.y_batch_stride(), wn = s.weight_numel(), xs = int64_t(s.C) * s.H * s.W;
  const int nthr = omp_get_max_threads();
  // Per-thread partial sums (static schedule), added in thread order afterwards: the same bits on every run.
  std::vector<float> part(int64_t(nthr) * (wn + s.K), 0.f);
#pragma omp parallel num_threads(nthr) if (parallel_worth(s))
  {
    float* my = part.data() + int64_t(omp_get_thread_num()) * (wn + s.K);
    std::vector<float> P(int64_t(g.Cg) * g.s * g.s * g.plane), D(g.dyq);
    const std::vector<int64_t> off = forward_taps(g);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < bl.items(); ++it) {
      int g0, g1, n0, n1;
      bl.range(it, s.groups, s.N, g0, g1, n0, n1);
      for (int n = n0; n < n1; n += g.ns) {
        const int m = std::min(g.ns, n1 - n);
        // The dot products run over all of the m samples' dy (zero off the pixels): a short last stack
        // must not see dy left behind by the previous one.
        if (m < g.ns) std::fill(D.begin() + g.M0 + m * g.pp, D.end(), 0.f);
        for (int gi = g0; gi < g1; ++gi) {
          const float* xg = x + n * xs + int64_t(gi) * g.Cg * s.H * s.W;
          fill_phase_planes(g, xg, xs, m, P.data());
          for (int o = 0; o < g.Kg; ++o) {
            const int ko = gi * g.Kg + o;
            for (int j = 0; j < m; ++j)
              fill_dy_plane(g, dy + (n + j) * ys + int64_t(ko) * g.OH * g.OW, nullptr, D.data() + g.M0 + j * g.pp);
            const float* d = D.data() + g.M0;
            const int64_t len = round_up(m * g.pp, kLanes);
            for (int t0 = 0; t0 < T; t0 += 9)
              tap_dots_n(std::min(9, T - t0), d, P.data(), off.data() + t0, len, my + int64_t(ko) * T + t0);
            if (db) {
              float sum = 0;
              for (int64_t f = 0; f < m * g.pp; ++f) sum += d[f];
              my[wn + ko] += sum;
            }
          }
        }
      }
    }
  }
  add_thread_parts(part, nthr, wn, s.K, dw, db);
}

}  // namespace conv_detail

void conv2d_backward_data_direct_general_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                             const float* relu_y) {
  s.validate();
  conv_detail::direct_backward_data_general(s, dy, w, dx, relu_y);
}

void conv2d_forward_direct_cpu_fn(const Conv2dShape& s, const float* x,
                                  const std::function<void(int g, float* w_g)>& weights_of_group,
                                  const float* b, float* y, bool relu) {
  s.validate();
  conv_detail::direct_forward_with(
      s, x,
      [&](int g, float* buf) {
        weights_of_group(g, buf);
        return static_cast<const float*>(buf);
      },
      b, y, relu);
}

}  // namespace rf


// conv2d on the CPU: the reference loops, our direct OpenMP + SIMD kernel, our 1x1 GEMM kernels, and the
// oneDNN paths. Checked by tests/ops/test_conv.cpp (every algorithm against the reference over a sweep of
// shapes, the double reference against finite differences).
//
// Which algorithm runs (conv2d_cpu_algo) was measured at batch 64 on 2 threads of a Zen 4 (AVX-512) host,
// per pass, on the ResNet-18 / NL-ResNet-18 layers at 32x32:
//  * few channels per group (C/groups <= 4: depthwise, and the seeded convs with groups = gcd(C_in, C_nl)):
//    the direct kernel, 2-10x oneDNN, whose plain-layout path for them is im2col + a tiny sgemm per group.
//    Exception: depthwise at <= 16x16 goes to oneDNN's jit_dw on nChw16c (1.5-5x the direct kernel there
//    even with the reorders).
//  * dense k x k, k > 1: oneDNN on blocked layouts (jit:avx512_core), reordering the activations in and out
//    on every call: still 1.2-2x its plain-layout im2col + gemm path (which the 3-channel stem keeps, but for
//    its weight gradient).
//  * 1x1 stride 1 (the NL modules' grouped 1x1 with bias): at 32x32 and 4x4 gemm_1x1, our loop over
//    (sample, group) with register-blocked kernels or oneDNN's sgemm per call (3x oneDNN's gemm convolution
//    on the weight gradient at 32x32); in between oneDNN's plain gemm convolution. 1x1 stride 2 (the
//    shortcuts): oneDNN's plain gemm (blocked jit_1x1 at <= 8x8).
#include "host/ops/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "host/core/check.h"

namespace rf {

void Conv2dShape::validate() const {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1 && K >= 1, "{}: sizes must be >= 1", str());
  RF_CHECK(k >= 1, "{}: kernel size k={} must be >= 1", str(), k);
  RF_CHECK(stride >= 1, "{}: stride={} must be >= 1", str(), stride);
  RF_CHECK(pad >= 0, "{}: pad={} must be >= 0", str(), pad);
  RF_CHECK(groups >= 1, "{}: groups={} must be >= 1", str(), groups);
  RF_CHECK(C % groups == 0, "{}: C={} is not a multiple of groups={}", str(), C, groups);
  RF_CHECK(K % groups == 0, "{}: K={} is not a multiple of groups={}", str(), K, groups);
  RF_CHECK(H + 2 * pad >= k && W + 2 * pad >= k, "{}: kernel k={} larger than the padded input {}x{}", str(),
           k, H + 2 * pad, W + 2 * pad);
  RF_CHECK(y_nstride == 0 || y_nstride >= int64_t(K) * OH() * OW(),
           "{}: y_nstride={} is smaller than one output sample K*OH*OW={}", str(), y_nstride,
           int64_t(K) * OH() * OW());
}

std::string Conv2dShape::str() const {
  std::string r = fmt::format("conv2d(N={},C={},H={},W={},K={},k={},s={},p={},g={}", N, C, H, W, K, k, stride,
                              pad, groups);
  if (y_nstride) r += fmt::format(",ys={}", y_nstride);
  return r + ")";
}

// ================================ reference (plain loops, double accumulation) ===========================

namespace {
template <typename T>
void forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int n = 0; n < s.N; ++n)
    for (int ko = 0; ko < s.K; ++ko) {
      const int g = ko / Kg;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double acc = b ? double(b[ko]) : 0.0;
          for (int c = 0; c < Cg; ++c)
            for (int kh = 0; kh < k; ++kh) {
              const int ih = oh * s.stride - s.pad + kh;
              if (ih < 0 || ih >= s.H) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int iw = ow * s.stride - s.pad + kw;
                if (iw < 0 || iw >= s.W) continue;
                acc += double(x[((int64_t(n) * s.C + g * Cg + c) * s.H + ih) * s.W + iw]) *
                       double(w[((int64_t(ko) * Cg + c) * k + kh) * k + kw]);
              }
            }
          if (relu && acc < 0) acc = 0;
          y[n * ys + (int64_t(ko) * OH + oh) * OW + ow] = T(acc);
        }
    }
}

// Gather form: dx[ih][iw] collects every (oh, ow, kh, kw) with oh*stride - pad + kh == ih.
template <typename T>
void backward_data_ref(const Conv2dShape& s, const T* y, const T* dy, const T* w, T* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int n = 0; n < s.N; ++n)
    for (int ci = 0; ci < s.C; ++ci) {
      const int g = ci / Cg, c = ci % Cg;
      for (int ih = 0; ih < s.H; ++ih)
        for (int iw = 0; iw < s.W; ++iw) {
          double acc = 0;
          for (int o = 0; o < Kg; ++o) {
            const int ko = g * Kg + o;
            for (int kh = 0; kh < k; ++kh) {
              const int th = ih + s.pad - kh;
              if (th < 0 || th % s.stride) continue;
              const int oh = th / s.stride;
              if (oh >= OH) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int tw = iw + s.pad - kw;
                if (tw < 0 || tw % s.stride) continue;
                const int ow = tw / s.stride;
                if (ow >= OW) continue;
                const int64_t yi = n * ys + (int64_t(ko) * OH + oh) * OW + ow;
                if (y && !(y[yi] > 0)) continue;  // the fused ReLU's mask
                acc += double(dy[yi]) * double(w[((int64_t(ko) * Cg + c) * k + kh) * k + kw]);
              }
            }
          }
          dx[((int64_t(n) * s.C + ci) * s.H + ih) * s.W + iw] = T(acc);
        }
    }
}
}  // namespace

template <typename T>
void conv2d_forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  forward_ref(s, x, w, b, y, false);
}
template <typename T>
void conv2d_forward_relu_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  forward_ref(s, x, w, b, y, true);
}
template <typename T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  backward_data_ref<T>(s, nullptr, dy, w, dx);
}
template <typename T>
void conv2d_backward_data_relu_ref(const Conv2dShape& s, const T* y, const T* dy, const T* w, T* dx) {
  backward_data_ref<T>(s, y, dy, w, dx);
}

template <typename T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int ko = 0; ko < s.K; ++ko) {
    const int g = ko / Kg;
    for (int c = 0; c < Cg; ++c)
      for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
          double acc = 0;
          for (int n = 0; n < s.N; ++n)
            for (int oh = 0; oh < OH; ++oh) {
              const int ih = oh * s.stride - s.pad + kh;
              if (ih < 0 || ih >= s.H) continue;
              for (int ow = 0; ow < OW; ++ow) {
                const int iw = ow * s.stride - s.pad + kw;
                if (iw < 0 || iw >= s.W) continue;
                acc += double(dy[n * ys + (int64_t(ko) * OH + oh) * OW + ow]) *
                       double(x[((int64_t(n) * s.C + g * Cg + c) * s.H + ih) * s.W + iw]);
              }
            }
          dw[((int64_t(ko) * Cg + c) * k + kh) * k + kw] = T(acc);
        }
    if (db) {
      double acc = 0;
      for (int n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < int64_t(OH) * OW; ++i) acc += double(dy[n * ys + int64_t(ko) * OH * OW + i]);
      db[ko] = T(acc);
    }
  }
}

#define RF_CONV_INSTANTIATE(T)                                                                              \
  template void conv2d_forward_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);                \
  template void conv2d_forward_relu_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);           \
  template void conv2d_backward_data_ref<T>(const Conv2dShape&, const T*, const T*, T*);                    \
  template void conv2d_backward_data_relu_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);     \
  template void conv2d_backward_weight_ref<T>(const Conv2dShape&, const T*, const T*, T*, T*);
RF_CONV_INSTANTIATE(float)
RF_CONV_INSTANTIATE(double)
#undef RF_CONV_INSTANTIATE

// ================================ direct kernel (OpenMP over groups x samples, SIMD over pixels) =========
//
// Idea: copy the group's input channels into zero-padded "phase planes" (for stride s, plane (a, b) holds the
// padded pixels (i*s + a, j*s + b)), all with the same row pitch Wq. Then every tap (c, kh, kw) of the kernel
// is one contiguous shifted window of one plane, and an output plane, computed over Wq-wide rows (the extra
// Wq - OW columns are computed and dropped), is sum_t w_t * window_t: unit-stride loads, no bounds checks,
// any stride and padding. Backward data runs the same sum over zero-padded dy planes with the taps' shifts
// negated (one output phase plane at a time), backward weights takes dot products of dy with the windows.
// Napkin math for depthwise 3x3 at 32x32: 9 MACs per output on 9 loads from L1, written once: memory bound.

namespace {

#if defined(__AVX512F__)
constexpr int kV = 16;
using vf = __m512;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float a) { return _mm512_set1_ps(a); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf a) { _mm512_storeu_ps(p, a); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vrelu(vf a) {  // not _mm512_max_ps: GCC 12 warns inside it (-Wmaybe-uninitialized)
  return _mm512_maskz_max_ps(__mmask16(0xffff), a, _mm512_setzero_ps());
}
inline float vhsum(vf a) {  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wmaybe-uninitialized)
  alignas(64) float t[16];
  _mm512_store_ps(t, a);
  float r = 0;
  for (int i = 0; i < 16; ++i) r += t[i];
  return r;
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kV = 8;
using vf = __m256;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float a) { return _mm256_set1_ps(a); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf a) { _mm256_storeu_ps(p, a); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vrelu(vf a) { return _mm256_max_ps(a, _mm256_setzero_ps()); }
inline float vhsum(vf a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
#else
constexpr int kV = 4;
struct vf {
  float e[4];
};
inline vf vzero() { return vf{{0, 0, 0, 0}}; }
inline vf vset1(float a) { return vf{{a, a, a, a}}; }
inline vf vload(const float* p) { return vf{{p[0], p[1], p[2], p[3]}}; }
inline void vstore(float* p, vf a) { std::memcpy(p, a.e, sizeof a.e); }
inline vf vfma(vf a, vf b, vf c) {
  for (int i = 0; i < 4; ++i) c.e[i] += a.e[i] * b.e[i];
  return c;
}
inline float vhsum(vf a) { return (a.e[0] + a.e[1]) + (a.e[2] + a.e[3]); }
inline vf vrelu(vf a) {
  for (int i = 0; i < 4; ++i) a.e[i] = std::max(a.e[i], 0.f);
  return a;
}
#endif
// Row moves of the phase-plane copies (short rows: a libc memcpy call or a scalar stride-2 loop per row
// cost more than the convolution of a 4x4 to 32x32 plane itself).
// dst[j] = src[j], j < n
inline void copy_row(float* dst, const float* src, int n) {
#if defined(__AVX512F__)
  int j = 0;
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(dst + j, _mm512_loadu_ps(src + j));
  for (; j + 4 <= n; j += 4) _mm_storeu_ps(dst + j, _mm_loadu_ps(src + j));
  for (; j < n; ++j) dst[j] = src[j];
#else
  std::memcpy(dst, src, sizeof(float) * n);
#endif
}
// even[m] = src[2m], odd[m] = src[2m + 1] for 2m (+1) < n
inline void deinterleave_row(float* even, float* odd, const float* src, int n) {
  int q = 0;
#if defined(__AVX512F__)
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (; q < n; q += 32) {
    const int rem = n - q;
    const __mmask16 m0 = rem >= 16 ? __mmask16(0xffff) : __mmask16((1u << rem) - 1);
    const __mmask16 m1 = rem >= 32 ? __mmask16(0xffff) : rem > 16 ? __mmask16((1u << (rem - 16)) - 1) : 0;
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, src + q), v1 = _mm512_maskz_loadu_ps(m1, src + q + 16);
    const int ne = std::min(16, (rem + 1) / 2), no = std::min(16, rem / 2);
    _mm512_mask_storeu_ps(even + q / 2, __mmask16((1u << ne) - 1), _mm512_permutex2var_ps(v0, ie, v1));
    _mm512_mask_storeu_ps(odd + q / 2, __mmask16((1u << no) - 1), _mm512_permutex2var_ps(v0, io, v1));
  }
#endif
  // The portable path (ARM, SSE-only builds) and the tail. Two plain stores, not `(q % 2 ? odd : even)[q / 2]`:
  // GCC 12's C++ front end turns that into `q % 2 ? odd[q / 2] : even[q / 2]` with one shared SAVE_EXPR for the
  // index, which -fsanitize=shift/integer-divide-by-zero/signed-integer-overflow (all in -fsanitize=undefined)
  // create; the SAVE_EXPR is evaluated in the first arm only, so the even pixels were written at an
  // uninitialised index (the sanitized build's wild write; GCC warns "'q.NNN' may be used uninitialized").
  for (; q + 1 < n; q += 2) {  // q is even here: 0, or a multiple of 32 after the AVX-512 loop
    even[q / 2] = src[q];
    odd[q / 2] = src[q + 1];
  }
  if (q < n) even[q / 2] = src[q];
}
// dst[2m] = even[m], dst[2m + 1] = odd[m] for 2m (+1) < n
inline void interleave_row(float* dst, const float* even, const float* odd, int n) {
  int q = 0;
#if defined(__AVX512F__)
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (; q < n; q += 32) {
    const int rem = n - q;
    const int ne = std::min(16, (rem + 1) / 2), no = std::min(16, rem / 2);
    const __m512 e = _mm512_maskz_loadu_ps(__mmask16((1u << ne) - 1), even + q / 2);
    const __m512 o = _mm512_maskz_loadu_ps(__mmask16((1u << no) - 1), odd + q / 2);
    const __mmask16 m0 = rem >= 16 ? __mmask16(0xffff) : __mmask16((1u << rem) - 1);
    const __mmask16 m1 = rem >= 32 ? __mmask16(0xffff) : rem > 16 ? __mmask16((1u << (rem - 16)) - 1) : 0;
    _mm512_mask_storeu_ps(dst + q, m0, _mm512_permutex2var_ps(e, lo, o));
    _mm512_mask_storeu_ps(dst + q + 16, m1, _mm512_permutex2var_ps(e, hi, o));
  }
#endif
  for (; q + 1 < n; q += 2) {  // plain loads, not `(q % 2 ? odd : even)[q / 2]`: see deinterleave_row
    dst[q] = even[q / 2];
    dst[q + 1] = odd[q / 2];
  }
  if (q < n) dst[q] = even[q / 2];
}

constexpr int kBlk = 2 * kV;  // pixels per inner iteration: two vector accumulators per output channel

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// Below ~100K MACs (tens of microseconds on one core) waking the other threads costs more than it saves,
// and on an oversubscribed machine a descheduled thread stalls the whole region.
inline bool parallel_worth(const Conv2dShape& s) { return s.macs() >= (int64_t(1) << 17); }

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
    plane = round_up(L + M0, kV);
    dyq = round_up(M0 + L, kV);
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
      vf a0 = vzero(), a1 = vzero(), b0 = vzero(), b1 = vzero();
      for (int t = 0; t < T; ++t) {
        const float* q = base + off[t] + f;
        const vf x0 = vload(q), x1 = vload(q + kV), w1 = vset1(wt[t]), w2 = vset1(wt2[t]);
        a0 = vfma(w1, x0, a0), a1 = vfma(w1, x1, a1);
        b0 = vfma(w2, x0, b0), b1 = vfma(w2, x1, b1);
      }
      vstore(out + f, a0), vstore(out + f + kV, a1);
      vstore(out2 + f, b0), vstore(out2 + f + kV, b1);
    }
  } else {
    for (int64_t f = 0; f < len; f += kBlk) {
      vf a0 = vzero(), a1 = vzero();
      for (int t = 0; t < T; ++t) {
        const float* q = base + off[t] + f;
        const vf w1 = vset1(wt[t]);
        a0 = vfma(w1, vload(q), a0), a1 = vfma(w1, vload(q + kV), a1);
      }
      vstore(out + f, a0), vstore(out + f + kV, a1);
    }
  }
}

// acc[t] += sum_f d[f] * base[off[t] + f] for NT taps at once: one load of dy feeds NT FMAs.
template <int NT>
void tap_dots(const float* d, const float* base, const int64_t* off, int64_t len, float* acc) {
  vf a[NT];
  for (int t = 0; t < NT; ++t) a[t] = vzero();
  for (int64_t f = 0; f < len; f += kV) {
    const vf dv = vload(d + f);
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
void direct_forward(const Conv2dShape& s, const float* x, GetW get_w, const float* b, float* y, bool relu) {
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

// dx = conv^T(dy): padded input pixel (i*s + a, j*s + b) collects the taps kh = a, kw = b (mod s) from dy
// pixel (i - kh/s, j - kw/s), i.e. a dy window shifted back by (kh/s)*Wq + kw/s; one phase plane of dx at
// a time, then interleaved back into NCHW.
void direct_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
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
            const int64_t len = round_up(m * g.pp, kV);
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
  std::memset(dw, 0, sizeof(float) * wn);
  if (db) std::memset(db, 0, sizeof(float) * s.K);
  for (int t = 0; t < nthr; ++t) {
    const float* p = part.data() + int64_t(t) * (wn + s.K);
    for (int64_t i = 0; i < wn; ++i) dw[i] += p[i];
    if (db)
      for (int i = 0; i < s.K; ++i) db[i] += p[wn + i];
  }
}

// ================================ 1x1 convs as one small GEMM per (sample, group) ========================
//
// A 1x1 stride-1 conv is y_g[n] (Kg x HW) = w_g (Kg x Cg) * x_g[n] (Cg x HW) in plain NCHW, no im2col; the
// input gradient is w_g^T * dy_g[n], the weight gradient sum_n dy_g[n] * x_g[n]^T. We loop over (sample,
// group) in our OpenMP region with our own register-blocked kernels (oneDNN's sgemm, sequential inside the
// region, for the weight gradient below 32x32). The NL modules' grouped 1x1 convs (Kg = 16..128, Cg =
// 48..384, HW = 16..1024) are small per group: oneDNN's gemm convolution reached 10-30 GMAC/s on 2 cores
// for the weight gradient at 32x32, and its blocked 1x1 kernels lose their speed to the reorders.

bool gemm_applies(const Conv2dShape& s) { return s.k == 1 && s.stride == 1 && s.pad == 0; }

void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
  RF_CHECK(st == dnnl_success, "oneDNN sgemm({}x{}x{}) failed with status {}", M, N, K, int(st));
}

// C (MR x NV vectors of pixels) = [relu](bias + A (MR x K) * B (K x pixels, row stride ldb)), A[m][k] at
// A[m*am + k*ak] (the weights, or their transpose for the input gradient): MR*NV accumulators; per k, NV
// loads of B and MR broadcasts of A feed MR*NV FMAs.
template <int MR, int NV>
void mm_block(int K, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C, int64_t ldc,
              const float* bias, bool relu) {
  vf acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = bias ? vset1(bias[m]) : vzero();
  for (int k = 0; k < K; ++k) {
    vf bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = vload(B + k * ldb + v * kV);
    for (int m = 0; m < MR; ++m) {
      const vf a = vset1(A[m * am + k * ak]);
      for (int v = 0; v < NV; ++v) acc[m][v] = vfma(a, bv[v], acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) vstore(C + m * ldc + v * kV, relu ? vrelu(acc[m][v]) : acc[m][v]);
}

template <int NV>
void mm_block_n(int mr, int K, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C,
                int64_t ldc, const float* bias, bool relu) {
  switch (mr) {
    case 1: return mm_block<1, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 2: return mm_block<2, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 3: return mm_block<3, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 4: return mm_block<4, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 5: return mm_block<5, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 6: return mm_block<6, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    case 7: return mm_block<7, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
    default: return mm_block<8, NV>(K, A, am, ak, B, ldb, C, ldc, bias, relu);
  }
}

// C (M x P, row stride ldc) = [relu](bias + A (M x K) * B (K x P)), bias per row or null, A as above.
// B's rows are HW floats apart (4 KB at 32x32): read in place, the K rows of a register block all fall into
// one L1 set, and K concurrent short streams defeat the prefetcher. So a chunk of pixels of all K rows is
// first copied row by row (long sequential runs) into a buffer whose row pitch is not a multiple of 1 KB,
// and the register blocks read it from L1/L2. Pixel blocks outer: a block of B is reused by all row blocks.
void mm_rows(int M, int K, int64_t P, const float* A, int64_t am, int64_t ak, const float* B, int64_t ldb, float* C,
             int64_t ldc, const float* bias, bool relu) {
  constexpr int MR = 8, PB = 2 * kV;
  const int64_t chunk = std::clamp<int64_t>((65536 / std::max(K, 1)) / PB * PB, PB, round_up(P, PB));
  const int64_t pitch = chunk + 16;
  thread_local std::vector<float> buf;
  buf.resize(size_t(K) * pitch);
  for (int64_t c0 = 0; c0 < P; c0 += chunk) {
    const int64_t cn = std::min(chunk, P - c0), full = cn / PB * PB;
    for (int k = 0; k < K; ++k) copy_row(buf.data() + k * pitch, B + k * ldb + c0, int(full));
    for (int64_t p = 0; p < full; p += PB)
      for (int m = 0; m < M; m += MR)
        mm_block_n<2>(std::min(MR, M - m), K, A + m * am, am, ak, buf.data() + p, pitch, C + m * ldc + c0 + p, ldc,
                      bias ? bias + m : nullptr, relu);
    int64_t p = c0 + full;  // the chunk's last pixels (fewer than 2 vectors), from B in place
    for (; p + kV <= c0 + cn; p += kV)
      for (int m = 0; m < M; m += MR)
        mm_block_n<1>(std::min(MR, M - m), K, A + m * am, am, ak, B + p, ldb, C + m * ldc + p, ldc,
                      bias ? bias + m : nullptr, relu);
    for (; p < c0 + cn; ++p)
      for (int m = 0; m < M; ++m) {
        float acc = bias ? bias[m] : 0.f;
        for (int k = 0; k < K; ++k) acc += A[m * am + k * ak] * B[k * ldb + p];
        C[m * ldc + p] = relu ? std::max(acc, 0.f) : acc;
      }
  }
}

void gemm1x1_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
#pragma omp parallel for if (parallel_worth(s)) schedule(dynamic)
  for (int64_t it = 0; it < items; ++it) {
    const int n = int(it / s.groups), g = int(it % s.groups);
    float* yg = y + n * ys + int64_t(g) * Kg * HW;
    const float* wg = w + int64_t(g) * Kg * Cg;
    const float* xg = x + n * xs + int64_t(g) * Cg * HW;
    if (HW <= 64) {  // measured: ours 1.1-1.4x sgemm at 8x8 and 4x4, 0.8-1.1x above
      mm_rows(Kg, Cg, HW, wg, Cg, 1, xg, HW, yg, HW, b ? b + g * Kg : nullptr, relu);
      continue;
    }
    sgemm('N', 'N', Kg, HW, Cg, wg, Cg, xg, HW, 0.f, yg, HW);
    if (b || relu)
      for (int o = 0; o < Kg; ++o) {
        const float bias = b ? b[g * Kg + o] : 0.f;
        float* row = yg + o * HW;
        if (relu) {
          for (int64_t i = 0; i < HW; ++i) row[i] = std::max(row[i] + bias, 0.f);
        } else {
          for (int64_t i = 0; i < HW; ++i) row[i] += bias;
        }
      }
  }
}

void gemm1x1_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
#pragma omp parallel if (parallel_worth(s))
  {
    std::vector<float> masked(relu_y ? Kg * HW : 0);
#pragma omp for schedule(dynamic)
    for (int64_t it = 0; it < items; ++it) {
      const int n = int(it / s.groups), g = int(it % s.groups);
      const int64_t yo = n * ys + int64_t(g) * Kg * HW;
      const float* d = dy + yo;
      if (relu_y) {
        for (int64_t i = 0; i < Kg * HW; ++i) masked[i] = relu_y[yo + i] > 0 ? d[i] : 0.f;
        d = masked.data();
      }
      // dx_g (Cg x HW) = w_g^T (Cg x Kg) * dy_g (Kg x HW); ours 1.4x sgemm at 4x4, 0.6-0.8x above
      float* dxg = dx + n * xs + int64_t(g) * Cg * HW;
      if (HW <= 16) mm_rows(Cg, Kg, HW, w + int64_t(g) * Kg * Cg, 1, Cg, d, HW, dxg, HW, nullptr, false);
      else sgemm('T', 'N', Cg, HW, Kg, w + int64_t(g) * Kg * Cg, Cg, d, HW, 0.f, dxg, HW);
    }
  }
}

// D[m][n] += sum_p A[m][p] * B[n][p] (m < MR, n < NR, p < P): a block of the weight gradient as dot
// products along the pixels, MR*NR accumulators in registers (4 x 6: 24 of AVX-512's 32), MR + NR loads
// per MR*NR FMAs. sgemm('N', 'T') took 5-19 GMAC/s per core on these shapes (K = HW long, M, N small).
template <int MR, int NR>
void dots_block(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t P, float* D, int64_t ldd) {
  vf acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = vzero();
  int64_t p = 0;
  for (; p + kV <= P; p += kV) {
    vf a[MR];
    for (int m = 0; m < MR; ++m) a[m] = vload(A + m * lda + p);
    for (int n = 0; n < NR; ++n) {
      const vf b = vload(B + n * ldb + p);
      for (int m = 0; m < MR; ++m) acc[m][n] = vfma(a[m], b, acc[m][n]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      float t = vhsum(acc[m][n]);
      for (int64_t q = p; q < P; ++q) t += A[m * lda + q] * B[n * ldb + q];
      D[m * ldd + n] += t;
    }
}

template <int MR>
void dots_row(int N, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t P, float* D, int64_t ldd) {
  int n = 0;
  for (; n + 6 <= N; n += 6) dots_block<MR, 6>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
  switch (N - n) {
    case 1: return dots_block<MR, 1>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
    case 2: return dots_block<MR, 2>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
    case 3: return dots_block<MR, 3>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
    case 4: return dots_block<MR, 4>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
    case 5: return dots_block<MR, 5>(A, lda, B + n * ldb, ldb, P, D + n, ldd);
    default: return;
  }
}

// D (M x N, row stride ldd) += A (M x P) * B (N x P)^T
void dots(int M, int N, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t P, float* D, int64_t ldd) {
  int m = 0;
  for (; m + 4 <= M; m += 4) dots_row<4>(N, A + m * lda, lda, B, ldb, P, D + m * ldd, ldd);
  switch (M - m) {
    case 1: return dots_row<1>(N, A + m * lda, lda, B, ldb, P, D + m * ldd, ldd);
    case 2: return dots_row<2>(N, A + m * lda, lda, B, ldb, P, D + m * ldd, ldd);
    case 3: return dots_row<3>(N, A + m * lda, lda, B, ldb, P, D + m * ldd, ldd);
    default: return;
  }
}

void gemm1x1_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  const int64_t HW = int64_t(s.H) * s.W, xs = s.C * HW, ys = s.y_batch_stride(), items = int64_t(s.N) * s.groups;
  const int64_t wn = s.weight_numel();
  const int nthr = omp_get_max_threads();
  // Per-thread partial sums (static schedule), added in thread order afterwards: the same bits on every run.
  std::vector<float> part(int64_t(nthr) * (wn + s.K), 0.f);
  // Rows of HW = 1024 floats lie 4 KB apart: the 10 rows a dots_block streams would share one L1 set (8
  // ways). Copies with a pitch of HW rounded up to the vector width, plus 16, spread them over the sets (and
  // zero-pad the tail). Below 32x32 the horizontal sums dominate and sgemm is as fast or faster.
  const bool own = HW >= 1024;
  const int64_t pitch = round_up(HW, kV) + 16;
#pragma omp parallel num_threads(nthr) if (parallel_worth(s))
  {
    float* my = part.data() + int64_t(omp_get_thread_num()) * (wn + s.K);
    std::vector<float> pa(own ? Kg * pitch : 0, 0.f), pb(own ? Cg * pitch : 0, 0.f);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {  // group-major: a thread keeps adding into the same slice
      const int g = int(it / s.N), n = int(it % s.N);
      const float* d = dy + n * ys + int64_t(g) * Kg * HW;
      const float* xg = x + n * xs + int64_t(g) * Cg * HW;
      if (own) {
        for (int o = 0; o < Kg; ++o) copy_row(pa.data() + o * pitch, d + o * HW, int(HW));
        for (int c = 0; c < Cg; ++c) copy_row(pb.data() + c * pitch, xg + c * HW, int(HW));
        dots(Kg, Cg, pa.data(), pitch, pb.data(), pitch, round_up(HW, kV), my + int64_t(g) * Kg * Cg, Cg);
      } else {
        sgemm('N', 'T', Kg, Cg, HW, d, HW, xg, HW, 1.f, my + int64_t(g) * Kg * Cg, Cg);
      }
      if (db)
        for (int o = 0; o < Kg; ++o) {
          float sum = 0;
          for (int64_t i = 0; i < HW; ++i) sum += d[o * HW + i];
          my[wn + g * Kg + o] += sum;
        }
    }
  }
  std::memset(dw, 0, sizeof(float) * wn);
  if (db) std::memset(db, 0, sizeof(float) * s.K);
  for (int t = 0; t < nthr; ++t) {
    const float* p = part.data() + int64_t(t) * (wn + s.K);
    for (int64_t i = 0; i < wn; ++i) dw[i] += p[i];
    if (db)
      for (int i = 0; i < s.K; ++i) db[i] += p[wn + i];
  }
}

// ================================ oneDNN (primitives cached per shape) ===================================

using dnnl::memory;
using dtag = memory::format_tag;

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One growing 64-byte aligned buffer per calling thread and role: reordered activations, scratchpads.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t want) {
    if (want > bytes) {
      std::free(p);
      bytes = round_up(int64_t(want), 4096);
      p = std::aligned_alloc(64, bytes);
      RF_CHECK(p, "conv2d: cannot allocate {} bytes of scratch", bytes);
    }
    return p;
  }
};
Scratch& scratch(int slot) {
  thread_local Scratch s[6];
  return s[slot];
}

struct DnnlKey {
  int N, C, H, W, K, k, stride, pad, groups, pass, algo, nthr;
  int64_t y_nstride;
  bool bias, relu;
  bool operator==(const DnnlKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
struct DnnlKeyHash {
  size_t operator()(const DnnlKey& k) const {
    const auto* b = reinterpret_cast<const unsigned char*>(&k);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof k; ++i) h = (h ^ b[i]) * 1099511628211ull;
    return h;
  }
};

// A tensor the primitive reads or writes: the user's layout, the primitive's, and the reorder between.
struct DnnlArg {
  int arg = 0;
  bool out = false;
  memory::desc user, prim;
  dnnl::primitive reorder;  // user -> prim for inputs, prim -> user for outputs; empty when the same
  size_t reorder_scratch = 0;
};
struct DnnlConv {
  dnnl::primitive prim;
  std::vector<DnnlArg> args;
  size_t scratch = 0;
  std::string impl;
};

dnnl::primitive_attr scratch_attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

DnnlArg make_arg(int arg, bool out, const memory::desc& user, const memory::desc& prim) {
  DnnlArg a{arg, out, user, prim, {}, 0};
  if (user != prim) {
    auto& e = dnnl_engine();
    auto pd = out ? dnnl::reorder::primitive_desc(e, prim, e, user, scratch_attr())
                  : dnnl::reorder::primitive_desc(e, user, e, prim, scratch_attr());
    a.reorder = dnnl::reorder(pd);
    a.reorder_scratch = pd.scratchpad_desc().get_size();
  }
  return a;
}

std::shared_ptr<const DnnlConv> build_dnnl(const Conv2dShape& s, ConvPass pass, bool blocked, bool bias,
                                           bool relu) {
  auto& eng = dnnl_engine();
  const memory::dim OH = s.OH(), OW = s.OW(), G = s.groups;
  const memory::dims xd{s.N, s.C, s.H, s.W}, yd{s.N, s.K, OH, OW}, bd{s.K};
  const memory::dims wd = G == 1 ? memory::dims{s.K, s.C, s.k, s.k}
                                 : memory::dims{G, s.K / G, s.C / G, s.k, s.k};
  const auto f32 = memory::data_type::f32;
  const memory::desc x_user(xd, f32, dtag::nchw), w_user(wd, f32, G == 1 ? dtag::oihw : dtag::goihw),
      b_user(bd, f32, dtag::x),
      y_user(yd, f32, memory::dims{s.y_batch_stride(), OH * OW, OW, 1});
  // The plain gemm path wants dense NCHW (a strided y makes oneDNN fall back to its reference loops): the
  // conv writes a dense temporary and a reorder copies it into the channel slice.
  const memory::desc x_any = blocked ? memory::desc(xd, f32, dtag::any) : x_user,
                     y_any = blocked ? memory::desc(yd, f32, dtag::any) : memory::desc(yd, f32, dtag::nchw),
                     w_any = blocked ? memory::desc(wd, f32, dtag::any) : w_user;
  const memory::dims st{s.stride, s.stride}, pd{s.pad, s.pad};
  const auto alg = dnnl::algorithm::convolution_direct;
  const auto prop = dnnl::prop_kind::forward_training;
  auto fwd_desc = bias ? dnnl::convolution_forward::desc(prop, alg, x_any, w_any, b_user, y_any, st, pd, pd)
                       : dnnl::convolution_forward::desc(prop, alg, x_any, w_any, y_any, st, pd, pd);
  dnnl::primitive_attr attr = scratch_attr();
  if (relu && pass == ConvPass::forward) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  dnnl::convolution_forward::primitive_desc fwd(fwd_desc, attr, eng);
  auto r = std::make_shared<DnnlConv>();
  if (pass == ConvPass::forward) {
    r->prim = dnnl::convolution_forward(fwd);
    r->args = {make_arg(DNNL_ARG_SRC, false, x_user, fwd.src_desc()),
               make_arg(DNNL_ARG_WEIGHTS, false, w_user, fwd.weights_desc()),
               make_arg(DNNL_ARG_DST, true, y_user, fwd.dst_desc())};
    if (bias) r->args.push_back(make_arg(DNNL_ARG_BIAS, false, b_user, fwd.bias_desc()));
    r->scratch = fwd.scratchpad_desc().get_size();
    r->impl = fwd.impl_info_str();
  } else if (pass == ConvPass::backward_data) {
    dnnl::convolution_backward_data::desc d(alg, x_any, w_any, y_any, st, pd, pd);
    dnnl::convolution_backward_data::primitive_desc bwd(d, scratch_attr(), eng, fwd);
    r->prim = dnnl::convolution_backward_data(bwd);
    r->args = {make_arg(DNNL_ARG_DIFF_DST, false, y_user, bwd.diff_dst_desc()),
               make_arg(DNNL_ARG_WEIGHTS, false, w_user, bwd.weights_desc()),
               make_arg(DNNL_ARG_DIFF_SRC, true, x_user, bwd.diff_src_desc())};
    r->scratch = bwd.scratchpad_desc().get_size();
    r->impl = bwd.impl_info_str();
  } else {
    auto d = bias ? dnnl::convolution_backward_weights::desc(alg, x_any, w_any, b_user, y_any, st, pd, pd)
                  : dnnl::convolution_backward_weights::desc(alg, x_any, w_any, y_any, st, pd, pd);
    dnnl::convolution_backward_weights::primitive_desc bwd(d, scratch_attr(), eng, fwd);
    r->prim = dnnl::convolution_backward_weights(bwd);
    r->args = {make_arg(DNNL_ARG_SRC, false, x_user, bwd.src_desc()),
               make_arg(DNNL_ARG_DIFF_DST, false, y_user, bwd.diff_dst_desc()),
               make_arg(DNNL_ARG_DIFF_WEIGHTS, true, w_user, bwd.diff_weights_desc())};
    if (bias) r->args.push_back(make_arg(DNNL_ARG_DIFF_BIAS, true, b_user, bwd.diff_bias_desc()));
    r->scratch = bwd.scratchpad_desc().get_size();
    r->impl = bwd.impl_info_str();
  }
  for (auto& a : r->args) r->scratch = std::max(r->scratch, a.reorder_scratch);
  return r;
}

// Creating a primitive costs milliseconds (kernel generation), so each is made once per shape. oneDNN wants
// the same thread count at creation and execution, hence the count in the key.
std::shared_ptr<const DnnlConv> get_dnnl(const Conv2dShape& s, ConvPass pass, bool blocked, bool bias,
                                         bool relu) {
  DnnlKey key;
  std::memset(&key, 0, sizeof key);  // padding bytes take part in the hash and the comparison
  key.N = s.N, key.C = s.C, key.H = s.H, key.W = s.W, key.K = s.K, key.k = s.k, key.stride = s.stride;
  key.pad = s.pad, key.groups = s.groups, key.pass = int(pass), key.algo = blocked, key.nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
  key.y_nstride = s.y_batch_stride(), key.bias = bias, key.relu = relu;
  static std::mutex mu;
  static std::unordered_map<DnnlKey, std::shared_ptr<const DnnlConv>, DnnlKeyHash> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::shared_ptr<const DnnlConv> made;
  try {
    made = build_dnnl(s, pass, blocked, bias, relu);
  } catch (const dnnl::error& e) {
    RF_FAIL("{}: oneDNN could not create the {} primitive: {} (status {})", s.str(),
            blocked ? "blocked" : "plain", e.what(), int(e.status));
  }
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(key, made).first->second;  // a racing thread's entry wins: same primitive
}

// ptrs[i] is the user buffer of conv.args[i].
void run_dnnl(const DnnlConv& conv, const std::vector<void*>& ptrs) {
  auto& eng = dnnl_engine();
  thread_local dnnl::stream strm(dnnl_engine());
  memory pad;
  if (conv.scratch)
    pad = memory(memory::desc({memory::dim(conv.scratch)}, memory::data_type::u8, dtag::x), eng,
                 scratch(0).get(conv.scratch));
  auto with_pad = [&](std::unordered_map<int, memory> m) {
    if (conv.scratch) m[DNNL_ARG_SCRATCHPAD] = pad;
    return m;
  };
  std::unordered_map<int, memory> margs = with_pad({});
  std::vector<std::pair<memory, memory>> outs;  // (prim, user) pairs to reorder after the conv
  for (size_t i = 0; i < conv.args.size(); ++i) {
    const DnnlArg& a = conv.args[i];
    memory user(a.user, eng, ptrs[i]);
    if (!a.reorder) {
      margs[a.arg] = user;
      continue;
    }
    memory prim(a.prim, eng, scratch(1 + int(i)).get(a.prim.get_size()));
    if (a.out) {
      outs.emplace_back(prim, user);
    } else {
      a.reorder.execute(strm, with_pad({{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, prim}}));
    }
    margs[a.arg] = prim;
  }
  conv.prim.execute(strm, margs);
  size_t j = 0;
  for (size_t i = 0; i < conv.args.size(); ++i)
    if (conv.args[i].reorder && conv.args[i].out) {
      conv.args[i].reorder.execute(strm, with_pad({{DNNL_ARG_FROM, outs[j].first}, {DNNL_ARG_TO, outs[j].second}}));
      ++j;
    }
  strm.wait();
}

}  // namespace

// ================================ dispatch ===============================================================

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::dnnl_plain: return "dnnl_plain";
    case ConvAlgo::dnnl_blocked: return "dnnl_blocked";
    case ConvAlgo::gemm_1x1: return "gemm_1x1";
  }
  return "?";
}

ConvAlgo conv2d_cpu_algo(const Conv2dShape& s, ConvPass pass) {
  s.validate();
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, HW = s.H * s.W;
  const bool blockable = Cg % 16 == 0 && Kg % 16 == 0;  // oneDNN's blocked kernels want whole 16-blocks
  if (s.groups > 1 && Cg <= 4) {
    // Depthwise at <= 16x16: oneDNN's jit_dw on nChw16c beats the direct kernel even paying the reorders
    // (1.5-5x at 4x4 to 16x16, all passes but one: 0.9x for the 16x16 stride-1 weight gradient).
    if (Cg == 1 && Kg == 1 && s.C % 16 == 0 && HW <= 256) return ConvAlgo::dnnl_blocked;
    return ConvAlgo::direct;
  }
  if (s.k == 1 && s.stride == 1 && s.pad == 0) {
    // Ours at 32x32 (weight gradient 2.6-3.5x, the rest 1.0-1.15x) and at 4x4 (1.05-1.4x); oneDNN's gemm
    // convolution is 2-7% faster in between.
    // Only where measured: planes that are whole 16-lane chunks (4x4, 32x32, ...). At 3x3, 6x6, 12x12 or 24x24
    // our kernel's ragged tails made the whole 24x24 network 2.4x slower than oneDNN's gemm.
    return (HW >= 1024 || HW == 16) && HW % 16 == 0 ? ConvAlgo::gemm_1x1 : ConvAlgo::dnnl_plain;
  }
  if (s.k == 1) return HW <= 64 && blockable ? ConvAlgo::dnnl_blocked : ConvAlgo::dnnl_plain;  // shortcuts
  if (s.groups == 1) {
    // The 3-channel stem: oneDNN's blocked kernels take a plain src there, and its gemm is faster (1.3x
    // forward, 3x input gradient), except for the weight gradient (blocked 2.7x).
    if (pass != ConvPass::backward_weight && s.C < 8) return ConvAlgo::dnnl_plain;
    return ConvAlgo::dnnl_blocked;
  }
  return blockable ? ConvAlgo::dnnl_blocked : ConvAlgo::dnnl_plain;
}

std::string conv2d_cpu_impl_name(const Conv2dShape& s, ConvPass pass) {
  s.validate();
  const ConvAlgo a = conv2d_cpu_algo(s, pass);
  if (a == ConvAlgo::direct || (a == ConvAlgo::gemm_1x1 && gemm_applies(s))) return conv_algo_name(a);
  return std::string(conv_algo_name(a)) + ":" +
         get_dnnl(s, pass, a == ConvAlgo::dnnl_blocked, false, false)->impl;
}

void conv2d_forward_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* w, const float* b,
                             float* y, bool relu) {
  s.validate();
  if (a == ConvAlgo::direct) {
    const int64_t wg = s.weight_numel() / s.groups;
    direct_forward(s, x, [&](int g, float*) { return w + g * wg; }, b, y, relu);
    return;
  }
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_forward(s, x, w, b, y, relu);
  auto conv = get_dnnl(s, ConvPass::forward, a == ConvAlgo::dnnl_blocked, b != nullptr, relu);
  std::vector<void*> ptrs{const_cast<float*>(x), const_cast<float*>(w), y};
  if (b) ptrs.push_back(const_cast<float*>(b));
  run_dnnl(*conv, ptrs);
}

void conv2d_backward_data_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                   const float* relu_y) {
  s.validate();
  if (a == ConvAlgo::direct) return direct_backward_data(s, dy, w, dx, relu_y);
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_backward_data(s, dy, w, dx, relu_y);
  Conv2dShape sd = s;
  if (relu_y) {  // mask dy into a dense temporary, then the plain backward
    sd.y_nstride = 0;
    const int64_t m = int64_t(s.K) * s.OH() * s.OW(), ys = s.y_batch_stride();
    float* t = static_cast<float*>(scratch(5).get(sizeof(float) * m * s.N));
#pragma omp parallel for if (parallel_worth(s)) schedule(static)
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < m; ++i) t[n * m + i] = relu_y[n * ys + i] > 0 ? dy[n * ys + i] : 0.f;
    dy = t;
  }
  auto conv = get_dnnl(sd, ConvPass::backward_data, a == ConvAlgo::dnnl_blocked, false, false);
  run_dnnl(*conv, {const_cast<float*>(dy), const_cast<float*>(w), dx});
}

void conv2d_backward_weight_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* dy,
                                     float* dw, float* db) {
  s.validate();
  if (a == ConvAlgo::direct) return direct_backward_weight(s, x, dy, dw, db);
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_backward_weight(s, x, dy, dw, db);
  auto conv = get_dnnl(s, ConvPass::backward_weight, a == ConvAlgo::dnnl_blocked, db != nullptr, false);
  std::vector<void*> ptrs{const_cast<float*>(x), const_cast<float*>(dy), dw};
  if (db) ptrs.push_back(db);
  run_dnnl(*conv, ptrs);
}

void conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  conv2d_forward_cpu_with(conv2d_cpu_algo(s, ConvPass::forward), s, x, w, b, y, false);
}
void conv2d_forward_relu_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  conv2d_forward_cpu_with(conv2d_cpu_algo(s, ConvPass::forward), s, x, w, b, y, true);
}
void conv2d_backward_data_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv2d_backward_data_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_data), s, dy, w, dx, nullptr);
}
void conv2d_backward_data_relu_cpu(const Conv2dShape& s, const float* y, const float* dy, const float* w,
                                   float* dx) {
  conv2d_backward_data_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_data), s, dy, w, dx, y);
}
void conv2d_backward_weight_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  conv2d_backward_weight_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_weight), s, x, dy, dw, db);
}

void conv2d_forward_direct_cpu_fn(const Conv2dShape& s, const float* x,
                                  const std::function<void(int g, float* w_g)>& weights_of_group,
                                  const float* b, float* y, bool relu) {
  s.validate();
  direct_forward(
      s, x,
      [&](int g, float* buf) {
        weights_of_group(g, buf);
        return static_cast<const float*>(buf);
      },
      b, y, relu);
}

}  // namespace rf

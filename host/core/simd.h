// The host kernels' SIMD vocabulary: one lane type, Lanes (kLanes floats: one native vector register, 16 on
// AVX-512, 8 on AVX2 + FMA, 4 on NEON and elsewhere, as a GCC/Clang vector type, so `+`, `*`, `>` and `?:` work lane by
// lane), and the few operations the conv and pool kernels build on. vfma is one fused multiply-add per lane
// where the ISA has it (the intrinsic: explicit, not a contraction, which -ffp-contract=off forbids) and
// c + a*b rounded twice elsewhere, as the conv kernels always computed it. Used by host/ops/conv_*.cpp and
// host/ops/pool_*.cpp; covered by their tests (tests/ops/test_conv.cpp, tests/ops/test_pool.cpp), which
// compare every fast path with the reference loops.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace rf::simd {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t LanesI __attribute__((vector_size(kLanes * sizeof(int32_t))));

inline int round_up_lanes(int n) { return (n + kLanes - 1) / kLanes * kLanes; }

#if defined(__AVX512F__)
inline Lanes vzero() { return _mm512_setzero_ps(); }
inline Lanes vset1(float a) { return _mm512_set1_ps(a); }
inline Lanes vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Lanes a) { _mm512_storeu_ps(p, a); }
inline Lanes vfma(Lanes a, Lanes b, Lanes c) { return _mm512_fmadd_ps(a, b, c); }
inline Lanes vrelu(Lanes a) {  // not _mm512_max_ps: GCC 12 warns inside it (-Wmaybe-uninitialized)
  return _mm512_maskz_max_ps(__mmask16(0xffff), a, _mm512_setzero_ps());
}
inline float vhsum(Lanes a) {  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wmaybe-uninitialized)
  alignas(64) float t[16];
  _mm512_store_ps(t, a);
  float r = 0;
  for (int i = 0; i < 16; ++i) r += t[i];
  return r;
}
// The even lanes of the 2*kLanes floats lo:hi.
inline Lanes even_lanes(Lanes lo, Lanes hi) {
  return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
#elif defined(__AVX2__) && defined(__FMA__)
inline Lanes vzero() { return _mm256_setzero_ps(); }
inline Lanes vset1(float a) { return _mm256_set1_ps(a); }
inline Lanes vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Lanes a) { _mm256_storeu_ps(p, a); }
inline Lanes vfma(Lanes a, Lanes b, Lanes c) { return _mm256_fmadd_ps(a, b, c); }
inline Lanes vrelu(Lanes a) { return _mm256_max_ps(a, _mm256_setzero_ps()); }
inline float vhsum(Lanes a) {
  alignas(32) float t[8];
  _mm256_store_ps(t, a);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}
inline Lanes even_lanes(Lanes lo, Lanes hi) { return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14); }
#elif defined(__ARM_NEON)
// ARMv8-A (AArch64: Raspberry Pi 4/5, Jetson; cmake/aarch64-linux-gnu.cmake): 4 lanes, one 128-bit NEON register.
// The GCC vector type is a NEON register already; what the portable path below lacks is the fused multiply-add,
// which every ARMv8-A core has (FMLA): one rounding, like the AVX paths.
inline Lanes vzero() { return Lanes{}; }
inline Lanes vset1(float a) { return Lanes(vdupq_n_f32(a)); }
inline Lanes vload(const float* p) { return Lanes(vld1q_f32(p)); }
inline void vstore(float* p, Lanes a) { vst1q_f32(p, float32x4_t(a)); }
inline Lanes vfma(Lanes a, Lanes b, Lanes c) { return Lanes(vfmaq_f32(float32x4_t(c), float32x4_t(a), float32x4_t(b))); }
inline Lanes vrelu(Lanes a) { return Lanes(vmaxq_f32(float32x4_t(a), vdupq_n_f32(0.f))); }
inline float vhsum(Lanes a) { return (a[0] + a[1]) + (a[2] + a[3]); }
inline Lanes even_lanes(Lanes lo, Lanes hi) { return __builtin_shufflevector(lo, hi, 0, 2, 4, 6); }
#else
inline Lanes vzero() { return Lanes{}; }
inline Lanes vset1(float a) { return Lanes{a, a, a, a}; }
inline Lanes vload(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, Lanes a) { std::memcpy(p, &a, sizeof a); }
inline Lanes vfma(Lanes a, Lanes b, Lanes c) { return c + a * b; }  // two roundings: no FMA here
inline Lanes vrelu(Lanes a) {
  for (int i = 0; i < kLanes; ++i) a[i] = std::max(a[i], 0.f);
  return a;
}
inline float vhsum(Lanes a) { return (a[0] + a[1]) + (a[2] + a[3]); }
inline Lanes even_lanes(Lanes lo, Lanes hi) { return __builtin_shufflevector(lo, hi, 0, 2, 4, 6); }
#endif

// v = p[0, kLanes) and p[0, kLanes) = v, unaligned, for the float and the int lanes alike.
template <class V, class T>
inline void lanes_load(V& v, const T* p) {
  static_assert(sizeof(V) == kLanes * sizeof(T), "one lane per element");
  std::memcpy(&v, p, sizeof v);
}
template <class V, class T>
inline void lanes_store(T* p, const V& v) {
  static_assert(sizeof(V) == kLanes * sizeof(T), "one lane per element");
  std::memcpy(p, &v, sizeof v);
}

// {0, 1, ..., kLanes - 1}
inline LanesI lane_iota() {
  LanesI v;
  for (int j = 0; j < kLanes; ++j) v[j] = j;
  return v;
}

// dst[j] = src[j], j < n, in whole vectors inline: the row copies of the kernels are 4-64 floats, where a
// libc memcpy call (size unknown at compile time) costs more than the copy itself (it was ~10% of an NL
// forward) and a scalar loop more than the convolution of a 4x4 plane.
// GCC 12 at -O2/-O3 still turned the loops into memmove calls (~9% of an NL training step, in the pools' and the
// 1x1 kernels' row copies): each loaded value passes through an empty asm statement, which the pattern matcher
// cannot see through (it costs no instruction), and on AVX-512 the tail is one masked load and store.
template <class T>
inline void opaque(T& v) {
#if defined(__GNUC__) && defined(__AVX512F__)
  asm("" : "+v"(v));
#elif defined(__GNUC__) && (defined(__AVX__) || defined(__SSE2__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  (void)v;
#endif
}
inline void copy_row(float* __restrict dst, const float* __restrict src, int n) {
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Lanes v = vload(src + j);
    opaque(v);
    vstore(dst + j, v);
  }
#if defined(__AVX512F__)
  if (j < n) {  // masked-off lanes neither load nor fault
    const __mmask16 m = __mmask16((1u << (n - j)) - 1);
    _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
  }
#else
  for (; j < n; ++j) {
    float v = src[j];
    opaque(v);
    dst[j] = v;
  }
#endif
}

// Stride-2 row (de)interleaving for the conv kernels' phase planes (conv_direct.cpp, conv_direct3x3.cpp).
#if defined(__AVX512F__)
// The masks of a 32-float chunk of a row with rem >= 1 floats left: its two 16-float halves (m0, m1) and the
// 16-float chunks of its even and odd pixels (me, mo).
struct PairMasks {
  __mmask16 m0, m1, me, mo;
  explicit PairMasks(int rem)
      : m0(rem >= 16 ? __mmask16(0xffff) : __mmask16((1u << rem) - 1)),
        m1(rem >= 32 ? __mmask16(0xffff) : rem > 16 ? __mmask16((1u << (rem - 16)) - 1) : 0),
        me(__mmask16((1u << std::min(16, (rem + 1) / 2)) - 1)),
        mo(__mmask16((1u << std::min(16, rem / 2)) - 1)) {}
};
#endif

// even[m] = src[2m], odd[m] = src[2m + 1] for 2m (+1) < n
inline void deinterleave_row(float* even, float* odd, const float* src, int n) {
  int q = 0;
#if defined(__AVX512F__)
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (; q < n; q += 32) {
    const PairMasks mk(n - q);
    const __m512 v0 = _mm512_maskz_loadu_ps(mk.m0, src + q), v1 = _mm512_maskz_loadu_ps(mk.m1, src + q + 16);
    _mm512_mask_storeu_ps(even + q / 2, mk.me, _mm512_permutex2var_ps(v0, ie, v1));
    _mm512_mask_storeu_ps(odd + q / 2, mk.mo, _mm512_permutex2var_ps(v0, io, v1));
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
    const PairMasks mk(n - q);
    const __m512 e = _mm512_maskz_loadu_ps(mk.me, even + q / 2), o = _mm512_maskz_loadu_ps(mk.mo, odd + q / 2);
    _mm512_mask_storeu_ps(dst + q, mk.m0, _mm512_permutex2var_ps(e, lo, o));
    _mm512_mask_storeu_ps(dst + q + 16, mk.m1, _mm512_permutex2var_ps(e, hi, o));
  }
#endif
  for (; q + 1 < n; q += 2) {  // plain loads, not `(q % 2 ? odd : even)[q / 2]`: see deinterleave_row
    dst[q] = even[q / 2];
    dst[q + 1] = odd[q / 2];
  }
  if (q < n) dst[q] = even[q / 2];
}

// r[0..kLanes) as a kLanes x kLanes matrix, transposed in registers. One stage of the transpose: rows a and b (d apart) swap their off-diagonal d-blocks;
// the stages d = 1, 2, 4, ... < kLanes transpose the square (4 x 16 shuffles at 16 lanes, against 256
// scalar moves, which were most of the time of a small-plane pool block). Used by host/ops/pool_small.cpp and
// batchnorm.cpp's nChw16c epilogue.
template <int d, size_t... I>
inline void butterfly(Lanes& a, Lanes& b, std::index_sequence<I...>) {
  const Lanes na = __builtin_shufflevector(a, b, ((I & d) == 0 ? int(I) : kLanes + int(I) - d)...);
  const Lanes nb = __builtin_shufflevector(a, b, ((I & d) == 0 ? int(I) + d : kLanes + int(I))...);
  a = na, b = nb;
}
template <int d = 1>
inline void transpose(Lanes* r) {
  if constexpr (d < kLanes) {
    for (int i = 0; i < kLanes; ++i)
      if (!(i & d)) butterfly<d>(r[i], r[i + d], std::make_index_sequence<kLanes>{});
    transpose<2 * d>(r);
  }
}

}  // namespace rf::simd

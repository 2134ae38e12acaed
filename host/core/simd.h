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
inline void copy_row(float* __restrict dst, const float* __restrict src, int n) {
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) vstore(dst + j, vload(src + j));
#if defined(__AVX512F__)
  for (; j + 4 <= n; j += 4) _mm_storeu_ps(dst + j, _mm_loadu_ps(src + j));
#endif
  for (; j < n; ++j) dst[j] = src[j];
}

}  // namespace rf::simd

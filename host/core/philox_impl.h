// Inline definitions for host/core/philox.h (included at its end): Philox4x32-10 and the bit-reproducible
// Box-Muller transform. One text for g++ and nvcc, so the CPU and the GPU compute the same bits.
// The float method (why only +, -, *, /, sqrt, and how log and sin/cos are built) is documented in the
// header comment of host/core/philox.cpp. Checked by tests/core/test_philox.cpp (known-answer vectors,
// accuracy of log/sincos against double, pinned hash of the normals) and tests/gpu/test_philox_gpu.cpp
// (GPU bits == CPU bits, our stream == cuRAND's device API).
#pragma once
#include "host/core/philox.h"

#if !defined(__CUDA_ARCH__)
#include <cfloat>
#include <cmath>
#include <cstring>
// Each float operation must round to float (SSE/AVX/NEON do; x87's extended precision would not).
static_assert(FLT_EVAL_METHOD == 0, "seeded weights need float arithmetic evaluated in float (FLT_EVAL_METHOD 0)");
#endif

namespace rf {
namespace philox_detail {

// Philox4x32 constants (Salmon et al. 2011; the same numbers cuRAND uses).
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3)-1)

RF_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
#if defined(__CUDA_ARCH__)
  hi = __umulhi(a, b);
  lo = a * b;
#else
  const uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
#endif
}

// One Philox S-box/P-box round: two 32x32->64 products, the high halves xor'ed into the other lanes.
RF_HD Philox4 philox_round(Philox4 c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mulhilo32(kMul0, c.x, hi0, lo0);
  mulhilo32(kMul1, c.z, hi1, lo1);
  return Philox4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

// ---- correctly rounded float primitives ------------------------------------------------------
// On the device the _rn intrinsics are IEEE round-to-nearest whatever -fmad / -prec-div / -prec-sqrt
// say, and never fuse into an fma. On the host plain operators are IEEE as long as nothing contracts
// a*b+c (CMake sets -ffp-contract=off; the pinned hash in test_philox catches a build that does not).
RF_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
RF_HD float fsub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
RF_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
RF_HD float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
RF_HD float fsqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
RF_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
RF_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// ---- natural log -----------------------------------------------------------------------------
// For finite normal x > 0 (the transform feeds x in [2^-24, 1]). x = 2^e * m with m in [sqrt(1/2), sqrt(2)]
// (bit split, exact); f = m - 1 is exact (Sterbenz). With s = f / (2 + f), ln(m) = 2 atanh(s)
// = 2s + s R(s^2), R(z) = 2z/3 + 2z^2/5 + ... (Taylor, |s| <= 0.1716 so z <= 0.0295 and five terms leave
// a truncation error ~z^6/13 ~ 5e-11 relative). Since 2s = f - s f, ln(m) = f - (f^2/2 - s (f^2/2 + R)):
// the leading f is exact and every rounded quantity is a correction smaller than f/5. ln 2 is split so
// that e * ln2_hi is exact (ln2_hi has 12 significant bits, |e| < 2^8).
constexpr float kLn2Hi = 0x1.62ep-1f;          // 0.693115234375
constexpr float kLn2Lo = 0x1.0bfbe8p-15f;      // ln 2 - kLn2Hi
constexpr float kLogC1 = 0x1.555556p-1f;       // 2/3
constexpr float kLogC2 = 0x1.99999ap-2f;       // 2/5
constexpr float kLogC3 = 0x1.24924ap-2f;       // 2/7
constexpr float kLogC4 = 0x1.c71c72p-3f;       // 2/9
constexpr float kLogC5 = 0x1.745d18p-3f;       // 2/11
constexpr uint32_t kSqrt2Bits = 0x3FB504F3u;   // float(sqrt 2)

RF_HD float log_rn(float x) {
  const uint32_t bits = float_to_bits(x);
  int e = int(bits >> 23) - 127;
  uint32_t mbits = (bits & 0x007FFFFFu) | 0x3F800000u;  // m in [1, 2)
  if (mbits > kSqrt2Bits) {                              // m > sqrt 2: use m/2 in (sqrt(1/2), 1), e + 1
    mbits -= 0x00800000u;
    e += 1;
  }
  const float m = bits_to_float(mbits);
  const float f = fsub(m, 1.0f);
  const float s = fdiv(f, fadd(2.0f, f));
  const float z = fmul(s, s);
  const float R =
      fmul(z, fadd(kLogC1, fmul(z, fadd(kLogC2, fmul(z, fadd(kLogC3, fmul(z, fadd(kLogC4, fmul(z, kLogC5)))))))));
  const float hfsq = fmul(fmul(0.5f, f), f);
  const float ek = float(e);  // exact
  // e ln2_hi - ((hfsq - (s (hfsq + R) + e ln2_lo)) - f)
  const float corr = fadd(fmul(s, fadd(hfsq, R)), fmul(ek, kLn2Lo));
  return fsub(fmul(ek, kLn2Hi), fsub(fsub(hfsq, corr), f));
}

// ---- sin and cos of 2 pi k / 2^24 ----------------------------------------------------------------
// k in [0, 2^24). The octant (top 3 bits of k) and the position inside it are exact integer operations;
// odd octants are mirrored (2^21 - j, exact), so the polynomial only sees a = t pi/4 with t in [0, 1]
// a multiple of 2^-21. sin a and cos a are Taylor polynomials to a^9 and a^10 (truncation < 3e-9 relative
// on [0, pi/4]); cos uses 1 - a^2/2 with its rounding error recovered (w = 1 - hz; (1 - w) - hz is exact).
// The octant then only swaps and negates results, so relative accuracy holds at every angle, including
// near the zeros of sin and cos.
constexpr float kPiOver4 = 0x1.921fb6p-1f;
constexpr float kSin3 = -0x1.555556p-3f;  // -1/3!
constexpr float kSin5 = 0x1.111112p-7f;   // 1/5!
constexpr float kSin7 = -0x1.a01a02p-13f; // -1/7!
constexpr float kSin9 = 0x1.71de3ap-19f;  // 1/9!
constexpr float kCos4 = 0x1.555556p-5f;   // 1/4!
constexpr float kCos6 = -0x1.6c16c2p-10f; // -1/6!
constexpr float kCos8 = 0x1.a01a02p-16f;  // 1/8!
constexpr float kCos10 = -0x1.27e4fcp-22f;// -1/10!

RF_HD void sincos_2pi_k24(uint32_t k, float& sin_out, float& cos_out) {
  const uint32_t octant = (k >> 21) & 7u;
  uint32_t j = k & 0x001FFFFFu;
  if (octant & 1u) j = 0x00200000u - j;          // mirror: angle measured back from the quadrant's end
  const float t = fmul(float(j), 0x1p-21f);      // exact, in [0, 1]
  const float a = fmul(t, kPiOver4);             // [0, pi/4]
  const float z = fmul(a, a);
  const float sa = fadd(a, fmul(fmul(a, z), fadd(kSin3, fmul(z, fadd(kSin5, fmul(z, fadd(kSin7, fmul(z, kSin9))))))));
  const float hz = fmul(0.5f, z);
  const float w = fsub(1.0f, hz);
  const float tail = fmul(fmul(z, z), fadd(kCos4, fmul(z, fadd(kCos6, fmul(z, fadd(kCos8, fmul(z, kCos10)))))));
  const float ca = fadd(w, fadd(fsub(fsub(1.0f, w), hz), tail));
  // phi = angle within the quadrant: a (even octant) or pi/2 - a (odd octant).
  const float sp = (octant & 1u) ? ca : sa;
  const float cp = (octant & 1u) ? sa : ca;
  switch (octant >> 1) {  // quadrant q: angle = q pi/2 + phi
    case 0: sin_out = sp; cos_out = cp; break;
    case 1: sin_out = cp; cos_out = -sp; break;
    case 2: sin_out = -sp; cos_out = -cp; break;
    default: sin_out = -cp; cos_out = sp; break;
  }
}

// Box-Muller on two Philox words: xr gives the radius (u1 in (0, 1], so log never sees 0), xa the angle.
// z0 = r sin(2 pi u2), z1 = r cos(2 pi u2), r = sqrt(-2 ln u1), u1 = (xr>>8 + 1) 2^-24, u2 = (xa>>8) 2^-24.
RF_HD void box_muller(uint32_t xr, uint32_t xa, float& z0, float& z1) {
  const float u1 = fmul(float((xr >> 8) + 1u), 0x1p-24f);  // exact: an integer <= 2^24 times 2^-24
  const float L = log_rn(u1);                              // <= 0
  const float r = fsqrt(fsub(0.0f, fadd(L, L)));           // 0 - 2L: +0 (not -0) when u1 = 1
  float s, c;
  sincos_2pi_k24(xa >> 8, s, c);
  z0 = fmul(r, s);
  z1 = fmul(r, c);
}

}  // namespace philox_detail

RF_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  // Ten rounds; the key is bumped by the Weyl constants between consecutive rounds (9 bumps).
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += philox_detail::kWeyl0;
      k1 += philox_detail::kWeyl1;
    }
    ctr = philox_detail::philox_round(ctr, k0, k1);
  }
  return ctr;
}

RF_HD void seeded_normal4(uint64_t seed, uint64_t block, float out[4]) {
  const Philox4 x = philox4x32_10(Philox4{uint32_t(block), uint32_t(block >> 32), 0u, 0u}, uint32_t(seed),
                                  uint32_t(seed >> 32));
  philox_detail::box_muller(x.x, x.y, out[0], out[1]);
  philox_detail::box_muller(x.z, x.w, out[2], out[3]);
}

RF_HD float seeded_normal(uint64_t seed, uint64_t i) {
  float z[4];
  seeded_normal4(seed, i >> 2, z);
  return z[i & 3u];
}

}  // namespace rf

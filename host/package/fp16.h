// IEEE 754 binary16 <-> binary32 conversions for fp16 package storage, in plain integer code (no F16C, so the
// bits are the same on every host). float -> half rounds to nearest, ties to even, with overflow to infinity,
// gradual underflow to subnormals and NaN kept NaN. Checked by tests/package/test_package.cpp (every half
// value round-trips exactly; rounding at ties and at the subnormal/overflow edges).
#pragma once
#include <cstdint>
#include <cstring>

namespace rf {

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);  // rebias 15 -> 127
  } else if (man == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half: man * 2^-24, exact in float (an integer below 2^10 times a power of two).
    const float v = float(man) * 0x1p-24f;
    return (h & 0x8000u) ? -v : v;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t man = x & 0x7FFFFFu;
  if (exp == 0xFF) return uint16_t(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0u));  // inf / NaN
  const int e = int(exp) - 127 + 15;  // half exponent field if normal
  if (e >= 0x1F) return uint16_t(sign | 0x7C00u);  // overflow -> inf
  if (e <= 0) {
    // Subnormal half (or zero): value = m * 2^(e-1-10-13) with the implicit bit made explicit.
    if (e < -10) return sign;  // below half the smallest subnormal: rounds to zero
    man |= 0x800000u;
    const int shift = 14 - e;  // 14..24
    uint32_t q = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;  // may carry into the smallest normal: correct
    return uint16_t(sign | q);
  }
  uint32_t q = (uint32_t(e) << 10) | (man >> 13);
  const uint32_t rem = man & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;  // carry may reach inf (0x7C00): correct
  return uint16_t(sign | q);
}

}  // namespace rf

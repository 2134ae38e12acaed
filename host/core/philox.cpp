// Philox4x32-10 streams in cuRAND's layout, and the seeded-weight fill (OpenMP).
//
// Generator. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC 2011) maps a 128-bit counter (x, y, z, w) and a
// 64-bit key (k0, k1) to 128 random bits: 10 rounds of two 32x32->64 multiplies (0xD2511F53 on x,
// 0xCD9E8D57 on z), the high halves xor'ed with the other lanes and the key, the key bumped by
// (0x9E3779B9, 0xBB67AE85) between rounds. cuRAND's curand_init(seed, subsequence, offset) sets
// key = (lo32 seed, hi32 seed), counter = (lo32(offset/4), hi32(offset/4), lo32 subsequence,
// hi32 subsequence), and a word index offset % 4; each curand() returns word [index] of the current block
// and moves to the next counter (a 128-bit increment) after word 3. philox_curand_stream reproduces that.
//
// Seeded normals (the contract of docs/MODELS.md "Non-learnable weights"). Weight i of a layer with seed s:
//   block b = i / 4, (x0, x1, x2, x3) = Philox4x32-10(counter = (lo32 b, hi32 b, 0, 0), key = (lo32 s, hi32 s))
//   -- the words cuRAND returns after curand_init(s, 0, 4b) --
//   (z0, z1) = BoxMuller(x0, x1), (z2, z3) = BoxMuller(x2, x3), weight i = z[i % 4].
//   BoxMuller(xr, xa): u1 = ((xr >> 8) + 1) * 2^-24 in (0, 1], k = xa >> 8 in [0, 2^24),
//   r = sqrt(-2 ln u1), z0 = r sin(2 pi k / 2^24), z1 = r cos(2 pi k / 2^24).
// Bit-reproducibility. CUDA's logf/sincosf and glibc's differ in their last bits, so the transform uses
// only IEEE correctly rounded float operations (+, -, *, /, sqrt) in a fixed order and exact integer/bit
// operations: the same text (philox_impl.h) then gives the same bits with g++ (-ffp-contract=off, so no
// a*b+c is fused) and nvcc (the device side calls __fadd_rn/__fmul_rn/__fdiv_rn/__fsqrt_rn, which are
// never fused or approximated whatever -fmad/-use_fast_math say). No value ever becomes subnormal, so
// flush-to-zero modes do not matter either.
//   ln x: x = 2^e m with m in [sqrt(1/2), sqrt 2] by a bit split (exact); f = m - 1 (exact);
//     s = f / (2 + f); ln m = 2 atanh s = f - (f^2/2 - s (f^2/2 + R(s^2))), R(z) = 2z/3 + 2z^2/5 + ... + 2z^5/11
//     (Taylor; |s| <= 0.172); ln x = e ln2_hi + (that + e ln2_lo) with e ln2_hi exact.
//   sin, cos of 2 pi k/2^24: the octant (k >> 21) and the offset j in it are integer operations; odd octants
//     use 2^21 - j, so the polynomials see a = (j 2^-21) pi/4 in [0, pi/4]; sin a to a^9, cos a to a^10
//     (Taylor, truncation < 3e-9 relative); the octant swaps and negates (exact). No argument reduction
//     error anywhere, so relative accuracy holds even next to the zeros of sin and cos.
//   Accuracy against double (tests/core/test_philox.cpp): ln 0.83 ulp worst over all 2^24 inputs u1,
//   sin/cos 1.93 ulp worst over 5.6M angles, the normals 3.3 ulp worst over 2^20 blocks against the
//   double-precision Box-Muller of the same words (the test bounds 1, 2 and 4 ulp).
//   The largest |z| is sqrt(2 ln 2^24) = 5.77 (u1 >= 2^-24): the tail beyond 5.77 sigma (p = 8e-9) is cut.
// out[i] = std * z (one rounded multiply). Since weight i depends on (s, i) only, any thread count, block
// size or backend produces the same array, and a longer fill extends a shorter one.
//
// Checked by tests/core/test_philox.cpp (Random123 known-answer vectors, stream layout, statistics, pinned
// hash) and tests/gpu/test_philox_gpu.cpp (GPU fill == CPU fill bit for bit; our stream == cuRAND device API).
#include "host/core/philox.h"

#include "host/core/check.h"

namespace rf {

void philox_curand_stream(uint64_t seed, uint64_t subsequence, uint64_t offset, size_t n, uint32_t* out) {
  RF_CHECK(out != nullptr || n == 0, "philox_curand_stream: null output for n = {}", n);
  const uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  const uint64_t block = offset >> 2;
  Philox4 ctr{uint32_t(block), uint32_t(block >> 32), uint32_t(subsequence), uint32_t(subsequence >> 32)};
  unsigned word = unsigned(offset & 3u);
  Philox4 x = philox4x32_10(ctr, k0, k1);
  for (size_t i = 0; i < n; ++i) {
    out[i] = word == 0 ? x.x : word == 1 ? x.y : word == 2 ? x.z : x.w;
    if (++word == 4) {  // next block: 128-bit increment of the counter, as cuRAND does
      word = 0;
      if (++ctr.x == 0 && ++ctr.y == 0 && ++ctr.z == 0) ++ctr.w;
      x = philox4x32_10(ctr, k0, k1);
    }
  }
}

void seeded_normal_fill(uint64_t seed, float std, int64_t n, float* out) {
  RF_CHECK(n >= 0, "seeded_normal_fill: n = {} must be >= 0", n);
  RF_CHECK(out != nullptr || n == 0, "seeded_normal_fill: null output for n = {}", n);
  const int64_t full = n / 4;  // blocks whose 4 normals are all stored
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < full; ++b) {
    float z[4];
    seeded_normal4(seed, uint64_t(b), z);
    for (int j = 0; j < 4; ++j) out[4 * b + j] = std * z[j];
  }
  if (n % 4 != 0) {
    float z[4];
    seeded_normal4(seed, uint64_t(full), z);
    for (int64_t i = 4 * full; i < n; ++i) out[i] = std * z[i - 4 * full];
  }
}

}  // namespace rf

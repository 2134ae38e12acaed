// Tests of host/core/philox.*: Philox4x32-10 against the Random123 known-answer vectors, the cuRAND stream
// layout (curand_init(seed, subsequence, offset) then curand()), the accuracy of the float transform's log
// and sin/cos against double, the statistics of the normals, index-only dependence (prefixes, thread counts)
// and a pinned hash of the first 4096 normals for seed 1234, so that any change to the transform is caught.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "testing.h"

namespace {

using rf::Philox4;
namespace pd = rf::philox_detail;

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

uint64_t fnv1a_bits(const std::vector<float>& v) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (float f : v) {
    const uint32_t u = bits_of(f);
    for (int byte = 0; byte < 4; ++byte) {
      h ^= (u >> (8 * byte)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

// |got - ref| in units of the float ulp at ref (ref computed in double).
double ulp_error(float got, double ref) {
  const double a = std::fabs(ref);
  if (a == 0) return got == 0 ? 0 : 1e30;
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e): float ulp is 2^(e-24)
  return std::fabs(double(got) - ref) / std::ldexp(1.0, e - 24);
}

std::vector<float> fill(uint64_t seed, float sigma, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  rf::seeded_normal_fill(seed, sigma, n, v.data());
  return v;
}

// ---- Philox4x32-10 ---------------------------------------------------------------------------

// Random123 tests/kat_vectors (D. E. Shaw Research), the three "philox4x32 10" lines:
// counter (4 words), key (2 words) -> output (4 words).
TEST(Philox, Random123KnownAnswerVectors) {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 out;
  };
  const Kat kats[] = {
      {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}, 0x00000000u, 0x00000000u,
       {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu, 0xffffffffu,
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u, 0x299f31d0u,
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const Philox4 o = rf::philox4x32_10(k.ctr, k.k0, k.k1);
    SCOPED_TRACE(fmt::format("philox4x32_10(ctr={:08x} {:08x} {:08x} {:08x}, key={:08x} {:08x})", k.ctr.x,
                             k.ctr.y, k.ctr.z, k.ctr.w, k.k0, k.k1));
    EXPECT_EQ(o.x, k.out.x);
    EXPECT_EQ(o.y, k.out.y);
    EXPECT_EQ(o.z, k.out.z);
    EXPECT_EQ(o.w, k.out.w);
  }
}

// What curand() returns after curand_init(seed, sub, off): block counter (off/4 + j) in (x, y) with sub in
// (z, w), word (off % 4 + j) % 4 -- computed here block by block, independently of philox_curand_stream.
std::vector<uint32_t> manual_stream(uint64_t seed, uint64_t sub, uint64_t off, size_t n) {
  std::vector<uint32_t> out;
  uint64_t block = off / 4;
  size_t word = size_t(off % 4);
  while (out.size() < n) {
    const Philox4 x = rf::philox4x32_10(
        Philox4{uint32_t(block), uint32_t(block >> 32), uint32_t(sub), uint32_t(sub >> 32)}, uint32_t(seed),
        uint32_t(seed >> 32));
    const uint32_t w[4] = {x.x, x.y, x.z, x.w};
    for (; word < 4 && out.size() < n; ++word) out.push_back(w[word]);
    word = 0;
    ++block;
  }
  return out;
}

TEST(Philox, CurandStreamLayout) {
  const rf::testing::CurandSlice cases[] = {
      {0, 0, 0, 16},
      {1234, 0, 1, 13},
      {1234, 0, 2, 7},
      {1234, 0, 3, 9},
      {1234, 7, 4093, 29},
      {0xDEADBEEFCAFEF00Dull, 0, 5, 11},                       // key hi word used
      {42, 0xFFFFFFFFull, 6, 10},                               // subsequence fills counter z
      {42, 0x100000003ull, 7, 10},                              // subsequence carries into counter w
      {42, 0xFEDCBA9876543210ull, 0x0123456789ABCDEFull, 21},   // large both
      {99, 3, 4 * 0xFFFFFFFFull + 2, 12},                       // block counter x wraps into y mid-stream
  };
  for (const rf::testing::CurandSlice& c : cases) {
    SCOPED_TRACE(fmt::format("curand stream(seed={:#x}, subsequence={:#x}, offset={:#x}, n={})", c.seed, c.sub,
                             c.off, c.n));
    std::vector<uint32_t> got(c.n);
    rf::philox_curand_stream(c.seed, c.sub, c.off, c.n, got.data());
    EXPECT_EQ(got, manual_stream(c.seed, c.sub, c.off, c.n));
    // Skipping ahead by k words is the same as reading k more words.
    for (size_t k : {size_t(1), size_t(3), size_t(6)}) {
      std::vector<uint32_t> tail(c.n - k);
      rf::philox_curand_stream(c.seed, c.sub, c.off + k, c.n - k, tail.data());
      EXPECT_TRUE(std::equal(tail.begin(), tail.end(), got.begin() + ptrdiff_t(k))) << "skip " << k;
    }
  }
  // Different subsequences and seeds are different streams.
  std::vector<uint32_t> a(8), b(8), c(8);
  rf::philox_curand_stream(5, 0, 0, 8, a.data());
  rf::philox_curand_stream(5, 1, 0, 8, b.data());
  rf::philox_curand_stream(6, 0, 0, 8, c.data());
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NO_THROW(rf::philox_curand_stream(5, 0, 0, 0, nullptr));
  EXPECT_THROW(rf::philox_curand_stream(5, 0, 0, 3, nullptr), rf::Error);
}

// ---- the float transform ---------------------------------------------------------------------

TEST(SeededNormal, BlockIsCurandStreamAtOffset4b) {
  for (uint64_t seed : {uint64_t(0), uint64_t(1234), uint64_t(0xA5A5A5A5F00Dull)}) {
    for (uint64_t b : {uint64_t(0), uint64_t(1), uint64_t(77), uint64_t(0x123456789ull)}) {
      SCOPED_TRACE(fmt::format("seed={:#x} block={:#x}", seed, b));
      uint32_t w[4];
      rf::philox_curand_stream(seed, 0, 4 * b, 4, w);
      float ref[4], got[4];
      pd::box_muller(w[0], w[1], ref[0], ref[1]);
      pd::box_muller(w[2], w[3], ref[2], ref[3]);
      rf::seeded_normal4(seed, b, got);
      for (int j = 0; j < 4; ++j) {
        EXPECT_EQ(bits_of(got[j]), bits_of(ref[j])) << "word " << j;
        EXPECT_EQ(bits_of(rf::seeded_normal(seed, 4 * b + uint64_t(j))), bits_of(ref[j])) << "word " << j;
      }
    }
  }
}

// Every radius input u1 = m 2^-24, m = 1 .. 2^24: our log within 1 ulp of the double log.
TEST(SeededNormal, LogAccuracyOnAllRadiusInputs) {
  double worst = 0;
  uint32_t worst_m = 0;
  for (uint32_t m = 1; m < (1u << 24); ++m) {
    const float u = float(m) * 0x1p-24f;
    const double e = ulp_error(pd::log_rn(u), std::log(double(u)));
    if (e > worst) worst = e, worst_m = m;
  }
  EXPECT_EQ(bits_of(pd::log_rn(1.0f)), 0u) << "ln 1 must be +0";
  EXPECT_LE(worst, 1.0) << "worst at u1 = " << worst_m << " * 2^-24";
  // A few inputs outside the transform's range (the function is a general log for normal x > 0).
  for (float x : {1e-30f, 3.0f, 12345.678f, 1e30f}) EXPECT_LE(ulp_error(pd::log_rn(x), std::log(double(x))), 1.0) << x;
}

// Angles 2 pi k / 2^24 over all octants (every 3rd k, plus the octant edges): sin, cos within 2 ulp.
TEST(SeededNormal, SinCosAccuracy) {
  double worst_s = 0, worst_c = 0;
  auto check = [&](uint32_t k) {
    float s, c;
    pd::sincos_2pi_k24(k, s, c);
    const double ang = 2.0 * M_PI * double(k) * 0x1p-24;
    if (k % (1u << 22) == 0) {  // exact zeros of sin at multiples of pi
      if (k % (1u << 23) == 0) {
        EXPECT_EQ(s, 0.0f) << k;
      }
    } else {
      worst_s = std::max(worst_s, ulp_error(s, std::sin(ang)));
    }
    if ((k + (1u << 22)) % (1u << 23) == 0)
      EXPECT_EQ(c, 0.0f) << k;
    else
      worst_c = std::max(worst_c, ulp_error(c, std::cos(ang)));
  };
  for (uint32_t k = 0; k < (1u << 24); k += 3) check(k);
  for (uint32_t o = 0; o < 8; ++o)
    for (uint32_t d : {0u, 1u, 2u}) {
      check((o << 21) + d);
      check(((o + 1) << 21) - 1 - d);
    }
  EXPECT_LE(worst_s, 2.0);
  EXPECT_LE(worst_c, 2.0);
}

// The whole transform against Box-Muller in double on the same Philox words.
TEST(SeededNormal, TransformWithinFewUlpOfDouble) {
  const uint64_t seed = 2024;
  double worst = 0;
  for (uint64_t b = 0; b < (1u << 17); ++b) {
    uint32_t w[4];
    rf::philox_curand_stream(seed, 0, 4 * b, 4, w);
    float z[4];
    rf::seeded_normal4(seed, b, z);
    for (int p = 0; p < 2; ++p) {
      const double u1 = double((w[2 * p] >> 8) + 1) * 0x1p-24;
      const double ang = 2.0 * M_PI * double(w[2 * p + 1] >> 8) * 0x1p-24;
      const double r = std::sqrt(-2.0 * std::log(u1));
      const uint32_t k = w[2 * p + 1] >> 8;
      if (r == 0) continue;
      // At multiples of pi/2 the exact value is 0 (double's sin(pi) is not): expect exactly zero there.
      if (k % (1u << 23) == 0) {
        EXPECT_EQ(z[2 * p], 0.0f);
      } else {
        worst = std::max(worst, ulp_error(z[2 * p], r * std::sin(ang)));
      }
      if ((k + (1u << 22)) % (1u << 23) == 0) {
        EXPECT_EQ(z[2 * p + 1], 0.0f);
      } else {
        worst = std::max(worst, ulp_error(z[2 * p + 1], r * std::cos(ang)));
      }
    }
  }
  EXPECT_LE(worst, 4.0);
  std::printf("[ INFO     ] normals: worst %.2f ulp vs double Box-Muller\n", worst);
}

// ---- statistics ------------------------------------------------------------------------------

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(SeededNormal, MomentsKolmogorovSmirnovAndTails) {
  const int64_t n = 1 << 20;
  for (uint64_t seed : {uint64_t(1234), uint64_t(7)}) {
    SCOPED_TRACE(fmt::format("seed={}", seed));
    std::vector<float> z = fill(seed, 1.0f, n);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    int64_t beyond4 = 0;
    float zmax = 0;
    for (float v : z) {
      const double d = v;
      s1 += d, s2 += d * d, s3 += d * d * d, s4 += d * d * d * d;
      beyond4 += std::fabs(v) > 4.0f;
      zmax = std::max(zmax, std::fabs(v));
    }
    const double N = double(n), mean = s1 / N, var = s2 / N - mean * mean;
    const double skew = s3 / N / std::pow(var, 1.5), kurt = s4 / N / (var * var);
    // 5 standard errors: mean 1/sqrt N, variance sqrt(2/N), skewness sqrt(6/N), kurtosis sqrt(24/N).
    EXPECT_LT(std::fabs(mean), 5.0 / std::sqrt(N));
    EXPECT_LT(std::fabs(var - 1.0), 5.0 * std::sqrt(2.0 / N));
    EXPECT_LT(std::fabs(skew), 5.0 * std::sqrt(6.0 / N));
    EXPECT_LT(std::fabs(kurt - 3.0), 5.0 * std::sqrt(24.0 / N));
    // P(|z| > 4) = 6.33e-5: ~66 expected in 2^20 draws (Poisson sd ~8). The largest radius the 24-bit u1
    // allows is sqrt(2 ln 2^24) = 5.77, so tails are present up to 5.77 sigma and cut there.
    const double expect4 = N * 2.0 * (1.0 - normal_cdf(4.0));
    EXPECT_GT(double(beyond4), expect4 - 5.0 * std::sqrt(expect4));
    EXPECT_LT(double(beyond4), expect4 + 5.0 * std::sqrt(expect4));
    EXPECT_LE(zmax, 5.7686f);
    // Kolmogorov-Smirnov distance to the normal CDF; 1.95 / sqrt(N) is the 0.1 % critical value.
    std::sort(z.begin(), z.end());
    double D = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double F = normal_cdf(z[size_t(i)]);
      D = std::max({D, F - double(i) / N, double(i + 1) / N - F});
    }
    EXPECT_LT(D, 1.95 / std::sqrt(N)) << "KS distance";
  }
}

// The four lanes of a block are not correlated with each other (Box-Muller pairs are independent normals).
TEST(SeededNormal, LanesUncorrelated) {
  const int64_t blocks = 1 << 18;
  std::vector<float> z = fill(99, 1.0f, 4 * blocks);
  for (int a = 0; a < 4; ++a)
    for (int b = a + 1; b < 4; ++b) {
      double s = 0;
      for (int64_t i = 0; i < blocks; ++i) s += double(z[size_t(4 * i + a)]) * z[size_t(4 * i + b)];
      EXPECT_LT(std::fabs(s / double(blocks)), 5.0 / std::sqrt(double(blocks))) << "lanes " << a << "," << b;
    }
}

// ---- index-only dependence -------------------------------------------------------------------

TEST(SeededNormal, FillIsAFunctionOfSeedAndIndexOnly) {
  const uint64_t seed = rf::module_seed(1000, 3);
  EXPECT_EQ(seed, 1003u);
  const float sigma = 0.0589f;  // sqrt(2 / (64 * 9))
  const std::vector<float> longer = fill(seed, sigma, 4099);
  for (int64_t n : {0, 1, 2, 3, 5, 1001, 4096}) {
    const std::vector<float> shorter = fill(seed, sigma, n);
    EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(), longer.begin(), [](float a, float b) {
      return bits_of(a) == bits_of(b);
    })) << "fill of " << n << " is not a prefix of the fill of 4099";
  }
  for (size_t i = 0; i < longer.size(); i += 37)
    EXPECT_EQ(bits_of(longer[i]), bits_of(sigma * rf::seeded_normal(seed, i))) << i;
  // Different seeds: different weights (two equal floats by chance is ~1e-7 per element).
  const std::vector<float> other = fill(seed + 1, sigma, 4099);
  size_t same = 0;
  for (size_t i = 0; i < other.size(); ++i) same += bits_of(other[i]) == bits_of(longer[i]);
  EXPECT_LE(same, 1u);
  EXPECT_THROW(rf::seeded_normal_fill(seed, sigma, -1, nullptr), rf::Error);
}

TEST(SeededNormal, SameBitsForAnyThreadCount) {
  const int keep = omp_get_max_threads();
  const int64_t n = 100003;  // odd, not a multiple of 4
  std::vector<uint64_t> hashes;
  for (int threads : {1, 2, 3, 8}) {
    omp_set_num_threads(threads);
    hashes.push_back(fnv1a_bits(fill(31337, 0.02f, n)));
  }
  omp_set_num_threads(keep);
  for (size_t t = 1; t < hashes.size(); ++t) EXPECT_EQ(hashes[t], hashes[0]) << "thread setting " << t;
}

// Pinned bits. If this fails, the transform changed: every stored model package and every GPU/CPU pair
// generated before is invalidated, so change the pin only together with a documented format change.
TEST(SeededNormal, PinnedHashOfFirst4096NormalsSeed1234) {
  const std::vector<float> z = fill(1234, 1.0f, 4096);
  EXPECT_EQ(fnv1a_bits(z), 0x8589c2623313d764ull) << fmt::format("hash {:#018x}", fnv1a_bits(z));
  // -1.61649, 1.22915, -1.56054, 0.464621
  const uint32_t first4[4] = {0xbfcee92bu, 0x3f9d54f1u, 0xbfc7bfcbu, 0x3eede2d1u};
  for (size_t j = 0; j < 4; ++j)
    EXPECT_EQ(bits_of(z[j]), first4[j]) << fmt::format("z[{}] = {:a} ({:#010x})", j, z[j], bits_of(z[j]));
}

}  // namespace

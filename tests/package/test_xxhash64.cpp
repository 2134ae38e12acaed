// xxHash64 and fp16 conversion, checked against published values.
// XXH64 vectors (seed 0 and 5381) are the reference implementation's outputs as published in several
// independent test suites (python-xxhash / libxxhash results); fp16 cases follow IEEE 754 binary16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/package/fp16.h"
#include "host/package/xxhash64.h"

namespace {

struct Vec {
  uint64_t seed;
  const char* text;
  uint64_t want;
};

TEST(XXHash64, PublishedVectors) {
  const Vec vecs[] = {
      {0, "", 0xef46db3751d8e999ull},
      {0, "a", 0xd24ec4f1a98c6e5bull},
      {0, "abc", 0x44bc2cf5ad770999ull},
      {0, "message digest", 0x066ed728fceeb3beull},
      {0, "1234", 0xd8316e61d84f6ba4ull},
      {0, "12345678", 0xd2d02f08cf7cfd4aull},
      {0, "123456789012345", 0xc377d78ade001a3cull},
      {0, "1234567890123456", 0xb61c33dc6c59f270ull},
      {0, "1234567890123456789012345678901", 0x8f367cb873a5376eull},
      {0, "12345678901234567890123456789012", 0x40fd1aa52d98274cull},
      {0, "The quick brown fox jumps over the lazy dog", 0x0b242d361fda71bcull},
      {5381, "", 0xaf382146d5c3cacfull},
      {5381, "abc", 0x19d1c1b5c673451full},
      {5381, "12345678901234567890123456789012", 0x38ea26e7c55f8095ull},
  };
  for (const Vec& v : vecs) {
    SCOPED_TRACE(std::string("\"") + v.text + "\" seed " + std::to_string(v.seed));
    EXPECT_EQ(rf::xxhash64(v.text, std::strlen(v.text), v.seed), v.want);
  }
}

TEST(XXHash64, StreamingMatchesOneShotForEveryChunking) {
  std::mt19937 gen(3);
  std::vector<unsigned char> buf(1000);
  for (auto& b : buf) b = uint8_t(gen());
  for (size_t n : {0, 1, 31, 32, 33, 63, 64, 100, 1000}) {
    const uint64_t want = rf::xxhash64(buf.data(), n, 42);
    for (size_t chunk : {1, 3, 7, 31, 32, 33, 500}) {
      rf::XXHash64 h(42);
      for (size_t i = 0; i < n; i += chunk) h.update(buf.data() + i, std::min(chunk, n - i));
      EXPECT_EQ(h.digest(), want) << "n=" << n << " chunk=" << chunk;
    }
  }
  // A flipped bit anywhere changes the hash (a sum of bytes would not see swapped bytes; check that too).
  const uint64_t h0 = rf::xxhash64(buf.data(), buf.size());
  for (size_t i = 0; i < buf.size(); i += 37) {
    buf[i] ^= 0x10;
    EXPECT_NE(rf::xxhash64(buf.data(), buf.size()), h0) << "byte " << i;
    buf[i] ^= 0x10;
  }
  std::swap(buf[10], buf[20]);
  if (buf[10] != buf[20]) {
    EXPECT_NE(rf::xxhash64(buf.data(), buf.size()), h0);
  }
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Fp16, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = rf::half_to_float(uint16_t(h));
    const bool nan = (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0;
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(std::isnan(rf::half_to_float(rf::float_to_half(f)))) << h;
    } else {
      EXPECT_EQ(rf::float_to_half(f), uint16_t(h)) << "half 0x" << std::hex << h << " -> " << f;
    }
  }
}

TEST(Fp16, KnownValuesAndRounding) {
  EXPECT_EQ(rf::float_to_half(1.f), 0x3C00);
  EXPECT_EQ(rf::float_to_half(-2.f), 0xC000);
  EXPECT_EQ(rf::float_to_half(65504.f), 0x7BFF);                 // largest half
  EXPECT_EQ(rf::float_to_half(65519.f), 0x7BFF);                 // below the rounding edge
  EXPECT_EQ(rf::float_to_half(65520.f), 0x7C00);                 // ties to even -> overflow to inf
  EXPECT_EQ(rf::float_to_half(std::ldexp(1.f, -24)), 0x0001);    // smallest subnormal
  EXPECT_EQ(rf::float_to_half(std::ldexp(1.f, -25)), 0x0000);    // tie between 0 and 2^-24 -> even (0)
  EXPECT_EQ(rf::float_to_half(std::ldexp(1.5f, -25)), 0x0001);   // above the tie
  EXPECT_EQ(rf::float_to_half(std::ldexp(3.f, -25)), 0x0002);    // tie 1.5 * 2^-24 -> even (2)
  EXPECT_EQ(rf::float_to_half(1.f + std::ldexp(1.f, -11)), 0x3C00);      // tie -> even (1.0)
  EXPECT_EQ(rf::float_to_half(1.f + 3 * std::ldexp(1.f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(rf::float_to_half(bits_to_float(0x3F800001u)), 0x3C00);    // just above 1: down
  EXPECT_EQ(rf::float_to_half(std::ldexp(1023.f, -24) + std::ldexp(1.f, -25)), 0x0400);  // carry to normal
  EXPECT_EQ(rf::float_to_half(INFINITY), 0x7C00);
  EXPECT_EQ(rf::float_to_half(-INFINITY), 0xFC00);
  EXPECT_TRUE(std::isnan(rf::half_to_float(rf::float_to_half(NAN))));
  EXPECT_EQ(rf::half_to_float(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(rf::half_to_float(0x3555), 0.333251953125f);
}

}  // namespace

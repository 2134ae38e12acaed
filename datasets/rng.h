// The one source of randomness of the datasets and the input pipeline: Philox4x32-10 keyed by the run's
// seed, with a counter naming what is drawn. Nothing depends on thread count or call order, only on
// (seed, counter): the same (seed, epoch, index) gives the same crop whatever the workers do.
// Counter layout: {lo32(a), lo32(b), tag, hi32(a)}; tags below keep the streams apart.
// Checked through tests/datasets/test_loader.cpp (permutations, augmentation determinism).
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "host/core/philox.h"

namespace rf::data {

enum RngTag : uint32_t {
  kTagAugment = 0,    // a = sample index, b = epoch
  kTagShuffle = 1,    // a = step / 2 of Fisher-Yates, b = epoch
  kTagSynthetic = 2,  // a = image index, b = block of random words inside the image
  kTagSplit = 3,      // a = step / 2, b = class
  kTagSynthLabel = 4, // a = block of 10 images, b = 0
  kTagDenseAugment = 5,  // a = sample index, b = epoch (detection / segmentation augmentation)
  kTagSynthDense = 6,    // a = image index, b = block of random words inside the scene
};

inline Philox4 rng_words(uint64_t seed, uint64_t a, uint64_t b, uint32_t tag) {
  return philox4x32_10({uint32_t(a), uint32_t(b), tag, uint32_t(a >> 32)}, uint32_t(seed), uint32_t(seed >> 32));
}

// The 32-bit words of Philox blocks (seed; index, block, block + 1, ..., tag), x, y, z, w of each block in
// order: what the synthetic generators' uniforms and pixel noise are read from.
struct WordStream {
  uint64_t seed, index;
  uint32_t tag;
  uint64_t block = 0;  // the next block to draw
  int k = 4;
  Philox4 w{};
  uint32_t next() {
    if (k == 4) {
      w = rng_words(seed, index, block++, tag);
      k = 0;
    }
    const uint32_t v = k == 0 ? w.x : k == 1 ? w.y : k == 2 ? w.z : w.w;
    ++k;
    return v;
  }
};

// A stream of uniforms in [0, 1) for one image: blocks 0, 1, 2, ... of its WordStream, one 24-bit float per
// word. The synthetic generators draw every random choice of an image from one.
struct UniformStream {
  WordStream words;
  float next() { return float(words.next() >> 8) * (1.0f / 16777216.0f); }
  float range(float lo, float hi) { return lo + (hi - lo) * next(); }
};

// Pixel noise for one image: the bytes of its WordStream's words from a first block on (low byte first), each
// byte b read as b * 2/255 - 1 in [-1, 1]. Both synthetic generators.
struct NoiseBytes {
  WordStream words;
  int b = 4;
  uint32_t word = 0;
  float next() {
    if (b == 4) {
      word = words.next();
      b = 0;
    }
    const float n8 = float((word >> (8 * b)) & 0xFF);
    ++b;
    return n8 * (2.0f / 255.0f) - 1.0f;
  }
};

// The synthetic generators' background texture at pixel (x, y) of a W x H image, in [-1, 1]: 0 flat, 1 a linear
// ramp along (ca, sa), 2 a sine wave of frequency freq along it, otherwise a checkerboard of `checker`-pixel cells.
inline float background_texture(int tex, int x, int y, int W, int H, float ca, float sa, float freq, int checker) {
  const float fx = float(x) / float(W), fy = float(y) / float(H);
  switch (tex) {
    case 0: return 0;
    case 1: return 2.0f * (ca * fx + sa * fy) - 1.0f;
    case 2: return std::sin(freq * 3.0f * (ca * float(x) + sa * float(y)));
    default: return (((x / checker) + (y / checker)) % 2) ? 1.0f : -1.0f;
  }
}

// A colour of luminance about L with a random tint of up to +-spread per channel (mean tint 0).
inline void tinted_colour(UniformStream& U, float L, float spread, float out[3]) {
  const float t0 = U.range(-spread, spread), t1 = U.range(-spread, spread), t2 = U.range(-spread, spread);
  const float m = (t0 + t1 + t2) / 3.0f;
  out[0] = L + t0 - m;
  out[1] = L + t1 - m;
  out[2] = L + t2 - m;
}

// Uniform integer in [0, bound) from 64 random bits (multiply-shift; bias < bound / 2^64, negligible).
inline uint64_t rng_below(uint32_t hi, uint32_t lo, uint64_t bound) {
  const uint64_t r = (uint64_t(hi) << 32) | lo;
  return uint64_t((unsigned __int128)r * bound >> 64);
}

// Fisher-Yates permutation of 0..n-1: step s (i = n-1-s, from n-1 down to 1) swaps i with
// j = rng_below(words of block s/2, i+1), two steps per Philox block (words x,y then z,w).
// A function of (n, seed, tag, b) only.
inline std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint32_t tag, uint64_t b) {
  std::vector<int64_t> p(size_t(n > 0 ? n : 0));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  Philox4 w{};
  for (int64_t s = 0; s + 1 < n; ++s) {
    const int64_t i = n - 1 - s;
    if (s % 2 == 0) w = rng_words(seed, uint64_t(s / 2), b, tag);
    const uint64_t j = (s % 2 == 0) ? rng_below(w.x, w.y, uint64_t(i + 1)) : rng_below(w.z, w.w, uint64_t(i + 1));
    std::swap(p[size_t(i)], p[size_t(j)]);
  }
  return p;
}

}  // namespace rf::data

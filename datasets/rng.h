// The one source of randomness of the datasets and the input pipeline: Philox4x32-10 keyed by the run's
// seed, with a counter naming what is drawn. Nothing depends on thread count or call order, only on
// (seed, counter): the same (seed, epoch, index) gives the same crop whatever the workers do.
// Counter layout: {lo32(a), lo32(b), tag, hi32(a)}; tags below keep the streams apart.
// Checked through tests/datasets/test_loader.cpp (permutations, augmentation determinism).
#pragma once
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
};

inline Philox4 rng_words(uint64_t seed, uint64_t a, uint64_t b, uint32_t tag) {
  return philox4x32_10({uint32_t(a), uint32_t(b), tag, uint32_t(a >> 32)}, uint32_t(seed), uint32_t(seed >> 32));
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

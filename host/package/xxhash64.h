// xxHash64 (Yann Collet's XXH64 algorithm, written here from its specification): the checksum of .rfpk
// packages. A 64-bit hash that mixes every input bit, unlike a sum, so any flipped byte changes it (with
// probability 1 - 2^-64). Checked by tests/package/test_xxhash64.cpp against published test vectors.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rf {

// One-shot XXH64 of n bytes with the given seed.
uint64_t xxhash64(const void* data, size_t n, uint64_t seed = 0);

// Streaming form: update() any number of times, digest() gives the same value as the one-shot call.
class XXHash64 {
 public:
  explicit XXHash64(uint64_t seed = 0);
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_, total_ = 0;
  unsigned char buf_[32];
  size_t buffered_ = 0;
};

}  // namespace rf

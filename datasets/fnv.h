// FNV-1a 64 over bytes and over integers' little-endian bytes (whatever the host): the content hashes of
// Dataset (datasets/dataset.cpp) and DenseDataset (datasets/dense.cpp) that runs record to name their data.
// Covered by tests/datasets/test_dataset.cpp and the dense dataset tests (the recorded hashes must not move).
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace rf::data {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;

inline uint64_t fnv_bytes(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
  return h;
}

template <typename T>
inline uint64_t fnv_le(uint64_t h, T v) {
  using U = std::make_unsigned_t<T>;
  U u = U(v);
  for (size_t i = 0; i < sizeof(T); ++i) h = (h ^ uint8_t(u >> (8 * i))) * kFnvPrime;
  return h;
}

}  // namespace rf::data

// Helpers shared by the GPU tests (tests/gpu/test_*_gpu.cpp): a fixture that skips with a message when no CUDA
// device is visible, a device buffer that frees without throwing, bit-level comparisons and an FNV-1a hash of
// float bit patterns (the "same seed, same bits" proofs).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/ops/seeded_weights.h"

namespace rf::gpu_testing {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (rf::cuda_device_count_or_zero() == 0)
      GTEST_SKIP() << "no CUDA device visible (cudaGetDeviceCount failed or returned 0): GPU test skipped";
  }
};

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (n > 0) CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& h) : DeviceBuffer(h.size()) { upload(h); }
  ~DeviceBuffer() {
    if (ptr) CUDA_CHECK_NOTHROW(cudaFree(ptr));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<T>& h) {
    ASSERT_EQ(h.size(), n);
    if (n > 0) CUDA_CHECK(cudaMemcpy(ptr, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  // Every byte 0xFF: NaN for floats, so an element a kernel forgot to write fails any comparison.
  void poison() {
    if (n > 0) CUDA_CHECK(cudaMemset(ptr, 0xFF, n * sizeof(T)));
  }
  std::vector<T> to_host() const {
    std::vector<T> h(n);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (n > 0) CUDA_CHECK(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// First index where the bit patterns differ (or the sizes), -1 when identical.
inline int64_t first_bit_mismatch(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (bits_of(a[i]) != bits_of(b[i])) return int64_t(i);
  return -1;
}

inline uint64_t fnv1a_bits(const std::vector<float>& v) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (float f : v) {
    const uint32_t u = bits_of(f);
    for (int b = 0; b < 4; ++b) h = (h ^ ((u >> (8 * b)) & 0xFFu)) * 0x100000001b3ull;
  }
  return h;
}

}  // namespace rf::gpu_testing

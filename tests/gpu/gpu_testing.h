// Helpers shared by the GPU tests (tests/gpu/test_*_gpu.cpp): a fixture that skips with a message when no CUDA
// device is visible (and fails instead when RF_REQUIRE_GPU=1: a device check on a lent GPU must not pass by
// skipping), a device buffer that frees without throwing, bit-level comparisons and an FNV-1a hash of float bit
// patterns (the "same seed, same bits" proofs). The same tests build against the CUDA emulation (RF_CUDA_EMU,
// cuda/emu/cuda_emu.h: label gpu-emu), where the one emulated device is always present; a test of a vendor
// library calls skip_in_emulation(). tests/gpu/gpu_main.cpp turns "skipped, none failed" into exit code 77.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/ops/seeded_weights.h"

namespace rf::gpu_testing {

// RF_REQUIRE_GPU=1 (scripts/device-check.sh sets it): a missing device is a failure, not a skip.
inline bool gpu_required() {
  const char* env = std::getenv("RF_REQUIRE_GPU");
  return env && std::string(env) == "1";
}

// True when these tests run against the CUDA emulation (no real device, no vendor library).
constexpr bool kEmulated =
#if defined(RF_CUDA_EMU)
    true;
#else
    false;
#endif

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (rf::cuda_device_count_or_zero() > 0) return;
    if (gpu_required())
      FAIL() << "RF_REQUIRE_GPU=1 but no CUDA device is visible (cudaGetDeviceCount failed or returned 0)";
    GTEST_SKIP() << "no CUDA device visible (cudaGetDeviceCount failed or returned 0): GPU test skipped";
  }
};

// In a test of a vendor library (cuDNN, cuRAND's device API, CUB device-wide): skip under the emulation, saying
// why, so the test runs on a real GPU only (label gpu).
#define RF_SKIP_IN_EMULATION(library)                                                                      \
  do {                                                                                                     \
    if (::rf::gpu_testing::kEmulated)                                                                      \
      GTEST_SKIP() << library << " is a vendor library: the CUDA emulation (RF_CUDA_EMU) cannot run it, so "  \
                   << "this test runs on a real GPU only (CTest label gpu)";                               \
  } while (0)

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

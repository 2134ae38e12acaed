// GPU twin of tests/core/test_philox.cpp: the CUDA seeded-normal fill equals the CPU fill bit for bit for
// several block sizes and lengths (odd ones too), and our Philox stream equals cuRAND's device API
// (curand_init + curand) for several (seed, subsequence, offset). Without a device the GPU tests skip with a
// message; the argument checks and the CUDA_CHECK/CURAND_CHECK macros are tested everywhere. Emulated (label
// gpu-emu) the cuRAND comparison skips (a vendor library; tests/core/test_philox_curand_host.cpp compares the
// same stream with cuRAND's host generator on every machine).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/ops/seeded_weights.h"
#include "gpu_testing.h"
#include "host/core/philox.h"
#include "testing.h"

namespace {

using rf::gpu_testing::DeviceBuffer;
using rf::gpu_testing::first_bit_mismatch;

class PhiloxGpu : public rf::gpu_testing::GpuTest {};

TEST_F(PhiloxGpu, FillMatchesCpuBitForBit) {
  struct Case {
    uint64_t seed;
    float sigma;
    int64_t n;
  };
  const Case cases[] = {
      {1234, 1.0f, 1},         {1234, 1.0f, 3},        {1234, 1.0f, 4099},
      {7, 0.0589f, 5},         {7, 0.0589f, 100003},   {0xDEADBEEFCAFEull, 0.0417f, (1 << 20) + 3},
      {rf::module_seed(1000, 15), 0.0295f, 64 * 64 * 9 + 1},
  };
  for (const Case& c : cases) {
    std::vector<float> cpu(static_cast<size_t>(c.n));
    rf::seeded_normal_fill(c.seed, c.sigma, c.n, cpu.data());
    for (int block_size : {32, 128, 256, 1024}) {
      SCOPED_TRACE(fmt::format("seeded_normal_fill_cuda(seed={:#x}, std={}, n={}, block_size={})", c.seed, c.sigma,
                               c.n, block_size));
      DeviceBuffer<float> d(static_cast<size_t>(c.n));
      CUDA_CHECK(cudaMemset(d.ptr, 0xFF, d.n * sizeof(float)));  // NaN everywhere: unwritten elements fail
      rf::seeded_normal_fill_cuda(c.seed, c.sigma, c.n, d.ptr, block_size, nullptr);
      CUDA_CHECK(cudaDeviceSynchronize());
      const std::vector<float> gpu = d.to_host();
      const int64_t bad = first_bit_mismatch(gpu, cpu);
      EXPECT_EQ(bad, -1) << "first differing element " << bad << ": gpu "
                         << (bad >= 0 ? fmt::format("{:a}", gpu[size_t(bad)]) : "") << " cpu "
                         << (bad >= 0 ? fmt::format("{:a}", cpu[size_t(bad)]) : "");
    }
  }
}

TEST_F(PhiloxGpu, OnAStreamToo) {
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  const int64_t n = 12345;
  DeviceBuffer<float> d(static_cast<size_t>(n));
  rf::seeded_normal_fill_cuda(99, 0.5f, n, d.ptr, 128, stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::vector<float> cpu(static_cast<size_t>(n));
  rf::seeded_normal_fill(99, 0.5f, n, cpu.data());
  EXPECT_EQ(first_bit_mismatch(d.to_host(), cpu), -1);
}

TEST_F(PhiloxGpu, OurPhiloxEqualsCurandDeviceApi) {
  RF_SKIP_IN_EMULATION("cuRAND's device API (curand_kernel.h)");
  const rf::testing::CurandSlice cases[] = {
      {0, 0, 0, 64},
      {1234, 0, 1, 37},
      {1234, 0, 4 * 1000 + 2, 19},
      {1234, 5, 3, 41},
      {0xDEADBEEFCAFEF00Dull, 0x100000003ull, 7, 25},           // subsequence carries into counter w
      {42, 0xFEDCBA9876543210ull, 0x0123456789ABCDEFull, 33},  // large both
      {99, 3, 4 * 0xFFFFFFFFull + 2, 12},                       // block counter x wraps into y
  };
  for (const rf::testing::CurandSlice& c : cases) {
    SCOPED_TRACE(fmt::format("curand_init(seed={:#x}, subsequence={:#x}, offset={:#x}) then {} curand()", c.seed,
                             c.sub, c.off, c.n));
    DeviceBuffer<uint32_t> d(c.n);
    rf::curand_device_stream_cuda(c.seed, c.sub, c.off, int64_t(c.n), d.ptr);
    std::vector<uint32_t> ours(c.n);
    rf::philox_curand_stream(c.seed, c.sub, c.off, c.n, ours.data());
    EXPECT_EQ(d.to_host(), ours);
  }
  // The seeded-normal blocks are cuRAND's stream at subsequence 0, offset 4b.
  DeviceBuffer<uint32_t> d(8);
  rf::curand_device_stream_cuda(1234, 0, 4 * 10, 8, d.ptr);
  const std::vector<uint32_t> w = d.to_host();
  const rf::Philox4 x = rf::philox4x32_10(rf::Philox4{10, 0, 0, 0}, 1234, 0);
  EXPECT_EQ(w[0], x.x);
  EXPECT_EQ(w[3], x.w);
}

// ---- checks that need no device ----------------------------------------------------------------

TEST(PhiloxGpuArgs, BadArgumentsThrowBeforeLaunch) {
  float dummy = 0;
  EXPECT_THROW(rf::seeded_normal_fill_cuda(1, 1.0f, 10, &dummy, 0, nullptr), rf::Error);
  EXPECT_THROW(rf::seeded_normal_fill_cuda(1, 1.0f, 10, &dummy, 2048, nullptr), rf::Error);
  EXPECT_THROW(rf::seeded_normal_fill_cuda(1, 1.0f, -1, &dummy, 256, nullptr), rf::Error);
  EXPECT_THROW(rf::seeded_normal_fill_cuda(1, 1.0f, 10, nullptr, 256, nullptr), rf::Error);
  EXPECT_NO_THROW(rf::seeded_normal_fill_cuda(1, 1.0f, 0, nullptr, 256, nullptr));
  EXPECT_THROW(rf::curand_device_stream_cuda(1, 0, 0, 4, nullptr), rf::Error);
}

TEST(PhiloxGpuArgs, CheckMacrosNameTheCall) {
  try {
    CUDA_CHECK(cudaSetDevice(9999));  // fails with or without a GPU
    FAIL() << "cudaSetDevice(9999) succeeded";
  } catch (const rf::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cudaSetDevice(9999)"), std::string::npos) << what;
    EXPECT_NE(what.find("test_philox_gpu.cpp"), std::string::npos) << what;
  }
  (void)cudaGetLastError();
  try {
    CURAND_CHECK(curandStatus_t(CURAND_STATUS_OUT_OF_RANGE));
    FAIL() << "CURAND_CHECK did not throw";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CURAND_STATUS_OUT_OF_RANGE"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(CURAND_CHECK(curandStatus_t(CURAND_STATUS_SUCCESS)));
}

}  // namespace

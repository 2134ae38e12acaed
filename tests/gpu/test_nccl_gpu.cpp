// The NCCL all-reduce (cuda/comm_nccl.h) on a real device: a communicator of one rank sums a buffer in place
// (the identity) and a second all-reduce of the same buffer leaves it unchanged. Label gpu (skipped without a
// device); under the CUDA emulation and in builds without NCCL it skips, saying why. Never run on the development
// machine (no GPU there).
#include "gpu_testing.h"

#if defined(RF_HAVE_NCCL) && !defined(RF_CUDA_EMU)
#include "cuda/comm_nccl.h"
#endif

using namespace rf;
using rf::gpu_testing::DeviceBuffer;

class NcclGpu : public rf::gpu_testing::GpuTest {};

TEST_F(NcclGpu, OneRankAllReduceIsTheIdentity) {
  RF_SKIP_IN_EMULATION("NCCL");
#if !defined(RF_HAVE_NCCL) || defined(RF_CUDA_EMU)
  GTEST_SKIP() << "built without NCCL (nccl.h or libnccl not found by CMake)";
#else
  const size_t n = 1000;
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i) host[i] = float(i) * 0.5f - 7.f;
  DeviceBuffer<float> d(n);
  CUDA_CHECK(cudaMemcpy(d.ptr, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  comm::nccl_init(0);
  comm::nccl_allreduce_sum(d.ptr, int64_t(n), nullptr);
  comm::nccl_allreduce_sum(d.ptr, int64_t(n), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> back(n);
  CUDA_CHECK(cudaMemcpy(back.data(), d.ptr, n * sizeof(float), cudaMemcpyDeviceToHost));
  comm::nccl_finalize();
  EXPECT_EQ(0, std::memcmp(back.data(), host.data(), n * sizeof(float)));
#endif
}

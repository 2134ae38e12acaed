// The CUDA emulation itself (cuda/emu/cuda_emu.h), with small kernels written here: coordinates cover the grid
// once, __syncthreads() is a barrier over the whole block, the run order between barriers is shuffled (so a
// kernel without its barrier reads unwritten shared memory), shared arrays are per block, kernel parameters per
// thread, atomicAdd counts every thread, and bad launches (too many threads, too much shared memory, a divergent
// barrier) fail through cudaGetLastError as on the device. Emulation only (label gpu-emu): kernels in a .cpp do
// not build for a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cuda/cuda_check.h"

namespace {

// out[linear block * threads per block + linear thread] += 1 + the thread's own coordinates checked.
__global__ void coords_kernel(int* out, int* bad) {
  const int t = int((threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x);
  const int b = int((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x);
  const int per_block = int(blockDim.x * blockDim.y * blockDim.z);
  if (threadIdx.x >= blockDim.x || threadIdx.y >= blockDim.y || threadIdx.z >= blockDim.z ||
      blockIdx.x >= gridDim.x || blockIdx.y >= gridDim.y || blockIdx.z >= gridDim.z)
    *bad += 1;
  out[b * per_block + t] += 1;
}

// Each thread writes its slot, then (after the barrier, if any) reads its neighbour's.
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
  RF_DYNAMIC_SHARED(float, s);
  const int t = int(threadIdx.x), n = int(blockDim.x);
  s[t] = float(blockIdx.x * 1000 + t);
  if (kBarrier) __syncthreads();
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

// Records the order in which threads pass two points separated by a barrier.
int g_ticket = 0;
__global__ void order_kernel(int* first, int* second) {
  first[threadIdx.x] = g_ticket++;
  __syncthreads();
  second[threadIdx.x] = g_ticket++;
}

// A static shared array per block: every thread adds to it across two barriers; the result is per block.
__global__ void static_shared_kernel(int* out) {
  RF_SHARED(int, acc, [4]);
  if (threadIdx.x < 4) acc[threadIdx.x] = int(blockIdx.x);
  __syncthreads();
  if (threadIdx.x == 0)
    for (int i = 0; i < 4; ++i) acc[i] += 100;
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc[threadIdx.x % 4];
}

// Changes its own parameter: other threads must still see the launch's value.
__global__ void param_kernel(int v, int* out) {
  out[threadIdx.x] = v;
  v = -1;
  (void)v;
}

// Every thread adds to a global counter and a shared one; thread 0 publishes the shared total.
__global__ void atomic_kernel(int* global_count, unsigned long long* totals) {
  RF_SHARED(unsigned long long, block_total, [1]);
  if (threadIdx.x == 0) block_total[0] = 0;
  __syncthreads();
  const int before = atomicAdd(global_count, 1);
  atomicAdd(&block_total[0], static_cast<unsigned long long>(before >= 0 ? 1 : 0));
  __syncthreads();
  if (threadIdx.x == 0) totals[blockIdx.x] = block_total[0];
}

// Thread 0 returns before the barrier the others wait at.
__global__ void divergent_kernel(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(CudaEmu, CoordinatesCoverTheGridOnce) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> out(size_t(3 * 2 * 2) * 4 * 3 * 2, 0);
  int bad = 0;
  RF_LAUNCH(grid, block, 0, nullptr, coords_kernel)(out.data(), &bad);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(bad, 0);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](int v) { return v == 1; }));
}

TEST(CudaEmu, BarrierMakesOtherThreadsWritesVisible) {
  const int n = 64, blocks = 3;
  std::vector<float> out(size_t(n) * blocks);
  RF_LAUNCH(blocks, n, n * sizeof(float), nullptr, neighbour_kernel<true>)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < n; ++t) EXPECT_EQ(out[size_t(b * n + t)], float(b * 1000 + (t + 1) % n));
}

TEST(CudaEmu, WithoutTheBarrierSomeThreadReadsUnwrittenSharedMemory) {
  const int n = 64;
  std::vector<float> out(n);
  RF_LAUNCH(1, n, n * sizeof(float), nullptr, neighbour_kernel<false>)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  // Shared memory starts as 0xFF bytes (NaN); the first thread to run reads a neighbour that has not run yet.
  const auto nans = std::count_if(out.begin(), out.end(), [](float v) { return std::isnan(v); });
  EXPECT_GT(nans, 0) << "every thread saw its neighbour's write although there is no barrier";
}

TEST(CudaEmu, RunOrderIsShuffledBetweenBarriers) {
  const int n = 64;
  std::vector<int> first(n), second(n);
  g_ticket = 0;
  RF_LAUNCH(1, n, 0, nullptr, order_kernel)(first.data(), second.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<int> want(n);
  std::iota(want.begin(), want.end(), 0);
  std::vector<int> a = first, b = second;
  for (int& v : b) v -= n;  // the second phase starts after all n first tickets: the barrier held
  EXPECT_TRUE(std::is_permutation(a.begin(), a.end(), want.begin()));
  EXPECT_TRUE(std::is_permutation(b.begin(), b.end(), want.begin()));
  EXPECT_NE(a, want) << "threads ran in index order";
  EXPECT_NE(a, b) << "the same order after the barrier";
}

TEST(CudaEmu, StaticSharedArraysArePerBlock) {
  const int n = 8, blocks = 5;
  std::vector<int> out(size_t(n) * blocks);
  RF_LAUNCH(blocks, n, 0, nullptr, static_shared_kernel)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < n; ++t) EXPECT_EQ(out[size_t(b * n + t)], b + 100);
}

TEST(CudaEmu, ParametersAreCopiedPerThread) {
  std::vector<int> out(32, 0);
  RF_LAUNCH(1, 32, 0, nullptr, param_kernel)(7, out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](int v) { return v == 7; }));
}

TEST(CudaEmu, AtomicAddCountsEveryThread) {
  int count = 0;
  std::vector<unsigned long long> totals(6, 0);
  RF_LAUNCH(6, 96, 0, nullptr, atomic_kernel)(&count, totals.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(count, 6 * 96);
  for (unsigned long long t : totals) EXPECT_EQ(t, 96u);
  float f = 0.5f;
  EXPECT_EQ(atomicAdd(&f, 1.0f), 0.5f);  // returns the old value
  EXPECT_EQ(f, 1.5f);
}

TEST(CudaEmu, BadLaunchesFailAsOnTheDevice) {
  std::vector<float> out(2048);
  RF_LAUNCH(1, 1025, 0, nullptr, neighbour_kernel<true>)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the launch error is not sticky";
  RF_LAUNCH(dim3(1, 65536), 32, 0, nullptr, neighbour_kernel<true>)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  RF_LAUNCH(1, 32, 48 * 1024 + 4, nullptr, neighbour_kernel<true>)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  std::vector<int> iout(32, 0);
  RF_LAUNCH(1, 32, 0, nullptr, divergent_kernel)(iout.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  try {
    RF_LAUNCH(1, 32, 0, nullptr, divergent_kernel)(iout.data());
    CUDA_CHECK(cudaGetLastError());
    ADD_FAILURE() << "CUDA_CHECK did not throw on a divergent barrier";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaErrorLaunchFailure"), std::string::npos) << e.what();
  }
}

TEST(CudaEmu, RuntimeOnHostMemory) {
  int count = 0, sms = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 1);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(sms, rf_emu::kEmuMultiprocessors);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 16 * sizeof(float)), cudaSuccess);
  const std::vector<float> h(16, 2.5f);
  ASSERT_EQ(cudaMemcpy(d, h.data(), 16 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<float> back(16, 0.0f);
  ASSERT_EQ(cudaMemcpy(back.data(), d, 16 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, h);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  cudaStream_t s;
  cudaEvent_t e0, e1;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e0), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e1), cudaSuccess);
  cudaEventRecord(e0, s);
  cudaEventRecord(e1, s);
  float ms = -1.0f;
  ASSERT_EQ(cudaEventElapsedTime(&ms, e0, e1), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
}

}  // namespace

// The GPU backend's runtime side (cuda/runtime.h). Checked by tests/gpu/test_models_gpu.cpp.
#include "cuda/runtime.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "cuda/cuda_check.h"
#include "host/core/tensor.h"

namespace rf {

namespace {

// Exact-size free lists of 512-byte-rounded blocks: a training step asks for the same sizes every step, and
// cudaFree synchronises the device, so blocks are kept and reused. Under the emulation nothing is cached.
struct DeviceCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;
  int64_t live = 0, peak = 0, cached = 0;
};
DeviceCache& cache() {
  static DeviceCache* c = new DeviceCache;  // never destroyed: tensors may outlive static destruction
  return *c;
}

constexpr bool kCaching =
#if defined(RF_CUDA_EMU)
    false;
#else
    true;
#endif

size_t rounded(size_t bytes) { return (std::max<size_t>(bytes, 1) + 511) / 512 * 512; }

void* device_alloc(size_t bytes) {
  const size_t r = rounded(bytes);
  DeviceCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(r);
    if (kCaching && it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= int64_t(r);
      c.live += int64_t(r);
      c.peak = std::max(c.peak, c.live);
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, r);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    gpu_release_cache();  // the cached blocks may be what is missing
    e = cudaMalloc(&p, r);
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    const GpuMemoryStats s = gpu_memory_stats();
    RF_FAIL("device memory: cudaMalloc of {} bytes failed ({}) with {} MiB in use by tensors (peak {} MiB): use a "
            "smaller --batch", r, cudaGetErrorString(e), s.live_bytes >> 20, s.peak_bytes >> 20);
  }
  std::lock_guard<std::mutex> lock(c.mu);
  c.live += int64_t(r);
  c.peak = std::max(c.peak, c.live);
  return p;
}

void device_free(void* p, size_t bytes) {
  const size_t r = rounded(bytes);
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.live -= int64_t(r);
  if (kCaching) {
    c.free_blocks.emplace(r, p);
    c.cached += int64_t(r);
  } else {
    CUDA_CHECK_NOTHROW(cudaFree(p));
  }
}

void device_memset(void* p, int byte, size_t bytes) { CUDA_CHECK(cudaMemsetAsync(p, byte, bytes, nullptr)); }

void device_copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  const cudaMemcpyKind kind = dd == Device::cpu ? (sd == Device::cpu ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                                : (sd == Device::cpu ? cudaMemcpyHostToDevice
                                                                     : cudaMemcpyDeviceToDevice);
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));  // synchronous: a host buffer may be reused right after
}

}  // namespace

void gpu_runtime_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    RF_CHECK(e == cudaSuccess && count > 0, "no CUDA device: {}", e == cudaSuccess ? "the runtime sees none"
                                                                                   : cudaGetErrorString(e));
    DeviceHooks h;
    h.alloc = device_alloc;
    h.free = device_free;
    h.memset = device_memset;
    h.copy = device_copy;
    set_device_hooks(h);
  });
}

bool gpu_emulated() { return !kCaching; }

GpuMemoryStats gpu_memory_stats() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.live, c.peak, c.cached};
}

void gpu_reset_peak() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.peak = c.live;
}

void gpu_release_cache() {
  DeviceCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [bytes, p] : c.free_blocks) CUDA_CHECK_NOTHROW(cudaFree(p));
  c.free_blocks.clear();
  c.cached = 0;
}

namespace {

// Two pinned staging buffers, the upload stream and its events, per thread. Never destroyed (the CUDA context may
// be gone at thread exit).
struct Uploader {
  cudaStream_t stream = nullptr;
  cudaEvent_t compute_done = nullptr;
  struct Slot {
    void* pinned = nullptr;
    size_t bytes = 0;
    cudaEvent_t copied = nullptr;
  } slot[2];
  int next = 0;
  Uploader() {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&compute_done, cudaEventDisableTiming));
    for (Slot& s : slot) CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
  }
};

}  // namespace

Tensor gpu_upload(const Tensor& host) {
  RF_CHECK(host.device() == Device::cpu && host.is_contiguous(), "gpu_upload: {} (expected a contiguous host tensor)",
           host.str());
  gpu_runtime_init();
  thread_local Uploader* up = new Uploader();
  Uploader::Slot& s = up->slot[up->next];
  up->next ^= 1;
  const size_t bytes = host.nbytes();
  CUDA_CHECK(cudaEventSynchronize(s.copied));  // this slot's previous copy has left the staging buffer
  if (s.bytes < bytes) {
    if (s.pinned) CUDA_CHECK(cudaFreeHost(s.pinned));
    s.pinned = nullptr;
    CUDA_CHECK(cudaMallocHost(&s.pinned, bytes));
    s.bytes = bytes;
  }
  std::memcpy(s.pinned, host.raw(), bytes);
  Tensor d = Tensor::empty(host.shape(), host.dtype(), Device::cuda);
  CUDA_CHECK(cudaEventRecord(up->compute_done, nullptr));  // after the compute stream's queued work (see header)
  CUDA_CHECK(cudaStreamWaitEvent(up->stream, up->compute_done, 0));
  CUDA_CHECK(cudaMemcpyAsync(d.raw(), s.pinned, bytes, cudaMemcpyHostToDevice, up->stream));
  CUDA_CHECK(cudaEventRecord(s.copied, up->stream));
  CUDA_CHECK(cudaStreamWaitEvent(nullptr, s.copied, 0));  // kernels reading d start after the copy
  return d;
}

void gpu_synchronize() {
  CUDA_CHECK(cudaDeviceSynchronize());
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace rf

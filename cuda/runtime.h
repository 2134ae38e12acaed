// The GPU backend's runtime side: device memory for tensors (host/core/tensor.h's DeviceHooks: a caching
// allocator over cudaMalloc, byte fill, copies), the device's memory figures for results, and a synchronise.
// The same source builds against the CUDA runtime (rf_cuda) and the CUDA emulation (rf_cuda_emu, where device
// memory is host memory and nothing is cached, so AddressSanitizer sees every use after free). Plain C++ header.
// Checked by tests/gpu/test_models_gpu.cpp (and every model run with --device cuda).
#pragma once
#include <cstddef>
#include <cstdint>

#include "host/core/tensor.h"

namespace rf {

// Installs the tensor hooks (idempotent, thread-safe). Model::to(Device::cuda) calls it; nothing else must.
void gpu_runtime_init();
// True when this program's GPU backend is the CUDA emulation (the gpu-emu tests).
bool gpu_emulated();

struct GpuMemoryStats {
  int64_t live_bytes = 0;    // tensor bytes in use
  int64_t peak_bytes = 0;    // the most in use since the start or gpu_reset_peak()
  int64_t cached_bytes = 0;  // freed by tensors, kept for reuse (not returned to the driver)
};
GpuMemoryStats gpu_memory_stats();
void gpu_reset_peak();
void gpu_release_cache();  // returns the cached blocks to the driver
void gpu_synchronize();    // waits for the device; throws rf::Error with the runtime's message on a failed kernel

// A host tensor's copy on the device for a training batch: the bytes go through one of two pinned staging buffers
// and a cudaMemcpyAsync on the upload stream, which the compute (default) stream then waits for by an event, so the
// host does not wait for the copy and goes on preparing the next batch (the loaders' workers prepare it anyway).
// The copy is ordered after the work already queued on the compute stream (the device allocator is not
// stream-aware: a block freed there may be reused here), so it overlaps the host's work, not the kernels'.
// Contiguous tensors; thread-safe (one staging pair per thread).
Tensor gpu_upload(const Tensor& host);

}  // namespace rf

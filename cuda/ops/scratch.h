// Private to the kernel files that reduce with CUB (cuda/ops/train_step.cu, cuda/ops/dense_loss.cu): the
// per-host-thread, grow-only device scratch buffer that holds their per-item terms, CUB's temp storage and the
// device scalars copied back, the layout that carves arrays out of it, and the reduction functor of their
// TransformReduce calls. Compiles under nvcc and under the CUDA emulation. Checked through its users' tests,
// tests/gpu/test_train_step_gpu.cpp and tests/gpu/test_dense_loss_gpu.cpp.
#pragma once
#include <algorithm>
#include <cstddef>

#include "cuda/cuda_check.h"

namespace rf {
namespace cuda_scratch {

// A grow-only device buffer per host thread. One buffer serves all of a thread's calls whatever their streams,
// because each function that uses it synchronises its stream before returning: no work on the buffer is in
// flight when the next call takes it.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // Never throws. The status is not checked: at process exit the CUDA runtime may already be unloading
  // (cudaErrorCudartUnloading), and then there is nothing left to free or to report.
  ~Scratch() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  // At least `bytes` on the current device (contents undefined).
  char* get(size_t bytes) {
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    if (ptr_ && bytes <= bytes_ && device == device_) return ptr_;
    const size_t want = std::max(bytes, device == device_ ? 2 * bytes_ : size_t(0));  // doubling: few regrowths
    if (ptr_) CUDA_CHECK(cudaFree(ptr_));
    ptr_ = nullptr, bytes_ = 0;
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), want));
    bytes_ = want, device_ = device;
    return ptr_;
  }

 private:
  char* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_ = -1;
};

// The calling thread's buffer (inline: one per thread for all the files that include this header).
inline Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

// Offsets of the arrays carved out of one scratch buffer, each 256-byte aligned (cudaMalloc's alignment, which
// CUB's temp storage expects).
struct Layout {
  size_t bytes = 0;
  template <typename T>
  size_t add(size_t count) {
    const size_t at = bytes;
    bytes = (bytes + count * sizeof(T) + 255) / 256 * 256;
    return at;
  }
};
template <typename T>
T* at(char* base, size_t offset) {
  return reinterpret_cast<T*>(base + offset);
}

// CUB's reduction functor for TransformReduce (both operands of one type: double sums, int64 counts), callable
// on the device (nvcc) and the host (the emulation's twin).
struct Plus {
  template <typename T>
  __host__ __device__ T operator()(const T& a, const T& b) const {
    return a + b;
  }
};

}  // namespace cuda_scratch
}  // namespace rf

// Checked CUDA / cuRAND / cuDNN calls: CUDA_CHECK(x), CURAND_CHECK(x), CUDNN_CHECK(x) throw rf::Error naming
// the call's text, the file and line, and the library's error string; CUDA_CHECK_NOTHROW(x) prints the same
// to stderr instead (for destructors). After a kernel launch: CUDA_CHECK(cudaGetLastError()).
// Used by cuda/**/*.cu and tests/gpu; exercised by tests/gpu/test_philox_gpu.cpp.
// Under RF_CUDA_EMU the runtime is the host emulation (cuda/emu/cuda_emu.h, via cuda/launch.h).
#pragma once
#if !defined(RF_CUDA_EMU)
#include <cuda_runtime.h>
#include <curand.h>
#endif
#include "cuda/launch.h"

#include <cstdio>

#include "host/core/check.h"

// cuDNN is optional: CUDNN_CHECK exists only where cudnn.h does (the targets that use it link cuDNN); never in
// the emulation, which runs no vendor library.
#if defined(__has_include) && !defined(RF_CUDA_EMU)
#if __has_include(<cudnn.h>)
#include <cudnn.h>
#define RF_HAVE_CUDNN_HEADER 1
#endif
#endif

namespace rf {

// cuRAND has no error-string function; names from curand.h's enum curandStatus.
inline const char* curand_status_string(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH (header and library differ)";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED (generator not initialized)";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR (generator is wrong type)";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE (argument out of range)";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE (kernel launch failed)";
    case CURAND_STATUS_PREEXISTING_FAILURE: return "CURAND_STATUS_PREEXISTING_FAILURE";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED (CUDA init failed)";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
  }
  return "unknown curandStatus_t";
}

}  // namespace rf

#define CUDA_CHECK(x)                                                                                      \
  do {                                                                                                     \
    const cudaError_t rf_cuda_err_ = (x);                                                                  \
    if (rf_cuda_err_ != cudaSuccess)                                                                       \
      throw ::rf::Error(fmt::format("CUDA call `{}` failed at {}:{}: {} ({})", #x, __FILE__, __LINE__,    \
                                    cudaGetErrorString(rf_cuda_err_), cudaGetErrorName(rf_cuda_err_)));   \
  } while (0)

// For destructors and other places that must not throw: report and continue.
#define CUDA_CHECK_NOTHROW(x)                                                                              \
  do {                                                                                                     \
    const cudaError_t rf_cuda_err_ = (x);                                                                  \
    if (rf_cuda_err_ != cudaSuccess)                                                                       \
      std::fprintf(stderr, "CUDA call `%s` failed at %s:%d: %s (%s)\n", #x, __FILE__, __LINE__,           \
                   cudaGetErrorString(rf_cuda_err_), cudaGetErrorName(rf_cuda_err_));                     \
  } while (0)

#define CURAND_CHECK(x)                                                                                    \
  do {                                                                                                     \
    const curandStatus_t rf_curand_st_ = (x);                                                              \
    if (rf_curand_st_ != CURAND_STATUS_SUCCESS)                                                            \
      throw ::rf::Error(fmt::format("cuRAND call `{}` failed at {}:{}: {} ({})", #x, __FILE__, __LINE__,  \
                                    ::rf::curand_status_string(rf_curand_st_), int(rf_curand_st_)));       \
  } while (0)

#if defined(RF_HAVE_CUDNN_HEADER)
#define CUDNN_CHECK(x)                                                                                     \
  do {                                                                                                     \
    const cudnnStatus_t rf_cudnn_st_ = (x);                                                                \
    if (rf_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                              \
      throw ::rf::Error(fmt::format("cuDNN call `{}` failed at {}:{}: {} ({})", #x, __FILE__, __LINE__,   \
                                    cudnnGetErrorString(rf_cudnn_st_), int(rf_cudnn_st_)));                \
  } while (0)
#endif

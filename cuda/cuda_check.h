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

// Throws ::rf::Error naming the call, the place and the library's status text and code when a call's status is not
// `ok`. #x comes from the public macro so the message shows the call as written.
#define RF_STATUS_CHECK_(type, call, text, ok, lib, status_name, status_code)                                \
  do {                                                                                                     \
    const type rf_status_ = call;                                                                          \
    if (rf_status_ != ok)                                                                                  \
      throw ::rf::Error(fmt::format("{} call `{}` failed at {}:{}: {} ({})", lib, text, __FILE__, __LINE__, \
                                    status_name(rf_status_), status_code(rf_status_)));                    \
  } while (0)

#define CUDA_CHECK(x) \
  RF_STATUS_CHECK_(cudaError_t, (x), #x, cudaSuccess, "CUDA", cudaGetErrorString, cudaGetErrorName)

// For destructors and other places that must not throw: report and continue.
#define CUDA_CHECK_NOTHROW(x)                                                                              \
  do {                                                                                                     \
    const cudaError_t rf_cuda_err_ = (x);                                                                  \
    if (rf_cuda_err_ != cudaSuccess)                                                                       \
      std::fprintf(stderr, "CUDA call `%s` failed at %s:%d: %s (%s)\n", #x, __FILE__, __LINE__,           \
                   cudaGetErrorString(rf_cuda_err_), cudaGetErrorName(rf_cuda_err_));                     \
  } while (0)

#define CURAND_CHECK(x) \
  RF_STATUS_CHECK_(curandStatus_t, (x), #x, CURAND_STATUS_SUCCESS, "cuRAND", ::rf::curand_status_string, int)

#if defined(RF_HAVE_CUDNN_HEADER)
#define CUDNN_CHECK(x) RF_STATUS_CHECK_(cudnnStatus_t, (x), #x, CUDNN_STATUS_SUCCESS, "cuDNN", cudnnGetErrorString, int)
#endif

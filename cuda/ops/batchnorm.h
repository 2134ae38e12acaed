// CUDA twin of host/ops/batchnorm.h (PyTorch's BatchNorm2d semantics): train-mode forward with batch statistics
// and the running-statistics update, eval-mode forward, train-mode backward. One block per channel; the sums
// over (N, HW) are fixed-order block reductions in shared memory, so a run repeats its bits. What the GPU model
// path runs where cuDNN is absent (the CUDA emulation, a build without cuDNN), and the twin the cuDNN path is
// checked against on a device. Plain C++ header. Checked by tests/gpu/test_batchnorm_gpu.cpp against the
// _ref ops.
#pragma once
#include "host/ops/batchnorm.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// The layouts and semantics of the _cpu ops of host/ops/batchnorm.h; all pointers on the device; running_* may
// be null (not updated). The shape is checked on the host (check_batchnorm_shape) before anything launches.
void batchnorm_forward_train_cuda(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  float* y, float* save_mean, float* save_invstd, float* running_mean,
                                  float* running_var, cudaStream_t stream = nullptr);
void batchnorm_forward_eval_cuda(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 const float* running_mean, const float* running_var, float* y,
                                 cudaStream_t stream = nullptr);
void batchnorm_backward_cuda(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                             const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                             float* dbeta, cudaStream_t stream = nullptr);

}  // namespace rf

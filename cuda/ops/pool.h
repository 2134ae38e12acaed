// CUDA twin of host/ops/pool.h: 3x3 (any k) max pool and the NL module's mixed average pool, forward and
// backward, NCHW, outputs (and output gradients) with a batch stride y_nstride so they can live in a channel
// slice of a concatenated tensor. Plain C++ header. Checked by tests/gpu/test_pool_gpu.cpp against the CPU
// reference (max pool bit-exact, mixed pool to the rounding bound of a different summation order).
#pragma once
#include "host/ops/pool.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// x (N, C, H, W) -> y (N, C, OH, OW) at batch stride s.y_batch_stride(); padding never wins the max.
void max_pool2d_forward_cuda(const Pool2dShape& s, const float* x, float* y, cudaStream_t stream = nullptr);
// dx (N, C, H, W) overwritten: each input gathers the dy of the windows whose first maximum it is, in the
// reference's window order, so dx equals the CPU's bit for bit (no atomics).
void max_pool2d_backward_cuda(const Pool2dShape& s, const float* x, const float* dy, float* dx,
                              cudaStream_t stream = nullptr);

// Mixed average pool (MODELS.md, branch c) through per-group separable box sums staged in shared memory.
void mixed_avg_pool_forward_cuda(const MixedPoolShape& s, const float* x, float* y, cudaStream_t stream = nullptr);
// dx (N, C, H, W) overwritten: the adjoint box sum of dy / k^2 (minus dy at stride 1).
void mixed_avg_pool_backward_cuda(const MixedPoolShape& s, const float* dy, float* dx,
                                  cudaStream_t stream = nullptr);

}  // namespace rf

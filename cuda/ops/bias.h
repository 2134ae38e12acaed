// CUDA: a conv's bias, forward (y += b per output channel) and backward (db = the sum of dy over the batch and
// the plane), for outputs that live in a channel slice of a wider buffer (batch stride s.y_batch_stride()).
// The CPU twins are the conv's own: conv2d_forward_* adds the bias, conv2d_backward_weight_ref returns db
// (host/ops/conv.h). Used by the cuDNN wrapper (cuda/cudnn_ops.cu) around cuDNN's convolutions. Plain C++
// header. Checked by tests/gpu/test_bias_gpu.cpp (emulated in CI under label gpu-emu, on a device under gpu).
#pragma once
#include "host/ops/conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// y[n, k, :] += b[k]: the same float additions as the CPU, so bit-exact.
void bias_add_cuda(const Conv2dShape& s, const float* b, float* y, cudaStream_t stream = nullptr);
// db[k] = sum over n and the plane of dy[n, k, :], overwritten: one block per channel, a fixed strided share per
// thread, then a tree reduction in shared memory, so the sum's order (and rounding) is the same on every run.
void bias_grad_cuda(const Conv2dShape& s, const float* dy, float* db, cudaStream_t stream = nullptr);

}  // namespace rf

// CUDA twin of host/ops/conv.h for any conv the models hold (ResNet-18's 3x3 and 1x1 convs, the stem, the NL
// modules' grouped 1x1 conv, the dense heads): forward (+ bias), input gradient and weight (+ bias) gradient,
// NCHW, groups, stride, padding, outputs in a channel slice (s.y_nstride). Our own direct kernels: what the GPU
// model path runs where cuDNN is absent (the CUDA emulation, a build without cuDNN) and the twin the cuDNN path
// is checked against on a device; cuDNN is the fast path. Forward and input gradient: every output is one
// thread's double sum in the reference's order, so they are bit-identical to conv2d_*_ref<float> whatever the
// launch shape. Weight gradient: one block per weight, a fixed-order tree sum (the same bits on every run).
// Plain C++ header. Checked by tests/gpu/test_conv_gpu.cpp against conv2d_*_ref (emulated in CI under label
// gpu-emu, on a device under gpu).
#pragma once
#include "host/ops/conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// x (N, C, H, W); w (K, C/groups, k, k); b (K) or null; y (N, K, OH, OW) at batch stride s.y_batch_stride().
void conv2d_forward_cuda(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                         cudaStream_t stream = nullptr);
// dy (N, K, OH, OW) at batch stride s.y_batch_stride() -> dx (N, C, H, W), overwritten.
void conv2d_backward_data_cuda(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                               cudaStream_t stream = nullptr);
// x, dy -> dw (K, C/groups, k, k) and db (K) (db may be null), both overwritten.
void conv2d_backward_weight_cuda(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db,
                                 cudaStream_t stream = nullptr);

}  // namespace rf

// CUDA twin of host/ops/upsample.h: bilinear upsampling (align_corners=False, PyTorch's taps: bilinear_taps) and
// its backward, NCHW, for the dense heads (the segmentation merge and the detection / segmentation head's
// resizes). Same layouts and semantics as the _cpu ops; all pointers on the device. The backward gathers (each
// input cell sums the output cells whose taps reach it, in a fixed order), so it needs no atomics and repeats its
// bits. Plain C++ header. Checked by tests/gpu/test_upsample_gpu.cpp against the _ref ops.
#pragma once
#include "host/ops/upsample.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// x (N, C, H, W) -> y (N, C, Ho, Wo).
void upsample_bilinear_forward_cuda(const UpsampleShape& s, const float* x, float* y, cudaStream_t stream = nullptr);
// dy (N, C, Ho, Wo) -> dx (N, C, H, W), overwritten.
void upsample_bilinear_backward_cuda(const UpsampleShape& s, const float* dy, float* dx,
                                     cudaStream_t stream = nullptr);

}  // namespace rf

// CUDA twins of host/ops/dense_loss.h's losses (a), (b), (c): CenterNet's focal loss on heatmap logits, masked L1
// for the size / offset maps and pixel-wise softmax cross-entropy with an ignore label, each returning the loss and
// writing its gradient (dpred may be null: loss only). The per-cell terms are computed per thread; the sums (the
// loss, the count of positives / mask cells / counted pixels, the bad-input flags) go through CUB's device-wide
// reduction (cuda/cub.h), never atomics. Bad input (a target above 1 or a non-binary mask cell, a label >= C that
// is not the ignore label) throws rf::Error naming the first bad cell, as the CPU ops do. Each call synchronises
// its stream to read the loss. Plain C++ header. Checked by tests/gpu/test_dense_loss_gpu.cpp against the _ref ops.
#pragma once
#include <cstdint>

#include "host/ops/dense_loss.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

double centernet_focal_loss_cuda(int N, int K, int H, int W, const float* logits, const float* target,
                                 float* dlogits, cudaStream_t stream = nullptr);
double masked_l1_loss_cuda(int N, int C, int H, int W, const float* pred, const float* target, const float* mask,
                           float* dpred, cudaStream_t stream = nullptr);
double pixel_cross_entropy_cuda(int N, int C, int H, int W, const float* logits, const uint8_t* labels,
                                int ignore_label, float* dlogits, cudaStream_t stream = nullptr);

}  // namespace rf

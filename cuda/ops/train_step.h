// CUDA: what a training step needs besides the layers. Softmax cross-entropy with label smoothing (forward and
// backward, as host/ops/loss.h), the count of correct top-1 predictions, SGD with momentum and weight decay
// (host/models/model.h's SGD::step semantics, gradient scale for clipping) and the sum of squares of a gradient
// (the clipping norm). Sums over the batch / the tensor go through CUB's device-wide reduction (cub::DeviceReduce,
// cuda/cub.h: the real CUB under nvcc, a host twin with the same interface under the CUDA emulation), never
// hand-rolled atomics. Plain C++ header. Checked by tests/gpu/test_train_step_gpu.cpp against the _ref ops.
#pragma once
#include <cstdint>

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// logits (N, C), labels (N) int32 in [0, C) (a label outside throws rf::Error naming the sample and the label,
// checked on the device and reported after the launch), probs (N, C) written (kept for backward). Returns the
// mean loss over the batch (synchronises the stream to read it).
double softmax_cross_entropy_forward_cuda(int N, int C, const float* logits, const int32_t* labels, float* probs,
                                          float label_smoothing = 0.f, cudaStream_t stream = nullptr);
// dlogits = (probs - target) / N.
void softmax_cross_entropy_backward_cuda(int N, int C, const float* probs, const int32_t* labels, float* dlogits,
                                         float label_smoothing = 0.f, cudaStream_t stream = nullptr);
// Samples whose largest logit (the first one on ties, as the CPU's argmax) is their label (synchronises).
int64_t count_correct_cuda(int N, int C, const float* logits, const int32_t* labels, cudaStream_t stream = nullptr);

// sum_i x[i]^2 in double (synchronises).
double sum_squares_cuda(int64_t n, const float* x, cudaStream_t stream = nullptr);
// d = g * grad_scale + weight_decay * w;  v = momentum * v + d;  w -= lr * v   (n floats, in place).
void sgd_update_cuda(int64_t n, float* w, const float* g, float* v, float lr, float momentum, float weight_decay,
                     float grad_scale, cudaStream_t stream = nullptr);

}  // namespace rf

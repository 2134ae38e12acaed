// Softmax cross-entropy over (N, C) logits with integer labels, mean over the batch, optional label
// smoothing (eps spread uniformly over the C classes, as PyTorch). Checked by tests/ops/test_loss.cpp.
#pragma once
#include <cstdint>

namespace rf {

// Returns the mean loss; probs (N, C) receives the softmax (kept for backward). Labels must be in [0, C):
// an out-of-range label throws rf::Error naming the sample and the label.
template <typename T>
double softmax_cross_entropy_forward_ref(int N, int C, const T* logits, const int32_t* labels, T* probs,
                                         float label_smoothing = 0.f);
// dlogits = (probs - target) / N.
template <typename T>
void softmax_cross_entropy_backward_ref(int N, int C, const T* probs, const int32_t* labels, T* dlogits,
                                        float label_smoothing = 0.f);
double softmax_cross_entropy_forward_cpu(int N, int C, const float* logits, const int32_t* labels, float* probs,
                                         float label_smoothing = 0.f);
void softmax_cross_entropy_backward_cpu(int N, int C, const float* probs, const int32_t* labels, float* dlogits,
                                        float label_smoothing = 0.f);

}  // namespace rf

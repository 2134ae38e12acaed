// conv2d: dense and grouped 2-D convolution, NCHW, square kernels, forward and backward.
// Reference: the plain loops in conv.cpp (float and double). Fast path: oneDNN primitives (cached per
// shape), plus our own OpenMP kernel for depthwise convs. Checked by tests/ops/test_conv.cpp.
#pragma once
#include <cstdint>
#include <string>

namespace rf {

struct Conv2dShape {
  int N = 1, C = 1, H = 1, W = 1;  // input (N, C, H, W)
  int K = 1;                       // output channels
  int k = 3;                       // kernel size (k x k)
  int stride = 1, pad = 0, groups = 1;
  int64_t y_nstride = 0;  // elements between samples of y (and dy); 0 = dense K*OH*OW. Lets a conv
                          // write straight into a channel slice of a concatenated tensor.

  int OH() const { return (H + 2 * pad - k) / stride + 1; }
  int OW() const { return (W + 2 * pad - k) / stride + 1; }
  int64_t y_batch_stride() const { return y_nstride ? y_nstride : int64_t(K) * OH() * OW(); }
  int64_t weight_numel() const { return int64_t(K) * (C / groups) * k * k; }
  int64_t macs() const { return int64_t(N) * K * OH() * OW() * (C / groups) * k * k; }
  void validate() const;  // throws rf::Error naming the bad field
  std::string str() const;  // "conv2d(N=2,C=64,H=17,W=17,K=64,k=3,s=2,p=1,g=4)"
};

// x (N, C, H, W); w (K, C/groups, k, k); b (K) or nullptr; y (N, K, OH, OW) with y_nstride.
template <typename T>
void conv2d_forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);
// dy (N, K, OH, OW) -> dx (N, C, H, W), overwritten.
template <typename T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* dy, const T* w, T* dx);
// x, dy -> dw (K, C/groups, k, k) and db (K) (db may be nullptr), both overwritten.
template <typename T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db);

void conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db);

}  // namespace rf

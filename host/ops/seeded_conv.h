// Seeded conv: a conv whose weights are non-learnable, regenerated from (layer seed, weight index) with
// Philox4x32-10 and the exact normal transform of host/core/philox.h; optionally followed by a fused ReLU
// (the NL module's branch a). Backward gives the input gradient only: the weights are never trained.
// Checked by tests/ops/test_seeded_conv.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "host/ops/conv.h"

namespace rf {

struct SeededConvSpec {
  uint64_t seed = 0;
  int C_in = 1, C_out = 1;  // C_out is C_nl in MODELS.md
  int k = 3, stride = 1, pad = 1, groups = 1;
  bool relu = true;  // fused ReLU on the output

  int64_t weight_numel() const { return int64_t(C_out) * (C_in / groups) * k * k; }
  void validate() const;  // throws rf::Error naming the bad field
  // Kaiming-normal, fan_out mode, ReLU gain: std = sqrt(2 / (C_out * k * k)), correctly rounded in float.
  float weight_std() const;
  Conv2dShape conv_shape(int N, int H, int W, int64_t y_nstride = 0) const;
  std::string str() const;
};

// Materialises the weights, (C_out, C_in/groups, k, k) row-major: w[i] = std * normal(seed, i).
void seeded_conv_weights(const SeededConvSpec& spec, float* w);

// y = [relu](conv(x, W(seed))). w are the materialised weights (from seeded_conv_weights).
template <typename T>
void seeded_conv_forward_ref(const SeededConvSpec& spec, int N, int H, int W, const T* x, const float* w,
                             T* y, int64_t y_nstride = 0);
// dx = conv^T(dy * [y > 0]) ; y is the forward output (needed for the fused ReLU's mask).
template <typename T>
void seeded_conv_backward_data_ref(const SeededConvSpec& spec, int N, int H, int W, const T* y, const T* dy,
                                   const float* w, T* dx, int64_t y_nstride = 0);

void seeded_conv_forward_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* x, const float* w,
                             float* y, int64_t y_nstride = 0);
void seeded_conv_backward_data_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* y,
                                   const float* dy, const float* w, float* dx, int64_t y_nstride = 0);

// The fused variant that never materialises the weight tensor: for each output-channel group the direct
// kernel asks for that group's (C_out/groups) x (C_in/groups) x k x k weights and they are regenerated from
// (seed, index) into a thread-local buffer, as the CUDA kernel regenerates them in shared memory. Equal to
// seeded_conv_forward_cpu up to summation order (bit-equal to the direct kernel on materialised weights).
void seeded_conv_forward_regen_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* x, float* y,
                                   int64_t y_nstride = 0);
// out[j] = sigma * seeded_normal(seed, i0 + j) for j < n: any slice of a layer's weights, the same bits as the
// corresponding slice of seeded_conv_weights.
void seeded_weights_slice(uint64_t seed, float sigma, int64_t i0, int64_t n, float* out);

}  // namespace rf

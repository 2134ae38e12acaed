// Seeded conv (the NL module's branch a): conv weights w[i] = weight_std() * seeded_normal(seed, i), never
// trained; forward = conv (no bias) + optional fused ReLU, backward = the input gradient only.
// The conv itself is host/ops/conv*.cpp's (conv_ref.cpp's loops, conv.cpp's dispatching CPU path); the regenerating
// variant runs the direct kernel with weights produced per group from (seed, index).
// Checked by tests/ops/test_seeded_conv.cpp.
#include "host/ops/seeded_conv.h"

#include <cmath>
#include <vector>

#include "host/core/check.h"
#include "host/core/philox.h"

namespace rf {

void SeededConvSpec::validate() const {
  RF_CHECK(C_in >= 1 && C_out >= 1, "{}: channel counts must be >= 1", str());
  RF_CHECK(k >= 1, "{}: kernel size k={} must be >= 1", str(), k);
  RF_CHECK(stride >= 1, "{}: stride={} must be >= 1", str(), stride);
  RF_CHECK(pad >= 0, "{}: pad={} must be >= 0", str(), pad);
  RF_CHECK(groups >= 1, "{}: groups={} must be >= 1", str(), groups);
  RF_CHECK(C_in % groups == 0, "{}: C_in={} is not a multiple of groups={}", str(), C_in, groups);
  RF_CHECK(C_out % groups == 0, "{}: C_out={} is not a multiple of groups={}", str(), C_out, groups);
}

// sqrt(2 / fan_out) with fan_out = C_out * k * k: one correctly rounded division and one correctly rounded
// square root in float, so that every backend (and the CUDA side, with its IEEE __fdiv_rn / __fsqrt_rn)
// gets the same bits. fan_out < 2^24 is exact in float.
float SeededConvSpec::weight_std() const {
  const float fan_out = float(int64_t(C_out) * k * k);
  return std::sqrt(2.0f / fan_out);
}

Conv2dShape SeededConvSpec::conv_shape(int N, int H, int W, int64_t y_nstride) const {
  Conv2dShape s;
  s.N = N, s.C = C_in, s.H = H, s.W = W, s.K = C_out, s.k = k, s.stride = stride, s.pad = pad;
  s.groups = groups, s.y_nstride = y_nstride;
  return s;
}

std::string SeededConvSpec::str() const {
  return fmt::format("seeded_conv(seed={},C_in={},C_out={},k={},s={},p={},g={}{})", seed, C_in, C_out, k, stride,
                     pad, groups, relu ? ",relu" : "");
}

void seeded_weights_slice(uint64_t seed, float sigma, int64_t i0, int64_t n, float* out) {
  RF_CHECK(i0 >= 0 && n >= 0, "seeded_weights_slice: bad range [{}, {})", i0, i0 + n);
  int64_t i = i0;
  const int64_t end = i0 + n;
  while (i < end) {  // one Philox block gives the 4 normals of indices 4b .. 4b+3
    float z[4];
    const int64_t b = i >> 2;
    seeded_normal4(seed, uint64_t(b), z);
    for (int64_t j = i - 4 * b; j < 4 && i < end; ++j, ++i) out[i - i0] = sigma * z[j];
  }
}

void seeded_conv_weights(const SeededConvSpec& spec, float* w) {
  spec.validate();
  seeded_normal_fill(spec.seed, spec.weight_std(), spec.weight_numel(), w);
}

template <typename T>
void seeded_conv_forward_ref(const SeededConvSpec& spec, int N, int H, int W, const T* x, const float* w, T* y,
                             int64_t y_nstride) {
  spec.validate();
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  const std::vector<T> wt(w, w + spec.weight_numel());
  if (spec.relu) conv2d_forward_relu_ref<T>(s, x, wt.data(), nullptr, y);
  else conv2d_forward_ref<T>(s, x, wt.data(), nullptr, y);
}

template <typename T>
void seeded_conv_backward_data_ref(const SeededConvSpec& spec, int N, int H, int W, const T* y, const T* dy,
                                   const float* w, T* dx, int64_t y_nstride) {
  spec.validate();
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  const std::vector<T> wt(w, w + spec.weight_numel());
  if (spec.relu) conv2d_backward_data_relu_ref<T>(s, y, dy, wt.data(), dx);
  else conv2d_backward_data_ref<T>(s, dy, wt.data(), dx);
}

template void seeded_conv_forward_ref<float>(const SeededConvSpec&, int, int, int, const float*, const float*,
                                             float*, int64_t);
template void seeded_conv_forward_ref<double>(const SeededConvSpec&, int, int, int, const double*, const float*,
                                              double*, int64_t);
template void seeded_conv_backward_data_ref<float>(const SeededConvSpec&, int, int, int, const float*,
                                                   const float*, const float*, float*, int64_t);
template void seeded_conv_backward_data_ref<double>(const SeededConvSpec&, int, int, int, const double*,
                                                    const double*, const float*, double*, int64_t);

void seeded_conv_forward_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* x, const float* w,
                             float* y, int64_t y_nstride) {
  spec.validate();
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  if (spec.relu) conv2d_forward_relu_cpu(s, x, w, nullptr, y);
  else conv2d_forward_cpu(s, x, w, nullptr, y);
}

void seeded_conv_backward_data_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* y,
                                   const float* dy, const float* w, float* dx, int64_t y_nstride) {
  spec.validate();
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  if (spec.relu) conv2d_backward_data_relu_cpu(s, y, dy, w, dx);
  else conv2d_backward_data_cpu(s, dy, w, dx);
}

void seeded_conv_forward_regen_cpu(const SeededConvSpec& spec, int N, int H, int W, const float* x, float* y,
                                   int64_t y_nstride) {
  spec.validate();
  const Conv2dShape s = spec.conv_shape(N, H, W, y_nstride);
  const float sigma = spec.weight_std();
  const int64_t per_group = spec.weight_numel() / spec.groups;  // group g's weights are one contiguous slice
  conv2d_forward_direct_cpu_fn(
      s, x, [&](int g, float* w_g) { seeded_weights_slice(spec.seed, sigma, g * per_group, per_group, w_g); },
      nullptr, y, spec.relu);
}

}  // namespace rf

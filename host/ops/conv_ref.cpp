// conv2d reference: the plain loops (float and double, double accumulation) that every fast path is checked
// against, and the fused-ReLU variants. Checked by tests/ops/test_conv.cpp (the double reference against
// finite differences; every CPU algorithm against it over a sweep of shapes).
#include <algorithm>
#include <vector>

#include "host/ops/conv.h"

namespace rf {

namespace {
template <typename T>
void forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y, bool relu) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int n = 0; n < s.N; ++n)
    for (int ko = 0; ko < s.K; ++ko) {
      const int g = ko / Kg;
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double acc = b ? double(b[ko]) : 0.0;
          for (int c = 0; c < Cg; ++c)
            for (int kh = 0; kh < k; ++kh) {
              const int ih = oh * s.stride - s.pad + kh;
              if (ih < 0 || ih >= s.H) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int iw = ow * s.stride - s.pad + kw;
                if (iw < 0 || iw >= s.W) continue;
                acc += double(x[((int64_t(n) * s.C + g * Cg + c) * s.H + ih) * s.W + iw]) *
                       double(w[((int64_t(ko) * Cg + c) * k + kh) * k + kw]);
              }
            }
          if (relu && acc < 0) acc = 0;
          y[n * ys + (int64_t(ko) * OH + oh) * OW + ow] = T(acc);
        }
    }
}

// Gather form: dx[ih][iw] collects every (oh, ow, kh, kw) with oh*stride - pad + kh == ih.
template <typename T>
void backward_data_ref(const Conv2dShape& s, const T* y, const T* dy, const T* w, T* dx) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int n = 0; n < s.N; ++n)
    for (int ci = 0; ci < s.C; ++ci) {
      const int g = ci / Cg, c = ci % Cg;
      for (int ih = 0; ih < s.H; ++ih)
        for (int iw = 0; iw < s.W; ++iw) {
          double acc = 0;
          for (int o = 0; o < Kg; ++o) {
            const int ko = g * Kg + o;
            for (int kh = 0; kh < k; ++kh) {
              const int th = ih + s.pad - kh;
              if (th < 0 || th % s.stride) continue;
              const int oh = th / s.stride;
              if (oh >= OH) continue;
              for (int kw = 0; kw < k; ++kw) {
                const int tw = iw + s.pad - kw;
                if (tw < 0 || tw % s.stride) continue;
                const int ow = tw / s.stride;
                if (ow >= OW) continue;
                const int64_t yi = n * ys + (int64_t(ko) * OH + oh) * OW + ow;
                if (y && !(y[yi] > 0)) continue;  // the fused ReLU's mask
                acc += double(dy[yi]) * double(w[((int64_t(ko) * Cg + c) * k + kh) * k + kw]);
              }
            }
          }
          dx[((int64_t(n) * s.C + ci) * s.H + ih) * s.W + iw] = T(acc);
        }
    }
}
}  // namespace

template <typename T>
void conv2d_forward_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  forward_ref(s, x, w, b, y, false);
}
template <typename T>
void conv2d_forward_relu_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y) {
  forward_ref(s, x, w, b, y, true);
}
template <typename T>
void conv2d_backward_data_ref(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  backward_data_ref<T>(s, nullptr, dy, w, dx);
}
template <typename T>
void conv2d_backward_data_relu_ref(const Conv2dShape& s, const T* y, const T* dy, const T* w, T* dx) {
  backward_data_ref<T>(s, y, dy, w, dx);
}

template <typename T>
void conv2d_backward_weight_ref(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* db) {
  s.validate();
  const int OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups, Kg = s.K / s.groups, k = s.k;
  const int64_t ys = s.y_batch_stride();
  for (int ko = 0; ko < s.K; ++ko) {
    const int g = ko / Kg;
    for (int c = 0; c < Cg; ++c)
      for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
          double acc = 0;
          for (int n = 0; n < s.N; ++n)
            for (int oh = 0; oh < OH; ++oh) {
              const int ih = oh * s.stride - s.pad + kh;
              if (ih < 0 || ih >= s.H) continue;
              for (int ow = 0; ow < OW; ++ow) {
                const int iw = ow * s.stride - s.pad + kw;
                if (iw < 0 || iw >= s.W) continue;
                acc += double(dy[n * ys + (int64_t(ko) * OH + oh) * OW + ow]) *
                       double(x[((int64_t(n) * s.C + g * Cg + c) * s.H + ih) * s.W + iw]);
              }
            }
          dw[((int64_t(ko) * Cg + c) * k + kh) * k + kw] = T(acc);
        }
    if (db) {
      double acc = 0;
      for (int n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < int64_t(OH) * OW; ++i) acc += double(dy[n * ys + int64_t(ko) * OH * OW + i]);
      db[ko] = T(acc);
    }
  }
}

#define RF_CONV_INSTANTIATE(T)                                                                              \
  template void conv2d_forward_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);                \
  template void conv2d_forward_relu_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);           \
  template void conv2d_backward_data_ref<T>(const Conv2dShape&, const T*, const T*, T*);                    \
  template void conv2d_backward_data_relu_ref<T>(const Conv2dShape&, const T*, const T*, const T*, T*);     \
  template void conv2d_backward_weight_ref<T>(const Conv2dShape&, const T*, const T*, T*, T*);
RF_CONV_INSTANTIATE(float)
RF_CONV_INSTANTIATE(double)
#undef RF_CONV_INSTANTIATE

}  // namespace rf

// Private to the conv op (host/ops/conv*.cpp, not to be included elsewhere): what its kernel families share
// and the entry points through which the dispatcher (conv.cpp) reaches them: the direct kernel
// (conv_direct.cpp), the 1x1 GEMM kernels (conv_gemm1x1.cpp) and oneDNN (conv_onednn.cpp). Each entry point
// takes a validated shape. Covered by tests/ops/test_conv.cpp (every algorithm against the reference).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "host/core/parallel.h"
#include "host/ops/conv.h"

namespace rf::conv_detail {

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// Below ~128K MACs (tens of microseconds on one core) waking the other threads costs more than it saves.
inline bool parallel_worth(const Conv2dShape& s) { return worth_threading(s.macs(), int64_t(1) << 17); }

// dw = sum_t part[t][0, wn), db = sum_t part[t][wn, wn + K) (db may be null) over the nthr per-thread partial
// sums of a weight gradient, added in thread order: the same bits on every run.
inline void add_thread_parts(const std::vector<float>& part, int nthr, int64_t wn, int K, float* dw, float* db) {
  std::memset(dw, 0, sizeof(float) * wn);
  if (db) std::memset(db, 0, sizeof(float) * K);
  for (int t = 0; t < nthr; ++t) {
    const float* p = part.data() + int64_t(t) * (wn + K);
    for (int64_t i = 0; i < wn; ++i) dw[i] += p[i];
    if (db)
      for (int i = 0; i < K; ++i) db[i] += p[wn + i];
  }
}

// conv_direct.cpp (relu_y: dy masked by [relu_y > 0], the fused ReLU's backward)
void direct_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu);
void direct_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y);
// The general kernel's input gradient, never the 3x3 path (conv2d_backward_data_direct_general_cpu).
void direct_backward_data_general(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                  const float* relu_y);
void direct_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db);

// conv_direct3x3.cpp: the direct kernel's path for 3x3 / pad 1 / stride 1-2 / C/groups <= 4 (AVX-512 builds),
// bit-identical to conv_direct.cpp's general kernel; direct_forward/direct_backward_data take it where it applies
// (pass forward or backward_data; where it is faster, measured).
bool direct3x3_applies(const Conv2dShape& s, ConvPass pass);
void direct3x3_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu);
void direct3x3_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y);

// conv_gemm1x1.cpp: only for the shapes gemm_applies() accepts. shuffled: y (dy) holds the output channels after
// a channel shuffle over the conv's groups (conv2d_forward_shuffled_cpu).
inline bool gemm_applies(const Conv2dShape& s) { return s.k == 1 && s.stride == 1 && s.pad == 0; }
// The plane of output channel c (groups G of Kg channels) in y: c itself, or its place after the shuffle
// (channel_shuffle_forward with G groups moves c = i*G + j to j*Kg + i).
inline int64_t out_plane(int c, int G, int Kg, bool shuffled) {
  return shuffled ? int64_t(c % G) * Kg + c / G : int64_t(c);
}
// ep: the eval epilogue applied as each row is written (conv2d_forward_epilogue_cpu; relu must be false).
void gemm1x1_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y, bool relu,
                     bool shuffled = false, const ConvEpilogue* ep = nullptr);
// relu_dx_channels: dx's first channels (per sample) are masked by [dx > 0] as dx held before (in place).
void gemm1x1_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx, const float* relu_y,
                           bool shuffled = false, int relu_dx_channels = 0);
void gemm1x1_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db);

// conv_onednn.cpp: blocked = oneDNN's blocked layouts (dnnl_blocked), else the plain NCHW tensors
std::string dnnl_impl_name(const Conv2dShape& s, ConvPass pass, bool blocked);  // creates the primitive
// dnnl_blocked's forward runs on nhwc activations (oneDNN's brgconv) for this shape: one sample's 3x3 convs with
// outputs of <= 8x8 (conv_onednn.cpp has the measurements).
bool dnnl_nhwc_forward(const Conv2dShape& s);
void dnnl_forward(const Conv2dShape& s, bool blocked, const float* x, const float* w, const float* b, float* y,
                  bool relu, ConvWeightPack* pack = nullptr, bool x_nc16 = false, bool y_nc16 = false);
void dnnl_backward_data(const Conv2dShape& s, bool blocked, const float* dy, const float* w, float* dx,
                        const float* relu_y);
void dnnl_backward_weight(const Conv2dShape& s, bool blocked, const float* x, const float* dy, float* dw,
                          float* db);

}  // namespace rf::conv_detail

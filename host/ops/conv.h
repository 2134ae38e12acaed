// conv2d: ungrouped and grouped 2-D convolution, NCHW, square kernels, forward and backward.
// Reference: the plain loops in conv_ref.cpp (float and double). Fast path, chosen per shape (conv2d_cpu_algo):
// oneDNN primitives (cached per shape), our OpenMP + SIMD direct kernel for depthwise and few-channels-per-
// group convs (the seeded convs), and per-(sample, group) GEMM kernels for 1x1 convs. Checked by
// tests/ops/test_conv.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rf {

struct Conv2dShape {
  int N = 1, C = 1, H = 1, W = 1;  // input (N, C, H, W)
  int K = 1;                       // output channels
  int k = 3;                       // kernel size (k x k)
  int stride = 1, pad = 0, groups = 1;
  int64_t y_nstride = 0;  // elements between samples of y (and dy); 0 = contiguous K*OH*OW. Lets a conv
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

// ---- additions beyond the contract above ----
// Copies of one conv's weights in the layouts the fast path computes on, kept across forward calls by a caller
// whose weights do not change in the meantime (inference: host/models/layers.h's FrozenWeights). Without one,
// the dnnl_blocked path reorders the weights on every call: 35 % of ResNet-18's oneDNN time at batch 1. A pack
// belongs to one weight tensor (its address is checked: another address empties it first); one copy per
// layout; thread-safe. The results are the same bits with or without a pack (tests/ops/test_conv.cpp).
class ConvWeightPack {
 public:
  ConvWeightPack();
  ~ConvWeightPack();
  ConvWeightPack(const ConvWeightPack&) = delete;
  ConvWeightPack& operator=(const ConvWeightPack&) = delete;
  int64_t bytes() const;  // held by the copies
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};
// conv2d_forward_cpu taking its reordered weights from (or adding them to) `pack`; null: as conv2d_forward_cpu.
void conv2d_forward_packed_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                               ConvWeightPack* pack);
// oneDNN's blocked path with the caller's activations in its nChw16c layout (element (n, c, h, w) at
// ((n * C/16 + c/16) * H * W + h * W + w) * 16 + c % 16): x_nc16 / y_nc16 say whether x / y are (else NCHW).
// Consecutive convs (and the eval epilogues between them, host/ops/batchnorm.h) then skip the reorders of
// their activations in and out. C and K multiples of 16, y contiguous. The bits of dnnl_blocked on NCHW.
bool conv2d_nc16_applies(const Conv2dShape& s);
void conv2d_forward_nc16_cpu(const Conv2dShape& s, const float* x, bool x_nc16, const float* w, const float* b,
                             float* y, bool y_nc16, ConvWeightPack* pack);

// Fused ReLU: y = max(conv(x) + b, 0), and its input gradient dx = conv^T(dy * [y > 0]) where y is the
// forward output (y and dy both use s.y_nstride). The seeded conv (NL module branch a) is built on these.
template <typename T>
void conv2d_forward_relu_ref(const Conv2dShape& s, const T* x, const T* w, const T* b, T* y);
template <typename T>
void conv2d_backward_data_relu_ref(const Conv2dShape& s, const T* y, const T* dy, const T* w, T* dx);
void conv2d_forward_relu_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data_relu_cpu(const Conv2dShape& s, const float* y, const float* dy, const float* w,
                                   float* dx);

// The CPU implementations behind conv2d_*_cpu. Each handles every valid shape; conv2d_cpu_algo() is the
// per-shape choice (measured, see conv.cpp), and tests run every algorithm against the reference.
enum class ConvPass { forward, backward_data, backward_weight };
enum class ConvAlgo {
  direct,        // our OpenMP + SIMD kernel: depthwise and few-channels-per-group convs (the seeded convs)
  dnnl_plain,    // oneDNN on the plain NCHW tensors (it picks im2col + jit sgemm)
  dnnl_blocked,  // oneDNN on its blocked layouts (nChw16c), with reorders in and out on every call
  gemm_1x1,      // 1x1 stride-1 convs: our OpenMP loop over (sample, group), one oneDNN sgemm each;
                 // other shapes run dnnl_plain
};
ConvAlgo conv2d_cpu_algo(const Conv2dShape& s, ConvPass pass);
const char* conv_algo_name(ConvAlgo a);
// "direct", or "dnnl_plain:x64:gemm:jit" with oneDNN's implementation name (creates the primitive).
std::string conv2d_cpu_impl_name(const Conv2dShape& s, ConvPass pass);

// relu: fuse max(., 0) into the forward's output. relu_y: when not null, dy is masked by [relu_y > 0].
void conv2d_forward_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* w, const float* b,
                             float* y, bool relu = false, ConvWeightPack* pack = nullptr);
void conv2d_backward_data_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* dy, const float* w,
                                   float* dx, const float* relu_y = nullptr);
void conv2d_backward_weight_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* dy,
                                     float* dw, float* db);

// A grouped 1x1 stride-1 conv followed by a channel shuffle over its groups (the NL module's), the shuffle folded
// into the conv's output indexing: each output row goes straight to its shuffled plane, and the backward reads
// dy's planes through the inverse permutation (Conv1x1WeightGrad(s, true) for the weight gradient). Pure data
// movement moved: the bits of conv2d_*_cpu with channel_shuffle_forward_cpu / channel_shuffle_backward_cpu
// (tests/ops/test_conv.cpp). Only where all three passes run gemm_1x1 (conv1x1_folds_shuffle); y_nstride as usual.
bool conv1x1_folds_shuffle(const Conv2dShape& s);
void conv2d_forward_shuffled_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data_shuffled_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx);

// Eval only: a 1x1 stride-1 conv (with bias b, may be null; shuffled: its output channel shuffle folded in as
// above) whose output goes through the per-channel affine epilogue of an eval BN as each row is written:
//   y[n, o] = act(((conv(x)[n, o] - mean[o]) * scale[o] + shift[o]) (+ res[n, o])),
// o the output channel after the shuffle, res laid out as y (may be null), act ReLU when relu. The bits of
// conv2d_forward_cpu followed by batchnorm_eval_epilogue_cpu (host/ops/batchnorm.h; scale from
// batchnorm_eval_scale) with one pass over the output less (tests/ops/test_conv.cpp). Where the forward runs
// gemm_1x1 (conv1x1_epilogue_applies).
struct ConvEpilogue {
  const float* mean = nullptr;
  const float* scale = nullptr;
  const float* shift = nullptr;
  const float* res = nullptr;
  bool relu = false;
};
bool conv1x1_epilogue_applies(const Conv2dShape& s);
void conv2d_forward_epilogue_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, bool shuffled,
                                 const ConvEpilogue& ep, float* y);

// The 1x1 conv's input gradient written over its input x (x_dx), where x's first relu_channels channels (per
// sample) are a ReLU's output: those channels of the gradient come masked by [x > 0], the ReLU's backward (the
// NL module's branch a). Each (sample, group) item takes the mask of its rows just before overwriting them: no
// mask buffer, no passes over the tensor; the bits of conv2d_backward_data_cpu then the masking. shuffled:
// dy as conv2d_backward_data_shuffled_cpu reads it. Where the input gradient runs gemm_1x1 only
// (conv1x1_backward_data_inplace_applies). Checked by tests/ops/test_conv.cpp.
bool conv1x1_backward_data_inplace_applies(const Conv2dShape& s);
void conv2d_backward_data_inplace_relu_cpu(const Conv2dShape& s, const float* dy, const float* w, float* x_dx,
                                           int relu_channels, bool shuffled);

// The weight gradient of a 1x1 stride-1 conv on the gemm_1x1 path (applies()), summed over consecutive sample
// ranges: add(0, n1) .. add(nk, N), then finish() gives the bits of conv2d_backward_weight_cpu on all N samples
// at once (the same per-thread partial sums, added in the same order). The NL module's backward rebuilds its
// concat range by range and never holds all of it. x, dy: samples n0..n1-1 (x contiguous, dy with s.y_nstride).
class Conv1x1WeightGrad {
 public:
  static bool applies(const Conv2dShape& s);
  // s: all N samples; shuffled: dy's channels come shuffled (conv2d_forward_shuffled_cpu's output)
  explicit Conv1x1WeightGrad(const Conv2dShape& s, bool shuffled = false);
  void add(int n0, int n1, const float* x, const float* dy);
  void finish(float* dw, float* db);  // db may be null

 private:
  Conv2dShape s_;
  bool shuffled_ = false;
  bool row_bias_ = false;  // the bias gradient in oneDNN's gemm convolution's order (8x8-24x24; see add())
  int nthr_ = 1, next_ = 0;
  std::vector<float> part_;  // per-thread partial sums: weights, then bias
  std::vector<float> bias_;  // row_bias_: each channel's one running sum
};

// The direct kernel's forward with weights produced per output-channel group on demand: weights_of_group(g,
// w_g) fills w_g[(K/groups) * (C/groups) * k * k] (group g's slice of the weight tensor) in a thread-local
// buffer; it is called once per work item, never for the whole tensor (the seeded conv regenerates them).
void conv2d_forward_direct_cpu_fn(const Conv2dShape& s, const float* x,
                                  const std::function<void(int g, float* w_g)>& weights_of_group,
                                  const float* b, float* y, bool relu);
// The direct kernel's input gradient by its general kernel, never its 3x3 path (conv_direct3x3.cpp), whose
// results must be these bits (tests/ops/test_conv.cpp); relu_y: dy masked by [relu_y > 0], or null.
void conv2d_backward_data_direct_general_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                             const float* relu_y = nullptr);

}  // namespace rf

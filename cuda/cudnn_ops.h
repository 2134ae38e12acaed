// cuDNN wrapper for the ResNet-18 baseline on the GPU: conv forward / backward data / backward filter (+ bias) with
// per-shape algorithm selection (cuDNN's heuristic ranking, or measured) cached per (shape, pass) and one growing
// workspace, and BN forward (training and inference) and backward, all with PyTorch's semantics as in
// host/ops/conv.h and host/ops/batchnorm.h. Convs go through cuDNN 9's graph (backend) API by default; the
// deprecated legacy API stays selectable (CudnnApi::legacy, or RF_CUDNN_API=legacy) until the graph path has run
// on a GPU (docs/DEVICE-CHECK.md, "cuDNN 9 deprecations"). Plain C++ header; every function throws rf::Error when
// the build has no cuDNN (cudnn_available() says which). Checked by tests/gpu/test_cudnn_gpu.cpp against the CPU
// references.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "host/ops/batchnorm.h"
#include "host/ops/conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// True when built with cuDNN (RF_HAVE_CUDNN). cudnn_runtime_version(): cudnnGetVersion() of the library loaded at
// run time (e.g. 91900 for 9.19.0), 0 without cuDNN; it needs no GPU.
bool cudnn_available();
size_t cudnn_runtime_version();

enum class CudnnAlgoSearch {
  heuristic,   // cuDNN's ranking, no trial runs (fast, the default)
  exhaustive,  // every usable algorithm timed on the caller's buffers, once per (shape, pass)
};

// Which cuDNN API runs the convs. from_env: RF_CUDNN_API=graph|legacy, graph when unset.
enum class CudnnApi { from_env, graph, legacy };

struct CudnnOptions {
  CudnnAlgoSearch search = CudnnAlgoSearch::heuristic;
  CudnnApi api = CudnnApi::from_env;
  bool allow_tf32 = false;                        // FP32 convs on TF32 tensor cores (faster, ~1e-3 relative error)
  size_t workspace_limit = size_t(1) << 30;       // algorithms needing more are skipped
};

// One cuDNN handle on one stream, the per-shape descriptor / algorithm cache and the workspace. Needs a GPU.
// Not thread-safe: one context per thread / stream.
class CudnnContext {
 public:
  explicit CudnnContext(cudaStream_t stream = nullptr, CudnnOptions options = CudnnOptions{});
  ~CudnnContext();
  CudnnContext(const CudnnContext&) = delete;
  CudnnContext& operator=(const CudnnContext&) = delete;

  void set_stream(cudaStream_t stream);
  const CudnnOptions& options() const;
  // One line per cached (shape, pass): the API, the chosen algorithm / engine and its workspace, for reports.
  std::string algorithm_report() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Device pointers; the layouts of host/ops/conv.h (y and dy with s.y_nstride). b / db may be null.
void cudnn_conv2d_forward(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
                          float* y);
void cudnn_conv2d_backward_data(CudnnContext& ctx, const Conv2dShape& s, const float* dy, const float* w, float* dx);
void cudnn_conv2d_backward_weight(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                  float* db);

// Builds and finalises the graph API's operation descriptors (tensors, convolution, operation) of the three passes
// of `s` and throws rf::Error naming cuDNN's status when one is refused. Needs no GPU (no handle, no graph, no
// engine), so CI checks the descriptor attributes of every baseline shape (tests/cuda/test_cudnn_descriptors.cpp).
void cudnn_check_conv_descriptors(const Conv2dShape& s);

// Batch norm over (N, C, HW), spatial mode; host/ops/batchnorm.h's semantics (biased variance normalises, running
// variance takes the unbiased one, exponential factor = momentum). running_* may be null (not updated).
void cudnn_batchnorm_forward_train(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* gamma,
                                   const float* beta, float* y, float* save_mean, float* save_invstd,
                                   float* running_mean, float* running_var);
void cudnn_batchnorm_forward_eval(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean, const float* running_var, float* y);
void cudnn_batchnorm_backward(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* dy,
                              const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                              float* dgamma, float* dbeta);

}  // namespace rf

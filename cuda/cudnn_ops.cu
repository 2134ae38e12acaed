// cuDNN wrapper (see cudnn_ops.h): the context (handle, stream, workspace), the conv entry points, which hand the
// conv to the selected path (cuda/cudnn_graph_conv.cu, the default; cuda/cudnn_legacy_conv.cu, deprecated, kept
// for comparison) and add / reduce the bias with cuda/ops/bias.cu's kernels, and batch norm.
// Batch norm still uses cuDNN's legacy cudnnBatchNormalization* calls, deprecated in cuDNN 9 (why, and what
// replaces them: docs/DEVICE-CHECK.md, "cuDNN 9 deprecations"). Every cuDNN call goes through CUDNN_CHECK.
// Compiled without cuDNN (RF_HAVE_CUDNN unset) every entry point throws rf::Error saying so.
// Checked by tests/gpu/test_cudnn_gpu.cpp.
#include "cuda/cudnn_ops.h"

#include <cstdlib>
#include <cstring>

#include "cuda/cuda_check.h"
#include "cuda/ops/bias.h"
#include "host/core/enum_name.h"

#if defined(RF_HAVE_CUDNN)
#include "cuda/cudnn_internal.h"
#endif

namespace rf {

#if defined(RF_HAVE_CUDNN)

namespace cudnn_detail {

const char* pass_name(ConvPass p) {
  static constexpr const char* kNames[] = {"fwd", "bwd_data", "bwd_filter"};  // ConvPass order
  return enum_name(p, kNames);
}

namespace {

CudnnApi resolve_api(CudnnApi api) {
  if (api != CudnnApi::from_env) return api;
  const char* e = std::getenv("RF_CUDNN_API");
  if (e == nullptr || *e == '\0' || std::strcmp(e, "graph") == 0) return CudnnApi::graph;
  if (std::strcmp(e, "legacy") == 0) return CudnnApi::legacy;
  RF_FAIL("RF_CUDNN_API: read '{}', expected 'graph' or 'legacy'", e);
}

}  // namespace
}  // namespace cudnn_detail

CudnnContext::Impl::~Impl() {
  conv.reset();  // its descriptors and plans reference the handle
  if (ws) CUDA_CHECK_NOTHROW(cudaFree(ws));
  if (handle) RF_CUDNN_NOTHROW(cudnnDestroy(handle));
}

void* CudnnContext::Impl::workspace(size_t bytes) {
  if (bytes <= ws_bytes) return bytes == 0 ? nullptr : ws;
  if (ws) {
    CUDA_CHECK(cudaStreamSynchronize(stream));  // work queued on the old buffer must finish first
    CUDA_CHECK(cudaFree(ws));
    ws = nullptr, ws_bytes = 0;
  }
  CUDA_CHECK(cudaMalloc(&ws, bytes));
  ws_bytes = bytes;
  return ws;
}

CudnnContext::CudnnContext(cudaStream_t stream, CudnnOptions options) : impl_(std::make_unique<Impl>()) {
  options.api = cudnn_detail::resolve_api(options.api);
  impl_->opt = options;
  CUDNN_CHECK(cudnnCreate(&impl_->handle));
  set_stream(stream);
  impl_->conv = options.api == CudnnApi::legacy ? cudnn_detail::make_legacy_conv_path(*impl_)
                                                : cudnn_detail::make_graph_conv_path(*impl_);
}
CudnnContext::~CudnnContext() = default;

void CudnnContext::set_stream(cudaStream_t stream) {
  impl_->stream = stream;
  CUDNN_CHECK(cudnnSetStream(impl_->handle, stream));
}
const CudnnOptions& CudnnContext::options() const { return impl_->opt; }

std::string CudnnContext::algorithm_report() const { return impl_->conv->report(); }

bool cudnn_available() { return true; }
size_t cudnn_runtime_version() { return cudnnGetVersion(); }

void cudnn_conv2d_forward(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
                          float* y) {
  RF_CHECK(x && w && y, "cudnn_conv2d_forward: {}: null x, w or y", s.str());
  CudnnContext::Impl& I = ctx.impl();
  I.conv->run(cudnn_detail::ConvPass::forward, s, x, w, y);
  if (b) bias_add_cuda(s, b, y, I.stream);
}

void cudnn_conv2d_backward_data(CudnnContext& ctx, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  RF_CHECK(dy && w && dx, "cudnn_conv2d_backward_data: {}: null dy, w or dx", s.str());
  ctx.impl().conv->run(cudnn_detail::ConvPass::backward_data, s, dy, w, dx);
}

void cudnn_conv2d_backward_weight(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                  float* db) {
  RF_CHECK(x && dy && dw, "cudnn_conv2d_backward_weight: {}: null x, dy or dw", s.str());
  CudnnContext::Impl& I = ctx.impl();
  I.conv->run(cudnn_detail::ConvPass::backward_filter, s, x, dy, dw);
  if (db) bias_grad_cuda(s, dy, db, I.stream);
}

// ---- batch norm ----------------------------------------------------------------------------------------------

namespace {
using cudnn_detail::TensorDesc;
const float kOne = 1.0f, kZero = 0.0f;

struct BnDescs {
  TensorDesc x, param;
  BnDescs(const BatchNormShape& s, const char* who) {
    check_batchnorm_shape(s);
    RF_CHECK(double(s.eps) >= CUDNN_BN_MIN_EPSILON, "{}: {}: eps={} is below cuDNN's minimum {}", who, s.str(), s.eps,
             CUDNN_BN_MIN_EPSILON);
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, s.HW, 1));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(param.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.C, 1, 1));
  }
};
}  // namespace

void cudnn_batchnorm_forward_train(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* gamma,
                                   const float* beta, float* y, float* save_mean, float* save_invstd,
                                   float* running_mean, float* running_var) {
  RF_CHECK(x && gamma && beta && y, "cudnn_batchnorm_forward_train: {}: null x, gamma, beta or y", s.str());
  RF_CHECK((running_mean == nullptr) == (running_var == nullptr),
           "cudnn_batchnorm_forward_train: {}: running_mean and running_var must both be given or both be null",
           s.str());
  RF_CHECK((save_mean == nullptr) == (save_invstd == nullptr),
           "cudnn_batchnorm_forward_train: {}: save_mean and save_invstd must both be given or both be null", s.str());
  RF_CHECK(int64_t(s.N) * s.HW > 1, "cudnn_batchnorm_forward_train: {}: N*HW = 1 has no unbiased variance",
           s.str());
  BnDescs d(s, "cudnn_batchnorm_forward_train");
  CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(ctx.impl().handle, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, d.x.d,
                                                     x, d.x.d, y, d.param.d, gamma, beta, double(s.momentum),
                                                     running_mean, running_var, double(s.eps), save_mean,
                                                     save_invstd));
}

void cudnn_batchnorm_forward_eval(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean, const float* running_var, float* y) {
  RF_CHECK(x && gamma && beta && running_mean && running_var && y,
           "cudnn_batchnorm_forward_eval: {}: null pointer argument", s.str());
  BnDescs d(s, "cudnn_batchnorm_forward_eval");
  CUDNN_CHECK(cudnnBatchNormalizationForwardInference(ctx.impl().handle, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero,
                                                      d.x.d, x, d.x.d, y, d.param.d, gamma, beta, running_mean,
                                                      running_var, double(s.eps)));
}

void cudnn_batchnorm_backward(CudnnContext& ctx, const BatchNormShape& s, const float* x, const float* dy,
                              const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                              float* dgamma, float* dbeta) {
  RF_CHECK(x && dy && gamma && dx && dgamma && dbeta, "cudnn_batchnorm_backward: {}: null pointer argument", s.str());
  RF_CHECK((save_mean == nullptr) == (save_invstd == nullptr),
           "cudnn_batchnorm_backward: {}: save_mean and save_invstd must both be given or both be null", s.str());
  BnDescs d(s, "cudnn_batchnorm_backward");
  CUDNN_CHECK(cudnnBatchNormalizationBackward(ctx.impl().handle, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne,
                                              &kZero, d.x.d, x, d.x.d, dy, d.x.d, dx, d.param.d, gamma, dgamma, dbeta,
                                              double(s.eps), save_mean, save_invstd));
}

#else  // no cuDNN in this build

struct CudnnContext::Impl {};

namespace {
[[noreturn]] void no_cudnn(const char* who) {
  RF_FAIL("{}: this build has no cuDNN (CMake found no cudnn.h / libcudnn; set CUDNN_ROOT and reconfigure)", who);
}
}  // namespace

CudnnContext::CudnnContext(cudaStream_t, CudnnOptions) { no_cudnn("CudnnContext"); }
CudnnContext::~CudnnContext() = default;
void CudnnContext::set_stream(cudaStream_t) { no_cudnn("CudnnContext::set_stream"); }
const CudnnOptions& CudnnContext::options() const { no_cudnn("CudnnContext::options"); }
std::string CudnnContext::algorithm_report() const { return "(no cuDNN)"; }
bool cudnn_available() { return false; }
size_t cudnn_runtime_version() { return 0; }
void cudnn_conv2d_forward(CudnnContext&, const Conv2dShape&, const float*, const float*, const float*, float*) {
  no_cudnn("cudnn_conv2d_forward");
}
void cudnn_conv2d_backward_data(CudnnContext&, const Conv2dShape&, const float*, const float*, float*) {
  no_cudnn("cudnn_conv2d_backward_data");
}
void cudnn_conv2d_backward_weight(CudnnContext&, const Conv2dShape&, const float*, const float*, float*, float*) {
  no_cudnn("cudnn_conv2d_backward_weight");
}
void cudnn_check_conv_descriptors(const Conv2dShape&) { no_cudnn("cudnn_check_conv_descriptors"); }
void cudnn_batchnorm_forward_train(CudnnContext&, const BatchNormShape&, const float*, const float*, const float*,
                                   float*, float*, float*, float*, float*) {
  no_cudnn("cudnn_batchnorm_forward_train");
}
void cudnn_batchnorm_forward_eval(CudnnContext&, const BatchNormShape&, const float*, const float*, const float*,
                                  const float*, const float*, float*) {
  no_cudnn("cudnn_batchnorm_forward_eval");
}
void cudnn_batchnorm_backward(CudnnContext&, const BatchNormShape&, const float*, const float*, const float*,
                              const float*, const float*, float*, float*, float*) {
  no_cudnn("cudnn_batchnorm_backward");
}

#endif

}  // namespace rf

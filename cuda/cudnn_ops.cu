// cuDNN wrapper (see cudnn_ops.h). Per conv shape one plan: descriptors (y with its batch stride, so slices work),
// and per pass the algorithm cuDNN ranks first (or measures fastest) among those whose workspace fits the limit;
// one workspace per context, grown on demand. FP32 math without TF32 unless asked (CUDNN_FMA_MATH), so the
// results stay within FP32 rounding of the CPU reference. Every cuDNN call goes through CUDNN_CHECK.
// Compiled without cuDNN (RF_HAVE_CUDNN unset) every entry point throws rf::Error saying so.
// Checked by tests/gpu/test_cudnn_gpu.cpp.
#include "cuda/cudnn_ops.h"

#include <map>
#include <vector>

#include "cuda/cuda_check.h"

namespace rf {

#if defined(RF_HAVE_CUDNN)

// Destructors report and continue.
#define RF_CUDNN_NOTHROW(x)                                                                             \
  do {                                                                                                  \
    const cudnnStatus_t rf_st_ = (x);                                                                   \
    if (rf_st_ != CUDNN_STATUS_SUCCESS)                                                                 \
      std::fprintf(stderr, "cuDNN call `%s` failed at %s:%d: %s\n", #x, __FILE__, __LINE__,            \
                   cudnnGetErrorString(rf_st_));                                                        \
  } while (0)

namespace {

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { RF_CUDNN_NOTHROW(cudnnDestroyTensorDescriptor(d)); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { RF_CUDNN_NOTHROW(cudnnDestroyFilterDescriptor(d)); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { RF_CUDNN_NOTHROW(cudnnDestroyConvolutionDescriptor(d)); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

struct ConvPlan {
  std::string name;
  TensorDesc x, y, b;
  FilterDesc w;
  ConvDesc conv;
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
};

int checked_int(int64_t v, const char* what, const Conv2dShape& s) {
  RF_CHECK(v < (int64_t(1) << 31), "cuDNN: {}: {} = {} does not fit cuDNN's 32-bit descriptor", s.str(), what, v);
  return int(v);
}

// The first algorithm cuDNN returns that succeeded and fits the limit (the lists are sorted, best first).
template <typename Perf>
const Perf* pick(const std::vector<Perf>& perf, int returned, size_t limit) {
  for (int i = 0; i < returned; ++i)
    if (perf[size_t(i)].status == CUDNN_STATUS_SUCCESS && perf[size_t(i)].memory <= limit) return &perf[size_t(i)];
  return nullptr;
}

const float kOne = 1.0f, kZero = 0.0f;

}  // namespace

struct CudnnContext::Impl {
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  CudnnOptions opt;
  std::map<std::string, std::unique_ptr<ConvPlan>> plans;
  void* ws = nullptr;
  size_t ws_bytes = 0;

  ~Impl() {
    if (ws) CUDA_CHECK_NOTHROW(cudaFree(ws));
    plans.clear();
    if (handle) RF_CUDNN_NOTHROW(cudnnDestroy(handle));
  }

  void* workspace(size_t bytes) {
    if (bytes <= ws_bytes) return ws;
    if (ws) {
      CUDA_CHECK(cudaStreamSynchronize(stream));  // work queued on the old buffer must finish first
      CUDA_CHECK(cudaFree(ws));
      ws = nullptr, ws_bytes = 0;
    }
    CUDA_CHECK(cudaMalloc(&ws, bytes));
    ws_bytes = bytes;
    return ws;
  }

  ConvPlan& plan(const Conv2dShape& s) {
    s.validate();
    const std::string key = fmt::format("{}|ys={}", s.str(), s.y_batch_stride());
    auto it = plans.find(key);
    if (it != plans.end()) return *it->second;
    auto p = std::make_unique<ConvPlan>();
    p->name = key;
    const int OH = s.OH(), OW = s.OW();
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(p->y.d, CUDNN_DATA_FLOAT, s.N, s.K, OH, OW,
                                             checked_int(s.y_batch_stride(), "y batch stride", s),
                                             checked_int(int64_t(OH) * OW, "OH*OW", s), OW, 1));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->b.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s.K, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.K, s.C / s.groups, s.k, s.k));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv.d, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv.d, s.groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv.d, opt.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int n = 0, c = 0, h = 0, w = 0;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv.d, p->x.d, p->w.d, &n, &c, &h, &w));
    RF_CHECK(n == s.N && c == s.K && h == OH && w == OW,
             "cuDNN: {}: cuDNN's output shape ({}, {}, {}, {}) differs from ours ({}, {}, {}, {})", s.str(), n, c, h,
             w, s.N, s.K, OH, OW);
    return *plans.emplace(key, std::move(p)).first->second;
  }
};

CudnnContext::CudnnContext(cudaStream_t stream, CudnnOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  CUDNN_CHECK(cudnnCreate(&impl_->handle));
  set_stream(stream);
}
CudnnContext::~CudnnContext() = default;

void CudnnContext::set_stream(cudaStream_t stream) {
  impl_->stream = stream;
  CUDNN_CHECK(cudnnSetStream(impl_->handle, stream));
}
const CudnnOptions& CudnnContext::options() const { return impl_->opt; }

std::string CudnnContext::algorithm_report() const {
  std::string out;
  for (const auto& [key, p] : impl_->plans) {
    out += key;
    if (p->have_fwd) out += fmt::format(" fwd=algo{}({}B)", int(p->fwd), p->fwd_ws);
    if (p->have_bwd_data) out += fmt::format(" bwd_data=algo{}({}B)", int(p->bwd_data), p->bwd_data_ws);
    if (p->have_bwd_filter) out += fmt::format(" bwd_filter=algo{}({}B)", int(p->bwd_filter), p->bwd_filter_ws);
    out += "\n";
  }
  return out;
}

bool cudnn_available() { return true; }
size_t cudnn_runtime_version() { return cudnnGetVersion(); }

void cudnn_conv2d_forward(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* w, const float* b,
                          float* y) {
  RF_CHECK(x && w && y, "cudnn_conv2d_forward: {}: null x, w or y", s.str());
  CudnnContext::Impl& I = ctx.impl();
  ConvPlan& p = I.plan(s);
  if (!p.have_fwd) {
    constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(kCount);
    int returned = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(I.handle, p.x.d, p.w.d, p.conv.d, p.y.d, kCount, &returned,
                                                       perf.data()));
    if (I.opt.search == CudnnAlgoSearch::exhaustive) {
      size_t most = 0;
      for (int i = 0; i < returned; ++i)
        if (perf[size_t(i)].memory <= I.opt.workspace_limit) most = std::max(most, perf[size_t(i)].memory);
      void* ws = I.workspace(most);
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(I.handle, p.x.d, x, p.w.d, w, p.conv.d, p.y.d, y, kCount,
                                                         &returned, perf.data(), ws, most));
    }
    const cudnnConvolutionFwdAlgoPerf_t* best = pick(perf, returned, I.opt.workspace_limit);
    RF_CHECK(best != nullptr, "cudnn_conv2d_forward: {}: no algorithm fits the workspace limit of {} bytes", s.str(),
             I.opt.workspace_limit);
    p.fwd = best->algo;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(I.handle, p.x.d, p.w.d, p.conv.d, p.y.d, p.fwd, &p.fwd_ws));
    p.have_fwd = true;
  }
  void* ws = I.workspace(p.fwd_ws);
  CUDNN_CHECK(cudnnConvolutionForward(I.handle, &kOne, p.x.d, x, p.w.d, w, p.conv.d, p.fwd, ws, p.fwd_ws, &kZero,
                                      p.y.d, y));
  if (b) CUDNN_CHECK(cudnnAddTensor(I.handle, &kOne, p.b.d, b, &kOne, p.y.d, y));
}

void cudnn_conv2d_backward_data(CudnnContext& ctx, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  RF_CHECK(dy && w && dx, "cudnn_conv2d_backward_data: {}: null dy, w or dx", s.str());
  CudnnContext::Impl& I = ctx.impl();
  ConvPlan& p = I.plan(s);
  if (!p.have_bwd_data) {
    constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(kCount);
    int returned = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(I.handle, p.w.d, p.y.d, p.conv.d, p.x.d, kCount,
                                                            &returned, perf.data()));
    if (I.opt.search == CudnnAlgoSearch::exhaustive) {
      size_t most = 0;
      for (int i = 0; i < returned; ++i)
        if (perf[size_t(i)].memory <= I.opt.workspace_limit) most = std::max(most, perf[size_t(i)].memory);
      void* ws = I.workspace(most);
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(I.handle, p.w.d, w, p.y.d, dy, p.conv.d, p.x.d, dx,
                                                              kCount, &returned, perf.data(), ws, most));
    }
    const cudnnConvolutionBwdDataAlgoPerf_t* best = pick(perf, returned, I.opt.workspace_limit);
    RF_CHECK(best != nullptr, "cudnn_conv2d_backward_data: {}: no algorithm fits the workspace limit of {} bytes",
             s.str(), I.opt.workspace_limit);
    p.bwd_data = best->algo;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(I.handle, p.w.d, p.y.d, p.conv.d, p.x.d, p.bwd_data,
                                                             &p.bwd_data_ws));
    p.have_bwd_data = true;
  }
  void* ws = I.workspace(p.bwd_data_ws);
  CUDNN_CHECK(cudnnConvolutionBackwardData(I.handle, &kOne, p.w.d, w, p.y.d, dy, p.conv.d, p.bwd_data, ws,
                                           p.bwd_data_ws, &kZero, p.x.d, dx));
}

void cudnn_conv2d_backward_weight(CudnnContext& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                  float* db) {
  RF_CHECK(x && dy && dw, "cudnn_conv2d_backward_weight: {}: null x, dy or dw", s.str());
  CudnnContext::Impl& I = ctx.impl();
  ConvPlan& p = I.plan(s);
  if (!p.have_bwd_filter) {
    constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(kCount);
    int returned = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(I.handle, p.x.d, p.y.d, p.conv.d, p.w.d, kCount,
                                                              &returned, perf.data()));
    if (I.opt.search == CudnnAlgoSearch::exhaustive) {
      size_t most = 0;
      for (int i = 0; i < returned; ++i)
        if (perf[size_t(i)].memory <= I.opt.workspace_limit) most = std::max(most, perf[size_t(i)].memory);
      void* ws = I.workspace(most);
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(I.handle, p.x.d, x, p.y.d, dy, p.conv.d, p.w.d, dw,
                                                                kCount, &returned, perf.data(), ws, most));
    }
    const cudnnConvolutionBwdFilterAlgoPerf_t* best = pick(perf, returned, I.opt.workspace_limit);
    RF_CHECK(best != nullptr, "cudnn_conv2d_backward_weight: {}: no algorithm fits the workspace limit of {} bytes",
             s.str(), I.opt.workspace_limit);
    p.bwd_filter = best->algo;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(I.handle, p.x.d, p.y.d, p.conv.d, p.w.d, p.bwd_filter,
                                                               &p.bwd_filter_ws));
    p.have_bwd_filter = true;
  }
  void* ws = I.workspace(p.bwd_filter_ws);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(I.handle, &kOne, p.x.d, x, p.y.d, dy, p.conv.d, p.bwd_filter, ws,
                                             p.bwd_filter_ws, &kZero, p.w.d, dw));
  if (db) CUDNN_CHECK(cudnnConvolutionBackwardBias(I.handle, &kOne, p.y.d, dy, &kZero, p.b.d, db));
}

// ---- batch norm ----------------------------------------------------------------------------------------------

namespace {
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

#undef RF_CUDNN_NOTHROW

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

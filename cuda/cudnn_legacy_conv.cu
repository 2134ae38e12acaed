// The legacy (cuDNN 7-style) conv path, deprecated in cuDNN 9: filter / convolution descriptors,
// cudnnGet*Algorithm_v7 / cudnnFind*AlgorithmEx and cudnnConvolution{Forward,BackwardData,BackwardFilter}.
// Kept compiled ONLY as the reference the graph path (cuda/cudnn_graph_conv.cu, the default) is compared with on
// the first GPU run: tests/gpu/test_cudnn_gpu.cpp runs once per path (RF_CUDNN_API=legacy selects this one; see
// scripts/device-check.sh). Delete this file once the graph path has passed there (docs/DEVICE-CHECK.md lists
// every deprecated symbol and its replacement).
// Per (shape, pass) one algorithm, chosen by the single search helper `choose` (heuristic ranking, or measured on
// the caller's buffers), among those that succeed and fit the workspace limit; FP32 math without TF32 unless asked
// (CUDNN_FMA_MATH).
#if defined(RF_HAVE_CUDNN)  // the build has cuDNN (CMakeLists.txt); otherwise this file is empty
#include <map>
#include <vector>

#include "cuda/cudnn_internal.h"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // this whole file is the deprecated API
#endif

namespace rf {
namespace cudnn_detail {
namespace {

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

int checked_int(int64_t v, const char* what, const Conv2dShape& s) {
  RF_CHECK(v < (int64_t(1) << 31), "cuDNN: {}: {} = {} does not fit cuDNN's 32-bit descriptor", s.str(), what, v);
  return int(v);
}

struct Choice {
  bool have = false;
  int algo = 0;
  size_t ws = 0;
};

struct LegacyPlan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  Choice pass[3];
};

// THE algorithm search of every pass: cuDNN's ranked list (get), or every algorithm measured on the caller's
// buffers (find, with a workspace as large as the largest that fits), then the first that succeeded and fits.
template <typename Perf, typename Get, typename Find>
Choice choose(CudnnContext::Impl& I, const std::string& who, int count, Get&& get, Find&& find) {
  std::vector<Perf> perf(static_cast<size_t>(count));
  int returned = 0;
  CUDNN_CHECK(get(count, &returned, perf.data()));
  if (I.opt.search == CudnnAlgoSearch::exhaustive) {
    size_t most = 0;
    for (int i = 0; i < returned; ++i)
      if (perf[size_t(i)].memory <= I.opt.workspace_limit) most = std::max(most, perf[size_t(i)].memory);
    CUDNN_CHECK(find(count, &returned, perf.data(), I.workspace(most), most));
  }
  for (int i = 0; i < returned; ++i)
    if (perf[size_t(i)].status == CUDNN_STATUS_SUCCESS && perf[size_t(i)].memory <= I.opt.workspace_limit)
      return Choice{true, int(perf[size_t(i)].algo), perf[size_t(i)].memory};
  RF_FAIL("cuDNN legacy API: {}: no algorithm fits the workspace limit of {} bytes", who, I.opt.workspace_limit);
}

const float kOne = 1.0f, kZero = 0.0f;

class LegacyConvPath final : public ConvPath {
 public:
  explicit LegacyConvPath(CudnnContext::Impl& ctx) : I(ctx) {}
  const char* name() const override { return "legacy"; }

  void run(ConvPass pass, const Conv2dShape& s, const float* in0, const float* in1, float* out) override {
    const std::string key = fmt::format("{}|ys={}", s.str(), s.y_batch_stride());
    LegacyPlan& p = plan(key, s);
    Choice& c = p.pass[int(pass)];
    const std::string who = key + "|" + pass_name(pass);
    const cudnnHandle_t h = I.handle;
    switch (pass) {
      case ConvPass::forward:  // x, w -> y
        if (!c.have)
          c = choose<cudnnConvolutionFwdAlgoPerf_t>(
              I, who, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
              [&](int n, int* r, auto* pf) {
                return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.d, p.w.d, p.conv.d, p.y.d, n, r, pf);
              },
              [&](int n, int* r, auto* pf, void* ws, size_t bytes) {
                return cudnnFindConvolutionForwardAlgorithmEx(h, p.x.d, in0, p.w.d, in1, p.conv.d, p.y.d, out, n, r,
                                                              pf, ws, bytes);
              });
        CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, p.x.d, in0, p.w.d, in1, p.conv.d,
                                            cudnnConvolutionFwdAlgo_t(c.algo), I.workspace(c.ws), c.ws, &kZero,
                                            p.y.d, out));
        break;
      case ConvPass::backward_data:  // dy, w -> dx
        if (!c.have)
          c = choose<cudnnConvolutionBwdDataAlgoPerf_t>(
              I, who, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
              [&](int n, int* r, auto* pf) {
                return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.d, p.y.d, p.conv.d, p.x.d, n, r, pf);
              },
              [&](int n, int* r, auto* pf, void* ws, size_t bytes) {
                return cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w.d, in1, p.y.d, in0, p.conv.d, p.x.d, out, n,
                                                                   r, pf, ws, bytes);
              });
        CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, p.w.d, in1, p.y.d, in0, p.conv.d,
                                                 cudnnConvolutionBwdDataAlgo_t(c.algo), I.workspace(c.ws), c.ws,
                                                 &kZero, p.x.d, out));
        break;
      case ConvPass::backward_filter:  // x, dy -> dw
        if (!c.have)
          c = choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
              I, who, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
              [&](int n, int* r, auto* pf) {
                return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x.d, p.y.d, p.conv.d, p.w.d, n, r, pf);
              },
              [&](int n, int* r, auto* pf, void* ws, size_t bytes) {
                return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x.d, in0, p.y.d, in1, p.conv.d, p.w.d, out,
                                                                     n, r, pf, ws, bytes);
              });
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, p.x.d, in0, p.y.d, in1, p.conv.d,
                                                   cudnnConvolutionBwdFilterAlgo_t(c.algo), I.workspace(c.ws), c.ws,
                                                   &kZero, p.w.d, out));
        break;
    }
  }

  std::string report() const override {
    std::string out;
    for (const auto& [key, p] : plans_)
      for (int i = 0; i < 3; ++i)
        if (p->pass[i].have)
          out += fmt::format("{}|{} legacy algo={} ws={}B\n", key, pass_name(ConvPass(i)), p->pass[i].algo,
                             p->pass[i].ws);
    return out;
  }

 private:
  LegacyPlan& plan(const std::string& key, const Conv2dShape& s) {
    auto it = plans_.find(key);
    if (it != plans_.end()) return *it->second;
    s.validate();
    auto p = std::make_unique<LegacyPlan>();
    const int OH = s.OH(), OW = s.OW();
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(p->y.d, CUDNN_DATA_FLOAT, s.N, s.K, OH, OW,
                                             checked_int(s.y_batch_stride(), "y batch stride", s),
                                             checked_int(int64_t(OH) * OW, "OH*OW", s), OW, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.K, s.C / s.groups, s.k, s.k));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv.d, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv.d, s.groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv.d, I.opt.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int n = 0, c = 0, h = 0, w = 0;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv.d, p->x.d, p->w.d, &n, &c, &h, &w));
    RF_CHECK(n == s.N && c == s.K && h == OH && w == OW,
             "cuDNN: {}: cuDNN's output shape ({}, {}, {}, {}) differs from ours ({}, {}, {}, {})", s.str(), n, c, h,
             w, s.N, s.K, OH, OW);
    return *plans_.emplace(key, std::move(p)).first->second;
  }

  CudnnContext::Impl& I;
  std::map<std::string, std::unique_ptr<LegacyPlan>> plans_;
};

}  // namespace

std::unique_ptr<ConvPath> make_legacy_conv_path(CudnnContext::Impl& ctx) {
  return std::make_unique<LegacyConvPath>(ctx);
}

}  // namespace cudnn_detail
}  // namespace rf

#endif  // RF_HAVE_CUDNN

// cuDNN 9's supported conv API: the graph (backend) API through its C descriptors (cudnnBackend*). Per conv shape,
// pass and pointer alignment one cached plan: tensor descriptors (y / dy with their batch stride, so channel slices
// of a concat buffer work), a convolution descriptor (cross-correlation, FP32 compute, groups implied by the
// weight's second dimension as the graph API defines it), a one-operation graph, and the execution plan chosen by
// ONE search (choose_plan) for all three passes:
//   - candidates: the engine configurations of heuristic mode A, then those of mode FALLBACK (which lists engines
//     A may omit), each finalised into an execution plan; a configuration that does not finalise (not supported
//     for this shape) or needs more workspace than CudnnOptions::workspace_limit is skipped; without allow_tf32,
//     engines whose numerical notes say TENSOR_CORE, DOWN_CONVERT_INPUTS or REDUCED_PRECISION_REDUCTION are
//     skipped (for FP32 data those are the TF32 / reduced-precision engines), which is what CUDNN_FMA_MATH did;
//   - heuristic search: the first candidate (cuDNN's ranking); exhaustive: every candidate run once untimed and
//     three times timed with CUDA events on the caller's buffers, the fastest kept.
// Tensor byte alignment is a property of the descriptor, so the plan key includes the alignment of the pointers
// (16 or less: a slice of a concat buffer may start at any float).
// The two HANDLE attributes (operation graph, execution plan) are marked deprecated in cuDNN 9.19 in favour of a
// DEVICEPROP descriptor (9.8+); they are what every cuDNN 9 release accepts, so they stay (docs/DEVICE-CHECK.md).
// Checked by tests/gpu/test_cudnn_gpu.cpp on a GPU (the default path, RF_CUDNN_API unset or =graph).
#if defined(RF_HAVE_CUDNN)  // the build has cuDNN (CMakeLists.txt); otherwise this file is empty
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "cuda/cudnn_internal.h"

namespace rf {
namespace cudnn_detail {
namespace {

// One backend descriptor, destroyed without throwing.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) { CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_)); }
  ~Desc() {
    if (d_) RF_CUDNN_NOTHROW(cudnnBackendDestroyDescriptor(d_));
  }
  Desc(Desc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Desc& operator=(Desc&& o) noexcept {
    std::swap(d_, o.d_);  // o destroys what this held
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t* ptr() { return &d_; }
  template <typename T>
  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const T* values, int64_t n = 1) {
    CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, n, values));
    return *this;
  }
  Desc& set_desc(cudnnBackendAttributeName_t name, const Desc& other) {
    const cudnnBackendDescriptor_t o = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &o);
  }
  Desc& finalize() {
    CUDNN_CHECK(cudnnBackendFinalize(d_));
    return *this;
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// The two deprecated HANDLE attributes in one place (see the header comment).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// Variant-pack unique ids of a pass's operands in0, in1, out.
constexpr int64_t kUid[3] = {1, 2, 3};

Desc tensor(int64_t uid, const int64_t (&dims)[4], const int64_t (&strides)[4], int64_t alignment) {
  Desc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims, 4)
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides, 4)
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment)
      .finalize();
  return t;
}

// The largest power of two (at most 16) dividing every address: the tensors' declared byte alignment.
int64_t alignment_of(const void* a, const void* b, const void* c) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) |
                         reinterpret_cast<uintptr_t>(c) | uintptr_t(16);
  return int64_t(bits & (~bits + 1));  // lowest set bit
}

std::string notes_text(const std::vector<cudnnBackendNumericalNote_t>& notes) {
  static const char* names[] = {"tensor_core", "down_convert",  "reduced_precision", "fft",        "nondeterministic",
                                "winograd",    "winograd_4x4", "winograd_6x6",      "winograd_13", "strict_nan"};
  std::string out;
  for (cudnnBackendNumericalNote_t n : notes) {
    out += out.empty() ? "" : "+";
    out += int(n) >= 0 && int(n) < int(sizeof names / sizeof *names) ? names[int(n)] : "?";
  }
  return out.empty() ? "-" : out;
}

// The finalised descriptors of one conv pass: x, w, y tensors, the convolution, the operation (last). Needs no
// handle and no GPU, so cudnn_check_conv_descriptors can run them in CI.
std::vector<Desc> conv_operation(ConvPass pass, const Conv2dShape& s, int64_t align) {
  s.validate();
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.C / s.groups;
  const int64_t x_dims[4] = {s.N, s.C, s.H, s.W}, x_str[4] = {int64_t(s.C) * s.H * s.W, int64_t(s.H) * s.W, s.W, 1};
  const int64_t w_dims[4] = {s.K, Cg, s.k, s.k}, w_str[4] = {Cg * s.k * s.k, int64_t(s.k) * s.k, s.k, 1};
  const int64_t y_dims[4] = {s.N, s.K, OH, OW}, y_str[4] = {s.y_batch_stride(), OH * OW, OW, 1};
  std::vector<Desc> parts;
  parts.reserve(5);  // x, w, y stay where they are while the operation refers to them
  // Unique ids of the (x, w, y) tensors per pass: the pass's operands in0, in1 -> out are uids 1, 2 -> 3
  // (forward x, w -> y; backward data dy, w -> dx; backward filter x, dy -> dw).
  static const int64_t kUids[3][3] = {{1, 2, 3}, {3, 2, 1}, {1, 3, 2}};
  const int64_t* uid = kUids[int(pass)];
  parts.push_back(tensor(uid[0], x_dims, x_str, align));
  parts.push_back(tensor(uid[1], w_dims, w_str, align));
  parts.push_back(tensor(uid[2], y_dims, y_str, align));
  const bool fwd = pass == ConvPass::forward, bwd_data = pass == ConvPass::backward_data;
  const Desc &x = parts[0], &w = parts[1], &y = parts[2];

  Desc conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2, pad[2] = {s.pad, s.pad}, stride[2] = {s.stride, s.stride}, dilation[2] = {1, 1};
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &comp)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pad, 2)
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, pad, 2)
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, stride, 2)
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dilation, 2)
      .finalize();

  const float alpha = 1.0f, beta = 0.0f;  // out = conv(...), overwritten
  Desc op(fwd        ? CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR
          : bwd_data ? CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR
                     : CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
  if (fwd) {
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta);
  } else if (bwd_data) {
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, x)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, w)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, y)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, conv)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, &beta);
  } else {
    op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, x)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, w)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, y)
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, conv)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, &beta);
  }
  op.finalize();
  parts.push_back(std::move(conv));
  parts.push_back(std::move(op));
  return parts;
}

struct Candidate {
  explicit Candidate(Desc c) : cfg(std::move(c)), plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR) {}
  Desc cfg, plan;
  int64_t engine = -1, workspace = 0;
  std::string notes;
};

// A graph for one (shape, pass, alignment) with its chosen plan. The descriptors it was built from are kept alive
// for as long as the plan.
struct GraphPlan {
  std::vector<Desc> parts;  // tensors, conv descriptor, operation, graph
  std::unique_ptr<Candidate> chosen;
  int tried = 0;            // candidates that finalised (and passed the filters)
};

class GraphConvPath final : public ConvPath {
 public:
  explicit GraphConvPath(CudnnContext::Impl& ctx) : ctx_(ctx) {}
  const char* name() const override { return "graph"; }

  void run(ConvPass pass, const Conv2dShape& s, const float* in0, const float* in1, float* out) override {
    const int64_t align = alignment_of(in0, in1, out);
    const std::string key = fmt::format("{}|ys={}|{}|align={}", s.str(), s.y_batch_stride(), pass_name(pass), align);
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      auto p = build(pass, s, align);
      choose_plan(*p, key, in0, in1, out);
      it = plans_.emplace(key, std::move(p)).first;
    }
    execute(*it->second->chosen, in0, in1, out);
  }

  std::string report() const override {
    std::string out;
    for (const auto& [key, p] : plans_)
      out += fmt::format("{} graph engine={} ws={}B notes={} (of {} candidates)\n", key, p->chosen->engine,
                         p->chosen->workspace, p->chosen->notes, p->tried);
    return out;
  }

 private:
  std::unique_ptr<GraphPlan> build(ConvPass pass, const Conv2dShape& s, int64_t align) const {
    auto p = std::make_unique<GraphPlan>();
    p->parts = conv_operation(pass, s, align);
    Desc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    const cudnnBackendDescriptor_t ops[1] = {p->parts.back().get()};
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops, 1)
        .set(kGraphHandle, CUDNN_TYPE_HANDLE, &ctx_.handle)
        .finalize();
    p->parts.push_back(std::move(graph));
    return p;
  }

  // The engine configurations heuristic `mode` proposes for the graph, best first.
  std::vector<Desc> engine_configs(const Desc& graph, cudnnBackendHeurMode_t mode) const {
    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
    if (cudnnBackendFinalize(heur.get()) != CUDNN_STATUS_SUCCESS) return {};
    int64_t count = 0;
    CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                         &count, nullptr));
    std::vector<Desc> cfgs;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      raw.push_back(cfgs.back().get());
    }
    int64_t got = 0;
    if (count > 0)
      CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                           count, &got, raw.data()));
    cfgs.erase(cfgs.begin() + std::clamp<int64_t>(got, 0, count), cfgs.end());
    return cfgs;
  }

  // A finalised plan for `cfg` that passes the numerical-note and workspace filters, or null.
  std::unique_ptr<Candidate> candidate(Desc cfg) {
    Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    int64_t n = 0;
    if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                 engine.ptr()) != CUDNN_STATUS_SUCCESS)
      return nullptr;
    std::vector<cudnnBackendNumericalNote_t> notes(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
    int64_t n_notes = 0;
    CUDNN_CHECK(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                         int64_t(notes.size()), &n_notes, notes.data()));
    notes.resize(size_t(std::clamp<int64_t>(n_notes, 0, int64_t(notes.size()))));
    if (!ctx_.opt.allow_tf32)
      for (cudnnBackendNumericalNote_t note : notes)
        if (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE || note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS ||
            note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)
          return nullptr;
    auto c = std::make_unique<Candidate>(std::move(cfg));
    (void)cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &c->engine);
    c->notes = notes_text(notes);
    const cudnnBackendDescriptor_t cfg_d = c->cfg.get();
    c->plan.set(kPlanHandle, CUDNN_TYPE_HANDLE, &ctx_.handle)
        .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &cfg_d);
    const cudnnStatus_t st = cudnnBackendFinalize(c->plan.get());
    if (st != CUDNN_STATUS_SUCCESS) {  // not for this shape (a NOT_SUPPORTED status), or a bug of ours (BAD_PARAM)
      last_refusal_ = fmt::format("engine {}: {}", c->engine, cudnnGetErrorString(st));
      return nullptr;
    }
    CUDNN_CHECK(cudnnBackendGetAttribute(c->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                         1, &n, &c->workspace));
    if (c->workspace < 0 || uint64_t(c->workspace) > ctx_.opt.workspace_limit) return nullptr;
    return c;
  }

  // THE algorithm search of every pass: candidates from the heuristics, then cuDNN's first or the fastest measured.
  void choose_plan(GraphPlan& p, const std::string& key, const float* in0, const float* in1, float* out) {
    const Desc& graph = p.parts.back();
    const bool measure = ctx_.opt.search == CudnnAlgoSearch::exhaustive;
    std::vector<std::unique_ptr<Candidate>> found;
    std::vector<int64_t> engines_seen;
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      for (Desc& cfg : engine_configs(graph, mode)) {
        std::unique_ptr<Candidate> c = candidate(std::move(cfg));
        if (!c || std::count(engines_seen.begin(), engines_seen.end(), c->engine) > 0) continue;
        engines_seen.push_back(c->engine);
        found.push_back(std::move(c));
        if (!measure) break;  // heuristic: cuDNN's first usable choice
      }
      if (!found.empty() && !measure) break;
    }
    p.tried = int(found.size());
    RF_CHECK(!found.empty(),
             "cuDNN graph API: {}: no engine supports this convolution within the workspace limit of {} bytes{} "
             "(last plan refused: {}; RF_CUDNN_API=legacy selects the legacy API)",
             key, ctx_.opt.workspace_limit, ctx_.opt.allow_tf32 ? "" : " without TF32 / reduced precision",
             last_refusal_.empty() ? "none" : last_refusal_);
    size_t best = 0;
    if (measure && found.size() > 1) {
      cudaEvent_t a = nullptr, b = nullptr;
      CUDA_CHECK(cudaEventCreate(&a));
      CUDA_CHECK(cudaEventCreate(&b));
      float best_ms = 0;
      for (size_t i = 0; i < found.size(); ++i) {
        execute(*found[i], in0, in1, out);  // untimed: first-launch costs (module load, runtime compilation)
        CUDA_CHECK(cudaEventRecord(a, ctx_.stream));
        for (int r = 0; r < 3; ++r) execute(*found[i], in0, in1, out);
        CUDA_CHECK(cudaEventRecord(b, ctx_.stream));
        CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        if (i == 0 || ms < best_ms) best = i, best_ms = ms;
      }
      CUDA_CHECK_NOTHROW(cudaEventDestroy(a));
      CUDA_CHECK_NOTHROW(cudaEventDestroy(b));
    }
    p.chosen = std::move(found[best]);
  }

  void execute(const Candidate& c, const float* in0, const float* in1, float* out) {
    void* ws = ctx_.workspace(size_t(c.workspace));
    void* ptrs[3] = {const_cast<float*>(in0), const_cast<float*>(in1), out};
    Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, kUid, 3)
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs, 3)
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &ws)
        .finalize();
    CUDNN_CHECK(cudnnBackendExecute(ctx_.handle, c.plan.get(), pack.get()));
  }

  CudnnContext::Impl& ctx_;
  std::map<std::string, std::unique_ptr<GraphPlan>> plans_;
  std::string last_refusal_;  // the last execution plan cuDNN refused to finalise, for the error message
};

}  // namespace

std::unique_ptr<ConvPath> make_graph_conv_path(CudnnContext::Impl& ctx) {
  return std::make_unique<GraphConvPath>(ctx);
}

}  // namespace cudnn_detail

void cudnn_check_conv_descriptors(const Conv2dShape& s) {
  using cudnn_detail::ConvPass;
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
    for (int64_t align : {int64_t(4), int64_t(16)}) (void)cudnn_detail::conv_operation(pass, s, align);
}

namespace cudnn_detail {

}  // namespace cudnn_detail
}  // namespace rf

#endif  // RF_HAVE_CUDNN

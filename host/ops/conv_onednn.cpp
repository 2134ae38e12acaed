// conv2d through oneDNN (ConvAlgo::dnnl_plain on the NCHW tensors, ConvAlgo::dnnl_blocked on its blocked
// layouts with reorders in and out): the engine, one primitive per shape and pass cached for the process,
// per-thread scratch buffers, and ConvWeightPack (the weights reordered once for an inference session). Checked
// by tests/ops/test_conv.cpp (both layouts against the reference over a sweep of shapes; the primitive names it
// reports; the same bits with a pack).
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "host/core/check.h"
#include "host/core/tensor.h"
#include "host/ops/conv_kernels.h"

namespace rf {
namespace conv_detail {
namespace {

using dnnl::memory;
using dtag = memory::format_tag;

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One growing 64-byte aligned buffer per calling thread and role: reordered activations, scratchpads.
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(p); }
  void* get(size_t want) {
    if (want > bytes) {
      std::free(p);
      bytes = round_up(int64_t(want), 4096);
      p = std::aligned_alloc(64, bytes);
      RF_CHECK(p, "conv2d: cannot allocate {} bytes of scratch", bytes);
    }
    return p;
  }
};
Scratch& scratch(int slot) {
  thread_local Scratch s[6];
  return s[slot];
}

struct DnnlKey {
  int N, C, H, W, K, k, stride, pad, groups, pass, algo, nthr, x_nc16, y_nc16;
  int64_t y_nstride;
  bool bias, relu;
  bool operator==(const DnnlKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
struct DnnlKeyHash {
  size_t operator()(const DnnlKey& k) const {
    const auto* b = reinterpret_cast<const unsigned char*>(&k);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof k; ++i) h = (h ^ b[i]) * 1099511628211ull;
    return h;
  }
};

// A tensor the primitive reads or writes: the user's layout, the primitive's, and the reorder between.
struct DnnlArg {
  int arg = 0;
  bool out = false;
  memory::desc user, prim;
  dnnl::primitive reorder;  // user -> prim for inputs, prim -> user for outputs; empty when the same
  size_t reorder_scratch = 0;
};
struct DnnlConv {
  dnnl::primitive prim;
  std::vector<DnnlArg> args;
  size_t scratch = 0;
  std::string impl;
};

dnnl::primitive_attr scratch_attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

DnnlArg make_arg(int arg, bool out, const memory::desc& user, const memory::desc& prim) {
  DnnlArg a{arg, out, user, prim, {}, 0};
  if (user != prim) {
    auto& e = dnnl_engine();
    auto pd = out ? dnnl::reorder::primitive_desc(e, prim, e, user, scratch_attr())
                  : dnnl::reorder::primitive_desc(e, user, e, prim, scratch_attr());
    a.reorder = dnnl::reorder(pd);
    a.reorder_scratch = pd.scratchpad_desc().get_size();
  }
  return a;
}

}  // namespace

// Measured (2 threads, Zen 4 host, oneDNN 2.6, each conv alone with its weights cycling through 128 MB so that
// they come from DRAM as in a whole ResNet-18 forward, whose 45 MB of weights outgrow the L3): brgconv on nhwc
// against jit:avx512_core on nChw16c at batch 1: 1.07x at 16x16 -> 8x8 (C=128, stride 2), 1.15-1.35x at 8x8 and
// 4x4 (C=256, 512), 1.41x at 8x8 -> 4x4 (C=256, stride 2); at 32x32 and 16x16 0.54-1.07x, and at batch 8 and 64
// 0.68-1.08x (so those keep jit:avx512_core). Ungrouped k > 1 only: the 1x1 shortcuts keep their kernels (and
// the NL models' sample-blocked eval its bits).
bool dnnl_nhwc_forward(const Conv2dShape& s) {
  return s.N == 1 && s.groups == 1 && s.k > 1 && int64_t(s.OH()) * s.OW() <= 64 && s.C >= 128;
}

namespace {

// x_nc16 / y_nc16: the caller's x / y are in nChw16c (forward only), else NCHW.
std::shared_ptr<const DnnlConv> build_dnnl(const Conv2dShape& s, ConvPass pass, bool blocked, bool bias,
                                           bool relu, bool x_nc16, bool y_nc16) {
  auto& eng = dnnl_engine();
  const memory::dim OH = s.OH(), OW = s.OW(), G = s.groups;
  const memory::dims xd{s.N, s.C, s.H, s.W}, yd{s.N, s.K, OH, OW}, bd{s.K};
  const memory::dims wd = G == 1 ? memory::dims{s.K, s.C, s.k, s.k}
                                 : memory::dims{G, s.K / G, s.C / G, s.k, s.k};
  const auto f32 = memory::data_type::f32;
  const memory::desc x_user(xd, f32, x_nc16 ? dtag::nChw16c : dtag::nchw), w_user(wd, f32, G == 1 ? dtag::oihw : dtag::goihw),
      b_user(bd, f32, dtag::x),
      y_user = y_nc16 ? memory::desc(yd, f32, dtag::nChw16c)
                      : memory::desc(yd, f32, memory::dims{s.y_batch_stride(), OH * OW, OW, 1});
  // The plain gemm path wants contiguous NCHW (a strided y makes oneDNN fall back to its reference loops): the
  // conv writes a contiguous temporary and a reorder copies it into the channel slice.
  const memory::desc x_any = blocked ? memory::desc(xd, f32, dtag::any) : x_user,
                     y_any = blocked ? memory::desc(yd, f32, dtag::any) : memory::desc(yd, f32, dtag::nchw),
                     w_any = blocked ? memory::desc(wd, f32, dtag::any) : w_user;
  // The forward of one sample's 3x3 convs at <= 8x8 outputs on nhwc activations, where oneDNN takes its brgemm
  // kernel (brgconv) instead of jit:avx512_core: their weights (1-9 MB) come from DRAM at batch 1, and brgconv
  // streams them faster (see dnnl_nhwc_forward). The caller's layouts stay as they are (reorders in and out).
  const bool nhwc = blocked && pass == ConvPass::forward && dnnl_nhwc_forward(s);
  const memory::desc x_fwd = nhwc ? memory::desc(xd, f32, dtag::nhwc) : x_any,
                     y_fwd = nhwc ? memory::desc(yd, f32, dtag::nhwc) : y_any;
  const memory::dims st{s.stride, s.stride}, pd{s.pad, s.pad};
  const auto alg = dnnl::algorithm::convolution_direct;
  const auto prop = dnnl::prop_kind::forward_training;
  auto fwd_desc = bias ? dnnl::convolution_forward::desc(prop, alg, x_fwd, w_any, b_user, y_fwd, st, pd, pd)
                       : dnnl::convolution_forward::desc(prop, alg, x_fwd, w_any, y_fwd, st, pd, pd);
  dnnl::primitive_attr attr = scratch_attr();
  if (relu && pass == ConvPass::forward) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  dnnl::convolution_forward::primitive_desc fwd(fwd_desc, attr, eng);
  auto r = std::make_shared<DnnlConv>();
  if (pass == ConvPass::forward) {
    r->prim = dnnl::convolution_forward(fwd);
    r->args = {make_arg(DNNL_ARG_SRC, false, x_user, fwd.src_desc()),
               make_arg(DNNL_ARG_WEIGHTS, false, w_user, fwd.weights_desc()),
               make_arg(DNNL_ARG_DST, true, y_user, fwd.dst_desc())};
    if (bias) r->args.push_back(make_arg(DNNL_ARG_BIAS, false, b_user, fwd.bias_desc()));
    r->scratch = fwd.scratchpad_desc().get_size();
    r->impl = fwd.impl_info_str();
  } else if (pass == ConvPass::backward_data) {
    dnnl::convolution_backward_data::desc d(alg, x_any, w_any, y_any, st, pd, pd);
    dnnl::convolution_backward_data::primitive_desc bwd(d, scratch_attr(), eng, fwd);
    r->prim = dnnl::convolution_backward_data(bwd);
    r->args = {make_arg(DNNL_ARG_DIFF_DST, false, y_user, bwd.diff_dst_desc()),
               make_arg(DNNL_ARG_WEIGHTS, false, w_user, bwd.weights_desc()),
               make_arg(DNNL_ARG_DIFF_SRC, true, x_user, bwd.diff_src_desc())};
    r->scratch = bwd.scratchpad_desc().get_size();
    r->impl = bwd.impl_info_str();
  } else {
    auto d = bias ? dnnl::convolution_backward_weights::desc(alg, x_any, w_any, b_user, y_any, st, pd, pd)
                  : dnnl::convolution_backward_weights::desc(alg, x_any, w_any, y_any, st, pd, pd);
    dnnl::convolution_backward_weights::primitive_desc bwd(d, scratch_attr(), eng, fwd);
    r->prim = dnnl::convolution_backward_weights(bwd);
    r->args = {make_arg(DNNL_ARG_SRC, false, x_user, bwd.src_desc()),
               make_arg(DNNL_ARG_DIFF_DST, false, y_user, bwd.diff_dst_desc()),
               make_arg(DNNL_ARG_DIFF_WEIGHTS, true, w_user, bwd.diff_weights_desc())};
    if (bias) r->args.push_back(make_arg(DNNL_ARG_DIFF_BIAS, true, b_user, bwd.diff_bias_desc()));
    r->scratch = bwd.scratchpad_desc().get_size();
    r->impl = bwd.impl_info_str();
  }
  for (auto& a : r->args) r->scratch = std::max(r->scratch, a.reorder_scratch);
  return r;
}

// Creating a primitive costs milliseconds (kernel generation), so each is made once per shape. oneDNN wants
// the same thread count at creation and execution, hence the count in the key.
std::shared_ptr<const DnnlConv> get_dnnl(const Conv2dShape& s, ConvPass pass, bool blocked, bool bias,
                                         bool relu, bool x_nc16 = false, bool y_nc16 = false) {
  DnnlKey key;
  std::memset(&key, 0, sizeof key);  // padding bytes take part in the hash and the comparison
  key.N = s.N, key.C = s.C, key.H = s.H, key.W = s.W, key.K = s.K, key.k = s.k, key.stride = s.stride;
  key.pad = s.pad, key.groups = s.groups, key.pass = int(pass), key.algo = blocked, key.nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
  key.y_nstride = s.y_batch_stride(), key.bias = bias, key.relu = relu, key.x_nc16 = x_nc16, key.y_nc16 = y_nc16;
  static std::mutex mu;
  static std::unordered_map<DnnlKey, std::shared_ptr<const DnnlConv>, DnnlKeyHash> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::shared_ptr<const DnnlConv> made;
  try {
    made = build_dnnl(s, pass, blocked, bias, relu, x_nc16, y_nc16);
  } catch (const dnnl::error& e) {
    RF_FAIL("{}: oneDNN could not create the {} primitive: {} (status {})", s.str(),
            blocked ? "blocked" : "plain", e.what(), int(e.status));
  }
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(key, made).first->second;  // a racing thread's entry wins: same primitive
}

}  // namespace
}  // namespace conv_detail

// The copies: the weights' address, and one buffer per primitive layout.
struct ConvWeightPack::Impl {
  std::mutex mu;
  const void* weights = nullptr;
  // A copy of the weights in a primitive's layout, from the tensors' host allocator (host_alloc): it counts in
  // the tensor bytes in use (host_memory_stats), so the inference peaks the suites and bench_models report
  // include the packed weights a session holds.
  struct Copy {
    dnnl::memory::desc layout;
    struct Free {
      size_t bytes;  // no default member initialiser: GCC then cannot default-construct it inside Copy
      void operator()(void* p) const { host_free(p, bytes); }
    };
    std::unique_ptr<void, Free> data;
    size_t bytes = 0;
  };
  std::vector<Copy> copies;
};
ConvWeightPack::ConvWeightPack() : impl_(std::make_unique<Impl>()) {}
ConvWeightPack::~ConvWeightPack() = default;
int64_t ConvWeightPack::bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int64_t n = 0;
  for (const auto& c : impl_->copies) n += int64_t(c.bytes);
  return n;
}

namespace conv_detail {
namespace {

// ptrs[i] is the user buffer of conv.args[i]. With a pack, the weights' reorder runs once per layout.
void run_dnnl(const DnnlConv& conv, const std::vector<void*>& ptrs, ConvWeightPack* pack = nullptr) {
  auto& eng = dnnl_engine();
  thread_local dnnl::stream strm(dnnl_engine());
  memory pad;
  if (conv.scratch)
    pad = memory(memory::desc({memory::dim(conv.scratch)}, memory::data_type::u8, dtag::x), eng,
                 scratch(0).get(conv.scratch));
  auto with_pad = [&](std::unordered_map<int, memory> m) {
    if (conv.scratch) m[DNNL_ARG_SCRATCHPAD] = pad;
    return m;
  };
  std::unordered_map<int, memory> margs = with_pad({});
  std::vector<std::pair<memory, memory>> outs;  // (prim, user) pairs to reorder after the conv
  for (size_t i = 0; i < conv.args.size(); ++i) {
    const DnnlArg& a = conv.args[i];
    memory user(a.user, eng, ptrs[i]);
    if (!a.reorder) {
      margs[a.arg] = user;
      continue;
    }
    if (pack && a.arg == DNNL_ARG_WEIGHTS) {
      ConvWeightPack::Impl& p = pack->impl();
      std::lock_guard<std::mutex> lock(p.mu);
      if (p.weights != ptrs[i]) p.copies.clear(), p.weights = ptrs[i];
      auto it = std::find_if(p.copies.begin(), p.copies.end(), [&](const auto& c) { return c.layout == a.prim; });
      if (it == p.copies.end()) {
        ConvWeightPack::Impl::Copy c;
        c.layout = a.prim, c.bytes = round_up(int64_t(a.prim.get_size()), 64);
        c.data = std::unique_ptr<void, ConvWeightPack::Impl::Copy::Free>(host_alloc(c.bytes), {size_t(c.bytes)});
        memory packed(a.prim, eng, c.data.get());
        a.reorder.execute(strm, with_pad({{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, packed}}));
        strm.wait();
        it = p.copies.insert(p.copies.end(), std::move(c));
      }
      margs[a.arg] = memory(a.prim, eng, it->data.get());
      continue;
    }
    memory prim(a.prim, eng, scratch(1 + int(i)).get(a.prim.get_size()));
    if (a.out) {
      outs.emplace_back(prim, user);
    } else {
      a.reorder.execute(strm, with_pad({{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, prim}}));
    }
    margs[a.arg] = prim;
  }
  conv.prim.execute(strm, margs);
  size_t j = 0;
  for (size_t i = 0; i < conv.args.size(); ++i)
    if (conv.args[i].reorder && conv.args[i].out) {
      conv.args[i].reorder.execute(strm, with_pad({{DNNL_ARG_FROM, outs[j].first}, {DNNL_ARG_TO, outs[j].second}}));
      ++j;
    }
  strm.wait();
}

}  // namespace

std::string dnnl_impl_name(const Conv2dShape& s, ConvPass pass, bool blocked) {
  return get_dnnl(s, pass, blocked, false, false)->impl;
}

void dnnl_forward(const Conv2dShape& s, bool blocked, const float* x, const float* w, const float* b, float* y,
                  bool relu, ConvWeightPack* pack, bool x_nc16, bool y_nc16) {
  RF_CHECK(!(x_nc16 || y_nc16) || (s.C % 16 == 0 && s.K % 16 == 0 && !s.y_nstride),
           "{}: nChw16c activations need C and K multiples of 16 and a contiguous y", s.str());
  auto conv = get_dnnl(s, ConvPass::forward, blocked, b != nullptr, relu, x_nc16, y_nc16);
  std::vector<void*> ptrs{const_cast<float*>(x), const_cast<float*>(w), y};
  if (b) ptrs.push_back(const_cast<float*>(b));
  run_dnnl(*conv, ptrs, pack);
}

void dnnl_backward_data(const Conv2dShape& s, bool blocked, const float* dy, const float* w, float* dx,
                        const float* relu_y) {
  Conv2dShape sd = s;
  if (relu_y) {  // mask dy into a contiguous temporary, then the plain backward
    sd.y_nstride = 0;
    const int64_t m = int64_t(s.K) * s.OH() * s.OW(), ys = s.y_batch_stride();
    float* t = static_cast<float*>(scratch(5).get(sizeof(float) * m * s.N));
#pragma omp parallel for if (parallel_worth(s)) schedule(static)
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < m; ++i) t[n * m + i] = relu_y[n * ys + i] > 0 ? dy[n * ys + i] : 0.f;
    dy = t;
  }
  auto conv = get_dnnl(sd, ConvPass::backward_data, blocked, false, false);
  run_dnnl(*conv, {const_cast<float*>(dy), const_cast<float*>(w), dx});
}

void dnnl_backward_weight(const Conv2dShape& s, bool blocked, const float* x, const float* dy, float* dw,
                          float* db) {
  auto conv = get_dnnl(s, ConvPass::backward_weight, blocked, db != nullptr, false);
  std::vector<void*> ptrs{const_cast<float*>(x), const_cast<float*>(dy), dw};
  if (db) ptrs.push_back(db);
  run_dnnl(*conv, ptrs);
}

}  // namespace conv_detail
}  // namespace rf

// Layer implementations over the fast CPU ops. Backward caches only what each op's backward needs.
#include "host/models/layers.h"

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>

#include "host/core/comm.h"
#include "host/core/enum_name.h"
#include "host/core/parallel.h"
#include "host/core/philox.h"
#include "host/core/profile.h"
#include "host/ops/batchnorm.h"
#include "host/ops/elementwise.h"
#include "host/ops/linear.h"

namespace rf {

namespace {
float g_bn_momentum = -1.f;  // set_bn_momentum_override
bool g_bn_sync = false;      // set_bn_sync
}  // namespace

const char* param_kind_name(ParamKind k) {
  static constexpr const char* kNames[] = {"learnable", "seeded", "state"};  // ParamKind order
  return enum_name(k, kNames);
}

void init_normal(Tensor& t, uint64_t seed, float std) { seeded_normal_fill(seed, std, t.numel(), t.f32()); }

static Param make_param(const std::string& name, ParamKind kind, const Shape& shape, bool decay) {
  Param p;
  p.name = name;
  p.kind = kind;
  p.value = Tensor::zeros(shape);
  p.decay = decay;
  return p;
}

float* Param::grad_f32() {
  RF_CHECK(kind == ParamKind::learnable, "{}: a {} parameter has no gradient", name, param_kind_name(kind));
  if (!grad.defined()) grad = Tensor::zeros(value.shape(), DType::f32, value.device());
  return grad.f32();
}

void check_nchw(const Tensor& x, int C, const std::string& what) {
  check_shape(x, Shape{-1, C, -1, -1}, what);
  RF_CHECK(x.is_contiguous() && x.dtype() == DType::f32, "{}: expected a contiguous f32 tensor, got {}", what,
           x.str());
}

void check_backward(const Tensor& saved, const Tensor& dy, const std::string& name) {
  RF_CHECK(saved.defined(), "{}: backward without a training forward", name);
  check_same_shape(dy, saved, name + " output gradient");
}

// The profile kind of a learnable conv (host/core/profile.h), by its role in these models.
static const char* conv_kind(int C, int k) { return C == 3 ? "stem conv" : k == 1 ? "shortcut 1x1 conv" : "3x3 conv (ResNet-18)"; }

static LayerCost cost_row(const std::string& name, const std::string& type, const Shape& in, const Shape& out) {
  LayerCost r;
  r.name = name;
  r.type = type;
  r.in = in;
  r.out = out;
  r.act_bytes = out.numel() * int64_t(sizeof(float));
  return r;
}

// ---- Conv2d ----------------------------------------------------------------------------------------

Conv2d::Conv2d(std::string name, int C, int K, int k, int stride, int pad, int groups, bool has_bias, uint64_t init_seed)
    : Module(std::move(name)), C_(C), K_(K), k_(k), stride_(stride), pad_(pad), groups_(groups), has_bias_(has_bias) {
  RF_CHECK(C % groups == 0 && K % groups == 0, "{}: channels {}->{} not divisible by groups {}", name_, C, K, groups);
  weight = make_param(name_ + ".weight", ParamKind::learnable, Shape{K, C / groups, k, k}, true);
  // Kaiming-normal, fan_out mode, ReLU gain, as PyTorch: fan_out = K * k * k.
  init_normal(weight.value, init_seed, std::sqrt(2.0f / float(K * k * k)));
  if (has_bias_) bias = make_param(name_ + ".bias", ParamKind::learnable, Shape{K}, false);
}

Conv2dShape Conv2d::conv_shape(const Shape& in) const {
  Conv2dShape s;
  s.N = int(in[0]);
  s.C = C_;
  s.H = int(in[2]);
  s.W = int(in[3]);
  s.K = K_;
  s.k = k_;
  s.stride = stride_;
  s.pad = pad_;
  s.groups = groups_;
  return s;
}

Shape Conv2d::out_shape(const Shape& in) const {
  Conv2dShape s = conv_shape(in);
  return Shape{in[0], K_, s.OH(), s.OW()};
}

void Conv2d::forward_into(const Tensor& x, float* y, int64_t y_nstride, bool train) {
  check_nchw(x, C_, name_ + " input");
  RF_CHECK(x.device() == Device::cpu, "{}: forward_into takes host tensors, got {}", name_, x.str());
  Conv2dShape s = conv_shape(x.shape());
  s.y_nstride = y_nstride;
  s.validate();
  ConvWeightPack* pack = weight_pack(train);
  profile::Scope scope(profile::enabled() ? profile::kind_id(conv_kind(C_, k_)) : -1);  // lookup only when on
  conv2d_forward_packed_cpu(s, x.f32(), weight.value.f32(), has_bias_ ? bias.value.f32() : nullptr, y, pack);
  if (train) x_ = x;
}

bool Conv2d::forward_nc16(const Tensor& x, bool x_nc16, float* y, bool y_nc16) {
  if (x.device() != Device::cpu) return false;
  check_nchw(x, C_, name_ + " input");
  const Conv2dShape s = conv_shape(x.shape());
  if (!conv2d_nc16_applies(s) || conv2d_cpu_algo(s, ConvPass::forward) != ConvAlgo::dnnl_blocked) return false;
  ConvWeightPack* pack = weight_pack(false);
  profile::Scope scope(profile::enabled() ? profile::kind_id(conv_kind(C_, k_)) : -1);
  conv2d_forward_nc16_cpu(s, x.f32(), x_nc16, weight.value.f32(), has_bias_ ? bias.value.f32() : nullptr, y, y_nc16,
                          pack);
  return true;
}

Tensor Conv2d::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  check_nchw(x, C_, name_ + " input");
  Tensor y = Tensor::empty(out_shape(x.shape()));
  forward_into(x, y.f32(), 0, train);
  return y;
}

Tensor Conv2d::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  RF_CHECK(x_.defined(), "{}: backward without a training forward", name_);
  Conv2dShape s = conv_shape(x_.shape());
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  Tensor dx = Tensor::empty(x_.shape());
  profile::Scope scope(profile::enabled() ? profile::kind_id(conv_kind(C_, k_)) : -1);  // lookup only when on
  conv2d_backward_data_cpu(s, dy.f32(), weight.value.f32(), dx.f32());
  conv2d_backward_weight_cpu(s, x_.f32(), dy.f32(), weight.grad_f32(), has_bias_ ? bias.grad_f32() : nullptr);
  return dx;
}

void Conv2d::collect(std::vector<Param*>& out) {
  out.push_back(&weight);
  if (has_bias_) out.push_back(&bias);
}

void Conv2d::account(const Shape& in, std::vector<LayerCost>& rows) const {
  LayerCost r = cost_row(name_, "conv2d", in, out_shape(in));
  Conv2dShape s = conv_shape(in);
  r.learnable = s.weight_numel() + (has_bias_ ? K_ : 0);
  r.macs = s.macs();
  rows.push_back(r);
}

// ---- BatchNorm2d -----------------------------------------------------------------------------------

BatchNorm2d::BatchNorm2d(std::string name, int C) : Module(std::move(name)), C_(C) {
  gamma = make_param(name_ + ".weight", ParamKind::learnable, Shape{C}, false);
  beta = make_param(name_ + ".bias", ParamKind::learnable, Shape{C}, false);
  running_mean = make_param(name_ + ".running_mean", ParamKind::state, Shape{C}, false);
  running_var = make_param(name_ + ".running_var", ParamKind::state, Shape{C}, false);
  gamma.value.fill(1.f);
  running_var.value.fill(1.f);
}

Tensor BatchNorm2d::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  check_nchw(x, C_, name_ + " input");
  BatchNormShape s{int(x.size(0)), C_, int(x.size(2) * x.size(3))};
  if (g_bn_momentum >= 0) s.momentum = g_bn_momentum;
  Tensor y = Tensor::empty(x.shape());
  save_scale_ = relu_y_ = Tensor();  // no ReLU folded in (forward_act sets them after)
  RF_PROFILE("BN");
  if (train && g_bn_sync && comm::active()) {
    save_mean_ = Tensor::empty(Shape{C_});
    save_invstd_ = Tensor::empty(Shape{C_});
    batchnorm_forward_train_sync_cpu(s, x.f32(), gamma.value.f32(), beta.value.f32(), y.f32(), save_mean_.f32(),
                                     save_invstd_.f32(), running_mean.value.f32(), running_var.value.f32(),
                                     [](double* d, int64_t n) { comm::allreduce_sum(d, n); });
    x_ = x;
  } else if (train) {
    save_mean_ = Tensor::empty(Shape{C_});
    save_invstd_ = Tensor::empty(Shape{C_});
    batchnorm_forward_train_cpu(s, x.f32(), gamma.value.f32(), beta.value.f32(), y.f32(), save_mean_.f32(),
                                save_invstd_.f32(), running_mean.value.f32(), running_var.value.f32());
    x_ = x;
  } else {
    batchnorm_forward_eval_cpu(s, x.f32(), gamma.value.f32(), beta.value.f32(), running_mean.value.f32(),
                               running_var.value.f32(), y.f32());
  }
  return y;
}

Tensor BatchNorm2d::forward_act(const Tensor& x, bool train, const Tensor* res, bool relu) {
  RF_CHECK(x.device() == Device::cpu, "{}: forward_act takes host tensors, got {}", name_, x.str());
  check_nchw(x, C_, name_ + " input");
  if (res) check_same_shape(*res, x, name_ + " residual");
  save_scale_ = relu_y_ = Tensor();
  const bool sync = train && g_bn_sync && comm::active();
  if (!train || sync) {  // the unfused ops
    Tensor y = forward(x, train);
    RF_PROFILE("ReLU / residual add");
    if (res) add_forward_cpu(y.numel(), y.f32(), res->f32(), y.f32(), relu);
    else if (relu) relu_forward_cpu(y.numel(), y.f32(), y.f32());
    if (sync && relu && !res) relu_y_ = y;
    return y;
  }
  BatchNormShape s{int(x.size(0)), C_, int(x.size(2) * x.size(3))};
  if (g_bn_momentum >= 0) s.momentum = g_bn_momentum;
  Tensor y = Tensor::empty(x.shape());
  RF_PROFILE("BN");
  save_mean_ = Tensor::empty(Shape{C_});
  save_invstd_ = Tensor::empty(Shape{C_});
  if (relu && !res) save_scale_ = Tensor::empty(Shape{C_});
  batchnorm_forward_train_act_cpu(s, x.f32(), gamma.value.f32(), beta.value.f32(), res ? res->f32() : nullptr, relu,
                                  y.f32(), save_mean_.f32(), save_invstd_.f32(),
                                  save_scale_.defined() ? save_scale_.f32() : nullptr, running_mean.value.f32(),
                                  running_var.value.f32());
  x_ = x;
  return y;
}

Tensor BatchNorm2d::backward(const Tensor& dy_in) {
  if (dy_in.device() == Device::cuda) return backward_cuda(dy_in);
  check_backward(x_, dy_in, name_);
  BatchNormShape s{int(x_.size(0)), C_, int(x_.size(2) * x_.size(3))};
  Tensor dx = Tensor::empty(x_.shape());
  if (save_scale_.defined()) {  // forward_act's ReLU, its mask recomputed from x in both passes
    RF_PROFILE("BN");
    batchnorm_backward_relu_cpu(s, x_.f32(), dy_in.f32(), gamma.value.f32(), beta.value.f32(), save_mean_.f32(),
                                save_invstd_.f32(), save_scale_.f32(), dx.f32(), gamma.grad_f32(), beta.grad_f32());
    return dx;
  }
  Tensor dy = dy_in;
  if (relu_y_.defined()) {  // forward_act's ReLU with synchronised BN
    RF_PROFILE("ReLU / residual add");
    dy = Tensor::empty(dy_in.shape());
    relu_backward_cpu(dy.numel(), relu_y_.f32(), dy_in.f32(), dy.f32());
  }
  RF_PROFILE("BN");
  if (g_bn_sync && comm::active())
    batchnorm_backward_sync_cpu(s, x_.f32(), dy.f32(), gamma.value.f32(), save_mean_.f32(), save_invstd_.f32(),
                                dx.f32(), gamma.grad_f32(), beta.grad_f32(),
                                [](double* d, int64_t n) { comm::allreduce_sum(d, n); });
  else
    batchnorm_backward_cpu(s, x_.f32(), dy.f32(), gamma.value.f32(), save_mean_.f32(), save_invstd_.f32(), dx.f32(),
                           gamma.grad_f32(), beta.grad_f32());
  return dx;
}

void BatchNorm2d::collect(std::vector<Param*>& out) {
  out.push_back(&gamma);
  out.push_back(&beta);
  out.push_back(&running_mean);
  out.push_back(&running_var);
}

void BatchNorm2d::account(const Shape& in, std::vector<LayerCost>& rows) const {
  LayerCost r = cost_row(name_, "batchnorm", in, in);
  r.learnable = 2 * C_;
  r.state = 2 * C_;
  rows.push_back(r);
}

// ---- ReLU ------------------------------------------------------------------------------------------

Tensor ReLU::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  // In place: the input is a fresh activation that nothing else reads (BN keeps its own input).
  RF_PROFILE("ReLU / residual add");
  relu_forward_cpu(x.numel(), x.f32(), x.f32());
  if (train) y_ = x;
  return x;
}

Tensor ReLU::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  check_backward(y_, dy, name_);
  Tensor dx = Tensor::empty(dy.shape());
  RF_PROFILE("ReLU / residual add");
  relu_backward_cpu(dy.numel(), y_.f32(), dy.f32(), dx.f32());
  return dx;
}

void ReLU::account(const Shape&, std::vector<LayerCost>&) const {}  // in place: no memory, no MACs

// ---- MaxPool2d (large stem) ------------------------------------------------------------------------

Shape MaxPool2d::out_shape(const Shape& in) const {
  Pool2dShape s{int(in[0]), int(in[1]), int(in[2]), int(in[3]), k_, stride_, pad_};
  return Shape{in[0], in[1], s.OH(), s.OW()};
}

Tensor MaxPool2d::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  Pool2dShape s{int(x.size(0)), int(x.size(1)), int(x.size(2)), int(x.size(3)), k_, stride_, pad_};
  s.validate();
  Tensor y = Tensor::empty(out_shape(x.shape()));
  RF_PROFILE("stem max pool");
  max_pool2d_forward_cpu(s, x.f32(), y.f32());
  if (train) x_ = x;
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  RF_CHECK(x_.defined(), "{}: backward without a training forward", name_);
  Pool2dShape s{int(x_.size(0)), int(x_.size(1)), int(x_.size(2)), int(x_.size(3)), k_, stride_, pad_};
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  Tensor dx = Tensor::empty(x_.shape());
  RF_PROFILE("stem max pool");
  max_pool2d_backward_cpu(s, x_.f32(), dy.f32(), dx.f32());
  return dx;
}

void MaxPool2d::account(const Shape& in, std::vector<LayerCost>& rows) const {
  LayerCost r = cost_row(name_, "maxpool", in, out_shape(in));
  Pool2dShape s{int(in[0]), int(in[1]), int(in[2]), int(in[3]), k_, stride_, pad_};
  r.pool_reads = s.window_reads();
  rows.push_back(r);
}

// ---- NLModule --------------------------------------------------------------------------------------

NLModule::NLModule(std::string name, int C_in, int C_out, int stride, int C_nl, int gpw, bool shuffle, uint64_t seed,
                   uint64_t init_seed)
    : Module(name),
      C_in_(C_in),
      C_out_(C_out),
      stride_(stride),
      C_nl_(C_nl),
      gpw_(gpw),
      shuffle_(shuffle),
      pw_(name + ".pw", C_nl + 2 * C_in, C_out, 1, 1, 0, gpw, true, init_seed) {
  RF_CHECK(C_in >= MixedPoolShape::kGroups, "{}: C_in={} but the mixed pool needs at least 5 channels", name_, C_in);
  NLModuleShape shape;  // the sizes do not enter the seeded conv's spec
  shape.C_in = C_in, shape.C_nl = C_nl, shape.stride = stride, shape.seed = seed;
  spec_ = shape.seeded_spec();
  seeded_weight = make_param(name_ + ".seeded.weight", ParamKind::seeded,
                             Shape{C_nl, C_in / spec_.groups, 3, 3}, false);
  regenerate();
}

void NLModule::regenerate() { seeded_conv_weights(spec_, seeded_weight.value.f32()); }

Shape NLModule::out_shape(const Shape& in) const {
  return Shape{in[0], C_out_, (in[2] - 1) / stride_ + 1, (in[3] - 1) / stride_ + 1};
}

NLModuleShape NLModule::op_shape(const Shape& in) const {
  NLModuleShape s;
  s.N = int(in[0]), s.C_in = C_in_, s.H = int(in[2]), s.W = int(in[3]);
  s.C_out = C_out_, s.stride = stride_, s.C_nl = C_nl_, s.gpw = gpw_, s.shuffle = shuffle_, s.seed = spec_.seed;
  return s;
}

// The module's output, shuffled or not (the eval epilogue applies the shuffle itself).
// The three branches write straight into their channel slices of the concat buffer. Training keeps x only (the
// block keeps it anyway): backward rebuilds cat from it, since cat is 3x x (dw) to 14x (768, stage 1) and its
// branches cost ~9 MACs or window reads per element, a small share of the step (ReFrame's 1x1 conv does
// C_cat/4 MACs per output).
// With two threads or more and more than one sample, the module runs sample by sample, the threads taking whole
// samples, each with its own one-sample concat: the concat of the whole batch (50 MB for NL-dw's first stage at
// batch 64, 235 MB for NL-768's) went out to DRAM and came back for the 1x1 conv, where one sample's (0.8-3.7
// MB) stays in L2/L3; the eval blocks do the same (BasicBlock::forward_eval_blocked). Every sample's arithmetic is
// the same either way (the ops' items are per sample and group; tests/models/test_models.cpp, bit for bit).
Tensor NLModule::forward_with(const Tensor& x, bool train, bool shuffle) {
  check_nchw(x, C_in_, name_ + " input");
  NLModuleShape s = op_shape(x.shape());
  s.shuffle = shuffle;
  Tensor y = Tensor::empty(out_shape(x.shape()));
  const bool need_z = shuffle && !nl_module_folds_shuffle(s);  // the 1x1 conv's output before the shuffle
  const float *w_seeded = seeded_weight.value.f32(), *w_pw = pw_.weight.value.f32(), *b_pw = pw_.bias.value.f32();
  if (s.N == 1 || omp_in_parallel() || omp_get_max_threads() < 2) {
    Tensor cat = Tensor::empty(Shape{s.N, Ccat(), s.OH(), s.OW()});
    Tensor z = need_z ? Tensor::empty(y.shape()) : Tensor();
    nl_module_forward_cpu(s, x.f32(), w_seeded, w_pw, b_pw, cat.f32(), y.f32(), z.defined() ? z.f32() : nullptr);
  } else {
    NLModuleShape one = s;
    one.N = 1;
    const int64_t per_x = x.numel() / s.N, per_y = y.numel() / s.N;
    const int T = omp_get_max_threads();  // one concat (and z) per thread, allocated before the team starts
    Tensor cat = Tensor::empty(Shape{T, Ccat(), s.OH(), s.OW()});
    Tensor z = need_z ? Tensor::empty(Shape{T, C_out_, s.OH(), s.OW()}) : Tensor();
    const int64_t per_cat = cat.numel() / T;
    parallel_items(s.N, T, [&](int t, int64_t n) {
      nl_module_forward_cpu(one, x.f32() + n * per_x, w_seeded, w_pw, b_pw, cat.f32() + t * per_cat,
                            y.f32() + n * per_y, z.defined() ? z.f32() + t * per_y : nullptr);
    });
  }
  if (train) x_ = x;
  return y;
}

Tensor NLModule::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  return forward_with(x, train, shuffle_);
}

Tensor NLModule::forward_unshuffled(const Tensor& x) { return forward_with(x, false, false); }

Tensor NLModule::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  return backward_plus(dy, Tensor());
}

Tensor NLModule::backward_plus(const Tensor& dy, const Tensor& res) {
  RF_CHECK(dy.device() == Device::cpu, "{}: backward_plus takes host tensors, got {}", name_, dy.str());
  RF_CHECK(x_.defined(), "{}: backward without a training forward", name_);
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  if (res.defined()) check_shape(res, x_.shape(), name_ + " residual gradient");
  const NLModuleShape s = op_shape(x_.shape());
  // One concat-sized buffer for the branches rebuilt from x, then their gradient, kChunkBytes of it at a
  // time where the 1x1 weight gradient can be summed by sample ranges (nl_module_backward_cpu): at batch 64
  // the 768 variant's first-stage concat is 235 MB, more than all of ResNet-18's weights, gradients and
  // momenta. Ranges of at most 4 MB (one sample of it, 5 of NL-dw's 0.8 MB) stay in L2/L3 between the range's
  // five passes; 32 MB ranges (8 samples of NL-768) ran its training step 3-8 % slower at batch 64 (2 threads,
  // three alternated runs; NL-dw the same). The same bits for every range (nl_module_backward_cpu).
  // Keeping the forward's concat where one sample's is at most 192 KB (NL-dw's modules at 8x8 and 4x4 and its first
  // at 16x16: +70 MB at batch 64) and not rebuilding it was built, checked bit for bit and dropped: the rebuild went
  // 26 -> 16 ms per NL-dw step, but the forward's pools (writing the whole batch's concat) and the backward's
  // 1x1 weight gradient and pools (reading it back from DRAM) lost about as much: 294 -> 297 ms per step in a fast
  // period, 1-3 % faster in the slow ones (2 threads, six alternations).
  constexpr int64_t kChunkBytes = int64_t(4) << 20;
  const int chunk = nl_module_backward_chunk(s, kChunkBytes);
  Tensor cat = Tensor::empty(Shape{chunk, Ccat(), s.OH(), s.OW()});
  const bool need_mask = !conv1x1_backward_data_inplace_applies(s.pointwise_shape());
  Tensor mask = need_mask ? Tensor::empty(Shape{chunk, C_nl_, s.OH(), s.OW()}, DType::u8) : Tensor();
  const bool need_dz = shuffle_ && !nl_module_folds_shuffle(s);
  Tensor dz = need_dz ? Tensor::empty(Shape{chunk, C_out_, s.OH(), s.OW()}) : Tensor();
  Tensor dx = Tensor::empty(x_.shape());
  nl_module_backward_cpu(s, chunk, x_.f32(), dy.f32(), seeded_weight.value.f32(), pw_.weight.value.f32(), dx.f32(),
                         pw_.weight.grad_f32(), pw_.bias.grad_f32(), cat.f32(),
                         need_mask ? mask.data<uint8_t>() : nullptr, need_dz ? dz.f32() : nullptr,
                         res.defined() ? res.f32() : nullptr);
  return dx;
}

void NLModule::collect(std::vector<Param*>& out) {
  out.push_back(&seeded_weight);
  pw_.collect(out);
}

void NLModule::account(const Shape& in, std::vector<LayerCost>& rows) const {
  const int N = int(in[0]), H = int(in[2]), W = int(in[3]);
  Shape out = out_shape(in);
  Shape branch{N, C_nl_, out[2], out[3]}, pooled{N, C_in_, out[2], out[3]};
  LayerCost a = cost_row(name_ + ".seeded", "seeded_conv", in, branch);
  a.seeded = spec_.weight_numel();
  a.macs = spec_.conv_shape(N, H, W).macs();
  rows.push_back(a);
  LayerCost b = cost_row(name_ + ".maxpool", "maxpool", in, pooled);
  b.pool_reads = Pool2dShape{N, C_in_, H, W, 3, stride_, 1}.window_reads();
  rows.push_back(b);
  LayerCost c = cost_row(name_ + ".mixpool", "mixed_avgpool", in, pooled);
  c.pool_reads = MixedPoolShape{N, C_in_, H, W, stride_}.window_reads();
  rows.push_back(c);
  pw_.account(Shape{N, Ccat(), out[2], out[3]}, rows);
  if (shuffle_) rows.push_back(cost_row(name_ + ".shuffle", "shuffle", out, out));
}

// ---- BasicBlock ------------------------------------------------------------------------------------

BasicBlock::BasicBlock(std::string name, ModulePtr conv1, ModulePtr conv2, int C_in, int C_out, int stride,
                       uint64_t init_seed)
    : Module(name),
      conv1_(std::move(conv1)),
      conv2_(std::move(conv2)),
      bn1_(name + ".bn1", C_out),
      bn2_(name + ".bn2", C_out),
      relu1_(name + ".relu1") {
  if (stride != 1 || C_in != C_out) {
    sc_conv_ = std::make_unique<Conv2d>(name + ".shortcut.conv", C_in, C_out, 1, stride, 0, 1, false, init_seed);
    sc_bn_ = std::make_unique<BatchNorm2d>(name + ".shortcut.bn", C_out);
  }
  has_nl_ = dynamic_cast<NLModule*>(conv1_.get()) || dynamic_cast<NLModule*>(conv2_.get());
}

Shape BasicBlock::out_shape(const Shape& in) const { return conv2_->out_shape(conv1_->out_shape(in)); }

void set_bn_momentum_override(float m) { g_bn_momentum = m; }
void set_bn_sync(bool on) { g_bn_sync = on; }
float bn_momentum_override() { return g_bn_momentum; }
bool bn_sync_active() { return g_bn_sync && comm::active(); }

Tensor BasicBlock::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  if (!train && eval_fusion()) return forward_eval_blocked(x);
  // BN1's ReLU, and the residual add with the block's ReLU, run inside the BN output passes (forward_act: the
  // bits of the separate ops); BN1's backward then takes the ReLU's gradient (relu1_ is the CUDA path's).
  Tensor a = bn1_.forward_act(conv1_->forward(x, train), train, nullptr, true);
  Tensor z2 = conv2_->forward(a, train);
  Tensor sc = sc_conv_ ? sc_bn_->forward(sc_conv_->forward(x, train), train) : x;
  RF_CHECK(sc.shape() == z2.shape(), "{}: shortcut {} vs main path {}", name_, sc.shape().str(), z2.shape().str());
  Tensor out = bn2_.forward_act(z2, train, &sc, true);
  if (train) out_ = out;
  return out;
}

Tensor BasicBlock::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  check_backward(out_, dy, name_);
  Tensor d = Tensor::empty(dy.shape());
  {
    RF_PROFILE("ReLU / residual add");
    add_backward_cpu(d.numel(), out_.f32(), dy.f32(), d.f32(), d.f32(), true);
  }
  Tensor g1 = bn1_.backward(conv2_->backward(bn2_.backward(d)));  // bn1_ masks by its ReLU
  Tensor dsc = sc_conv_ ? sc_conv_->backward(sc_bn_->backward(d)) : d;
  d = Tensor();
  // An NL module adds the shortcut's gradient in its last pass over dx, the bits of the add below: at batch 64
  // NL-dw's eight adds read and wrote 74 MB of dx from DRAM per step, after the module's ranges had left cache.
  // So the shortcut's backward runs before conv1's (they share nothing: the same bits in every gradient).
  if (auto* nl = dynamic_cast<NLModule*>(conv1_.get())) return nl->backward_plus(g1, dsc);
  Tensor dx = conv1_->backward(g1);
  RF_PROFILE("ReLU / residual add");
  add_forward_cpu(dx.numel(), dx.f32(), dsc.f32(), dx.f32(), false);
  return dx;
}

void BasicBlock::collect(std::vector<Param*>& out) {
  conv1_->collect(out);
  bn1_.collect(out);
  conv2_->collect(out);
  bn2_.collect(out);
  if (sc_conv_) {
    sc_conv_->collect(out);
    sc_bn_->collect(out);
  }
}

void BasicBlock::account(const Shape& in, std::vector<LayerCost>& rows) const {
  Shape a = conv1_->out_shape(in);
  conv1_->account(in, rows);
  bn1_.account(a, rows);
  conv2_->account(a, rows);
  Shape out = conv2_->out_shape(a);
  bn2_.account(out, rows);
  if (sc_conv_) {
    sc_conv_->account(in, rows);
    sc_bn_->account(out, rows);
  }
  rows.push_back(cost_row(name_ + ".add", "add_relu", out, out));
}

void BasicBlock::clear_cache() {
  conv1_->clear_cache();
  conv2_->clear_cache();
  bn1_.clear_cache();
  bn2_.clear_cache();
  relu1_.clear_cache();
  if (sc_conv_) {
    sc_conv_->clear_cache();
    sc_bn_->clear_cache();
  }
  out_ = Tensor();
}

// ---- Head ------------------------------------------------------------------------------------------

Head::Head(std::string name, int C, int classes, uint64_t init_seed) : Module(std::move(name)), C_(C), classes_(classes) {
  weight = make_param(name_ + ".fc.weight", ParamKind::learnable, Shape{classes, C}, true);
  bias = make_param(name_ + ".fc.bias", ParamKind::learnable, Shape{classes}, false);
  init_normal(weight.value, init_seed, 0.01f);
}

Tensor Head::forward(const Tensor& x, bool train) {
  if (x.device() == Device::cuda) return forward_cuda(x, train);
  check_nchw(x, C_, name_ + " input");
  const int N = int(x.size(0)), HW = int(x.size(2) * x.size(3));
  Tensor pooled = Tensor::empty(Shape{N, C_});
  RF_PROFILE("head (global pool + linear)");
  global_avg_pool_forward_cpu(N, C_, HW, x.f32(), pooled.f32());
  Tensor y = Tensor::empty(Shape{N, classes_});
  linear_forward_cpu(N, C_, classes_, pooled.f32(), weight.value.f32(), bias.value.f32(), y.f32());
  if (train) {
    pooled_ = pooled;
    in_ = x.shape();
  }
  return y;
}

Tensor Head::backward(const Tensor& dy) {
  if (dy.device() == Device::cuda) return backward_cuda(dy);
  RF_CHECK(pooled_.defined(), "{}: backward without a training forward", name_);
  const int N = int(in_[0]), HW = int(in_[2] * in_[3]);
  check_shape(dy, Shape{N, classes_}, name_ + " output gradient");
  Tensor dpooled = Tensor::empty(Shape{N, C_});
  RF_PROFILE("head (global pool + linear)");
  linear_backward_cpu(N, C_, classes_, pooled_.f32(), weight.value.f32(), dy.f32(), dpooled.f32(), weight.grad_f32(),
                      bias.grad_f32());
  Tensor dx = Tensor::empty(in_);
  global_avg_pool_backward_cpu(N, C_, HW, dpooled.f32(), dx.f32());
  return dx;
}

void Head::collect(std::vector<Param*>& out) {
  out.push_back(&weight);
  out.push_back(&bias);
}

void Head::account(const Shape& in, std::vector<LayerCost>& rows) const {
  Shape pooled{in[0], C_};
  rows.push_back(cost_row(name_ + ".avgpool", "global_avgpool", in, pooled));
  LayerCost r = cost_row(name_ + ".fc", "linear", pooled, Shape{in[0], classes_});
  r.learnable = int64_t(C_) * classes_ + classes_;
  r.macs = in[0] * int64_t(C_) * classes_;
  rows.push_back(r);
}

// ---- Sequential ------------------------------------------------------------------------------------

Tensor Sequential::forward(const Tensor& x, bool train) {
  Tensor h = x;
  for (auto& m : mods_) h = m->forward(h, train);
  return h;
}

Tensor Sequential::backward(const Tensor& dy) {
  Tensor g = dy;
  // A module's saved activations die with its backward: the layers below then run their backward without
  // the layers above still holding theirs (the training step's peak memory is in the first stage).
  for (auto it = mods_.rbegin(); it != mods_.rend(); ++it) {
    g = (*it)->backward(g);
    (*it)->clear_cache();
  }
  return g;
}

void Sequential::collect(std::vector<Param*>& out) {
  for (auto& m : mods_) m->collect(out);
}

Shape Sequential::out_shape(const Shape& in) const {
  Shape s = in;
  for (auto& m : mods_) s = m->out_shape(s);
  return s;
}

void Sequential::account(const Shape& in, std::vector<LayerCost>& rows) const {
  Shape s = in;
  for (auto& m : mods_) {
    m->account(s, rows);
    s = m->out_shape(s);
  }
}

void Sequential::clear_cache() {
  for (auto& m : mods_) m->clear_cache();
}

}  // namespace rf

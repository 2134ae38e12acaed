// The layers' inference paths (host/models/layers.h): FrozenWeights sessions and the conv layers' packed
// weights, and BasicBlock's fused eval (each conv slot's BN, shuffle, residual and ReLU in one epilogue pass;
// ResNet-18's blocks on oneDNN's nChw16c activations; NL blocks sample-blocked). Checked by
// tests/models/test_models.cpp (fused against unfused and sample-blocked against unblocked, bit for bit; a
// session against no session, bit for bit).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <vector>

#include "host/core/check.h"
#include "host/core/parallel.h"
#include "host/core/profile.h"
#include "host/models/layers.h"
#include "host/ops/batchnorm.h"
#include "host/ops/nl_module.h"

namespace rf {

namespace {
std::mutex g_frozen_mu;
int g_frozen_depth = 0;
uint64_t g_frozen_count = 0;
std::atomic<uint64_t> g_frozen_session{0};
}  // namespace

FrozenWeights::FrozenWeights() {
  std::lock_guard<std::mutex> lock(g_frozen_mu);
  if (g_frozen_depth++ == 0) g_frozen_session = ++g_frozen_count;
}
FrozenWeights::~FrozenWeights() {
  std::lock_guard<std::mutex> lock(g_frozen_mu);
  if (--g_frozen_depth == 0) g_frozen_session = 0;
}
uint64_t FrozenWeights::session() { return g_frozen_session; }

ConvWeightPack* Conv2d::weight_pack(bool train) {
  const uint64_t session = FrozenWeights::session();
  RF_CHECK(!(train && session), "{}: a training forward inside a FrozenWeights session (an inference session "
           "promises the weights do not change)", name_);
  std::lock_guard<std::mutex> lock(pack_mu_);
  if (!session) {
    pack_.reset();  // a copy from an ended session: the weights may have changed since
    return nullptr;
  }
  if (!pack_ || pack_session_ != session) pack_ = std::make_unique<ConvWeightPack>(), pack_session_ = session;
  return pack_.get();
}

namespace {
bool g_eval_fusion = true;
int g_sample_block = -1;  // -1: not set yet (then $RF_EVAL_SAMPLE_BLOCK, else kDefaultSampleBlock)
constexpr int kDefaultSampleBlock = 1;
}  // namespace
void set_eval_fusion(bool on) { g_eval_fusion = on; }
bool eval_fusion() { return g_eval_fusion; }
void set_eval_sample_block(int samples) { g_sample_block = std::max(0, samples); }
int eval_sample_block() {
  if (g_sample_block < 0) {
    const char* e = std::getenv("RF_EVAL_SAMPLE_BLOCK");
    g_sample_block = e && *e ? std::max(0, std::atoi(e)) : kDefaultSampleBlock;
  }
  return g_sample_block;
}

Tensor NLModule::forward_eval_bn(const Tensor& x, BatchNorm2d& bn, const Tensor* res, bool relu, float* into) {
  if (x.device() != Device::cpu) return Tensor();
  check_nchw(x, C_in_, name_ + " input");
  const NLModuleShape s = op_shape(x.shape());
  if (!nl_module_epilogue_applies(s)) return Tensor();
  const Shape ys = out_shape(x.shape());
  if (res) RF_CHECK(res->shape() == ys, "{}: residual {} vs output {}", name_, res->shape().str(), ys.str());
  const BatchNormShape bs{int(ys[0]), int(ys[1]), int(ys[2] * ys[3])};
  const std::vector<float> scale = batchnorm_eval_scale(bs, bn.gamma.value.f32(), bn.running_var.value.f32());
  ConvEpilogue ep;
  ep.mean = bn.running_mean.value.f32(), ep.scale = scale.data(), ep.shift = bn.beta.value.f32();
  ep.res = res ? res->f32() : nullptr, ep.relu = relu;
  Tensor cat = Tensor::empty(Shape{s.N, Ccat(), s.OH(), s.OW()});
  Tensor y = into ? Tensor::borrow(into, ys) : Tensor::empty(ys);
  nl_module_forward_epilogue_cpu(s, x.f32(), seeded_weight.value.f32(), pw_.weight.value.f32(), pw_.bias.value.f32(),
                                 ep, cat.f32(), y.f32());
  return y;
}

Tensor BasicBlock::forward_eval_fused(const Tensor& x, float* out) {
  // The conv slot's output before its BN (for an NL module: before the shuffle, which the epilogue applies).
  auto pre_bn = [](Module& conv, const Tensor& in, int& groups) {
    if (auto* nl = dynamic_cast<NLModule*>(&conv)) {
      groups = nl->shuffle_groups();
      return nl->forward_unshuffled(in);
    }
    groups = 1;
    return conv.forward(in, false);
  };
  auto epilogue = [](const Tensor& z, int groups, BatchNorm2d& bn, const Tensor* res, bool relu, float* into) {
    Tensor y = into ? Tensor::borrow(into, z.shape()) : Tensor::empty(z.shape());
    BatchNormShape s{int(z.size(0)), int(z.size(1)), int(z.size(2) * z.size(3))};
    RF_PROFILE("BN epilogue (+shuffle, residual, ReLU)");
    batchnorm_eval_epilogue_cpu(s, z.f32(), groups, bn.gamma.value.f32(), bn.beta.value.f32(),
                                bn.running_mean.value.f32(), bn.running_var.value.f32(),
                                res ? res->f32() : nullptr, relu, y.f32());
    return y;
  };
  // ResNet-18's blocks: both convs on oneDNN's blocked activations (conv1 reads x in NCHW and writes nChw16c,
  // its epilogue and conv2 stay there, conv2's epilogue writes NCHW): of the 4 reorders of activations around
  // the two convs, only conv1's input is left. The same bits (tests/models/test_models.cpp).
  auto* c1 = dynamic_cast<Conv2d*>(conv1_.get());
  auto* c2 = dynamic_cast<Conv2d*>(conv2_.get());
  if (c1 && c2 && x.device() == Device::cpu) {
    const Shape s1 = c1->out_shape(x.shape());
    Tensor z1 = Tensor::empty(s1);
    if (c1->forward_nc16(x, false, z1.f32(), true)) {
      const BatchNormShape b1{int(s1[0]), int(s1[1]), int(s1[2] * s1[3])};
      Tensor a = Tensor::empty(s1);
      {
        RF_PROFILE("BN epilogue (+shuffle, residual, ReLU)");
        batchnorm_eval_epilogue_nc16_cpu(b1, z1.f32(), bn1_.gamma.value.f32(), bn1_.beta.value.f32(),
                                         bn1_.running_mean.value.f32(), bn1_.running_var.value.f32(), nullptr, true,
                                         a.f32(), true);
      }
      z1 = Tensor();
      const Shape s2 = c2->out_shape(s1);
      Tensor z2 = Tensor::empty(s2);
      if (c2->forward_nc16(a, true, z2.f32(), true)) {
        a = Tensor();
        Tensor sc = sc_conv_ ? sc_bn_->forward(sc_conv_->forward(x, false), false) : x;
        RF_CHECK(sc.shape() == s2, "{}: shortcut {} vs main path {}", name_, sc.shape().str(), s2.str());
        Tensor y = out ? Tensor::borrow(out, s2) : Tensor::empty(s2);
        const BatchNormShape b2{int(s2[0]), int(s2[1]), int(s2[2] * s2[3])};
        RF_PROFILE("BN epilogue (+shuffle, residual, ReLU)");
        batchnorm_eval_epilogue_nc16_cpu(b2, z2.f32(), bn2_.gamma.value.f32(), bn2_.beta.value.f32(),
                                         bn2_.running_mean.value.f32(), bn2_.running_var.value.f32(), sc.f32(), true,
                                         y.f32(), false);
        return y;
      }
    }
  }
  // NL modules whose 1x1 conv runs gemm_1x1 take their epilogue inside it (NLModule::forward_eval_bn, the same
  // bits): one pass over each slot's output less.
  auto* n1 = dynamic_cast<NLModule*>(conv1_.get());
  auto* n2 = dynamic_cast<NLModule*>(conv2_.get());
  int g1 = 1, g2 = 1;  // set by pre_bn: sequenced before the epilogue calls that read them
  Tensor a = n1 ? n1->forward_eval_bn(x, bn1_, nullptr, true, nullptr) : Tensor();
  if (!a.defined()) {
    Tensor z1 = pre_bn(*conv1_, x, g1);
    a = epilogue(z1, g1, bn1_, nullptr, true, nullptr);
  }
  Tensor sc = sc_conv_ ? sc_bn_->forward(sc_conv_->forward(x, false), false) : x;
  if (n2) {
    Tensor y = n2->forward_eval_bn(a, bn2_, &sc, true, out);
    if (y.defined()) return y;
  }
  Tensor z2 = pre_bn(*conv2_, a, g2);
  a = Tensor();
  RF_CHECK(sc.shape() == z2.shape(), "{}: shortcut {} vs main path {}", name_, sc.shape().str(), z2.shape().str());
  return epilogue(z2, g2, bn2_, &sc, true, out);
}

// NL blocks in eval mode run on blocks of a few samples, the two threads each taking whole blocks: their ops
// do little arithmetic per byte (the NL module's concat is 3x its input; the grouped 1x1 conv does
// C_cat/4 MACs per element read), so at batch 64 they streamed 50 MB concat buffers through DRAM; one
// sample's module working set at 32x32 (~1.5 MB) stays in L2/L3. Measured (one process, forward at N=64,
// 32x32, 2 threads, 3 forwards per figure, steady state), NL-ResNet-18 dw img/s:
//   block                 unblocked    1     2     4     8
//   quiet machine            540      778   796   799   689
//   busy L3 (neighbours)     480      630   575   540    -
// The shared L3 of these VMs is busy for minutes at a time (the second row: same binary, same hour), which
// favours the smallest block; 1 costs 2 % when the machine is quiet and wins 10 % when it is not.
// ResNet-18's compute-bound 3x3 convs lose (205 img/s unblocked; 142 / 175 / 194 / 202 at 1 / 2 / 4 / 8),
// so its blocks stay unblocked. Every sample's arithmetic is the same either way (bit-identical outputs:
// tests/models/test_models.cpp).
Tensor BasicBlock::forward_eval_blocked(const Tensor& x) {
  const int N = int(x.size(0)), block = eval_sample_block();
  if (!has_nl_ || block <= 0 || N <= block || omp_in_parallel() || omp_get_max_threads() < 2)
    return forward_eval_fused(x, nullptr);
  check_nchw(x, int(x.size(1)), name_ + " input");
  Tensor y = Tensor::empty(out_shape(x.shape()));
  const int64_t per_in = x.numel() / N, per_out = y.numel() / N;
  parallel_items((N + block - 1) / block, omp_get_max_threads(), [&](int, int64_t b) {
    const int n = int(b) * block;
    Shape xs = x.shape();
    xs[0] = std::min(block, N - n);
    forward_eval_fused(Tensor::borrow(const_cast<float*>(x.f32()) + n * per_in, xs), y.f32() + n * per_out);
  });
  return y;
}

}  // namespace rf

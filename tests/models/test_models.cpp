// Models: the exact figures of MODELS.md from the layer graph, forward shapes, seeded weights, a module-level
// directional-derivative check, and an overfit test (SGD on one batch drives the loss down) for every model.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "host/core/philox.h"
#include "host/models/layers.h"
#include "host/models/model.h"
#include "host/ops/loss.h"
#include "testing.h"

using namespace rf;

namespace {
struct Expected {
  const char* config;
  int input;
  int64_t learnable, seeded, state, macs, pool_reads;
};
// MODELS.md, "Exact figures to reproduce" (batch 1).
const Expected kTable[] = {
    {"resnet18", 32, 11173962, 0, 9600, 555422720, 0},
    {"nl-resnet18:cnl=dw", 32, 1107786, 30528, 9600, 57844736, 29577984},
    {"nl-resnet18:cnl=512", 32, 1294154, 73728, 9600, 126456832, 29577984},
    {"nl-resnet18:cnl=768", 32, 1539914, 131328, 9600, 170779648, 29577984},
    {"resnet18:classes=1000,stem=large", 224, 11689512, 0, 9600, 1814073344, 1806336},
};

using rf::testing::random_tensor;
using rf::testing::tensor_dot;
}  // namespace

TEST(Accounting, MatchesModelsMdExactly) {
  for (const Expected& e : kTable) {
    SCOPED_TRACE(e.config);
    Model m(ModelConfig::parse(e.config));
    ModelTotals t = m.totals(Shape{1, 3, e.input, e.input});
    EXPECT_EQ(t.learnable, e.learnable);
    EXPECT_EQ(t.seeded, e.seeded);
    EXPECT_EQ(t.state, e.state);
    EXPECT_EQ(t.macs, e.macs);
    EXPECT_EQ(t.pool_reads, e.pool_reads);
  }
}

TEST(Accounting, AgreesWithTheParameterTensors) {
  // The accounting rows and the tensors the model actually holds must agree.
  for (const Expected& e : kTable) {
    SCOPED_TRACE(e.config);
    Model m(ModelConfig::parse(e.config));
    int64_t n[3] = {0, 0, 0};
    for (Param* p : m.params()) n[int(p->kind)] += p->value.numel();
    ModelTotals t = m.totals(Shape{1, 3, e.input, e.input});
    EXPECT_EQ(n[int(ParamKind::learnable)], t.learnable);
    EXPECT_EQ(n[int(ParamKind::seeded)], t.seeded);
    EXPECT_EQ(n[int(ParamKind::state)], t.state);
  }
}

TEST(Accounting, ScalesWithBatchAndInput) {
  Model m(ModelConfig::parse("nl-resnet18:cnl=dw"));
  ModelTotals t1 = m.totals(Shape{1, 3, 32, 32}), t8 = m.totals(Shape{8, 3, 32, 32});
  EXPECT_EQ(t8.macs, 8 * t1.macs);
  EXPECT_EQ(t8.pool_reads, 8 * t1.pool_reads);
  EXPECT_EQ(t8.learnable, t1.learnable);
  ModelTotals t64 = m.totals(Shape{1, 3, 64, 64});
  EXPECT_GT(t64.macs, 3 * t1.macs);
  EXPECT_THROW(m.totals(Shape{1, 4, 32, 32}), rf::Error);
}

TEST(Models, ForwardShapesAllConfigs) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512", "nl-resnet18:cnl=768",
                           "nl-resnet18:cnl=dw,shuffle=off,gpw=2,classes=3", "nl-resnet18:stem=large,classes=5"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    int in = m.config().stem == "large" ? 64 : 16;
    Tensor x = random_tensor(Shape{2, 3, in, in}, 1);
    Tensor y = m.forward(x, false);
    EXPECT_EQ(y.shape(), (Shape{2, m.config().classes}));
    EXPECT_EQ(y.shape(), m.out_shape(x.shape()));
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.f32()[i]));
  }
  Model m(ModelConfig::parse("resnet18"));
  EXPECT_THROW(m.forward(Tensor::zeros(Shape{2, 1, 16, 16}), false), rf::Error);
}

TEST(Models, SeededWeightsFollowTheSeedRule) {
  Model a(ModelConfig::parse("nl-resnet18:cnl=dw,seed=42"));
  ASSERT_EQ(a.nl_modules().size(), 16u);
  for (size_t i = 0; i < a.nl_modules().size(); ++i) {
    NLModule* m = a.nl_modules()[i];
    EXPECT_EQ(m->seeded_spec().seed, 42u + i);
    // Weight j of the module is std * seeded_normal(seed, j), bit for bit.
    const float* w = m->seeded_weight.value.f32();
    float s = m->seeded_spec().weight_std();
    for (int64_t j = 0; j < m->seeded_weight.value.numel(); j += 97)
      ASSERT_EQ(w[j], s * seeded_normal(42 + i, uint64_t(j))) << m->name() << " weight " << j;
  }
  // Overwrite, regenerate: the same bits come back.
  NLModule* m0 = a.nl_modules()[3];
  Tensor before = m0->seeded_weight.value.clone();
  m0->seeded_weight.value.fill(0.f);
  a.regenerate_seeded();
  EXPECT_EQ(0, std::memcmp(before.f32(), m0->seeded_weight.value.f32(), before.nbytes()));
  // Group counts of MODELS.md: g = gcd(C_in, C_nl).
  Model b(ModelConfig::parse("nl-resnet18:cnl=768"));
  EXPECT_EQ(b.nl_modules().back()->seeded_spec().groups, 256);  // gcd(512, 768)
  EXPECT_EQ(b.nl_modules().front()->seeded_spec().groups, 64);
}

// d/dt L(x + t v) by central differences against <dL/dx, v>, for an NL module with odd sizes and stride 2.
TEST(Models, NLModuleBackwardMatchesDirectionalDerivative) {
  for (int stride : {1, 2}) {
    for (int cnl : {10, 20}) {
      SCOPED_TRACE(fmt::format("NLModule(C_in=10, C_out=8, s={}, C_nl={}, gpw=2)", stride, cnl));
      NLModule m("nl", 10, 8, stride, cnl, 2, true, 5, 6);
      Tensor x = random_tensor(Shape{2, 10, 7, 9}, 3);
      Tensor g = random_tensor(m.out_shape(x.shape()), 4);
      Tensor v = random_tensor(x.shape(), 5);
      auto loss = [&](float t) {
        Tensor xt = x.clone();
        for (int64_t i = 0; i < xt.numel(); ++i) xt.f32()[i] += t * v.f32()[i];
        Tensor y = m.forward(xt, false);
        return tensor_dot(y, g);
      };
      m.forward(x, true);
      Tensor dx = m.backward(g);
      double analytic = tensor_dot(dx, v);
      const float eps = 1e-3f;
      double numeric = (loss(eps) - loss(-eps)) / (2 * eps);
      EXPECT_NEAR(numeric, analytic, 2e-2 * (1 + std::fabs(analytic)));
      // The pointwise conv's weight gradient, the same way.
      Param& w = m.pointwise().weight;
      Tensor gw = w.grad.clone(), w0 = w.value.clone();
      Tensor vw = random_tensor(w.value.shape(), 6);
      auto loss_w = [&](float t) {
        for (int64_t i = 0; i < w.value.numel(); ++i) w.value.f32()[i] = w0.f32()[i] + t * vw.f32()[i];
        return loss(0.f);
      };
      double an_w = 0;
      for (int64_t i = 0; i < gw.numel(); ++i) an_w += double(gw.f32()[i]) * vw.f32()[i];
      double num_w = (loss_w(eps) - loss_w(-eps)) / (2 * eps);
      loss_w(0.f);
      EXPECT_NEAR(num_w, an_w, 2e-2 * (1 + std::fabs(an_w)));
    }
  }
}

// A few SGD steps on one small batch must drive the loss down, for every model; seeded weights never move.
TEST(Models, OverfitOneBatch) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512", "nl-resnet18:cnl=768"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    const int N = 8, C = 10;
    Tensor x = random_tensor(Shape{N, 3, 16, 16}, 11);
    std::vector<int32_t> labels(N);
    for (int i = 0; i < N; ++i) labels[size_t(i)] = (i * 7) % C;
    std::vector<Tensor> seeded_before;
    for (Param* p : m.params(ParamKind::seeded)) seeded_before.push_back(p->value.clone());
    SGD opt(m.params(), 0.9f, 5e-4f);
    Tensor probs = Tensor::empty(Shape{N, C}), dlogits = Tensor::empty(Shape{N, C});
    double first = 0, last = 0;
    for (int step = 0; step < 12; ++step) {
      Tensor logits = m.forward(x, true);
      double loss = softmax_cross_entropy_forward_cpu(N, C, logits.f32(), labels.data(), probs.f32());
      softmax_cross_entropy_backward_cpu(N, C, probs.f32(), labels.data(), dlogits.f32());
      m.backward(dlogits);
      opt.step(0.05f, 5.f);
      if (step == 0) first = loss;
      last = loss;
    }
    EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
    auto seeded = m.params(ParamKind::seeded);
    for (size_t i = 0; i < seeded.size(); ++i)
      ASSERT_EQ(0, std::memcmp(seeded_before[i].f32(), seeded[i]->value.f32(), seeded_before[i].nbytes()));
  }
}

// Sample-blocked eval (NL blocks on blocks of a few samples, one thread per block) is cache blocking only:
// every sample's output equals the unblocked forward's bit for bit, including a ragged last block.
TEST(Models, SampleBlockedEvalEqualsUnblockedBitForBit) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const char* text : {"nl-resnet18:cnl=dw", "nl-resnet18:cnl=512,shuffle=off", "resnet18"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    uint32_t k = 40;
    for (Param* p : m.params())
      if (p->name.find("running_mean") != std::string::npos || p->name.find("bn") != std::string::npos)
        p->value.copy_from(random_tensor(p->value.shape(), k++, 0.5f));
    Tensor x = random_tensor(Shape{9, 3, 32, 32}, 3);  // every conv algorithm of the 32x32 network
    set_eval_sample_block(0);
    Tensor ref = m.forward(x, false);
    for (int block : {1, 4, 8}) {
      set_eval_sample_block(block);
      Tensor got = m.forward(x, false);
      ASSERT_EQ(0, std::memcmp(ref.f32(), got.f32(), ref.nbytes())) << "block " << block;
    }
  }
  set_eval_sample_block(1);
  omp_set_num_threads(threads);
}

// An NL module's forward (training and unfused eval) runs sample by sample on several threads, each with a
// one-sample concat (NLModule::forward_with): the bits of the whole-batch ops on one thread, for the three
// variants' kinds of module (dw, wide, a stride-2 one, the shuffle on and off), then the training backward from it.
TEST(Models, NLModuleSampleByOneSampleForwardEqualsWholeBatchBitForBit) {
  const int threads = omp_get_max_threads();
  struct Spec {
    int C_in, C_out, stride, C_nl;
    bool shuffle;
  };
  for (const Spec& sp : {Spec{16, 16, 1, 16, true}, Spec{16, 32, 2, 48, true}, Spec{20, 24, 1, 40, false}}) {
    SCOPED_TRACE(fmt::format("NLModule(C_in={}, C_out={}, s={}, C_nl={}, shuffle={})", sp.C_in, sp.C_out, sp.stride,
                             sp.C_nl, sp.shuffle));
    NLModule m("nl", sp.C_in, sp.C_out, sp.stride, sp.C_nl, 4, sp.shuffle, 5, 6);
    const Tensor x = random_tensor(Shape{7, sp.C_in, 16, 16}, 11);
    omp_set_num_threads(1);  // the whole batch at once
    const Tensor ref = m.forward(x, false), ref_t = m.forward(x, true);
    const Tensor dy = random_tensor(ref_t.shape(), 12);
    const Tensor dx_ref = m.backward(dy);
    for (int t : {2, 3}) {
      omp_set_num_threads(t);
      const Tensor got = m.forward(x, false), got_t = m.forward(x, true);
      ASSERT_EQ(0, std::memcmp(ref.f32(), got.f32(), ref.nbytes())) << t << " threads, eval";
      ASSERT_EQ(0, std::memcmp(ref_t.f32(), got_t.f32(), ref_t.nbytes())) << t << " threads, training";
      omp_set_num_threads(1);  // the backward as the reference ran it: only the forward differs
      const Tensor dx = m.backward(dy);
      ASSERT_EQ(0, std::memcmp(dx_ref.f32(), dx.f32(), dx_ref.nbytes())) << t << " threads, backward";
    }
  }
  omp_set_num_threads(threads);
}

// NLModule::backward_plus (what BasicBlock's backward hands its shortcut gradient to): backward(dy) + res bit for
// bit, at 16x16 with stride 1 (the pools per plane) and stride 2 (lanes across planes); a residual gradient of
// another shape is refused with an error naming it.
TEST(Models, NLModuleBackwardPlusAddsTheResidualGradient) {
  for (int stride : {1, 2}) {
    SCOPED_TRACE(fmt::format("stride {}", stride));
    NLModule m("nl", 16, 24, stride, 16, 4, true, 5, 6);
    const Tensor x = random_tensor(Shape{3, 16, 16, 16}, 21);
    const Tensor y = m.forward(x, true);
    const Tensor dy = random_tensor(y.shape(), 22), res = random_tensor(x.shape(), 23);
    const Tensor dx = m.backward(dy), dxr = m.backward_plus(dy, res);
    ASSERT_EQ(dx.shape(), dxr.shape());
    for (int64_t i = 0; i < dx.numel(); ++i) ASSERT_EQ(dx.f32()[i] + res.f32()[i], dxr.f32()[i]) << "element " << i;
    try {
      m.backward_plus(dy, random_tensor(Shape{3, 16, 8, 9}, 24));
      ADD_FAILURE() << "a residual gradient of the wrong shape was accepted";
    } catch (const rf::Error& e) {
      EXPECT_NE(std::string(e.what()).find("residual gradient"), std::string::npos) << e.what();
    }
  }
}

// The fused inference epilogue (shuffle + BN + add + ReLU in one pass) equals the op-by-op sequence bit for bit.
// FrozenWeights (an inference session): the same bits as outside one, forward after forward; a training
// forward inside one throws; weights changed after a session are seen by the next (the packs are per session).
TEST(Models, FrozenWeightsSessionGivesTheSameBits) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    for (int N : {1, 2, 8}) {  // 8: NL blocks run sample blocks on several threads (one shortcut conv shared)
      Tensor x = random_tensor(Shape{N, 3, 16, 16}, 3);
      Tensor ref = m.forward(x, false);
      FrozenWeights frozen;
      for (int rep = 0; rep < 3; ++rep) {
        Tensor got = m.forward(x, false);
        ASSERT_EQ(0, std::memcmp(ref.f32(), got.f32(), ref.nbytes()));
      }
      rf::testing::expect_error([&] { m.forward(x, true); }, {"inside a FrozenWeights session"});
    }
    Tensor x = random_tensor(Shape{1, 3, 16, 16}, 4);
    Tensor before;
    {
      FrozenWeights frozen;
      before = m.forward(x, false);
    }
    for (Param* p : m.params(ParamKind::learnable))
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] *= 0.5f;
    Tensor got;
    {
      FrozenWeights frozen;  // the layers still hold the first session's packs: they must not be used
      got = m.forward(x, false);
    }
    Tensor want = m.forward(x, false);
    ASSERT_EQ(0, std::memcmp(want.f32(), got.f32(), want.nbytes()));
    EXPECT_NE(0, std::memcmp(before.f32(), got.f32(), got.nbytes()));
  }
}

TEST(Models, FusedEvalEqualsUnfusedBitForBit) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=768", "nl-resnet18:cnl=dw,shuffle=off"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    // Non-trivial BN statistics, so the epilogue's affine part is exercised.
    uint32_t k = 20;
    for (Param* p : m.params()) {
      if (p->name.find("running_var") != std::string::npos) {
        Tensor r = random_tensor(p->value.shape(), k++, 1.f);
        for (int64_t i = 0; i < r.numel(); ++i) p->value.f32()[i] = 0.5f + std::fabs(r.f32()[i]);
      } else if (p->name.find("running_mean") != std::string::npos || p->name.find("bn") != std::string::npos) {
        p->value.copy_from(random_tensor(p->value.shape(), k++, 0.5f));
      }
    }
    // The NL 1x1 convs take the BN epilogue inside (gemm_1x1) from 4x4 up (16x16: 4x4 to 16x16; 32x32: all).
    for (const int hw : {16, 32}) {
      if (hw == 32 && std::string(text) == "resnet18") continue;
      Tensor x = random_tensor(Shape{3, 3, hw, hw}, 2);
      set_eval_fusion(false);
      Tensor ref = m.forward(x, false);
      set_eval_fusion(true);
      Tensor got = m.forward(x, false);
      ASSERT_EQ(0, std::memcmp(ref.f32(), got.f32(), ref.nbytes())) << hw << "x" << hw;
    }
  }
}

// Inference holds no gradient buffers (Param::grad_f32 allocates them on first use: a backward, the optimizer),
// and an inference session's packed weight copies count in the host tensor bytes (host_memory_stats), so the
// inference peaks that bench_models and the suites report include them.
TEST(Models, InferenceHoldsNoGradientsAndCountsThePackedWeights) {
  host_release_cache();
  const size_t before = host_memory_stats().live_bytes;
  Model m(ModelConfig::parse("resnet18"));
  const ModelTotals t = m.totals(Shape{1, 3, 32, 32});
  const size_t model_bytes = host_memory_stats().live_bytes - before;
  const int64_t value_bytes = 4 * (t.learnable + t.state);
  EXPECT_GE(int64_t(model_bytes), value_bytes);
  EXPECT_LT(int64_t(model_bytes), value_bytes + (int64_t(1) << 20));  // the values only: no gradient buffers
  Tensor x = random_tensor(Shape{2, 3, 32, 32}, 3);
  {
    FrozenWeights session;
    m.forward(x, false);
    const size_t held = host_memory_stats().live_bytes - before;
    // Every 3x3 conv's weights in oneDNN's blocked layout: about the learnable bytes again.
    EXPECT_GT(int64_t(held), value_bytes + value_bytes * 9 / 10);
  }
  for (Param* p : m.params()) EXPECT_FALSE(p->grad.defined()) << p->name;
  // Training allocates them: the backward writes them, the optimizer reads them.
  const Tensor logits = m.forward(x, true);
  m.backward(random_tensor(logits.shape(), 4));
  for (Param* p : m.params()) EXPECT_EQ(p->grad.defined(), p->kind == ParamKind::learnable) << p->name;
  Param& bn_mean = *m.params(ParamKind::state).front();
  EXPECT_THROW(bn_mean.grad_f32(), rf::Error);
}

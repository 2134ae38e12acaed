// Dense-prediction models (host/models/dense.h): output shapes, accounting against the parameter tensors,
// config text, the trunk's backward against directional finite differences (every path of the merge, both
// heads, learnable and NL 3x3 slots), bad input sizes and configs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "host/models/dense.h"
#include "host/models/model.h"
#include "testing.h"

using namespace rf;

namespace {

using rf::testing::random_tensor;
using rf::testing::tensor_dot;

const char* kConfigs[] = {
    "resnet18:classes=3,stem=large,task=detect,neck=16",
    "nl-resnet18:cnl=dw,classes=3,stem=large,task=detect,neck=16",
    "nl-resnet18:cnl=dw,classes=3,stem=large,task=detect,neck=16,head_nl=on",
    "resnet18:classes=5,stem=large,task=segment,neck=16",
    "nl-resnet18:cnl=512,classes=5,stem=large,task=segment,neck=16,head_nl=on",
};

}  // namespace

TEST(Dense, ShapesAndAccounting) {
  for (const char* text : kConfigs) {
    SCOPED_TRACE(text);
    ModelConfig cfg = ModelConfig::parse(text);
    EXPECT_EQ(ModelConfig::parse(cfg.str()), cfg);
    Model m(cfg);
    Tensor x = random_tensor(Shape{2, 3, 64, 96}, 1);
    Tensor y = m.forward(x, false);
    if (cfg.task == "detect")
      EXPECT_EQ(y.shape(), Shape({2, cfg.classes + 4, 8, 12}));
    else
      EXPECT_EQ(y.shape(), Shape({2, cfg.classes, 64, 96}));
    EXPECT_EQ(m.out_shape(x.shape()), y.shape());
    int64_t learnable = 0, seeded = 0, state = 0;
    for (Param* p : m.params()) {
      (p->kind == ParamKind::learnable ? learnable : p->kind == ParamKind::seeded ? seeded : state) += p->value.numel();
    }
    ModelTotals t = m.totals(x.shape());
    EXPECT_EQ(t.learnable, learnable);
    EXPECT_EQ(t.seeded, seeded);
    EXPECT_EQ(t.state, state);
    EXPECT_GT(t.macs, 0);
    EXPECT_EQ(int64_t(m.nl_modules().size()),
              cfg.is_nl() ? 16 + (cfg.head_nl ? (cfg.task == "detect" ? 2 : 1) : 0) : 0);
  }
  // The classification backbone's figures are untouched by the dense code (MODELS.md's row).
  EXPECT_EQ(Model(ModelConfig::parse("resnet18")).totals(Shape{1, 3, 32, 32}).macs, 555422720);
}

// The trunk on its own, with stand-in stages (strided convs: no ReLU kinks or small-batch BN between the
// merge's paths, so a central difference is accurate): every gradient path of the merge and both heads.
TEST(Dense, TrunkBackwardMatchesDirectionalDerivative) {
  // Zeroing a stand-in stage's weights leaves the lateral branch as the only path of the gradient into the
  // stage below it, so each of the merge's three paths decides the input gradient on its own in one case.
  for (const char* zeroed : {"", "l4.weight", "l3.weight"})
  for (int task = 0; task < 2; ++task) {
    for (bool nl : {false, true}) {
      if (*zeroed && nl) continue;
      SCOPED_TRACE(fmt::format("task={} head_nl={} zeroed={}", task == 0 ? "detect" : "segment", nl, zeroed));
      uint64_t seed = 10;
      auto next = [&]() { return seed++; };
      auto slot = [&](const std::string& name) -> ModulePtr {
        if (nl) return std::make_unique<NLModule>(name, 8, 8, 1, 8, 2, true, next(), next());
        return std::make_unique<Conv2d>(name, 8, 8, 3, 1, 1, 1, true, next());
      };
      DenseTrunk t("trunk", std::make_unique<Conv2d>("l2", 64, 128, 3, 2, 1, 1, false, next()),
                   std::make_unique<Conv2d>("l3", 128, 256, 3, 2, 1, 1, false, next()),
                   std::make_unique<Conv2d>("l4", 256, 512, 3, 2, 1, 1, false, next()), slot("smooth"),
                   task == 0 ? slot("head") : nullptr, task == 0 ? DenseTrunk::Task::detect : DenseTrunk::Task::segment,
                   3, 8, next);
      std::vector<Param*> params;
      t.collect(params);
      for (Param* p : params)
        if (p->name == zeroed) p->value.zero();
      Tensor x = random_tensor(Shape{4, 64, 16, 16}, 3);
      Tensor g = random_tensor(t.out_shape(x.shape()), 4);
      auto loss = [&]() {
        Tensor y = t.forward(x, true);
        return tensor_dot(y, g);
      };
      t.forward(x, true);
      Tensor dx = t.backward(g);
      std::vector<std::pair<Param*, Tensor>> grads;
      for (Param* p : params)
        if (p->kind == ParamKind::learnable) grads.push_back({p, p->grad.clone()});
      // The loss is piecewise smooth (ReLUs, max-pool winners, batch statistics over few values), so one
      // central difference can land across a switch: the numeric figure is the median over steps of 3e-4,
      // 1e-3 and 3e-3 of the tensor's own scale (at least 0.1; 1 for all-zero biases), and must agree within
      // 15 % (+ 5 % of |g| |v| / sqrt(n), the typical size of a random direction's product). Measured spread
      // of single steps on this trunk: up to ~15 % through the NL modules' max pools; a wrong or missing path
      // of the merge is off by far more (the test fails with any one of the merge's gradient branches dropped). A bias feeding a batch norm has
      // an exactly zero gradient (BN removes it): checked as such, not by differences of noise.
      auto check = [&](Tensor& target, const Tensor& grad, const std::string& what, uint32_t vseed) {
        Tensor v = random_tensor(target.shape(), vseed), t0 = target.clone();
        double rms = 0;
        for (int64_t i = 0; i < t0.numel(); ++i) rms += double(t0.f32()[i]) * t0.f32()[i];
        rms = std::sqrt(rms / double(t0.numel()));
        double an = 0, gg = 0, vv = 0;
        for (int64_t i = 0; i < grad.numel(); ++i)
          an += double(grad.f32()[i]) * v.f32()[i], gg += double(grad.f32()[i]) * grad.f32()[i],
              vv += double(v.f32()[i]) * v.f32()[i];
        if (std::sqrt(gg / double(grad.numel())) < 1e-4) return;  // a bias before BN: zero up to rounding
        auto at = [&](float h) {
          for (int64_t i = 0; i < target.numel(); ++i) target.f32()[i] = t0.f32()[i] + h * v.f32()[i];
          return loss();
        };
        std::vector<double> nums;
        for (double f : {3e-4, 1e-3, 3e-3}) {
          const float eps = float(f * (rms > 0 ? std::max(rms, 0.1) : 1.0));
          nums.push_back((at(eps) - at(-eps)) / (2 * eps));
          if (std::getenv("RF_DEBUG_FD"))
            std::printf("%-24s eps %.2e an %+.6f num %+.6f\n", what.c_str(), eps, an, nums.back());
        }
        at(0);
        std::sort(nums.begin(), nums.end());
        EXPECT_NEAR(nums[1], an, 0.15 * std::fabs(an) + 0.05 * std::sqrt(gg * vv / double(grad.numel()))) << what;
      };
      check(x, dx, "input", 5);
      uint32_t vs = 6;
      for (auto& [p, gp] : grads) {
        // Every learnable tensor of the merge and the head, and the first stand-in stage (all three paths).
        if (p->name.rfind("neck", 0) && p->name.rfind("head", 0) && p->name.rfind("l2", 0) && p->name.rfind("smooth", 0))
          continue;
        check(p->value, gp, p->name, vs++);
      }
    }
  }
}

TEST(Dense, BadInputAndConfig) {
  Model m(ModelConfig::parse(kConfigs[0]));
  EXPECT_THROW(m.forward(random_tensor(Shape{1, 3, 48, 64}, 1), false), rf::Error);  // 48 is not a multiple of 32
  EXPECT_THROW(ModelConfig::parse("resnet18:task=track"), rf::Error);
  EXPECT_THROW(ModelConfig::parse("resnet18:task=detect,neck=7"), rf::Error);
  EXPECT_THROW(ModelConfig::parse("resnet18:task=detect,head_nl=on"), rf::Error);  // NL head needs an NL backbone
}

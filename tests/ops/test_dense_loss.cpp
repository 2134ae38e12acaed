// Tests of host/ops/dense_loss.cpp: CenterNet focal loss, masked L1, pixel softmax cross-entropy with an ignore
// label, and the centre-point target encoder. Hand values, fast vs reference over shape sweeps (random logits,
// targets with exact 1s, random masks, ignored pixels), finite differences of the double references, target
// encoding of single / overlapping / skipped boxes, gaussian_radius against hand-solved quadratics, bad inputs,
// and fast-vs-reference timing ratios (printed, not asserted).
#include "host/ops/dense_loss.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <omp.h>

#include "host/core/check.h"
#include "testing.h"

namespace {

using rf::testing::all_close;
using rf::testing::cast_vec;
using rf::testing::check_grad;
using rf::testing::random_vec;

struct Dims {
  int N, C, H, W;
  int64_t numel() const { return int64_t(N) * C * H * W; }
  int64_t pixels() const { return int64_t(N) * H * W; }
  std::string str(const char* op) const {
    return std::string(op) + "(N=" + std::to_string(N) + ",C=" + std::to_string(C) + ",H=" + std::to_string(H) +
           ",W=" + std::to_string(W) + ")";
  }
};

// Heatmap targets: uniform in [0, 1) with about 1 in 16 cells exactly 1 and 1 in 16 exactly 0.
template <typename T>
std::vector<T> heat_targets(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<T> t(n);
  for (auto& v : t) {
    const uint32_t r = gen() % 16;
    v = r == 0 ? T(1) : r == 1 ? T(0) : T(u(gen) * 0.999);
  }
  return t;
}

template <typename T>
std::vector<T> random_mask(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<T> m(n);
  for (auto& v : m) v = T(gen() % 3 == 0);
  return m;
}

// Labels in [0, C) with about 1 in 8 pixels ignore_label.
std::vector<uint8_t> random_labels(int64_t n, int C, int ignore_label, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> l(n);
  for (auto& v : l) v = gen() % 8 == 0 ? uint8_t(ignore_label) : uint8_t(gen() % uint32_t(C));
  return l;
}

template <typename F>
double best_time(F&& f, int reps = 3) {  // the machine is shared: the minimum is the least disturbed run
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

// ---- focal loss ----------------------------------------------------------------------------------

TEST(CenternetFocalLoss, HandCases) {
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    auto f = fast ? rf::centernet_focal_loss_cpu : rf::centernet_focal_loss_ref<float>;
    // one positive cell: -(1 - p)^2 log p, gradient (1-p)^2 (2 p log p - (1 - p))
    const float x = 0.5f, t = 1.f;
    const double p = sigmoid(0.5);
    float d = 0;
    EXPECT_NEAR(f(1, 1, 1, 1, &x, &t, &d), -(1 - p) * (1 - p) * std::log(p), 1e-7);
    EXPECT_NEAR(d, (1 - p) * (1 - p) * (2 * p * std::log(p) - (1 - p)), 1e-7);
    // one negative cell (no positives: divisor 1): -(1 - t)^4 p^2 log(1 - p)
    const float xn = -0.7f, tn = 0.5f;
    const double pn = sigmoid(-0.7);
    EXPECT_NEAR(f(1, 1, 1, 1, &xn, &tn, nullptr), -std::pow(0.5, 4) * pn * pn * std::log(1 - pn), 1e-7);
    // two positives and a negative: the sum over 3 cells divided by 2
    const std::vector<float> xs = {0.5f, 2.f, -0.7f}, ts = {1.f, 1.f, 0.5f};
    const double p2 = sigmoid(2.0);
    const double want = (-(1 - p) * (1 - p) * std::log(p) - (1 - p2) * (1 - p2) * std::log(p2) -
                         std::pow(0.5, 4) * pn * pn * std::log(1 - pn)) / 2;
    std::vector<float> ds(3);
    EXPECT_NEAR(f(1, 1, 1, 3, xs.data(), ts.data(), ds.data()), want, 1e-7);
    EXPECT_NEAR(ds[0], (1 - p) * (1 - p) * (2 * p * std::log(p) - (1 - p)) / 2, 1e-7);
  }
}

// Beyond |logit| ~ 9.21 the probability is clamped to [1e-4, 1 - 1e-4]: the loss uses the clamped value and
// the gradient is 0 (the clamped loss is flat there).
TEST(CenternetFocalLoss, ClampGivesBoundedLossAndZeroGradient) {
  const std::vector<float> x = {20.f, -20.f, 30.f};
  const std::vector<float> t = {0.f, 1.f, 1.f};
  const double q = 1e-4, p = 1 - 1e-4;
  // cell 0: p = 1 - 1e-4, t = 0: -p^2 log(1e-4); cell 1: p = 1e-4, t = 1: -(1 - 1e-4)^2 log(1e-4);
  // cell 2: p = 1 - 1e-4, t = 1: -(1e-4)^2 log(1 - 1e-4). Two positives.
  const double want = (-p * p * std::log(q) - p * p * std::log(q) - q * q * std::log(p)) / 2;
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> d(3, 7.f);
    const double l = fast ? rf::centernet_focal_loss_cpu(1, 1, 1, 3, x.data(), t.data(), d.data())
                          : rf::centernet_focal_loss_ref(1, 1, 1, 3, x.data(), t.data(), d.data());
    EXPECT_NEAR(l, want, 1e-5);
    EXPECT_TRUE(all_close(d, std::vector<double>(3, 0.0), 0, 0, "dlogits"));
  }
}

TEST(CenternetFocalLoss, FastMatchesReference) {
  uint32_t seed = 100;
  for (Dims s : {Dims{1, 1, 1, 1}, Dims{2, 3, 5, 7}, Dims{1, 20, 16, 16}, Dims{3, 2, 9, 33}, Dims{2, 80, 8, 8},
                 Dims{1, 1, 1, 300}}) {
    SCOPED_TRACE(s.str("centernet_focal_loss"));
    auto x = random_vec<float>(s.numel(), seed++, -6, 6);
    for (int64_t i = 0; i < s.numel(); i += 37) x[i] = (i & 1) ? 12.f : -12.f;  // some clamped cells
    const auto t = heat_targets<float>(s.numel(), seed++);
    std::vector<float> d_ref(s.numel()), d(s.numel(), 7.f);
    const double l_ref = rf::centernet_focal_loss_ref(s.N, s.C, s.H, s.W, x.data(), t.data(), d_ref.data());
    const double l = rf::centernet_focal_loss_cpu(s.N, s.C, s.H, s.W, x.data(), t.data(), d.data());
    EXPECT_NEAR(l, l_ref, 1e-5 * (1 + std::fabs(l_ref)));
    const double gmax = std::fabs(*std::max_element(d_ref.begin(), d_ref.end(),
                                                    [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
    EXPECT_TRUE(all_close(d, d_ref, 1e-6 * gmax, 1e-5, "dlogits"));
    const double l_only = rf::centernet_focal_loss_cpu(s.N, s.C, s.H, s.W, x.data(), t.data(), nullptr);
    EXPECT_EQ(l_only, l);
  }
}

TEST(CenternetFocalLoss, ReferenceGradientMatchesFiniteDifferences) {
  for (Dims s : {Dims{1, 1, 3, 4}, Dims{2, 3, 4, 5}, Dims{1, 2, 1, 17}}) {
    SCOPED_TRACE(s.str("centernet_focal_loss"));
    const auto x = random_vec<double>(s.numel(), 7, -4, 4);  // away from the clamp at |x| ~ 9.21
    auto t = heat_targets<double>(s.numel(), 8);
    t[0] = 1.0;  // at least one positive
    std::vector<double> d(s.numel());
    rf::centernet_focal_loss_ref(s.N, s.C, s.H, s.W, x.data(), t.data(), d.data());
    auto loss = [&](const std::vector<double>& v) {
      return rf::centernet_focal_loss_ref(s.N, s.C, s.H, s.W, v.data(), t.data(), (double*)nullptr);
    };
    EXPECT_TRUE(check_grad(loss, x, d, "dlogits"));
  }
}

TEST(CenternetFocalLoss, BadInputThrows) {
  std::vector<float> x(2 * 3 * 4 * 5, 0.1f), t(x.size(), 0.2f), d(x.size());
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = 1.5f;  // (n=1, k=1, y=2, x=3)
  try {
    rf::centernet_focal_loss_cpu(2, 3, 4, 5, x.data(), t.data(), d.data());
    ADD_FAILURE() << "no throw";
  } catch (const rf::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("(n=1, k=1, y=2, x=3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1.5"), std::string::npos) << msg;
  }
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = -0.1f;
  EXPECT_THROW(rf::centernet_focal_loss_ref(2, 3, 4, 5, x.data(), t.data(), d.data()), rf::Error);
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = NAN;
  EXPECT_THROW(rf::centernet_focal_loss_cpu(2, 3, 4, 5, x.data(), t.data(), d.data()), rf::Error);
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = 0.f;
  EXPECT_THROW(rf::centernet_focal_loss_cpu(0, 3, 4, 5, x.data(), t.data(), d.data()), rf::Error);
  EXPECT_THROW(rf::centernet_focal_loss_ref(2, 3, -4, 5, x.data(), t.data(), d.data()), rf::Error);
  EXPECT_NO_THROW(rf::centernet_focal_loss_cpu(2, 3, 4, 5, x.data(), t.data(), d.data()));
}

// ---- masked L1 ---------------------------------------------------------------------------------------

// N=1, C=2, 1x3 cells, mask {1, 0, 1}: loss = (|0.5-0.25| + |2-1| + |-1-(-1)| + |3-4|) / 2 (cell 1 masked out);
// the gradient is sign / 2 on masked-in cells, 0 at equality and on masked-out cells.
TEST(MaskedL1Loss, HandCase) {
  const std::vector<float> pred = {0.5f, 9.f, 2.f, -1.f, 9.f, 3.f};
  const std::vector<float> target = {0.25f, 0.f, 1.f, -1.f, 0.f, 4.f};
  const std::vector<float> mask = {1.f, 0.f, 1.f};
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> d(6, 7.f);
    const double l = fast ? rf::masked_l1_loss_cpu(1, 2, 1, 3, pred.data(), target.data(), mask.data(), d.data())
                          : rf::masked_l1_loss_ref(1, 2, 1, 3, pred.data(), target.data(), mask.data(), d.data());
    EXPECT_NEAR(l, (0.25 + 1.0 + 0.0 + 1.0) / 2, 1e-7);
    EXPECT_TRUE(all_close(d, std::vector<double>{0.5, 0, 0.5, 0, 0, -0.5}, 0, 0, "dpred"));
  }
  // empty mask: loss 0, gradient 0 (divisor max(1, 0) = 1)
  const std::vector<float> none = {0.f, 0.f, 0.f};
  std::vector<float> d(6, 7.f);
  EXPECT_EQ(rf::masked_l1_loss_cpu(1, 2, 1, 3, pred.data(), target.data(), none.data(), d.data()), 0.0);
  EXPECT_TRUE(all_close(d, std::vector<double>(6, 0.0), 0, 0, "dpred"));
}

TEST(MaskedL1Loss, FastMatchesReference) {
  uint32_t seed = 200;
  for (Dims s : {Dims{1, 2, 1, 1}, Dims{2, 2, 5, 7}, Dims{4, 2, 16, 16}, Dims{3, 2, 9, 33}, Dims{1, 3, 64, 64}}) {
    SCOPED_TRACE(s.str("masked_l1_loss"));
    const auto p = random_vec<float>(s.numel(), seed++, -4, 4);
    auto t = random_vec<float>(s.numel(), seed++, -4, 4);
    for (int64_t i = 0; i < s.numel(); i += 5) t[i] = p[i];  // equality: gradient 0
    const auto m = random_mask<float>(s.pixels(), seed++);
    std::vector<float> d_ref(s.numel()), d(s.numel(), 7.f);
    const double l_ref = rf::masked_l1_loss_ref(s.N, s.C, s.H, s.W, p.data(), t.data(), m.data(), d_ref.data());
    const double l = rf::masked_l1_loss_cpu(s.N, s.C, s.H, s.W, p.data(), t.data(), m.data(), d.data());
    EXPECT_NEAR(l, l_ref, 1e-5 * (1 + std::fabs(l_ref)));
    EXPECT_TRUE(all_close(d, d_ref, 0, 1e-6, "dpred"));
  }
}

TEST(MaskedL1Loss, ReferenceGradientMatchesFiniteDifferences) {
  for (Dims s : {Dims{1, 2, 3, 4}, Dims{2, 2, 4, 5}}) {
    SCOPED_TRACE(s.str("masked_l1_loss"));
    const auto p = random_vec<double>(s.numel(), 21, -2, 2);
    const auto t = random_vec<double>(s.numel(), 22, -2, 2);  // |p - t| far above the step: no kink crossed
    const auto m = random_mask<double>(s.pixels(), 23);
    std::vector<double> d(s.numel());
    rf::masked_l1_loss_ref(s.N, s.C, s.H, s.W, p.data(), t.data(), m.data(), d.data());
    auto loss = [&](const std::vector<double>& v) {
      return rf::masked_l1_loss_ref(s.N, s.C, s.H, s.W, v.data(), t.data(), m.data(), (double*)nullptr);
    };
    EXPECT_TRUE(check_grad(loss, p, d, "dpred"));
  }
}

TEST(MaskedL1Loss, BadInputThrows) {
  std::vector<float> p(2 * 2 * 3 * 4, 0.5f), t(p.size(), 0.25f), m(2 * 3 * 4, 1.f), d(p.size());
  m[1 * 12 + 2 * 4 + 1] = 0.5f;  // (n=1, y=2, x=1)
  try {
    rf::masked_l1_loss_cpu(2, 2, 3, 4, p.data(), t.data(), m.data(), d.data());
    ADD_FAILURE() << "no throw";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("(n=1, y=2, x=1)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rf::masked_l1_loss_ref(2, 2, 3, 4, p.data(), t.data(), m.data(), d.data()), rf::Error);
  m[1 * 12 + 2 * 4 + 1] = 1.f;
  EXPECT_THROW(rf::masked_l1_loss_cpu(2, 0, 3, 4, p.data(), t.data(), m.data(), d.data()), rf::Error);
  EXPECT_THROW(rf::masked_l1_loss_ref(2, 2, 3, 0, p.data(), t.data(), m.data(), d.data()), rf::Error);
}

// ---- pixel cross-entropy ----------------------------------------------------------------------------

// C = 2, two pixels: pixel 0 logits {0, log 3} -> p = {1/4, 3/4}, label 1; pixel 1 ignored.
// loss = -log(3/4) (one counted pixel); dlogits pixel 0 = {1/4, -1/4}, pixel 1 = {0, 0}. NCHW: channel-major.
TEST(PixelCrossEntropy, TwoClassHandCase) {
  const std::vector<float> logits = {0.f, 5.f, float(std::log(3.0)), -5.f};  // (1, 2, 1, 2)
  for (int ignore : {255, 2, 7}) {
    const std::vector<uint8_t> labels = {1, uint8_t(ignore)};
    for (bool fast : {false, true}) {
      SCOPED_TRACE(std::string(fast ? "fast" : "ref") + " ignore=" + std::to_string(ignore));
      std::vector<float> d(4, 7.f);
      const double l = fast ? rf::pixel_cross_entropy_cpu(1, 2, 1, 2, logits.data(), labels.data(), ignore, d.data())
                            : rf::pixel_cross_entropy_ref(1, 2, 1, 2, logits.data(), labels.data(), ignore, d.data());
      EXPECT_NEAR(l, -std::log(0.75), 1e-7);
      EXPECT_TRUE(all_close(d, std::vector<double>{0.25, 0, -0.25, 0}, 1e-7, 0, "dlogits"));
    }
  }
  // An ignore label that is a real class: pixels of class 1 ignored, pixel 1 (label 0) counted.
  const std::vector<uint8_t> labels = {1, 0};
  std::vector<float> d(4);
  EXPECT_NEAR(rf::pixel_cross_entropy_cpu(1, 2, 1, 2, logits.data(), labels.data(), 1, d.data()),
              std::log(1 + std::exp(-10.0)), 1e-6);
}

TEST(PixelCrossEntropy, UniformLogitsGiveLogCAndHugeLogitsStayFinite) {
  const Dims s{2, 11, 3, 5};
  const std::vector<float> logits(s.numel(), 0.3f);
  const auto labels = random_labels(s.pixels(), 11, 11, 5);
  std::vector<float> d(s.numel());
  EXPECT_NEAR(rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, logits.data(), labels.data(), 11, d.data()),
              std::log(11.0), 1e-6);
  const std::vector<float> big = {1000.f, -1000.f};  // (1, 2, 1, 1), label 1: loss 2000
  const uint8_t lab = 1;
  std::vector<float> db(2);
  EXPECT_NEAR(rf::pixel_cross_entropy_cpu(1, 2, 1, 1, big.data(), &lab, 255, db.data()), 2000.0, 1e-3);
  EXPECT_NEAR(rf::pixel_cross_entropy_ref(1, 2, 1, 1, big.data(), &lab, 255, db.data()), 2000.0, 1e-9);
  EXPECT_TRUE(all_close(db, std::vector<double>{1, -1}, 1e-7, 0, "dlogits"));
}

TEST(PixelCrossEntropy, AllIgnoredGivesZero) {
  const Dims s{2, 3, 4, 5};
  const auto logits = random_vec<float>(s.numel(), 9);
  const std::vector<uint8_t> labels(s.pixels(), 255);
  for (bool fast : {false, true}) {
    std::vector<float> d(s.numel(), 7.f);
    const double l = fast ? rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, logits.data(), labels.data(), 255, d.data())
                          : rf::pixel_cross_entropy_ref(s.N, s.C, s.H, s.W, logits.data(), labels.data(), 255, d.data());
    EXPECT_EQ(l, 0.0);
    EXPECT_TRUE(all_close(d, std::vector<double>(s.numel(), 0.0), 0, 0, fast ? "fast" : "ref"));
  }
}

TEST(PixelCrossEntropy, FastMatchesReference) {
  uint32_t seed = 300;
  for (Dims s : {Dims{1, 2, 1, 1}, Dims{2, 21, 9, 17}, Dims{1, 11, 16, 16}, Dims{3, 1, 5, 5}, Dims{2, 19, 7, 64},
                 Dims{1, 150, 4, 4}, Dims{1, 5, 3, 129}})
    for (int ignore : {255, s.C, 0}) {
      SCOPED_TRACE(s.str("pixel_cross_entropy") + " ignore=" + std::to_string(ignore));
      const auto x = random_vec<float>(s.numel(), seed++, -8, 8);
      const auto labels = random_labels(s.pixels(), s.C, ignore, seed++);
      std::vector<float> d_ref(s.numel()), d(s.numel(), 7.f);
      const double l_ref = rf::pixel_cross_entropy_ref(s.N, s.C, s.H, s.W, x.data(), labels.data(), ignore, d_ref.data());
      const double l = rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), ignore, d.data());
      EXPECT_NEAR(l, l_ref, 1e-5 * (1 + std::fabs(l_ref)));
      const double u = 1.0 / double(std::max<int64_t>(1, s.pixels()));  // gradients are probabilities / count
      EXPECT_TRUE(all_close(d, d_ref, 1e-6 * u, 1e-5, "dlogits"));
      EXPECT_EQ(rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), ignore, nullptr), l);
    }
}

TEST(PixelCrossEntropy, ReferenceGradientMatchesFiniteDifferences) {
  for (Dims s : {Dims{1, 2, 2, 3}, Dims{2, 5, 3, 4}, Dims{1, 11, 1, 6}}) {
    SCOPED_TRACE(s.str("pixel_cross_entropy"));
    const auto x = random_vec<double>(s.numel(), 31, -3, 3);
    const auto labels = random_labels(s.pixels(), s.C, 255, 32);
    std::vector<double> d(s.numel());
    rf::pixel_cross_entropy_ref(s.N, s.C, s.H, s.W, x.data(), labels.data(), 255, d.data());
    auto loss = [&](const std::vector<double>& v) {
      return rf::pixel_cross_entropy_ref(s.N, s.C, s.H, s.W, v.data(), labels.data(), 255, (double*)nullptr);
    };
    EXPECT_TRUE(check_grad(loss, x, d, "dlogits"));
  }
}

TEST(PixelCrossEntropy, BadLabelThrowsNamingValueAndPixel) {
  const Dims s{2, 11, 3, 4};
  const std::vector<float> x(s.numel(), 0.5f);
  std::vector<uint8_t> labels(s.pixels(), 3);
  labels[1 * 12 + 2 * 4 + 3] = 12;  // (n=1, y=2, x=3)
  std::vector<float> d(s.numel());
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    try {
      if (fast)
        rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), 255, d.data());
      else
        rf::pixel_cross_entropy_ref(s.N, s.C, s.H, s.W, x.data(), labels.data(), 255, d.data());
      ADD_FAILURE() << "no throw";
    } catch (const rf::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("label 12"), std::string::npos) << msg;
      EXPECT_NE(msg.find("(n=1, y=2, x=3)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[0, 10]"), std::string::npos) << msg;
    }
  }
  EXPECT_NO_THROW(rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), 12, d.data()));
  labels[0] = 11;  // == C, not the ignore label
  EXPECT_THROW(rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), 12, d.data()), rf::Error);
  EXPECT_THROW(rf::pixel_cross_entropy_cpu(s.N, 0, s.H, s.W, x.data(), labels.data(), 255, d.data()), rf::Error);
  EXPECT_THROW(rf::pixel_cross_entropy_ref(s.N, s.C, 0, s.W, x.data(), labels.data(), 255, d.data()), rf::Error);
}

// ---- centre-point targets ------------------------------------------------------------------------------

// Squares s x s, m = 0.7: the third quadratic gives the smallest root: b3 = -2.8 s, 4 a3 c3 = -3.36 s^2,
// disc = 7.84 s^2 + 3.36 s^2 = 11.2 s^2, r3 = s (sqrt(11.2) - 2.8) / 2 (r1 ~ 1.9 s, r2 ~ 3.7 s).
// (h, w) = (20, 5): b3 = -35, disc = 1225 + 336 = 1561, r3 = (sqrt(1561) - 35) / 2; r1, r2 are larger.
TEST(CenternetTargets, GaussianRadiusHandValues) {
  for (double side : {1.0, 4.0, 10.0, 40.0})
    EXPECT_NEAR(rf::gaussian_radius(side, side), side * (std::sqrt(11.2) - 2.8) / 2, 1e-12) << side;
  EXPECT_NEAR(rf::gaussian_radius(10, 10), 2.7332005306815, 1e-10);
  EXPECT_NEAR(rf::gaussian_radius(20, 5), (std::sqrt(1561.0) - 35) / 2, 1e-12);
  EXPECT_NEAR(rf::gaussian_radius(5, 20), (std::sqrt(1561.0) - 35) / 2, 1e-12);  // symmetric in (h, w)
  // m = 0.5, 8 x 8: r1 = (16 + sqrt(256 - 4 * 64/3)) / 2, r2 = (32 + sqrt(1024 - 512)) / 2,
  // r3 = (-16 + sqrt(256 + 256)) / 2 = 3.3137: the smallest
  EXPECT_NEAR(rf::gaussian_radius(8, 8, 0.5), (std::sqrt(512.0) - 16) / 2, 1e-12);
}

struct Targets {
  int K, Hf, Wf;
  std::vector<float> heat, wh, off, mask;
  Targets(int K_, int Hf_, int Wf_)
      : K(K_), Hf(Hf_), Wf(Wf_), heat(K_ * Hf_ * Wf_, 7.f), wh(2 * Hf_ * Wf_, 7.f), off(2 * Hf_ * Wf_, 7.f),
        mask(Hf_ * Wf_, 7.f) {}
  void draw(const std::vector<float>& boxes, const std::vector<int32_t>& cls, int stride) {
    rf::draw_centernet_targets(boxes.data(), cls.data(), int(cls.size()), stride, K, Hf, Wf, heat.data(),
                               wh.data(), off.data(), mask.data());
  }
  float h(int k, int y, int x) const { return heat[(k * Hf + y) * Wf + x]; }
};

// Box (10, 20)-(90, 68) at stride 4 on a 16 x 32 map: centre (50/4, 44/4) = (12.5, 11), cell (x=12, y=11),
// off (0.5, 0), wh (20, 12); r3 = (sqrt(4 m^2 32^2 + 16 m (1-m) 240) - 2 m 32) / 2
// = (sqrt(2007.04 + 806.4) - 44.8) / 2 = 4.12, so radius 4, sigma = (2 radius + 1) / 6.
TEST(CenternetTargets, SingleBox) {
  Targets t(3, 16, 32);
  t.draw({10.f, 20.f, 90.f, 68.f}, {2}, 4);
  const int cx = 12, cy = 11, plane = 16 * 32;
  const double r = rf::gaussian_radius(12, 20);
  EXPECT_NEAR(r, (std::sqrt(4 * 0.49 * 32 * 32 + 16 * 0.7 * 0.3 * 240) - 2 * 0.7 * 32) / 2, 1e-12);
  const int radius = int(r);
  ASSERT_EQ(radius, 4);
  const double sigma = (2 * radius + 1) / 6.0;
  EXPECT_EQ(t.h(2, cy, cx), 1.f);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x) {
      const int dx = x - cx, dy = y - cy;
      const bool inside = std::abs(dx) <= radius && std::abs(dy) <= radius;
      const double want = inside ? std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) : 0.0;
      EXPECT_NEAR(t.h(2, y, x), want, 1e-7) << "y=" << y << " x=" << x;
      EXPECT_EQ(t.h(0, y, x), 0.f);
      EXPECT_EQ(t.h(1, y, x), 0.f);
      const bool at = x == cx && y == cy;
      EXPECT_EQ(t.mask[y * 32 + x], at ? 1.f : 0.f);
      EXPECT_EQ(t.wh[y * 32 + x], at ? 20.f : 0.f);
      EXPECT_EQ(t.wh[plane + y * 32 + x], at ? 12.f : 0.f);
      EXPECT_EQ(t.off[y * 32 + x], at ? 0.5f : 0.f);
      EXPECT_EQ(t.off[plane + y * 32 + x], 0.f);
    }
  // Symmetric about the cell, in both axes and under transposition.
  for (int a = 0; a <= radius; ++a)
    for (int b = 0; b <= radius; ++b) {
      const float v = t.h(2, cy + a, cx + b);
      EXPECT_EQ(v, t.h(2, cy - a, cx + b));
      EXPECT_EQ(v, t.h(2, cy + a, cx - b));
      EXPECT_EQ(v, t.h(2, cy + b, cx + a));
    }
}

// Two boxes of one class with overlapping Gaussians: the heatmap is the element-wise max of the two drawn alone;
// a third box of another class lands on its own plane. Offsets are fractional here: centre (5.3, 6.85).
TEST(CenternetTargets, OverlappingBoxesTakeTheMax) {
  const std::vector<float> a = {8.f, 16.f, 72.f, 93.6f}, b = {40.f, 30.f, 104.f, 110.f}, c = {0.f, 0.f, 30.f, 30.f};
  Targets ta(2, 20, 20), tb(2, 20, 20), tab(2, 20, 20);
  ta.draw(a, {1}, 8);
  tb.draw(b, {1}, 8);
  std::vector<float> both = a;
  both.insert(both.end(), b.begin(), b.end());
  both.insert(both.end(), c.begin(), c.end());
  tab.draw(both, {1, 1, 0}, 8);
  int overlap = 0;
  for (int i = 0; i < 400; ++i) {
    EXPECT_EQ(tab.heat[400 + i], std::max(ta.heat[400 + i], tb.heat[400 + i])) << i;
    overlap += ta.heat[400 + i] > 0 && tb.heat[400 + i] > 0;
  }
  EXPECT_GT(overlap, 0);  // the case really overlaps
  // box a: centre (40/8, 54.8/8) = (5, 6.85); box c: centre (15/8, 15/8) -> cell (1, 1), off (0.875, 0.875)
  EXPECT_EQ(ta.mask[6 * 20 + 5], 1.f);
  EXPECT_NEAR(ta.off[400 + 6 * 20 + 5], 0.85f, 1e-6);
  EXPECT_EQ(ta.off[6 * 20 + 5], 0.f);
  EXPECT_NEAR(ta.wh[400 + 6 * 20 + 5], 77.6 / 8, 2e-6);
  EXPECT_EQ(tab.h(0, 1, 1), 1.f);
  EXPECT_EQ(tab.off[1 * 20 + 1], 0.875f);
  EXPECT_EQ(tab.h(1, 1, 1), ta.heat[400 + 21]);
  float total = 0;
  for (float m : tab.mask) total += m;
  EXPECT_EQ(total, 3.f);
}

TEST(CenternetTargets, SkippedAndClampedBoxes) {
  Targets t(1, 8, 8);
  // zero width, inverted, NaN, fully left of / below the 64 x 64 image
  t.draw({10.f, 10.f, 10.f, 20.f, 30.f, 30.f, 20.f, 40.f, NAN, 0.f, 5.f, 5.f, -20.f, 5.f, 0.f, 9.f,
          5.f, 64.f, 9.f, 80.f},
         {0, 0, 0, 0, 0}, 8);
  for (float v : t.heat) EXPECT_EQ(v, 0.f);
  for (float v : t.mask) EXPECT_EQ(v, 0.f);
  for (float v : t.wh) EXPECT_EQ(v, 0.f);
  // partly outside with the centre off the map: cell clamped to (7, 0), off = centre - cell
  t.draw({40.f, -30.f, 120.f, 10.f}, {0}, 8);  // centre (80/8, -10/8) = (10, -1.25)
  EXPECT_EQ(t.mask[0 * 8 + 7], 1.f);
  EXPECT_EQ(t.heat[0 * 8 + 7], 1.f);
  EXPECT_EQ(t.off[7], 3.f);
  EXPECT_EQ(t.off[64 + 7], -1.25f);
}

TEST(CenternetTargets, BadInputThrows) {
  Targets t(3, 4, 4);
  EXPECT_THROW(t.draw({0.f, 0.f, 8.f, 8.f}, {3}, 4), rf::Error);
  EXPECT_THROW(t.draw({0.f, 0.f, 8.f, 8.f}, {-1}, 4), rf::Error);
  try {
    t.draw({0.f, 0.f, 8.f, 8.f, 0.f, 0.f, 8.f, 8.f}, {0, 5}, 4);
    ADD_FAILURE() << "no throw";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("box 1 has class 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.draw({0.f, 0.f, 8.f, 8.f}, {0}, 0), rf::Error);
  EXPECT_THROW(rf::draw_centernet_targets(nullptr, nullptr, 0, 4, 3, 0, 4, t.heat.data(), t.wh.data(),
                                          t.off.data(), t.mask.data()),
               rf::Error);
}

// The fast paths sum per-row losses serially: the value is bit-identical for any thread count.
TEST(DenseLossDeterminism, SameValueForOneAndTwoThreads) {
  const Dims s{2, 21, 64, 64};  // above the parallel threshold
  const auto x = random_vec<float>(s.numel(), 41, -6, 6);
  const auto t = heat_targets<float>(s.numel(), 42);
  const auto m = random_mask<float>(s.pixels(), 43);
  const auto lab = random_labels(s.pixels(), s.C, 255, 44);
  const int keep = omp_get_max_threads();
  double v[2][3];
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    v[threads - 1][0] = rf::centernet_focal_loss_cpu(s.N, s.C, s.H, s.W, x.data(), t.data(), nullptr);
    v[threads - 1][1] = rf::masked_l1_loss_cpu(s.N, s.C, s.H, s.W, x.data(), t.data(), m.data(), nullptr);
    v[threads - 1][2] = rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), lab.data(), 255, nullptr);
  }
  omp_set_num_threads(keep);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(v[0][i], v[1][i]) << i;
}

// ---- speed (printed for the report) --------------------------------------------------------------

TEST(DenseLossSpeed, FastVsReference) {
  const Dims f{8, 20, 64, 64};
  const auto x = random_vec<float>(f.numel(), 1, -6, 6);
  const auto t = heat_targets<float>(f.numel(), 2);
  std::vector<float> d(f.numel());
  const double fr = best_time([&] { rf::centernet_focal_loss_ref(f.N, f.C, f.H, f.W, x.data(), t.data(), d.data()); });
  const double ff = best_time([&] { rf::centernet_focal_loss_cpu(f.N, f.C, f.H, f.W, x.data(), t.data(), d.data()); });
  std::printf("%s: ref %.2f ms fast %.2f ms (x%.1f)\n", f.str("centernet_focal_loss").c_str(), fr * 1e3, ff * 1e3,
              fr / ff);
  const Dims l{8, 2, 64, 64};
  const auto p = random_vec<float>(l.numel(), 3), q = random_vec<float>(l.numel(), 4);
  const auto m = random_mask<float>(l.pixels(), 5);
  std::vector<float> dl(l.numel());
  const double lr = best_time([&] { rf::masked_l1_loss_ref(l.N, l.C, l.H, l.W, p.data(), q.data(), m.data(), dl.data()); });
  const double lf = best_time([&] { rf::masked_l1_loss_cpu(l.N, l.C, l.H, l.W, p.data(), q.data(), m.data(), dl.data()); });
  std::printf("%s: ref %.3f ms fast %.3f ms (x%.1f)\n", l.str("masked_l1_loss").c_str(), lr * 1e3, lf * 1e3, lr / lf);
  const Dims c{4, 21, 128, 128};
  const auto z = random_vec<float>(c.numel(), 6, -8, 8);
  const auto lab = random_labels(c.pixels(), c.C, 255, 7);
  std::vector<float> dz(c.numel());
  const double cr = best_time([&] { rf::pixel_cross_entropy_ref(c.N, c.C, c.H, c.W, z.data(), lab.data(), 255, dz.data()); });
  const double cf = best_time([&] { rf::pixel_cross_entropy_cpu(c.N, c.C, c.H, c.W, z.data(), lab.data(), 255, dz.data()); });
  std::printf("%s: ref %.2f ms fast %.2f ms (x%.1f)\n", c.str("pixel_cross_entropy").c_str(), cr * 1e3, cf * 1e3,
              cr / cf);
}

// Softmax cross-entropy: hand values (uniform logits give log C; a two-class case with and without label
// smoothing), stability with huge logits, fast vs reference over a shape sweep, finite-difference gradients of
// the double reference, and bad labels / sizes / smoothing throwing clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "host/core/check.h"
#include "host/ops/loss.h"
#include "testing.h"

using namespace rf;
using rf::testing::all_close;
using rf::testing::random_labels;
using rf::testing::random_vec;

namespace {

std::string case_str(int N, int C, float ls) {
  return "softmax_cross_entropy(N=" + std::to_string(N) + ",C=" + std::to_string(C) +
         ",label_smoothing=" + std::to_string(ls) + ")";
}

}  // namespace

TEST(SoftmaxCrossEntropy, UniformLogitsGiveLogC) {
  const int N = 3, C = 10;
  const std::vector<float> logits(N * C, 0.7f);
  const std::vector<int32_t> labels = {0, 4, 9};
  for (float ls : {0.f, 0.1f}) {
    SCOPED_TRACE(case_str(N, C, ls));
    std::vector<float> p_ref(N * C), p(N * C);
    EXPECT_NEAR(softmax_cross_entropy_forward_ref(N, C, logits.data(), labels.data(), p_ref.data(), ls),
                std::log(10.0), 1e-12);
    EXPECT_NEAR(softmax_cross_entropy_forward_cpu(N, C, logits.data(), labels.data(), p.data(), ls), std::log(10.0),
                1e-6);
    EXPECT_TRUE(all_close(p, std::vector<double>(N * C, 0.1), 1e-7, 1e-6, "probs"));
  }
}

// C = 2, logits {0, log 3}: p = {1/4, 3/4}; label 1. Without smoothing loss = -log(3/4); with eps = 0.2 the target
// is {0.1, 0.9}: loss = -(0.1 log(1/4) + 0.9 log(3/4)), and dlogits = p - target = {0.15, -0.15} (N = 1).
TEST(SoftmaxCrossEntropy, TwoClassHandCaseWithLabelSmoothing) {
  const std::vector<float> logits = {0.f, float(std::log(3.0))};
  const std::vector<int32_t> label = {1};
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    auto fwd = fast ? softmax_cross_entropy_forward_cpu : softmax_cross_entropy_forward_ref<float>;
    auto bwd = fast ? softmax_cross_entropy_backward_cpu : softmax_cross_entropy_backward_ref<float>;
    std::vector<float> p(2), d(2);
    EXPECT_NEAR(fwd(1, 2, logits.data(), label.data(), p.data(), 0.f), -std::log(0.75), 1e-6);
    EXPECT_TRUE(all_close(p, std::vector<double>{0.25, 0.75}, 1e-7, 1e-6, "probs"));
    bwd(1, 2, p.data(), label.data(), d.data(), 0.f);
    EXPECT_TRUE(all_close(d, std::vector<double>{0.25, -0.25}, 1e-7, 1e-6, "dlogits"));
    EXPECT_NEAR(fwd(1, 2, logits.data(), label.data(), p.data(), 0.2f),
                -(0.1 * std::log(0.25) + 0.9 * std::log(0.75)), 1e-6);
    bwd(1, 2, p.data(), label.data(), d.data(), 0.2f);
    EXPECT_TRUE(all_close(d, std::vector<double>{0.15, -0.15}, 1e-7, 1e-6, "dlogits smoothed"));
  }
}

// Logits of 1000 overflow exp() without the row max subtracted.
TEST(SoftmaxCrossEntropy, StableWithHugeLogits) {
  const std::vector<float> logits = {1000.f, 1000.f + float(std::log(3.0)), -1000.f, 500.f};
  const std::vector<int32_t> labels = {1, 0};
  std::vector<float> p(4);
  const double loss = softmax_cross_entropy_forward_cpu(2, 2, logits.data(), labels.data(), p.data());
  // sample 0: -log(3/4) up to float rounding of the logits; sample 1: logit gap 1500 -> loss 1500
  EXPECT_NEAR(loss, (-std::log(0.75) + 1500.0) / 2, 1e-3);
  for (float v : p) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(p[3], 1.0, 1e-7);
}

TEST(SoftmaxCrossEntropy, FastMatchesRef) {
  for (int N : {1, 2, 3, 8, 128})
    for (int C : {1, 3, 10, 16, 64, 1000})
      for (float ls : {0.f, 0.1f}) {
        SCOPED_TRACE(case_str(N, C, ls));
        const auto logits = random_vec<float>(size_t(N) * C, N * 31 + C, -8, 8);
        const auto labels = random_labels(N, C, N + C);
        std::vector<float> p_ref(logits.size()), p(logits.size()), d_ref(logits.size()), d(logits.size());
        const double l_ref = softmax_cross_entropy_forward_ref(N, C, logits.data(), labels.data(), p_ref.data(), ls);
        const double l = softmax_cross_entropy_forward_cpu(N, C, logits.data(), labels.data(), p.data(), ls);
        EXPECT_NEAR(l, l_ref, 1e-5 * (1 + std::abs(l_ref)));
        EXPECT_TRUE(all_close(p, p_ref, 1e-7, 1e-5, "probs"));
        softmax_cross_entropy_backward_ref(N, C, p_ref.data(), labels.data(), d_ref.data(), ls);
        softmax_cross_entropy_backward_cpu(N, C, p_ref.data(), labels.data(), d.data(), ls);
        EXPECT_TRUE(all_close(d, d_ref, 1e-8, 1e-5, "dlogits"));
      }
}

TEST(SoftmaxCrossEntropy, ReferenceGradientMatchesFiniteDifferences) {
  for (auto [N, C] : {std::pair{3, 5}, std::pair{1, 10}, std::pair{4, 2}})
    for (float ls : {0.f, 0.1f}) {
      SCOPED_TRACE(case_str(N, C, ls));
      const auto logits = random_vec<double>(N * C, N + C, -3, 3);
      const auto labels = random_labels(N, C, 7 * N + C);
      std::vector<double> p(N * C), d(N * C);
      softmax_cross_entropy_forward_ref(N, C, logits.data(), labels.data(), p.data(), ls);
      softmax_cross_entropy_backward_ref(N, C, p.data(), labels.data(), d.data(), ls);
      auto loss = [&](const std::vector<double>& v) {
        std::vector<double> pp(N * C);
        return softmax_cross_entropy_forward_ref(N, C, v.data(), labels.data(), pp.data(), ls);
      };
      EXPECT_TRUE(rf::testing::check_grad(loss, logits, d, "dlogits"));
    }
}

TEST(SoftmaxCrossEntropy, BadLabelThrowsNamingSampleAndLabel) {
  const int N = 3, C = 10;
  const std::vector<float> logits(N * C, 0.5f);
  std::vector<float> p(N * C), d(N * C);
  for (int32_t bad : {-1, 10, 1000}) {
    SCOPED_TRACE("label " + std::to_string(bad));
    const std::vector<int32_t> labels = {2, bad, 3};
    for (int which = 0; which < 4; ++which) {
      try {
        switch (which) {
          case 0: softmax_cross_entropy_forward_ref(N, C, logits.data(), labels.data(), p.data()); break;
          case 1: softmax_cross_entropy_forward_cpu(N, C, logits.data(), labels.data(), p.data()); break;
          case 2: softmax_cross_entropy_backward_ref(N, C, logits.data(), labels.data(), d.data()); break;
          default: softmax_cross_entropy_backward_cpu(N, C, logits.data(), labels.data(), d.data()); break;
        }
        ADD_FAILURE() << "variant " << which << " did not throw";
      } catch (const rf::Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("sample 1"), std::string::npos) << msg;
        EXPECT_NE(msg.find("label " + std::to_string(bad)), std::string::npos) << msg;
        EXPECT_NE(msg.find("[0, 9]"), std::string::npos) << msg;
      }
    }
  }
}

TEST(SoftmaxCrossEntropy, BadSizesAndSmoothingThrow) {
  const std::vector<float> logits(4, 0.5f);
  std::vector<float> p(4);
  const std::vector<int32_t> labels = {0, 1};
  EXPECT_THROW(softmax_cross_entropy_forward_cpu(0, 2, logits.data(), labels.data(), p.data()), rf::Error);
  EXPECT_THROW(softmax_cross_entropy_forward_ref(2, 0, logits.data(), labels.data(), p.data()), rf::Error);
  EXPECT_THROW(softmax_cross_entropy_forward_cpu(2, 2, logits.data(), labels.data(), p.data(), -0.1f), rf::Error);
  EXPECT_THROW(softmax_cross_entropy_backward_ref(2, 2, logits.data(), labels.data(), p.data(), 1.5f), rf::Error);
  EXPECT_NO_THROW(softmax_cross_entropy_forward_cpu(2, 2, logits.data(), labels.data(), p.data(), 1.f));
}

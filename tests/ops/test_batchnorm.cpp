// Batch norm: fast vs reference over a shape sweep (train forward, eval forward, backward), finite-difference
// gradients of the double reference, hand cases for the running stats and eval mode, normalised train output,
// numerical robustness with a large per-channel offset, shape validation, and the train ops with the residual
// add / ReLU fused against the unfused chain bit for bit.
#include <cstring>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "host/core/check.h"
#include "host/ops/batchnorm.h"
#include "testing.h"

using namespace rf;
using rf::testing::all_close;
using rf::testing::random_vec;

namespace {

std::vector<BatchNormShape> sweep() {
  std::vector<BatchNormShape> out;
  for (int N : {1, 2, 3, 8})
    for (int C : {1, 3, 16, 64})
      for (int HW : {1, 7, 64, 1024}) {
        BatchNormShape s;
        s.N = N, s.C = C, s.HW = HW;
        out.push_back(s);
      }
  return out;
}

size_t numel(const BatchNormShape& s) { return size_t(s.N) * s.C * s.HW; }

// Inputs for one case; x has a non-zero mean so that the mean subtraction matters.
struct Inputs {
  std::vector<float> x, gamma, beta, rm, rv;
  Inputs(const BatchNormShape& s, uint32_t seed, double offset = 0.5)
      : x(random_vec<float>(numel(s), seed, offset - 1, offset + 1)),
        gamma(random_vec<float>(s.C, seed + 1, 0.5, 1.5)),
        beta(random_vec<float>(s.C, seed + 2)),
        rm(random_vec<float>(s.C, seed + 3)),
        rv(random_vec<float>(s.C, seed + 4, 0.5, 2.0)) {}
};

}  // namespace

TEST(BatchNorm, TrainForwardFastMatchesRef) {
  for (const auto& s : sweep()) {
    if (s.N * s.HW == 1) continue;  // refused in train mode, tested below
    SCOPED_TRACE(s.str());
    Inputs in(s, 11 + s.N * 7 + s.C * 13 + s.HW);
    const size_t n = numel(s);
    std::vector<float> y_ref(n), y(n), mean_ref(s.C), mean(s.C), invstd_ref(s.C), invstd(s.C);
    std::vector<float> rm_ref = in.rm, rv_ref = in.rv, rm = in.rm, rv = in.rv;
    batchnorm_forward_train_ref(s, in.x.data(), in.gamma.data(), in.beta.data(), y_ref.data(), mean_ref.data(),
                                invstd_ref.data(), rm_ref.data(), rv_ref.data());
    batchnorm_forward_train_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), y.data(), mean.data(),
                                invstd.data(), rm.data(), rv.data());
    EXPECT_TRUE(all_close(y, y_ref, 1e-4, 1e-4, "y"));
    EXPECT_TRUE(all_close(mean, mean_ref, 1e-6, 1e-5, "save_mean"));
    EXPECT_TRUE(all_close(invstd, invstd_ref, 1e-6, 1e-5, "save_invstd"));
    EXPECT_TRUE(all_close(rm, rm_ref, 1e-6, 1e-5, "running_mean"));
    EXPECT_TRUE(all_close(rv, rv_ref, 1e-6, 1e-5, "running_var"));
  }
}

// E[x^2] - E[x]^2 in float loses every digit of a variance of 1/3 next to a mean of 1000 (x^2 ~ 1e6, float
// ulp there ~ 0.06); the fast path must still agree with the double-accumulating reference.
TEST(BatchNorm, TrainForwardLargeOffsetStaysAccurate) {
  for (int HW : {7, 1024}) {
    BatchNormShape s;
    s.N = 8, s.C = 3, s.HW = HW;
    SCOPED_TRACE(s.str() + " offset 1000");
    Inputs in(s, 5, 1000.0);
    const size_t n = numel(s);
    std::vector<float> y_ref(n), y(n), mean_ref(s.C), mean(s.C), invstd_ref(s.C), invstd(s.C);
    batchnorm_forward_train_ref<float>(s, in.x.data(), in.gamma.data(), in.beta.data(), y_ref.data(),
                                       mean_ref.data(), invstd_ref.data(), nullptr, nullptr);
    batchnorm_forward_train_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), y.data(), mean.data(),
                                invstd.data(), nullptr, nullptr);
    EXPECT_TRUE(all_close(invstd, invstd_ref, 0, 1e-4, "save_invstd"));
    EXPECT_TRUE(all_close(mean, mean_ref, 0, 1e-6, "save_mean"));
    // float x near 1000 has an ulp of 6e-5: (x - mean) carries ~6e-5 absolute error, times invstd ~ 2
    EXPECT_TRUE(all_close(y, y_ref, 3e-4, 1e-4, "y"));
  }
}

TEST(BatchNorm, EvalForwardFastMatchesRef) {
  for (const auto& s : sweep()) {
    SCOPED_TRACE(s.str());
    Inputs in(s, 101 + s.N * 7 + s.C * 13 + s.HW);
    const size_t n = numel(s);
    std::vector<float> y_ref(n), y(n);
    batchnorm_forward_eval_ref(s, in.x.data(), in.gamma.data(), in.beta.data(), in.rm.data(), in.rv.data(),
                               y_ref.data());
    batchnorm_forward_eval_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), in.rm.data(), in.rv.data(),
                               y.data());
    EXPECT_TRUE(all_close(y, y_ref, 1e-5, 1e-5, "y"));
  }
}

TEST(BatchNorm, BackwardFastMatchesRef) {
  for (const auto& s : sweep()) {
    if (s.N * s.HW == 1) continue;
    SCOPED_TRACE(s.str());
    const uint32_t seed = 201 + s.N * 7 + s.C * 13 + s.HW;
    Inputs in(s, seed);
    const size_t n = numel(s);
    std::vector<float> y(n), mean(s.C), invstd(s.C);
    batchnorm_forward_train_ref<float>(s, in.x.data(), in.gamma.data(), in.beta.data(), y.data(), mean.data(),
                                       invstd.data(), nullptr, nullptr);
    const auto dy = random_vec<float>(n, seed + 9);
    std::vector<float> dx_ref(n), dx(n), dg_ref(s.C), dg(s.C), db_ref(s.C), db(s.C);
    batchnorm_backward_ref(s, in.x.data(), dy.data(), in.gamma.data(), mean.data(), invstd.data(), dx_ref.data(),
                           dg_ref.data(), db_ref.data());
    batchnorm_backward_cpu(s, in.x.data(), dy.data(), in.gamma.data(), mean.data(), invstd.data(), dx.data(),
                           dg.data(), db.data());
    EXPECT_TRUE(all_close(dx, dx_ref, 1e-4, 1e-4, "dx"));
    EXPECT_TRUE(all_close(dg, dg_ref, 1e-4, 1e-4, "dgamma"));
    EXPECT_TRUE(all_close(db, db_ref, 1e-4, 1e-4, "dbeta"));
  }
}

TEST(BatchNorm, ReferenceGradientsMatchFiniteDifferences) {
  for (auto [N, C, HW] : {std::tuple{2, 3, 5}, std::tuple{1, 2, 7}, std::tuple{4, 1, 1}, std::tuple{3, 2, 2}}) {
    BatchNormShape s;
    s.N = N, s.C = C, s.HW = HW;
    SCOPED_TRACE(s.str());
    const size_t n = numel(s);
    const auto x = random_vec<double>(n, 1, -1, 2), gamma = random_vec<double>(C, 2, 0.5, 1.5),
               beta = random_vec<double>(C, 3), g = random_vec<double>(n, 4);
    // loss = sum y * g for a fixed random g, so d loss / d y = g
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& gg, const std::vector<double>& bb) {
      std::vector<double> y(n), m(C), is(C);
      batchnorm_forward_train_ref<double>(s, xx.data(), gg.data(), bb.data(), y.data(), m.data(), is.data(),
                                          nullptr, nullptr);
      return rf::testing::dot(y, g);
    };
    std::vector<double> y(n), m(C), is(C), dx(n), dgamma(C), dbeta(C);
    batchnorm_forward_train_ref<double>(s, x.data(), gamma.data(), beta.data(), y.data(), m.data(), is.data(),
                                        nullptr, nullptr);
    batchnorm_backward_ref(s, x.data(), g.data(), gamma.data(), m.data(), is.data(), dx.data(), dgamma.data(),
                           dbeta.data());
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(v, gamma, beta); }, x, dx,
                                        "dx"));
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(x, v, beta); }, gamma,
                                        dgamma, "dgamma"));
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(x, gamma, v); }, beta, dbeta,
                                        "dbeta"));
  }
}

// One channel, x = {1, 2 | 3, 6} (N=2, HW=2): mean 3, biased var 14/4 = 3.5, unbiased var 14/3.
// running_mean 0.5 -> 0.9 * 0.5 + 0.1 * 3 = 0.75; running_var 2 -> 0.9 * 2 + 0.1 * 14/3 = 2.2666...
TEST(BatchNorm, RunningStatsHandCase) {
  BatchNormShape s;
  s.N = 2, s.C = 1, s.HW = 2, s.momentum = 0.1f;
  const std::vector<float> x = {1, 2, 3, 6}, gamma = {2}, beta = {0.5f};
  const double invstd = 1.0 / std::sqrt(3.5 + 1e-5);
  const std::vector<double> y_hand = {-2 * invstd * 2 + 0.5, -1 * invstd * 2 + 0.5, 0.5, 3 * invstd * 2 + 0.5};
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> y(4), mean(1), is(1), rm = {0.5f}, rv = {2.f};
    if (fast)
      batchnorm_forward_train_cpu(s, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), is.data(),
                                  rm.data(), rv.data());
    else
      batchnorm_forward_train_ref(s, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), is.data(),
                                  rm.data(), rv.data());
    EXPECT_NEAR(mean[0], 3.0, 1e-6);
    EXPECT_NEAR(is[0], invstd, 1e-6);
    EXPECT_NEAR(rm[0], 0.75, 1e-6);
    EXPECT_NEAR(rv[0], 0.9 * 2 + 0.1 * 14.0 / 3.0, 1e-6);
    EXPECT_TRUE(all_close(y, y_hand, 1e-6, 1e-6, "y"));
  }
}

// Eval mode normalises with the running stats, not the batch's: hand formula per element, two channels.
TEST(BatchNorm, EvalUsesRunningStats) {
  BatchNormShape s;
  s.N = 2, s.C = 2, s.HW = 3;
  const auto x = random_vec<float>(12, 7, -1, 3);
  const std::vector<float> gamma = {2.f, 0.5f}, beta = {0.5f, -0.25f}, rm = {1.f, -1.f}, rv = {4.f, 0.25f};
  std::vector<double> y_hand(12);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 3; ++i) {
        const int j = (n * 2 + c) * 3 + i;
        y_hand[j] = (double(x[j]) - rm[c]) / std::sqrt(double(rv[c]) + 1e-5) * gamma[c] + beta[c];
      }
  std::vector<float> y_ref(12), y(12), y_train(12), m(2), is(2);
  batchnorm_forward_eval_ref(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y_ref.data());
  batchnorm_forward_eval_cpu(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data());
  EXPECT_TRUE(all_close(y_ref, y_hand, 1e-6, 1e-6, "ref"));
  EXPECT_TRUE(all_close(y, y_hand, 1e-6, 1e-6, "fast"));
  // and train mode on the same input gives something else (batch stats)
  batchnorm_forward_train_ref<float>(s, x.data(), gamma.data(), beta.data(), y_train.data(), m.data(), is.data(),
                                     nullptr, nullptr);
  EXPECT_FALSE(all_close(y_train, y_hand, 1e-3, 1e-3, "train vs eval"));
}

// With gamma = 1, beta = 0 each channel of the train output has mean 0 and biased variance var / (var + eps).
TEST(BatchNorm, TrainOutputIsNormalisedPerChannel) {
  BatchNormShape s;
  s.N = 3, s.C = 4, s.HW = 50;
  const int M = s.N * s.HW;
  auto x = random_vec<float>(numel(s), 3);
  for (int n = 0; n < s.N; ++n)  // a different offset and scale per channel
    for (int c = 0; c < s.C; ++c)
      for (int i = 0; i < s.HW; ++i) {
        float& v = x[(n * s.C + c) * s.HW + i];
        v = 5.f * c + (c + 1) * v;
      }
  const std::vector<float> gamma(s.C, 1.f), beta(s.C, 0.f);
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> y(numel(s)), m(s.C), is(s.C);
    (fast ? batchnorm_forward_train_cpu : batchnorm_forward_train_ref<float>)(
        s, x.data(), gamma.data(), beta.data(), y.data(), m.data(), is.data(), nullptr, nullptr);
    for (int c = 0; c < s.C; ++c) {
      double sum = 0, sq = 0;
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) sum += y[(n * s.C + c) * s.HW + i];
      const double mean = sum / M;
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) sq += std::pow(y[(n * s.C + c) * s.HW + i] - mean, 2);
      EXPECT_NEAR(mean, 0.0, 1e-5) << "channel " << c;
      EXPECT_NEAR(sq / M, 1.0, 1e-3) << "channel " << c;
      EXPECT_NEAR(m[c], 5.0 * c, 0.2 * (c + 1)) << "channel " << c;  // the offset was found
    }
  }
}

TEST(BatchNorm, BadShapesThrow) {
  std::vector<float> buf(64, 1.f), out(64);
  auto make = [](int N, int C, int HW, float eps = 1e-5f, float momentum = 0.1f) {
    BatchNormShape s;
    s.N = N, s.C = C, s.HW = HW, s.eps = eps, s.momentum = momentum;
    return s;
  };
  const float* p = buf.data();
  float* o = out.data();
  for (const auto& s : {make(2, 0, 4), make(0, 2, 4), make(2, 2, 0), make(-1, 2, 4), make(2, 2, 4, 0.f),
                        make(2, 2, 4, -1e-5f), make(2, 2, 4, NAN), make(2, 2, 4, 1e-5f, 1.5f),
                        make(2, 2, 4, 1e-5f, -0.1f)}) {
    SCOPED_TRACE(s.str());
    EXPECT_THROW(check_batchnorm_shape(s), rf::Error);
    EXPECT_THROW(batchnorm_forward_train_ref(s, p, p, p, o, o, o, o, o), rf::Error);
    EXPECT_THROW(batchnorm_forward_train_cpu(s, p, p, p, o, o, o, o, o), rf::Error);
    EXPECT_THROW(batchnorm_forward_eval_ref(s, p, p, p, p, p, o), rf::Error);
    EXPECT_THROW(batchnorm_forward_eval_cpu(s, p, p, p, p, p, o), rf::Error);
    EXPECT_THROW(batchnorm_backward_ref(s, p, p, p, p, p, o, o, o), rf::Error);
    EXPECT_THROW(batchnorm_backward_cpu(s, p, p, p, p, p, o, o, o), rf::Error);
  }
  // One value per channel in train mode: no unbiased variance; PyTorch refuses too. Eval mode is fine.
  const auto one = make(1, 4, 1);
  EXPECT_THROW(batchnorm_forward_train_cpu(one, p, p, p, o, o, o, o, o), rf::Error);
  try {
    batchnorm_forward_train_ref(one, p, p, p, o, o, o, o, o);
    ADD_FAILURE() << "N*HW == 1 in train mode did not throw";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("N*HW = 1"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(batchnorm_forward_eval_cpu(one, p, p, p, p, p, o));
}

// The fused inference epilogue against the reference chain (shuffle -> eval BN -> add -> ReLU) on random inputs.
TEST(BatchNormEpilogue, MatchesReferenceChain) {
  for (int G : {1, 4})
    for (bool res : {false, true})
      for (bool relu : {false, true}) {
        const int N = 2, C = 8, HW = 9;
        SCOPED_TRACE(::testing::Message() << "epilogue(N=2,C=8,HW=9,G=" << G << ",res=" << res << ",relu=" << relu << ")");
        rf::BatchNormShape s{N, C, HW};
        auto z = rf::testing::random_vec<float>(N * C * HW, 1), r = rf::testing::random_vec<float>(N * C * HW, 2);
        auto g = rf::testing::random_vec<float>(C, 3), b = rf::testing::random_vec<float>(C, 4);
        auto m = rf::testing::random_vec<float>(C, 5), v = rf::testing::random_vec<float>(C, 6, 0.5, 2.0);
        std::vector<float> zs(z.size()), ref(z.size()), got(z.size());
        for (int n = 0; n < N; ++n)
          for (int c = 0; c < C; ++c) {
            const int o = G > 1 ? (c % G) * (C / G) + c / G : c;
            for (int i = 0; i < HW; ++i) zs[(n * C + o) * HW + i] = z[(n * C + c) * HW + i];
          }
        rf::batchnorm_forward_eval_ref<float>(s, zs.data(), g.data(), b.data(), m.data(), v.data(), ref.data());
        for (size_t i = 0; i < ref.size(); ++i) {
          if (res) ref[i] += r[i];
          if (relu) ref[i] = ref[i] > 0.f ? ref[i] : 0.f;
        }
        rf::batchnorm_eval_epilogue_cpu(s, z.data(), G, g.data(), b.data(), m.data(), v.data(),
                                        res ? r.data() : nullptr, relu, got.data());
        EXPECT_TRUE(rf::testing::all_close(got, ref, 1e-5, 1e-5, "epilogue"));
      }
}

// The train ops with the residual add and the ReLU fused (what a residual block runs): the bits of the plain
// train forward followed by the add / ReLU (each one float operation, written out here as add_forward_cpu and
// relu_forward_cpu do it), and of the ReLU's backward (dy masked by y > 0) followed by the plain backward.
TEST(BatchNorm, FusedResidualReluMatchesUnfusedChainBitForBit) {
  for (const auto& s : sweep()) {
    if (s.N * s.HW == 1) continue;
    const size_t n = numel(s);
    Inputs in(s, 29 + s.N * 7 + s.C * 13 + s.HW, 0.0);
    const auto r = random_vec<float>(n, 31 + s.C);
    for (bool res : {false, true})
      for (bool relu : {false, true}) {
        SCOPED_TRACE(s.str() + (res ? " +res" : "") + (relu ? " relu" : ""));
        std::vector<float> y0(n), m0(s.C), i0(s.C), rm0 = in.rm, rv0 = in.rv;
        batchnorm_forward_train_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), y0.data(), m0.data(),
                                    i0.data(), rm0.data(), rv0.data());
        for (size_t i = 0; i < n; ++i) {
          float v = res ? y0[i] + r[i] : y0[i];
          y0[i] = relu ? (v > 0.f ? v : 0.f) : v;
        }
        std::vector<float> y(n, 7.f), m(s.C), i1(s.C), sc(s.C), rm = in.rm, rv = in.rv;
        batchnorm_forward_train_act_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), res ? r.data() : nullptr,
                                        relu, y.data(), m.data(), i1.data(), sc.data(), rm.data(), rv.data());
        EXPECT_EQ(y, y0);
        EXPECT_EQ(m, m0);
        EXPECT_EQ(i1, i0);
        EXPECT_EQ(rm, rm0);
        EXPECT_EQ(rv, rv0);
        if (res || !relu) continue;
        // The backward through the ReLU: its mask recomputed from x.
        const auto dy = random_vec<float>(n, 37 + s.HW);
        std::vector<float> d(n), dx0(n), dg0(s.C), db0(s.C);
        for (size_t i = 0; i < n; ++i) d[i] = y0[i] > 0.f ? dy[i] : 0.f;
        batchnorm_backward_cpu(s, in.x.data(), d.data(), in.gamma.data(), m0.data(), i0.data(), dx0.data(),
                               dg0.data(), db0.data());
        std::vector<float> dx(n, 7.f), dg(s.C, 7.f), db(s.C, 7.f);
        batchnorm_backward_relu_cpu(s, in.x.data(), dy.data(), in.gamma.data(), in.beta.data(), m.data(), i1.data(),
                                    sc.data(), dx.data(), dg.data(), db.data());
        EXPECT_EQ(dx, dx0);
        EXPECT_EQ(dg, dg0);
        EXPECT_EQ(db, db0);
      }
  }
}

// The epilogue on nChw16c activations: the bits of the NCHW epilogue on the same values, with either output
// layout, residual or not, ReLU or not, plane sizes that are and are not multiples of 16.
TEST(BatchNormEpilogue, Nc16EqualsNchwBitForBit) {
  for (int HW : {1, 9, 16, 33, 64})
    for (bool res : {false, true})
      for (bool relu : {false, true})
        for (bool y_nc16 : {false, true}) {
          const int N = 2, C = 32, CB = C / 16;
          SCOPED_TRACE(::testing::Message() << "HW=" << HW << " res=" << res << " relu=" << relu << " y_nc16=" << y_nc16);
          rf::BatchNormShape s{N, C, HW};
          auto z = rf::testing::random_vec<float>(N * C * HW, 11), r = rf::testing::random_vec<float>(N * C * HW, 12);
          auto g = rf::testing::random_vec<float>(C, 13), b = rf::testing::random_vec<float>(C, 14);
          auto m = rf::testing::random_vec<float>(C, 15), v = rf::testing::random_vec<float>(C, 16, 0.5, 2.0);
          auto nc16 = [&](int64_t n, int64_t c, int64_t i) { return ((n * CB + c / 16) * HW + i) * 16 + c % 16; };
          std::vector<float> zb(z.size()), want(z.size()), got(z.size()), got_nchw(z.size());
          for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c)
              for (int i = 0; i < HW; ++i) zb[nc16(n, c, i)] = z[(n * C + c) * HW + i];
          rf::batchnorm_eval_epilogue_cpu(s, z.data(), 1, g.data(), b.data(), m.data(), v.data(),
                                          res ? r.data() : nullptr, relu, want.data());
          rf::batchnorm_eval_epilogue_nc16_cpu(s, zb.data(), g.data(), b.data(), m.data(), v.data(),
                                               res ? r.data() : nullptr, relu, got.data(), y_nc16);
          for (int n = 0; n < N; ++n)
            for (int c = 0; c < C; ++c)
              for (int i = 0; i < HW; ++i)
                got_nchw[(n * C + c) * HW + i] = y_nc16 ? got[nc16(n, c, i)] : got[(n * C + c) * HW + i];
          ASSERT_EQ(0, std::memcmp(got_nchw.data(), want.data(), want.size() * sizeof(float)));
        }
  std::vector<float> p(16 * 4);
  EXPECT_THROW(rf::batchnorm_eval_epilogue_nc16_cpu(rf::BatchNormShape{1, 8, 4}, p.data(), p.data(), p.data(),
                                                     p.data(), p.data(), nullptr, false, p.data(), true),
               rf::Error);
}

// Synchronised BN (--sync-bn) in a world of one process (the sum adds nothing): the plain train ops' results up to
// float rounding. Two ranks against one: tests/training/mpi_train.sh.
TEST(BatchNorm, SyncOpsInOneProcessMatchPlainOps) {
  const BnSum none = [](double*, int64_t) {};
  for (const auto& s : sweep()) {
    if (s.N * s.HW == 1) continue;
    SCOPED_TRACE(s.str());
    const uint32_t seed = 301 + s.N * 7 + s.C * 13 + s.HW;
    Inputs in(s, seed), in2(s, seed);
    const size_t n = numel(s);
    std::vector<float> y(n), y2(n), mean(s.C), mean2(s.C), invstd(s.C), invstd2(s.C);
    batchnorm_forward_train_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), y.data(), mean.data(),
                                invstd.data(), in.rm.data(), in.rv.data());
    batchnorm_forward_train_sync_cpu(s, in2.x.data(), in2.gamma.data(), in2.beta.data(), y2.data(), mean2.data(),
                                     invstd2.data(), in2.rm.data(), in2.rv.data(), none);
    EXPECT_TRUE(all_close(y2, y, 1e-5, 1e-5, "y"));
    EXPECT_TRUE(all_close(in2.rm, in.rm, 1e-6, 1e-6, "running mean"));
    EXPECT_TRUE(all_close(in2.rv, in.rv, 1e-5, 1e-5, "running var"));
    const auto dy = random_vec<float>(n, seed + 9);
    std::vector<float> dx(n), dx2(n), dg(s.C), dg2(s.C), db(s.C), db2(s.C);
    batchnorm_backward_cpu(s, in.x.data(), dy.data(), in.gamma.data(), mean.data(), invstd.data(), dx.data(),
                           dg.data(), db.data());
    batchnorm_backward_sync_cpu(s, in.x.data(), dy.data(), in.gamma.data(), mean.data(), invstd.data(), dx2.data(),
                                dg2.data(), db2.data(), none);
    EXPECT_TRUE(all_close(dx2, dx, 1e-6, 1e-6, "dx"));
    EXPECT_TRUE(all_close(dg2, dg, 1e-6, 1e-6, "dgamma"));
    EXPECT_TRUE(all_close(db2, db, 1e-6, 1e-6, "dbeta"));
  }
}

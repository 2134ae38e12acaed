// Global average pool and linear: fast vs reference over shape sweeps (forward and backward), hand cases,
// finite-difference gradients of the double reference (x, w, b; pool input), nullptr gradients skipped, bad sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "host/core/check.h"
#include "host/ops/linear.h"
#include "testing.h"

using namespace rf;
using rf::testing::all_close;
using rf::testing::random_vec;

namespace {

std::string pool_str(int N, int C, int HW) {
  return "global_avg_pool(N=" + std::to_string(N) + ",C=" + std::to_string(C) + ",HW=" + std::to_string(HW) + ")";
}
std::string linear_str(int N, int IN, int OUT) {
  return "linear(N=" + std::to_string(N) + ",IN=" + std::to_string(IN) + ",OUT=" + std::to_string(OUT) + ")";
}

}  // namespace

TEST(GlobalAvgPool, FastMatchesRef) {
  for (int N : {1, 2, 3, 8})
    for (int C : {1, 3, 16, 64})
      for (int HW : {1, 7, 64, 1024}) {
        SCOPED_TRACE(pool_str(N, C, HW));
        const size_t P = size_t(N) * C, n = P * HW;
        const auto x = random_vec<float>(n, uint32_t(n) + 1, -1, 2), dy = random_vec<float>(P, uint32_t(P) + 2);
        std::vector<float> y_ref(P), y(P), dx_ref(n), dx(n);
        global_avg_pool_forward_ref(N, C, HW, x.data(), y_ref.data());
        global_avg_pool_forward_cpu(N, C, HW, x.data(), y.data());
        EXPECT_TRUE(all_close(y, y_ref, 1e-6, 1e-5, "y"));
        global_avg_pool_backward_ref(N, C, HW, dy.data(), dx_ref.data());
        global_avg_pool_backward_cpu(N, C, HW, dy.data(), dx.data());
        EXPECT_TRUE(all_close(dx, dx_ref, 0, 1e-6, "dx"));
      }
}

TEST(GlobalAvgPool, HandCaseAndGradient) {
  // N=1, C=2, HW=3: the means of {1, 2, 6} and {-3, 0.5, 1}
  const std::vector<float> x = {1, 2, 6, -3, 0.5f, 1};
  std::vector<float> y(2), dx(6);
  global_avg_pool_forward_cpu(1, 2, 3, x.data(), y.data());
  EXPECT_TRUE(all_close(y, std::vector<double>{3.0, -0.5}, 1e-6, 1e-6, "y"));
  const std::vector<float> dy = {3, -6};
  global_avg_pool_backward_cpu(1, 2, 3, dy.data(), dx.data());
  EXPECT_TRUE(all_close(dx, std::vector<double>{1, 1, 1, -2, -2, -2}, 1e-6, 1e-6, "dx"));

  const int N = 2, C = 3, HW = 5;
  const auto xd = random_vec<double>(N * C * HW, 1), g = random_vec<double>(N * C, 2);
  std::vector<double> dxd(N * C * HW);
  global_avg_pool_backward_ref(N, C, HW, g.data(), dxd.data());
  auto loss = [&](const std::vector<double>& v) {
    std::vector<double> out(N * C);
    global_avg_pool_forward_ref(N, C, HW, v.data(), out.data());
    return rf::testing::dot(out, g);
  };
  EXPECT_TRUE(rf::testing::check_grad(loss, xd, dxd, "pool dx"));
}

TEST(Linear, FastMatchesRef) {
  for (int N : {1, 2, 3, 8, 128})
    for (int IN : {1, 3, 16, 64, 512})
      for (int OUT : {1, 3, 10, 64}) {
        SCOPED_TRACE(linear_str(N, IN, OUT));
        const uint32_t seed = N * 1000 + IN * 10 + OUT;
        const auto x = random_vec<float>(size_t(N) * IN, seed), w = random_vec<float>(size_t(OUT) * IN, seed + 1),
                   b = random_vec<float>(OUT, seed + 2), dy = random_vec<float>(size_t(N) * OUT, seed + 3);
        // dot products of IN terms of size ~1: float error grows like sqrt(IN) * 6e-8
        const double atol = 1e-5 * std::sqrt(double(std::max(IN, N)));
        std::vector<float> y_ref(size_t(N) * OUT), y(size_t(N) * OUT);
        linear_forward_ref(N, IN, OUT, x.data(), w.data(), b.data(), y_ref.data());
        linear_forward_cpu(N, IN, OUT, x.data(), w.data(), b.data(), y.data());
        EXPECT_TRUE(all_close(y, y_ref, atol, 1e-5, "y"));
        linear_forward_ref(N, IN, OUT, x.data(), w.data(), (const float*)nullptr, y_ref.data());
        linear_forward_cpu(N, IN, OUT, x.data(), w.data(), nullptr, y.data());
        EXPECT_TRUE(all_close(y, y_ref, atol, 1e-5, "y without bias"));

        std::vector<float> dx_ref(x.size()), dx(x.size()), dw_ref(w.size()), dw(w.size()), db_ref(OUT), db(OUT);
        linear_backward_ref(N, IN, OUT, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());
        linear_backward_cpu(N, IN, OUT, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
        EXPECT_TRUE(all_close(dx, dx_ref, atol, 1e-5, "dx"));
        EXPECT_TRUE(all_close(dw, dw_ref, atol, 1e-5, "dw"));
        EXPECT_TRUE(all_close(db, db_ref, atol, 1e-5, "db"));
      }
}

// x = [[1, 2], [3, 4]], w = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 2] -> y = [[1.5, 1, 5], [3.5, 3, 9]].
TEST(Linear, HandCase) {
  const std::vector<float> x = {1, 2, 3, 4}, w = {1, 0, 0, 1, 1, 1}, b = {0.5f, -1, 2};
  const std::vector<float> dy = {1, 2, 3, -1, 0.5f, 2};
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> y(6), dx(4), dw(6), db(3);
    if (fast) {
      linear_forward_cpu(2, 2, 3, x.data(), w.data(), b.data(), y.data());
      linear_backward_cpu(2, 2, 3, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    } else {
      linear_forward_ref(2, 2, 3, x.data(), w.data(), b.data(), y.data());
      linear_backward_ref(2, 2, 3, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    }
    EXPECT_EQ(y, (std::vector<float>{1.5f, 1, 5, 3.5f, 3, 9}));
    // dx = dy w: row 0 = 1*[1,0] + 2*[0,1] + 3*[1,1] = [4, 5]; row 1 = -1*[1,0] + 0.5*[0,1] + 2*[1,1] = [1, 2.5]
    EXPECT_EQ(dx, (std::vector<float>{4, 5, 1, 2.5f}));
    // dw = dy^T x: row o = dy[0,o]*[1,2] + dy[1,o]*[3,4]
    EXPECT_EQ(dw, (std::vector<float>{-2, -2, 3.5f, 6, 9, 14}));
    EXPECT_EQ(db, (std::vector<float>{0, 2.5f, 5}));
  }
}

TEST(Linear, ReferenceGradientsMatchFiniteDifferences) {
  for (auto [N, IN, OUT] : {std::tuple{3, 5, 4}, std::tuple{1, 7, 2}, std::tuple{4, 1, 3}}) {
    SCOPED_TRACE(linear_str(N, IN, OUT));
    const auto x = random_vec<double>(N * IN, 1), w = random_vec<double>(OUT * IN, 2), b = random_vec<double>(OUT, 3),
               g = random_vec<double>(N * OUT, 4);
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      std::vector<double> y(N * OUT);
      linear_forward_ref(N, IN, OUT, xx.data(), ww.data(), bb.data(), y.data());
      return rf::testing::dot(y, g);
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    linear_backward_ref(N, IN, OUT, x.data(), w.data(), g.data(), dx.data(), dw.data(), db.data());
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(v, w, b); }, x, dx, "dx"));
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(x, v, b); }, w, dw, "dw"));
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return loss(x, w, v); }, b, db, "db"));
  }
}

// Any gradient may be skipped with nullptr; the others are still right.
TEST(Linear, NullGradientsAreSkipped) {
  const int N = 8, IN = 512, OUT = 10;
  const auto x = random_vec<float>(N * IN, 5), w = random_vec<float>(OUT * IN, 6), dy = random_vec<float>(N * OUT, 7);
  std::vector<float> dx_ref(x.size()), dw_ref(w.size()), db_ref(OUT);
  linear_backward_ref(N, IN, OUT, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), db_ref.data());
  for (int mask = 0; mask < 8; ++mask) {
    SCOPED_TRACE("mask " + std::to_string(mask));
    std::vector<float> dx(x.size(), 7.f), dw(w.size(), 7.f), db(OUT, 7.f);
    for (bool fast : {false, true}) {
      float* pdx = mask & 1 ? dx.data() : nullptr;
      float* pdw = mask & 2 ? dw.data() : nullptr;
      float* pdb = mask & 4 ? db.data() : nullptr;
      if (fast)
        linear_backward_cpu(N, IN, OUT, x.data(), w.data(), dy.data(), pdx, pdw, pdb);
      else
        linear_backward_ref(N, IN, OUT, x.data(), w.data(), dy.data(), pdx, pdw, pdb);
      // skipped outputs keep their sentinel 7; the others match
      if (mask & 1) EXPECT_TRUE(all_close(dx, dx_ref, 1e-4, 1e-5, "dx"));
      else EXPECT_TRUE(all_close(dx, std::vector<float>(x.size(), 7.f), 0, 0, "dx untouched"));
      if (mask & 2) EXPECT_TRUE(all_close(dw, dw_ref, 1e-4, 1e-5, "dw"));
      else EXPECT_TRUE(all_close(dw, std::vector<float>(w.size(), 7.f), 0, 0, "dw untouched"));
      if (mask & 4) EXPECT_TRUE(all_close(db, db_ref, 1e-4, 1e-5, "db"));
      else EXPECT_TRUE(all_close(db, std::vector<float>(OUT, 7.f), 0, 0, "db untouched"));
    }
  }
}

TEST(Linear, BadSizesThrow) {
  std::vector<float> buf(16, 1.f), out(16);
  const float* p = buf.data();
  float* o = out.data();
  for (auto [N, IN, OUT] : {std::tuple{0, 2, 2}, std::tuple{2, 0, 2}, std::tuple{2, 2, 0}, std::tuple{-1, 2, 2}}) {
    SCOPED_TRACE(linear_str(N, IN, OUT));
    EXPECT_THROW(linear_forward_cpu(N, IN, OUT, p, p, p, o), rf::Error);
    EXPECT_THROW(linear_forward_ref(N, IN, OUT, p, p, p, o), rf::Error);
    EXPECT_THROW(linear_backward_cpu(N, IN, OUT, p, p, p, o, o, o), rf::Error);
    EXPECT_THROW(linear_backward_ref(N, IN, OUT, p, p, p, o, o, o), rf::Error);
    // the pool checks the same way: (N, C, HW) = (N, IN, OUT)
    EXPECT_THROW(global_avg_pool_forward_cpu(N, IN, OUT, p, o), rf::Error);
    EXPECT_THROW(global_avg_pool_backward_ref(N, IN, OUT, p, o), rf::Error);
  }
}

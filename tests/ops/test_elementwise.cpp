// ReLU and the (fused) residual add: fast vs reference over the sizes of the shape sweep (plus sizes large enough
// to take the threaded path), in-place use, a hand case, finite-difference gradients of the double reference,
// and a negative size.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "host/ops/elementwise.h"
#include "testing.h"

using namespace rf;
using rf::testing::all_close;
using rf::testing::random_vec;

namespace {

struct Case {
  int N, C, HW;
  int64_t n() const { return int64_t(N) * C * HW; }
  std::string str() const {
    return "elementwise(N=" + std::to_string(N) + ",C=" + std::to_string(C) + ",HW=" + std::to_string(HW) +
           ",n=" + std::to_string(n()) + ")";
  }
};

std::vector<Case> sweep() {
  std::vector<Case> out;
  for (int N : {1, 2, 3, 8})
    for (int C : {1, 3, 16, 64})
      for (int HW : {1, 7, 64, 1024}) out.push_back({N, C, HW});
  out.push_back({17, 64, 1025});  // odd size above the threading threshold
  return out;
}

}  // namespace

TEST(Elementwise, ReluFastMatchesRef) {
  for (const auto& c : sweep()) {
    SCOPED_TRACE(c.str());
    const int64_t n = c.n();
    const auto x = random_vec<float>(n, uint32_t(n) + 1), dy = random_vec<float>(n, uint32_t(n) + 2);
    std::vector<float> y_ref(n), y(n), dx_ref(n), dx(n);
    relu_forward_ref(n, x.data(), y_ref.data());
    relu_forward_cpu(n, x.data(), y.data());
    EXPECT_TRUE(all_close(y, y_ref, 0, 0, "y"));  // a select: exact
    relu_backward_ref(n, y_ref.data(), dy.data(), dx_ref.data());
    relu_backward_cpu(n, y_ref.data(), dy.data(), dx.data());
    EXPECT_TRUE(all_close(dx, dx_ref, 0, 0, "dx"));
  }
}

TEST(Elementwise, AddFastMatchesRef) {
  for (const auto& c : sweep())
    for (bool relu : {false, true}) {
      SCOPED_TRACE(c.str() + (relu ? " relu" : ""));
      const int64_t n = c.n();
      const auto a = random_vec<float>(n, uint32_t(n) + 3), b = random_vec<float>(n, uint32_t(n) + 4),
                 dy = random_vec<float>(n, uint32_t(n) + 5);
      std::vector<float> y_ref(n), y(n);
      add_forward_ref(n, a.data(), b.data(), y_ref.data(), relu);
      add_forward_cpu(n, a.data(), b.data(), y.data(), relu);
      EXPECT_TRUE(all_close(y, y_ref, 0, 0, "y"));
      std::vector<float> da_ref(n), db_ref(n), da(n), db(n);
      add_backward_ref(n, y_ref.data(), dy.data(), da_ref.data(), db_ref.data(), relu);
      add_backward_cpu(n, y_ref.data(), dy.data(), da.data(), db.data(), relu);
      EXPECT_TRUE(all_close(da, da_ref, 0, 0, "da"));
      EXPECT_TRUE(all_close(db, db_ref, 0, 0, "db"));
    }
}

TEST(Elementwise, HandCase) {
  const std::vector<float> x = {-2.f, -0.5f, 0.25f, 3.f}, b = {1.f, 1.f, -1.f, -4.f}, dy = {1.f, 2.f, 3.f, 4.f};
  std::vector<float> y(4), dx(4), s(4), da(4), db(4);
  relu_forward_cpu(4, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0.f, 0.f, 0.25f, 3.f}));
  relu_backward_cpu(4, y.data(), dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{0.f, 0.f, 3.f, 4.f}));
  add_forward_cpu(4, x.data(), b.data(), s.data(), false);
  EXPECT_EQ(s, (std::vector<float>{-1.f, 0.5f, -0.75f, -1.f}));
  add_forward_cpu(4, x.data(), b.data(), s.data(), true);
  EXPECT_EQ(s, (std::vector<float>{0.f, 0.5f, 0.f, 0.f}));
  add_backward_cpu(4, s.data(), dy.data(), da.data(), db.data(), true);
  EXPECT_EQ(da, (std::vector<float>{0.f, 2.f, 0.f, 0.f}));
  EXPECT_EQ(db, da);
  add_backward_cpu(4, s.data(), dy.data(), da.data(), db.data(), false);
  EXPECT_EQ(da, dy);
  EXPECT_EQ(db, dy);
}

// In-place use as the models do it: relu on its own buffer, the residual sum into one operand, and the add's
// gradient written over dy.
TEST(Elementwise, InPlace) {
  for (int64_t n : {int64_t(13), int64_t(1) << 17}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const auto x = random_vec<float>(n, 7), b = random_vec<float>(n, 8), dy = random_vec<float>(n, 9);
    std::vector<float> y_ref(n), s_ref(n), da_ref(n), db_ref(n);
    relu_forward_ref(n, x.data(), y_ref.data());
    add_forward_ref(n, x.data(), b.data(), s_ref.data(), true);
    add_backward_ref(n, s_ref.data(), dy.data(), da_ref.data(), db_ref.data(), true);

    std::vector<float> y = x;
    relu_forward_cpu(n, y.data(), y.data());
    EXPECT_TRUE(all_close(y, y_ref, 0, 0, "relu in place"));
    std::vector<float> s = x;
    add_forward_cpu(n, s.data(), b.data(), s.data(), true);
    EXPECT_TRUE(all_close(s, s_ref, 0, 0, "add into a"));
    std::vector<float> g = dy, db(n);
    add_backward_cpu(n, s.data(), g.data(), g.data(), db.data(), true);
    EXPECT_TRUE(all_close(g, da_ref, 0, 0, "da over dy"));
    EXPECT_TRUE(all_close(db, db_ref, 0, 0, "db"));
    std::vector<float> dx = dy;
    relu_backward_cpu(n, y.data(), dx.data(), dx.data());
    std::vector<float> dx_ref(n);
    relu_backward_ref(n, y_ref.data(), dy.data(), dx_ref.data());
    EXPECT_TRUE(all_close(dx, dx_ref, 0, 0, "relu backward in place"));
  }
}

// loss = sum y * g; random inputs are at least 1e-3 away from the kink at 0, the step is 1e-6.
TEST(Elementwise, ReferenceGradientsMatchFiniteDifferences) {
  const int64_t n = 50;
  const auto x = random_vec<double>(n, 21), b = random_vec<double>(n, 22), g = random_vec<double>(n, 23);
  std::vector<double> y(n), dx(n);
  relu_forward_ref(n, x.data(), y.data());
  relu_backward_ref(n, y.data(), g.data(), dx.data());
  auto relu_loss = [&](const std::vector<double>& v) {
    std::vector<double> out(n);
    relu_forward_ref(n, v.data(), out.data());
    return rf::testing::dot(out, g);
  };
  EXPECT_TRUE(rf::testing::check_grad(relu_loss, x, dx, "relu dx"));
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "add+relu" : "add");
    // keep a + b away from 0 too: shift b where the sum is within 1e-3 of the kink
    std::vector<double> bb = b;
    for (int64_t i = 0; i < n; ++i)
      if (std::abs(x[i] + bb[i]) < 1e-3) bb[i] += 0.01;
    auto add_loss = [&](const std::vector<double>& a, const std::vector<double>& c) {
      std::vector<double> out(n);
      add_forward_ref(n, a.data(), c.data(), out.data(), relu);
      return rf::testing::dot(out, g);
    };
    std::vector<double> s(n), da(n), db(n);
    add_forward_ref(n, x.data(), bb.data(), s.data(), relu);
    add_backward_ref(n, s.data(), g.data(), da.data(), db.data(), relu);
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return add_loss(v, bb); }, x, da, "da"));
    EXPECT_TRUE(rf::testing::check_grad([&](const std::vector<double>& v) { return add_loss(x, v); }, bb, db, "db"));
  }
}

TEST(Elementwise, NegativeSizeThrows) {
  float a = 1.f, b = 1.f, y = 0.f;
  EXPECT_THROW(relu_forward_cpu(-1, &a, &y), rf::Error);
  EXPECT_THROW(relu_forward_ref<float>(-1, &a, &y), rf::Error);
  EXPECT_THROW(relu_backward_cpu(-1, &a, &b, &y), rf::Error);
  EXPECT_THROW(add_forward_cpu(-1, &a, &b, &y, true), rf::Error);
  EXPECT_THROW(add_backward_cpu(-1, &a, &b, &y, &y, false), rf::Error);
  EXPECT_THROW(add_backward_ref<float>(-1, &a, &b, &y, &y, false), rf::Error);
  EXPECT_NO_THROW(relu_forward_cpu(0, &a, &y));
}

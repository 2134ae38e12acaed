// Tests of host/ops/upsample.cpp: bilinear resize (align_corners=False).
// A hand-computed 2x2 -> 4x4 case, PyTorch's sample positions, fast vs reference forward and backward over a
// sweep of scales (2x, 3x, 8x, 17 -> 40, 40 -> 17, downscale to 1, 1x1 input, N and C > 1), reference gradient
// vs finite differences in double, bad shapes, and a fast-vs-reference timing ratio (printed, not asserted).
#include "host/ops/upsample.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using rf::UpsampleShape;
using namespace rf::testing;

UpsampleShape shape(int N, int C, int H, int W, int Ho, int Wo) {
  UpsampleShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.Ho = Ho, s.Wo = Wo;
  return s;
}

std::vector<UpsampleShape> sweep() {
  return {
      shape(1, 1, 2, 2, 4, 4),    shape(2, 3, 5, 7, 10, 14),   shape(1, 2, 8, 8, 16, 16),  // 2x
      shape(2, 2, 4, 5, 32, 40),  shape(1, 3, 7, 3, 56, 24),                               // 8x
      shape(1, 2, 5, 6, 15, 18),                                                            // 3x
      shape(2, 2, 17, 17, 40, 40), shape(1, 1, 17, 13, 40, 29),                            // non-integer up
      shape(2, 2, 40, 40, 17, 17), shape(1, 3, 40, 9, 17, 4),                              // downscale
      shape(1, 1, 9, 9, 1, 1),    shape(3, 2, 1, 1, 5, 7),     shape(1, 1, 1, 1, 1, 1),     // to / from 1x1
      shape(2, 3, 6, 9, 6, 9),    shape(1, 2, 5, 8, 11, 16),   shape(2, 5, 1, 6, 3, 12),    // identity, mixed
  };
}

}  // namespace

// Per axis 2 -> 4: positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge index clamped), so a row {a, b}
// becomes {a, 3a/4 + b/4, a/4 + 3b/4, b}; the same vertically.
TEST(UpsampleBilinear, HandCase2x2To4x4) {
  const UpsampleShape s = shape(1, 1, 2, 2, 4, 4);
  const std::vector<float> x = {1, 2, 3, 4};
  const std::vector<double> want = {1.0, 1.25, 1.75, 2.0,  1.5, 1.75, 2.25, 2.5,
                                    2.5, 2.75, 3.25, 3.5,  3.0, 3.25, 3.75, 4.0};
  std::vector<float> y_ref(16), y(16);
  rf::upsample_bilinear_forward_ref(s, x.data(), y_ref.data());
  rf::upsample_bilinear_forward_cpu(s, x.data(), y.data());
  EXPECT_TRUE(all_close(y_ref, want, 0, 0, "ref"));
  EXPECT_TRUE(all_close(y, want, 0, 0, "fast"));
  // Backward of an all-ones dy: each input receives the total weight of its taps, 4 (16 outputs, 4 inputs,
  // symmetric) for every input.
  const std::vector<float> dy(16, 1.f);
  std::vector<float> dx_ref(4), dx(4);
  rf::upsample_bilinear_backward_ref(s, dy.data(), dx_ref.data());
  rf::upsample_bilinear_backward_cpu(s, dy.data(), dx.data());
  EXPECT_TRUE(all_close(dx_ref, std::vector<double>(4, 4.0), 0, 0, "dx ref"));
  EXPECT_TRUE(all_close(dx, std::vector<double>(4, 4.0), 0, 0, "dx fast"));
}

// torch.nn.functional.interpolate(size=...) positions: 17 -> 40, dst 10: (10.5 * 17/40 - 0.5) = 3.9625.
TEST(UpsampleBilinear, TapPositions) {
  auto t = rf::bilinear_taps(17, 40, 10);
  EXPECT_EQ(t.i0, 3);
  EXPECT_EQ(t.i1, 4);
  EXPECT_NEAR(t.w1, 0.9625, 1e-12);
  t = rf::bilinear_taps(17, 40, 39);  // 39.5 * 0.425 - 0.5 = 16.2875: i1 clamped to the edge
  EXPECT_EQ(t.i0, 16);
  EXPECT_EQ(t.i1, 16);
  t = rf::bilinear_taps(40, 17, 0);  // downscale: 0.5 * 40/17 - 0.5 = 0.6765
  EXPECT_EQ(t.i0, 0);
  EXPECT_EQ(t.i1, 1);
  EXPECT_NEAR(t.w1, 0.5 * 40.0 / 17.0 - 0.5, 1e-12);
  t = rf::bilinear_taps(9, 1, 0);  // one output: the centre, 4.0
  EXPECT_EQ(t.i0, 4);
  EXPECT_NEAR(t.w1, 0.0, 1e-12);
}

TEST(UpsampleBilinear, FastMatchesReference) {
  uint32_t seed = 1;
  for (const UpsampleShape& s : sweep()) {
    SCOPED_TRACE(s.str());
    const auto x = random_vec<float>(s.x_numel(), seed++);
    const auto dy = random_vec<float>(s.y_numel(), seed++);
    std::vector<float> y_ref(s.y_numel()), y(s.y_numel(), 7.f), dx_ref(s.x_numel()), dx(s.x_numel(), 7.f);
    rf::upsample_bilinear_forward_ref(s, x.data(), y_ref.data());
    rf::upsample_bilinear_forward_cpu(s, x.data(), y.data());
    EXPECT_TRUE(all_close(y, y_ref, 1e-6, 1e-6, "y"));
    rf::upsample_bilinear_backward_ref(s, dy.data(), dx_ref.data());
    rf::upsample_bilinear_backward_cpu(s, dy.data(), dx.data());
    // dx sums about (Ho/H + 2)(Wo/W + 2) terms of size <= 1 each
    const double terms = (double(s.Ho) / s.H + 2) * (double(s.Wo) / s.W + 2);
    EXPECT_TRUE(all_close(dx, dx_ref, 1e-7 * terms, 1e-6, "dx"));
  }
}

// The forward is linear, so x -> dot(forward(x), g) has gradient backward(g).
TEST(UpsampleBilinear, ReferenceGradientMatchesFiniteDifferences) {
  for (const UpsampleShape& s : {shape(1, 1, 2, 2, 4, 4), shape(2, 2, 3, 4, 7, 5), shape(1, 2, 9, 7, 4, 3),
                                 shape(1, 1, 1, 1, 3, 2), shape(1, 1, 3, 5, 24, 40)}) {
    SCOPED_TRACE(s.str());
    const auto x = random_vec<double>(s.x_numel(), 11);
    const auto g = random_vec<double>(s.y_numel(), 12);
    std::vector<double> dx(s.x_numel());
    rf::upsample_bilinear_backward_ref(s, g.data(), dx.data());
    auto loss = [&](const std::vector<double>& v) {
      std::vector<double> y(s.y_numel());
      rf::upsample_bilinear_forward_ref(s, v.data(), y.data());
      return dot(y, g);
    };
    EXPECT_TRUE(check_grad(loss, x, dx, "dx"));
  }
}

// The two paths are separate code: check the float reference against the double one as well (same taps).
TEST(UpsampleBilinear, FloatReferenceMatchesDouble) {
  const UpsampleShape s = shape(2, 3, 17, 11, 40, 27);
  const auto x = random_vec<float>(s.x_numel(), 5);
  std::vector<float> y(s.y_numel());
  std::vector<double> y_d(s.y_numel());
  rf::upsample_bilinear_forward_ref(s, x.data(), y.data());
  rf::upsample_bilinear_forward_ref(s, cast_vec<float, double>(x).data(), y_d.data());
  EXPECT_TRUE(all_close(y, y_d, 1e-7, 1e-6, "y"));
}

TEST(UpsampleBilinear, BadShapesThrow) {
  std::vector<float> buf(64);
  for (const UpsampleShape& s : {shape(0, 1, 2, 2, 4, 4), shape(1, 0, 2, 2, 4, 4), shape(1, 1, 0, 2, 4, 4),
                                 shape(1, 1, 2, -1, 4, 4), shape(1, 1, 2, 2, 0, 4), shape(1, 1, 2, 2, 4, -3)}) {
    SCOPED_TRACE(s.str());
    EXPECT_THROW(rf::upsample_bilinear_forward_ref(s, buf.data(), buf.data()), rf::Error);
    EXPECT_THROW(rf::upsample_bilinear_forward_cpu(s, buf.data(), buf.data()), rf::Error);
    EXPECT_THROW(rf::upsample_bilinear_backward_ref(s, buf.data(), buf.data()), rf::Error);
    EXPECT_THROW(rf::upsample_bilinear_backward_cpu(s, buf.data(), buf.data()), rf::Error);
  }
  try {
    rf::upsample_bilinear_forward_cpu(shape(1, 1, 2, 2, 0, 4), buf.data(), buf.data());
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Ho=0"), std::string::npos) << e.what();
  }
}

// Segmentation's case: 21 class maps at stride 8 back to the input size. Ratio printed for the report.
TEST(UpsampleBilinear, SpeedFastVsReference) {
  const UpsampleShape s = shape(1, 21, 32, 32, 256, 256);
  const auto x = random_vec<float>(s.x_numel(), 3);
  const auto dy = random_vec<float>(s.y_numel(), 4);
  std::vector<float> y(s.y_numel()), dx(s.x_numel());
  auto time = [](auto&& f) {  // best of 5: the machine is shared, the minimum is the least disturbed run
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double fr = time([&] { rf::upsample_bilinear_forward_ref(s, x.data(), y.data()); });
  const double ff = time([&] { rf::upsample_bilinear_forward_cpu(s, x.data(), y.data()); });
  const double br = time([&] { rf::upsample_bilinear_backward_ref(s, dy.data(), dx.data()); });
  const double bf = time([&] { rf::upsample_bilinear_backward_cpu(s, dy.data(), dx.data()); });
  std::printf("%s: forward ref %.2f ms fast %.2f ms (x%.1f); backward ref %.2f ms fast %.2f ms (x%.1f)\n",
              s.str().c_str(), fr * 1e3, ff * 1e3, fr / ff, br * 1e3, bf * 1e3, br / bf);
  const UpsampleShape s2 = shape(1, 21, 64, 64, 128, 128);
  const auto x2 = random_vec<float>(s2.x_numel(), 3);
  std::vector<float> y2(s2.y_numel());
  const double fr2 = time([&] { rf::upsample_bilinear_forward_ref(s2, x2.data(), y2.data()); });
  const double ff2 = time([&] { rf::upsample_bilinear_forward_cpu(s2, x2.data(), y2.data()); });
  std::printf("%s: forward ref %.2f ms fast %.2f ms (x%.1f)\n", s2.str().c_str(), fr2 * 1e3, ff2 * 1e3, fr2 / ff2);
}

// The dense heads' GPU losses (cuda/ops/dense_loss.cu) against the CPU: CenterNet focal loss, masked L1 and
// pixel-wise softmax cross-entropy, each against its _ref<double> (host/ops/dense_loss.h) over a sweep of
// N = 1..3, K / C = 1, 3, 21 and H x W from 1 x 1 to 9 x 9: logits with cells at ±30 (the focal clamp active),
// targets with several exact 1s and with none, masks random and all zero, labels with ignored pixels, the
// ignore label equal to C, and every pixel ignored. Also: a null gradient pointer gives the same loss, two calls
// give the same bits, bad input (a target outside [0, 1] or NaN, a mask cell not 0 / 1, a label >= C) throws
// naming the first bad cell as the CPU op does, and non-positive sizes throw. Under the emulation the gradients
// also equal the _cpu fast path's bits (same float operations, host libm); masked L1's everywhere.
// Runs on the CPU against the CUDA emulation (label gpu-emu) and on a device under label gpu.
//
// Tolerances (the GPU computes each cell's terms in float, as the _cpu paths, and sums them in double):
//   loss: focal and cross-entropy within 2e-6 * (1 + |loss|) of the double reference (float exp / log, float
//         sum of C exponentials); masked L1 within 1e-12 relative (the difference is taken in double);
//   gradients: focal and cross-entropy within 1e-6 * max|g| + 1e-5 relative (the CPU fast path's test's
//         bound); masked L1 within 1e-7 relative (float 1 / count against double).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/ops/dense_loss.h"
#include "gpu_testing.h"
#include "testing.h"

namespace {

using namespace rf::gpu_testing;
using namespace rf::testing;

class DenseLossGpu : public GpuTest {};

struct Shape {
  int N, C, H, W;
  int64_t numel() const { return int64_t(N) * C * H * W; }
  int64_t pixels() const { return int64_t(N) * H * W; }
  std::string str() const { return fmt::format("N={} C={} H={} W={}", N, C, H, W); }
};

// The sweep: N = 1..3, K / C in {1, 3, 21}, H x W in {1x1, 1x9, 9x1, 5x7, 9x9}.
std::vector<Shape> sweep() {
  std::vector<Shape> s;
  for (int N : {1, 2, 3})
    for (int C : {1, 3, 21})
      for (auto hw : {std::pair{1, 1}, std::pair{1, 9}, std::pair{9, 1}, std::pair{5, 7}, std::pair{9, 9}})
        s.push_back({N, C, hw.first, hw.second});
  return s;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Logits in [-6, 6] with every 7th cell at ±30: sigmoid(±30) is far outside [1e-4, 1 - 1e-4] (clamped).
std::vector<float> logits_with_extremes(int64_t n, uint32_t seed) {
  std::vector<float> x = random_vec<float>(size_t(n), seed, -6.0, 6.0);
  for (int64_t i = 3; i < n; i += 7) x[size_t(i)] = (i / 7) % 2 ? 30.f : -30.f;
  return x;
}

// Heatmap targets in [0, 0.95) with `ones` cells exactly 1 (spread over the tensor; several hit clamped logits).
std::vector<float> heat_targets(int64_t n, int64_t ones, uint32_t seed) {
  std::vector<float> t = random_vec<float>(size_t(n), seed, 0.0, 0.95);
  for (float& v : t) v = std::fabs(v);
  std::mt19937 gen(seed + 1);
  for (int64_t k = 0; k < ones; ++k) t[gen() % size_t(n)] = 1.f;
  return t;
}

// ---- (a) focal loss ---------------------------------------------------------------------------------------

void check_focal(const Shape& s, const std::vector<float>& x, const std::vector<float>& t) {
  const std::vector<double> xd = cast_vec<float, double>(x), td = cast_vec<float, double>(t);
  std::vector<double> d_ref(size_t(s.numel()));
  const double l_ref = rf::centernet_focal_loss_ref<double>(s.N, s.C, s.H, s.W, xd.data(), td.data(), d_ref.data());
  DeviceBuffer<float> d_x(x), d_t(t), d_d(size_t(s.numel()));
  d_d.poison();
  const double l = rf::centernet_focal_loss_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_t.ptr, d_d.ptr);
  EXPECT_NEAR(l, l_ref, 2e-6 * (1 + std::fabs(l_ref)));
  const std::vector<float> d = d_d.to_host();
  EXPECT_TRUE(all_close(d, d_ref, 1e-6 * max_abs(d_ref), 1e-5, "dlogits"));
  for (size_t i = 3; i < x.size(); i += 7) EXPECT_EQ(d[i], 0.f) << "clamped cell " << i;
  // Loss only, and run to run: the same bits.
  EXPECT_EQ(rf::centernet_focal_loss_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_t.ptr, nullptr), l);
  EXPECT_EQ(rf::centernet_focal_loss_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_t.ptr, d_d.ptr), l);
  EXPECT_EQ(first_bit_mismatch(d_d.to_host(), d), -1) << "second call";
  if (kEmulated) {
    std::vector<float> d_cpu(x.size());
    rf::centernet_focal_loss_cpu(s.N, s.C, s.H, s.W, x.data(), t.data(), d_cpu.data());
    EXPECT_EQ(first_bit_mismatch(d, d_cpu), -1) << "emulated gradient differs from the CPU fast path's bits";
  }
}

TEST_F(DenseLossGpu, FocalLossMatchesTheReference) {
  uint32_t seed = 100;
  for (const Shape& s : sweep()) {
    const std::vector<float> x = logits_with_extremes(s.numel(), seed++);
    for (int64_t ones : {int64_t(0), std::max<int64_t>(1, s.numel() / 5)}) {
      SCOPED_TRACE(s.str() + fmt::format(" ones={}", ones));
      check_focal(s, x, heat_targets(s.numel(), ones, seed++));
    }
  }
}

TEST_F(DenseLossGpu, FocalLossBadTargetNamesTheCell) {
  const Shape s{2, 3, 4, 5};
  DeviceBuffer<float> d_x(random_vec<float>(size_t(s.numel()), 7)), d_d(size_t(s.numel()));
  std::vector<float> t(size_t(s.numel()), 0.2f);
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = 1.5f;  // (n=1, k=1, y=2, x=3)
  t[1 * 60 + 2 * 20 + 3 * 5 + 4] = -0.5f;  // a later one
  DeviceBuffer<float> d_t(t);
  auto call = [&] { rf::centernet_focal_loss_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_t.ptr, d_d.ptr); };
  expect_error(call, {"centernet_focal_loss_cuda", "target 1.5 at (n=1, k=1, y=2, x=3)", "[0, 1]", "2 of 120"},
               "first of two bad");
  t[1 * 60 + 1 * 20 + 2 * 5 + 3] = 0.2f;
  t[2] = std::numeric_limits<float>::quiet_NaN();  // (n=0, k=0, y=0, x=2)
  d_t.upload(t);
  expect_error(call, {"target nan at (n=0, k=0, y=0, x=2)"}, "NaN");
  expect_error([&] { rf::centernet_focal_loss_cuda(0, 3, 4, 5, d_x.ptr, d_t.ptr, d_d.ptr); },
               {"centernet_focal_loss_cuda", "N=0"}, "sizes");
}

// ---- (b) masked L1 ----------------------------------------------------------------------------------------

void check_masked_l1(const Shape& s, const std::vector<float>& p, const std::vector<float>& t,
                     const std::vector<float>& m) {
  const std::vector<double> pd = cast_vec<float, double>(p), td = cast_vec<float, double>(t),
                            md = cast_vec<float, double>(m);
  std::vector<double> d_ref(size_t(s.numel()));
  const double l_ref =
      rf::masked_l1_loss_ref<double>(s.N, s.C, s.H, s.W, pd.data(), td.data(), md.data(), d_ref.data());
  DeviceBuffer<float> d_p(p), d_t(t), d_m(m), d_d(size_t(s.numel()));
  d_d.poison();
  const double l = rf::masked_l1_loss_cuda(s.N, s.C, s.H, s.W, d_p.ptr, d_t.ptr, d_m.ptr, d_d.ptr);
  EXPECT_NEAR(l, l_ref, 1e-12 * std::fabs(l_ref));
  const std::vector<float> d = d_d.to_host();
  EXPECT_TRUE(all_close(d, d_ref, 0, 1e-7, "dpred"));
  std::vector<float> d_cpu(p.size());
  rf::masked_l1_loss_cpu(s.N, s.C, s.H, s.W, p.data(), t.data(), m.data(), d_cpu.data());
  EXPECT_EQ(first_bit_mismatch(d, d_cpu), -1) << "gradient differs from the CPU fast path's bits";
  EXPECT_EQ(rf::masked_l1_loss_cuda(s.N, s.C, s.H, s.W, d_p.ptr, d_t.ptr, d_m.ptr, nullptr), l);
  EXPECT_EQ(rf::masked_l1_loss_cuda(s.N, s.C, s.H, s.W, d_p.ptr, d_t.ptr, d_m.ptr, d_d.ptr), l);
  EXPECT_EQ(first_bit_mismatch(d_d.to_host(), d), -1) << "second call";
}

TEST_F(DenseLossGpu, MaskedL1MatchesTheReference) {
  uint32_t seed = 200;
  for (const Shape& s : sweep()) {
    const std::vector<float> p = random_vec<float>(size_t(s.numel()), seed++, -3.0, 3.0);
    std::vector<float> t = random_vec<float>(size_t(s.numel()), seed++, -3.0, 3.0);
    for (size_t i = 0; i < t.size(); i += 5) t[i] = p[i];  // pred == target: zero gradient
    std::vector<float> mask = random_vec<float>(size_t(s.pixels()), seed++);
    for (float& v : mask) v = v > 0 ? 1.f : 0.f;
    for (bool all_zero : {false, true}) {
      SCOPED_TRACE(s.str() + (all_zero ? " mask all zero" : " random mask"));
      check_masked_l1(s, p, t, all_zero ? std::vector<float>(size_t(s.pixels()), 0.f) : mask);
    }
  }
}

TEST_F(DenseLossGpu, MaskedL1NonBinaryMaskNamesTheCell) {
  const Shape s{2, 2, 3, 4};
  DeviceBuffer<float> d_p(random_vec<float>(size_t(s.numel()), 11)), d_t(random_vec<float>(size_t(s.numel()), 12));
  std::vector<float> m(size_t(s.pixels()), 1.f);
  m[1 * 12 + 2 * 4 + 3] = 0.5f;  // (n=1, y=2, x=3)
  DeviceBuffer<float> d_m(m);
  expect_error([&] { rf::masked_l1_loss_cuda(s.N, s.C, s.H, s.W, d_p.ptr, d_t.ptr, d_m.ptr, nullptr); },
               {"masked_l1_loss_cuda", "mask value 0.5 at (n=1, y=2, x=3)", "0 or 1"}, "0.5");
}

// ---- (c) pixel cross-entropy -------------------------------------------------------------------------------

// Labels in [0, C) with every 4th pixel (from `phase`) set to the ignore label.
std::vector<uint8_t> labels_with_ignored(int64_t n, int C, int ignore_label, int phase, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> l(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) l[size_t(i)] = uint8_t((i + phase) % 4 == 0 ? ignore_label : int(gen() % C));
  return l;
}

void check_xent(const Shape& s, const std::vector<float>& x, const std::vector<uint8_t>& labels, int ignore) {
  const std::vector<double> xd = cast_vec<float, double>(x);
  std::vector<double> d_ref(size_t(s.numel()));
  const double l_ref =
      rf::pixel_cross_entropy_ref<double>(s.N, s.C, s.H, s.W, xd.data(), labels.data(), ignore, d_ref.data());
  DeviceBuffer<float> d_x(x), d_d(size_t(s.numel()));
  DeviceBuffer<uint8_t> d_l(labels);
  d_d.poison();
  const double l = rf::pixel_cross_entropy_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_l.ptr, ignore, d_d.ptr);
  EXPECT_NEAR(l, l_ref, 2e-6 * (1 + std::fabs(l_ref)));
  const std::vector<float> d = d_d.to_host();
  EXPECT_TRUE(all_close(d, d_ref, 1e-6 * max_abs(d_ref), 1e-5, "dlogits"));
  EXPECT_EQ(rf::pixel_cross_entropy_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_l.ptr, ignore, nullptr), l);
  EXPECT_EQ(rf::pixel_cross_entropy_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_l.ptr, ignore, d_d.ptr), l);
  EXPECT_EQ(first_bit_mismatch(d_d.to_host(), d), -1) << "second call";
  if (kEmulated) {
    std::vector<float> d_cpu(x.size());
    rf::pixel_cross_entropy_cpu(s.N, s.C, s.H, s.W, x.data(), labels.data(), ignore, d_cpu.data());
    EXPECT_EQ(first_bit_mismatch(d, d_cpu), -1) << "emulated gradient differs from the CPU fast path's bits";
  }
}

TEST_F(DenseLossGpu, PixelCrossEntropyMatchesTheReference) {
  uint32_t seed = 300;
  for (const Shape& s : sweep()) {
    std::vector<float> x = random_vec<float>(size_t(s.numel()), seed++, -8.0, 8.0);
    for (size_t i = 5; i < x.size(); i += 11) x[i] = (i / 11) % 2 ? 30.f : -30.f;
    for (int ignore : {255, s.C}) {
      SCOPED_TRACE(s.str() + fmt::format(" ignore={}", ignore));
      check_xent(s, x, labels_with_ignored(s.pixels(), s.C, ignore, int(seed % 4), seed), ignore);
      ++seed;
    }
  }
}

TEST_F(DenseLossGpu, PixelCrossEntropyAllIgnoredGivesZero) {
  for (const Shape& s : {Shape{1, 1, 1, 1}, Shape{2, 3, 4, 5}, Shape{3, 21, 9, 9}}) {
    SCOPED_TRACE(s.str());
    DeviceBuffer<float> d_x(random_vec<float>(size_t(s.numel()), 9)), d_d(size_t(s.numel()));
    DeviceBuffer<uint8_t> d_l(std::vector<uint8_t>(size_t(s.pixels()), 255));
    d_d.poison();
    EXPECT_EQ(rf::pixel_cross_entropy_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_l.ptr, 255, d_d.ptr), 0.0);
    EXPECT_TRUE(all_close(d_d.to_host(), std::vector<double>(size_t(s.numel()), 0.0), 0, 0, "dlogits"));
  }
}

TEST_F(DenseLossGpu, PixelCrossEntropyBadLabelNamesValueAndPixel) {
  const Shape s{2, 11, 3, 4};
  DeviceBuffer<float> d_x(std::vector<float>(size_t(s.numel()), 0.5f)), d_d(size_t(s.numel()));
  std::vector<uint8_t> labels(size_t(s.pixels()), 3);
  labels[1 * 12 + 2 * 4 + 3] = 12;  // (n=1, y=2, x=3)
  DeviceBuffer<uint8_t> d_l(labels);
  auto call = [&](int ignore) {
    return rf::pixel_cross_entropy_cuda(s.N, s.C, s.H, s.W, d_x.ptr, d_l.ptr, ignore, d_d.ptr);
  };
  expect_error([&] { call(255); },
               {"pixel_cross_entropy_cuda", "label 12 at pixel (n=1, y=2, x=3)", "[0, 10]", "ignore_label=255"},
               "label 12");
  EXPECT_NO_THROW(call(12));  // the same label as the ignore label
  labels[0] = 11;             // == C and not the ignore label: the first bad pixel now
  d_l.upload(labels);
  expect_error([&] { call(12); }, {"label 11 at pixel (n=0, y=0, x=0)", "ignore_label=12"}, "label C");
}

}  // namespace

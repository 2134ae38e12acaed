// Tests of host/ops/pool*.cpp (pool_ref.cpp, pool.cpp, pool_box.cpp): max, average and mixed average pooling.
// Fast vs reference over a shape sweep (max pool: bit for bit, including the gradient routing on ties;
// box sums: within the documented error bound, element by element), reference gradients vs finite
// differences in double, hand-computed cases, strided output slices, bad shapes.
#include "host/ops/pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using rf::MixedPoolShape;
using rf::Pool2dShape;
using namespace rf::testing;

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of float

int64_t x_numel(const Pool2dShape& s) { return int64_t(s.N) * s.C * s.H * s.W; }
int64_t y_numel(const Pool2dShape& s) { return int64_t(s.N) * s.C * s.OH() * s.OW(); }
int64_t x_numel(const MixedPoolShape& s) { return int64_t(s.N) * s.C * s.H * s.W; }
int64_t y_numel(const MixedPoolShape& s) { return int64_t(s.N) * s.C * s.OH() * s.OW(); }

// The sweep from the task: every (H, W, k, stride, pad) combination, N and C cycling through their
// lists so that each value meets many geometries without a full Cartesian product.
std::vector<Pool2dShape> pool_sweep() {
  const int Ns[] = {1, 2, 3}, Cs[] = {5, 6, 7, 13, 64}, sizes[] = {1, 2, 5, 8, 9, 17}, ks[] = {1, 2, 3, 5};
  std::vector<Pool2dShape> out;
  int i = 0;
  for (int H : sizes)
    for (int W : sizes)
      for (int k : ks)
        for (int stride = 1; stride <= 3; ++stride)
          for (int pad = 0; pad <= k / 2; ++pad) {
            Pool2dShape s;
            s.H = H, s.W = W, s.k = k, s.stride = stride, s.pad = pad;
            if (H + 2 * pad < k || W + 2 * pad < k) continue;  // no output: rejected by validate()
            s.N = Ns[i % 3];
            s.C = Cs[(i / 3) % 5];
            if (s.C == 64 && H * W > 100) s.C = 13;  // keep the reference cheap on big planes
            ++i;
            out.push_back(s);
          }
  // Wider planes than the task's list, so that rows span several 16-float chunks (the 224x224 models'
  // 112- and 56-wide maps), and the CIFAR models' 32x32 maps (and 31 wide: a partial second chunk), where the
  // max pool's k = 3 planes run in registers.
  const int wide[][2] = {{33, 47}, {56, 56}, {12, 112}, {32, 32}, {30, 31}};
  for (auto& hw : wide)
    for (int k : {2, 3, 5})
      for (int stride = 1; stride <= 3; ++stride)
        for (int pad = 0; pad <= k / 2; ++pad) {
          Pool2dShape s;
          s.N = 1 + i % 2, s.C = 5 + i % 2, s.H = hw[0], s.W = hw[1], s.k = k, s.stride = stride, s.pad = pad;
          ++i;
          out.push_back(s);
        }
  return out;
}

std::vector<MixedPoolShape> mixed_sweep() {
  const int Ns[] = {1, 2, 3}, Cs[] = {5, 6, 7, 13, 64}, sizes[] = {1, 2, 5, 8, 9, 17};
  std::vector<MixedPoolShape> out;
  int i = 0;
  for (int H : sizes)
    for (int W : sizes)
      for (int stride = 1; stride <= 3; ++stride)
        for (int C : Cs) {
          MixedPoolShape s;
          s.N = Ns[i++ % 3], s.C = C, s.H = H, s.W = W, s.stride = stride;
          out.push_back(s);
        }
  const int wide[][2] = {{33, 47}, {56, 56}, {12, 112}};
  for (auto& hw : wide)
    for (int stride = 1; stride <= 3; ++stride) {
      MixedPoolShape s;
      s.N = 1 + stride % 2, s.C = 5 + stride, s.H = hw[0], s.W = hw[1], s.stride = stride;
      out.push_back(s);
    }
  return out;
}

// |got - ref| <= bound elementwise; names the first violation.
::testing::AssertionResult within_bound(const std::vector<float>& got, const std::vector<double>& ref,
                                        const std::vector<double>& bound, const std::string& what) {
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - ref[i]);
    if (!(err <= bound[i]))
      return ::testing::AssertionFailure() << what << ": element " << i << " got " << got[i] << " ref " << ref[i]
                                           << " |err| " << err << " > bound " << bound[i];
  }
  return ::testing::AssertionSuccess();
}

std::vector<double> abs_of(const std::vector<float>& v) {
  std::vector<double> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(double(v[i]));
  return a;
}

// Bit-for-bit equality (tells -0 from +0, unlike ==), naming the first difference.
::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& ref, const char* what) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &ref[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << what << ": element " << i << " got " << got[i] << " ref " << ref[i];
  return ::testing::AssertionSuccess();
}

// Distinct values spaced by 2/n in [-1, 1], shuffled: the max of every window is unique and a finite
// difference step of 1e-6 never changes which element wins.
std::vector<double> distinct_vec(size_t n, uint32_t seed) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = -1.0 + (2.0 * i + 1.0) / double(n);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

// ---- max pool ------------------------------------------------------------------------------------

TEST(MaxPool, FastEqualsReferenceBitForBit) {
  int cases = 0;
  for (const Pool2dShape& s : pool_sweep()) {
    SCOPED_TRACE(s.str());
    auto x = random_vec<float>(x_numel(s), 1 + cases);
    auto dy = random_vec<float>(y_numel(s), 1000 + cases);
    std::vector<float> y_ref(y_numel(s)), y_fast(y_numel(s), 123.f), dx_ref(x_numel(s)), dx_fast(x_numel(s), 7.f);
    rf::max_pool2d_forward_ref(s, x.data(), y_ref.data());
    rf::max_pool2d_forward_cpu(s, x.data(), y_fast.data());
    ASSERT_TRUE(same_bits(y_fast, y_ref, "forward"));
    rf::max_pool2d_backward_ref(s, x.data(), dy.data(), dx_ref.data());
    rf::max_pool2d_backward_cpu(s, x.data(), dy.data(), dx_fast.data());  // also overwrites the 7s
    ASSERT_TRUE(same_bits(dx_fast, dx_ref, "backward"));
    ++cases;
  }
  EXPECT_GT(cases, 500);
}

// Inputs drawn from {-1, -0, +0, 1}: windows are full of ties, so the first-maximum rule decides both
// the routing and which zero's sign comes out.
TEST(MaxPool, TiesRouteLikeReference) {
  int cases = 0;
  for (const Pool2dShape& s : pool_sweep()) {
    if (cases % 3 != 0 && s.k < 3) {  // every third small-k case is enough here
      ++cases;
      continue;
    }
    SCOPED_TRACE(s.str());
    auto x = random_vec<float>(x_numel(s), 50 + cases);
    for (auto& v : x) v = std::round(v);
    auto dy = random_vec<float>(y_numel(s), 5000 + cases);
    std::vector<float> y_ref(y_numel(s)), y_fast(y_numel(s)), dx_ref(x_numel(s)), dx_fast(x_numel(s));
    rf::max_pool2d_forward_ref(s, x.data(), y_ref.data());
    rf::max_pool2d_forward_cpu(s, x.data(), y_fast.data());
    ASSERT_TRUE(same_bits(y_fast, y_ref, "forward with ties (-0 and +0 among them)"));
    rf::max_pool2d_backward_ref(s, x.data(), dy.data(), dx_ref.data());
    rf::max_pool2d_backward_cpu(s, x.data(), dy.data(), dx_fast.data());
    ASSERT_TRUE(same_bits(dx_fast, dx_ref, "backward with ties"));
    ++cases;
  }
}

TEST(MaxPool, PaddingNeverWinsAndFirstMaximumTakesTheGradient) {
  // 1x1x2x2 of equal negative values, k=3, pad=1, stride 1: a zero pad would win if it were counted.
  Pool2dShape s;
  s.H = s.W = 2, s.k = 3, s.stride = 1, s.pad = 1;
  std::vector<float> x(4, -2.f), y(4), dx(4), dy = {1.f, 10.f, 100.f, 1000.f};
  for (int fast = 0; fast < 2; ++fast) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    fast ? rf::max_pool2d_forward_cpu(s, x.data(), y.data()) : rf::max_pool2d_forward_ref(s, x.data(), y.data());
    EXPECT_EQ(y, std::vector<float>(4, -2.f));
    // Every window holds all four equal values: the first in row-major order, x[0], takes every dy.
    fast ? rf::max_pool2d_backward_cpu(s, x.data(), dy.data(), dx.data())
         : rf::max_pool2d_backward_ref(s, x.data(), dy.data(), dx.data());
    EXPECT_EQ(dx, (std::vector<float>{1111.f, 0.f, 0.f, 0.f}));
  }
  // A tie inside a row and across rows: window [[1, 3], [3, 3]] -> the 3 at (0, 1) wins.
  Pool2dShape t;
  t.H = t.W = 2, t.k = 2, t.stride = 1, t.pad = 0;
  std::vector<float> x2 = {1.f, 3.f, 3.f, 3.f}, y2(1), dy2 = {5.f}, dx2(4);
  rf::max_pool2d_backward_cpu(t, x2.data(), dy2.data(), dx2.data());
  EXPECT_EQ(dx2, (std::vector<float>{0.f, 5.f, 0.f, 0.f}));
  rf::max_pool2d_backward_ref(t, x2.data(), dy2.data(), dx2.data());
  EXPECT_EQ(dx2, (std::vector<float>{0.f, 5.f, 0.f, 0.f}));
}

// Windows whose valid inputs are all -inf: the maximum is -inf and its gradient goes to the window's
// first valid element (never to a pad), in the reference and the fast path alike.
TEST(MaxPool, MinusInfinityWindowsRouteToFirstValidElement) {
  for (int stride = 1; stride <= 2; ++stride) {
    Pool2dShape s;
    s.N = 1, s.C = 2, s.H = 5, s.W = 6, s.k = 3, s.stride = stride, s.pad = 1;
    SCOPED_TRACE(s.str());
    auto x = random_vec<float>(x_numel(s), 77);
    for (int i = 0; i < 30; ++i) x[i] = -std::numeric_limits<float>::infinity();  // channel 0
    for (int i = 30; i < 60; i += 2) x[i] = -std::numeric_limits<float>::infinity();
    auto dy = random_vec<float>(y_numel(s), 78);
    std::vector<float> y_ref(y_numel(s)), y_fast(y_numel(s)), dx_ref(x_numel(s)), dx_fast(x_numel(s));
    rf::max_pool2d_forward_ref(s, x.data(), y_ref.data());
    rf::max_pool2d_forward_cpu(s, x.data(), y_fast.data());
    EXPECT_TRUE(same_bits(y_fast, y_ref, "forward"));
    rf::max_pool2d_backward_ref(s, x.data(), dy.data(), dx_ref.data());
    rf::max_pool2d_backward_cpu(s, x.data(), dy.data(), dx_fast.data());
    EXPECT_TRUE(same_bits(dx_fast, dx_ref, "backward"));
    // Channel 0, output (0, 0): window rows -1..1, columns -1..1; its first valid element is x(0, 0).
    double sum00 = 0;
    for (int i = 0; i < 30; ++i) sum00 += dx_ref[i];
    EXPECT_NE(dx_ref[0], 0.f);
    EXPECT_NEAR(sum00, std::accumulate(dy.begin(), dy.begin() + s.OH() * s.OW(), 0.0), 1e-5);
  }
}

namespace {

// A pool's double reference backward against finite differences of its reference forward, over small geometries
// with every padding up to k/2: x_of(s, pad) makes the input, gy is random_vec(gy_seed + pad).
void expect_ref_grad_matches_finite_differences(
    const std::string& what, const std::function<std::vector<double>(const Pool2dShape&, int)>& x_of,
    uint32_t gy_seed, const std::function<void(const Pool2dShape&, const double*, const double*, double*)>& backward,
    const std::function<void(const Pool2dShape&, const double*, double*)>& forward) {
  const int geoms[][6] = {{2, 3, 7, 6, 3, 1}, {1, 2, 8, 8, 3, 2}, {2, 2, 9, 5, 2, 1}, {1, 3, 6, 7, 5, 3}};
  for (auto& g : geoms)
    for (int pad = 0; pad <= g[4] / 2; ++pad) {
      Pool2dShape s;
      s.N = g[0], s.C = g[1], s.H = g[2], s.W = g[3], s.k = g[4], s.stride = g[5], s.pad = pad;
      SCOPED_TRACE(s.str());
      auto x = x_of(s, pad);
      auto gy = random_vec<double>(y_numel(s), gy_seed + pad);
      std::vector<double> dx(x_numel(s));
      backward(s, x.data(), gy.data(), dx.data());
      auto loss = [&](const std::vector<double>& xv) {
        std::vector<double> y(y_numel(s));
        forward(s, xv.data(), y.data());
        return dot(y, gy);
      };
      EXPECT_TRUE(check_grad(loss, x, dx, what, 1e-6, 1e-6, 200));
    }
}

}  // namespace

TEST(MaxPool, ReferenceGradientMatchesFiniteDifferences) {
  expect_ref_grad_matches_finite_differences(
      "max_pool2d dx", [](const Pool2dShape& s, int pad) { return distinct_vec(x_numel(s), 7 + pad); }, 8,
      [](const Pool2dShape& s, const double* x, const double* gy, double* dx) {
        rf::max_pool2d_backward_ref(s, x, gy, dx);
      },
      [](const Pool2dShape& s, const double* x, double* y) { rf::max_pool2d_forward_ref(s, x, y); });
}

// ---- average pool --------------------------------------------------------------------------------

TEST(AvgPool, FastMatchesReferenceWithinErrorBound) {
  int cases = 0;
  for (const Pool2dShape& s : pool_sweep()) {
    SCOPED_TRACE(s.str());
    auto x = random_vec<float>(x_numel(s), 3 + cases);
    auto dy = random_vec<float>(y_numel(s), 3000 + cases);
    const auto xd = cast_vec<float, double>(x), dyd = cast_vec<float, double>(dy);
    // Reference in double (exact for this purpose) and in float; mean |x| over each window for the bound.
    std::vector<double> y_ref(y_numel(s)), y_abs(y_numel(s)), dx_ref(x_numel(s)), dx_abs(x_numel(s));
    std::vector<float> y_reff(y_numel(s)), y_fast(y_numel(s)), dx_reff(x_numel(s)), dx_fast(x_numel(s), 9.f);
    rf::avg_pool2d_forward_ref(s, xd.data(), y_ref.data());
    rf::avg_pool2d_forward_ref(s, abs_of(x).data(), y_abs.data());
    rf::avg_pool2d_forward_ref(s, x.data(), y_reff.data());
    rf::avg_pool2d_forward_cpu(s, x.data(), y_fast.data());
    rf::avg_pool2d_backward_ref(s, dyd.data(), dx_ref.data());
    rf::avg_pool2d_backward_ref(s, abs_of(dy).data(), dx_abs.data());
    rf::avg_pool2d_backward_ref(s, dy.data(), dx_reff.data());
    rf::avg_pool2d_backward_cpu(s, dy.data(), dx_fast.data());
    // pool.cpp's bound: (2k+2) u mean|window| + 2u |y|; the float reference adds its k^2 u mean|window|.
    auto bound = [&](const std::vector<double>& mean_abs, const std::vector<double>& ref, double c) {
      std::vector<double> b(ref.size());
      for (size_t i = 0; i < b.size(); ++i) b[i] = c * kU * mean_abs[i] + 2 * kU * std::fabs(ref[i]);
      return b;
    };
    const double cf = 2 * s.k + 2, cr = 2 * s.k + 2 + s.k * s.k + 2;
    ASSERT_TRUE(within_bound(y_fast, y_ref, bound(y_abs, y_ref, cf), "forward vs double ref"));
    ASSERT_TRUE(within_bound(y_fast, cast_vec<float, double>(y_reff), bound(y_abs, y_ref, cr), "forward vs float ref"));
    ASSERT_TRUE(within_bound(dx_fast, dx_ref, bound(dx_abs, dx_ref, cf), "backward vs double ref"));
    ASSERT_TRUE(within_bound(dx_fast, cast_vec<float, double>(dx_reff), bound(dx_abs, dx_ref, cr),
                             "backward vs float ref"));
    ++cases;
  }
}

TEST(AvgPool, ReferenceGradientMatchesFiniteDifferences) {
  expect_ref_grad_matches_finite_differences(
      "avg_pool2d dx", [](const Pool2dShape& s, int pad) { return random_vec<double>(x_numel(s), 17 + pad); }, 18,
      [](const Pool2dShape& s, const double*, const double* gy, double* dx) {
        rf::avg_pool2d_backward_ref(s, gy, dx);
      },
      [](const Pool2dShape& s, const double* x, double* y) { rf::avg_pool2d_forward_ref(s, x, y); });
}

TEST(AvgPool, HandComputedCountIncludePad) {
  // 1x1x2x2 = [1 2; 3 4], k=3, pad=1, stride 1: every window holds all four values, divisor 9.
  Pool2dShape s;
  s.H = s.W = 2, s.k = 3, s.pad = 1;
  std::vector<float> x = {1, 2, 3, 4}, y(4), dx(4), dy = {1, 1, 1, 1};
  rf::avg_pool2d_forward_cpu(s, x.data(), y.data());
  EXPECT_TRUE(all_close(y, std::vector<float>(4, 10.f / 9), 1e-6, 0, "forward"));
  rf::avg_pool2d_backward_cpu(s, dy.data(), dx.data());
  EXPECT_TRUE(all_close(dx, std::vector<float>(4, 4.f / 9), 1e-6, 0, "backward"));
}

// ---- mixed average pool --------------------------------------------------------------------------

TEST(MixedPool, GroupSplitRemainderToFirstGroup) {
  MixedPoolShape s;
  s.C = 64;
  const int want64[] = {0, 16, 28, 40, 52, 64};
  for (int j = 0; j <= 5; ++j) EXPECT_EQ(s.group_begin(j), want64[j]) << "C=64 j=" << j;
  s.C = 7;
  const int want7[] = {0, 3, 4, 5, 6, 7};
  for (int j = 0; j <= 5; ++j) EXPECT_EQ(s.group_begin(j), want7[j]) << "C=7 j=" << j;
  s.C = 5;
  for (int j = 0; j <= 5; ++j) EXPECT_EQ(s.group_begin(j), j) << "C=5 j=" << j;
  for (int j = 0; j < 5; ++j) EXPECT_EQ(MixedPoolShape::group_kernel(j), 3 + 2 * j);
  EXPECT_THROW(s.group_begin(6), rf::Error);
  EXPECT_THROW(s.group_begin(-1), rf::Error);
}

TEST(MixedPool, WindowReads) {
  MixedPoolShape s;
  s.N = 1, s.C = 64, s.H = s.W = 32, s.stride = 1;
  EXPECT_EQ(s.window_reads(), 3538944);  // MODELS.md: 1024 * (16*9 + 12*(25+49+81+121))
  s.stride = 2;
  EXPECT_EQ(s.window_reads(), 3538944 / 4);
  s.N = 3, s.C = 7, s.H = 5, s.W = 4, s.stride = 1;  // groups 3,1,1,1,1
  EXPECT_EQ(s.window_reads(), int64_t(3) * 20 * (3 * 9 + 25 + 49 + 81 + 121));
}

// C=5 (one channel per group), 3x3 input x_c = (c+1) * [1 2 3; 4 5 6; 7 8 9]. Channel 0 (k=3, pad 1):
// the zero-padded 3x3 neighbourhood sums of [1..9] are [12 21 16; 27 45 33; 24 39 28]. Channels 1..4
// (k >= 5, pad >= 2): every window covers the whole input, sum 45 (c+1).
TEST(MixedPool, HandComputedStride1And2) {
  const double nb[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  MixedPoolShape s;
  s.N = 1, s.C = 5, s.H = s.W = 3;
  std::vector<double> x(45);
  for (int c = 0; c < 5; ++c)
    for (int i = 0; i < 9; ++i) x[c * 9 + i] = (c + 1) * (i + 1);
  std::vector<double> want1(45), want2(20);
  const int corners[4] = {0, 2, 6, 8};  // stride 2: outputs at (0,0), (0,2), (2,0), (2,2)
  for (int c = 0; c < 5; ++c) {
    const double k2 = (3 + 2 * c) * (3 + 2 * c);
    for (int i = 0; i < 9; ++i) want1[c * 9 + i] = (c == 0 ? nb[i] : 45.0 * (c + 1)) / k2 - x[c * 9 + i];
    for (int o = 0; o < 4; ++o) want2[c * 4 + o] = (c == 0 ? nb[corners[o]] : 45.0 * (c + 1)) / k2;
  }
  for (int stride = 1; stride <= 2; ++stride) {
    s.stride = stride;
    SCOPED_TRACE(s.str());
    const auto& want = stride == 1 ? want1 : want2;
    std::vector<double> yd(want.size());
    rf::mixed_avg_pool_forward_ref(s, x.data(), yd.data());
    EXPECT_TRUE(all_close(yd, want, 1e-12, 1e-12, "reference"));
    auto xf = cast_vec<double, float>(x);
    std::vector<float> yf(want.size());
    rf::mixed_avg_pool_forward_cpu(s, xf.data(), yf.data());
    EXPECT_TRUE(all_close(yf, want, 1e-5, 1e-6, "fast"));
  }
}

// pool.cpp's error bound for the fast box sums, per element: (2k+2) u mean|window| + 2u |y|, with the
// channel's kernel k; with_ref_error adds the float reference's own k^2 u mean|window| + 2u |y|.
std::vector<double> mixed_bound(const MixedPoolShape& s, const std::vector<double>& mean_abs,
                                const std::vector<double>& ref, int64_t plane, bool with_ref_error) {
  std::vector<double> b(ref.size());
  for (size_t i = 0; i < b.size(); ++i) {
    const int c = int((int64_t(i) / plane) % s.C);
    int j = 0;
    while (c >= s.group_begin(j + 1)) ++j;
    const double k = MixedPoolShape::group_kernel(j);
    const double coef = 2 * k + 2 + (with_ref_error ? k * k + 2 : 0);
    b[i] = coef * kU * mean_abs[i] + (with_ref_error ? 4 : 2) * kU * std::fabs(ref[i]);
  }
  return b;
}

TEST(MixedPool, FastMatchesReferenceWithinErrorBound) {
  int cases = 0;
  for (const MixedPoolShape& s : mixed_sweep()) {
    SCOPED_TRACE(s.str());
    auto x = random_vec<float>(x_numel(s), 300 + cases);
    auto dy = random_vec<float>(y_numel(s), 9000 + cases);
    const auto xd = cast_vec<float, double>(x), dyd = cast_vec<float, double>(dy);
    std::vector<double> y_ref(y_numel(s)), y_abs(y_numel(s)), dx_ref(x_numel(s)), dx_abs(x_numel(s));
    std::vector<float> y_reff(y_numel(s)), y_fast(y_numel(s), 5.f), dx_reff(x_numel(s)), dx_fast(x_numel(s), 5.f);
    rf::mixed_avg_pool_forward_ref(s, xd.data(), y_ref.data());
    rf::mixed_avg_pool_forward_ref(s, x.data(), y_reff.data());
    rf::mixed_avg_pool_forward_cpu(s, x.data(), y_fast.data());
    rf::mixed_avg_pool_backward_ref(s, dyd.data(), dx_ref.data());
    rf::mixed_avg_pool_backward_ref(s, dy.data(), dx_reff.data());
    rf::mixed_avg_pool_backward_cpu(s, dy.data(), dx_fast.data());
    // Mean |.| over each window: the reference on |x| (|dy|), undoing its "- x" term at stride 1.
    const auto xa = abs_of(x), dya = abs_of(dy);
    rf::mixed_avg_pool_forward_ref(s, xa.data(), y_abs.data());
    rf::mixed_avg_pool_backward_ref(s, dya.data(), dx_abs.data());
    if (s.stride == 1)
      for (size_t i = 0; i < y_abs.size(); ++i) y_abs[i] += xa[i], dx_abs[i] += dya[i];
    const int64_t yplane = int64_t(s.OH()) * s.OW(), xplane = int64_t(s.H) * s.W;
    ASSERT_TRUE(within_bound(y_fast, y_ref, mixed_bound(s, y_abs, y_ref, yplane, false), "forward vs double ref"));
    ASSERT_TRUE(within_bound(y_fast, cast_vec<float, double>(y_reff), mixed_bound(s, y_abs, y_ref, yplane, true),
                             "forward vs float ref"));
    ASSERT_TRUE(within_bound(dx_fast, dx_ref, mixed_bound(s, dx_abs, dx_ref, xplane, false), "backward vs double ref"));
    ASSERT_TRUE(within_bound(dx_fast, cast_vec<float, double>(dx_reff), mixed_bound(s, dx_abs, dx_ref, xplane, true),
                             "backward vs float ref"));
    ++cases;
  }
  EXPECT_EQ(cases, 6 * 6 * 3 * 5 + 9);
}

// box_sum_plane's summation order (host/ops/pool_box.cpp), one value at a time: rows of the zero-padded source
// summed by four partial sums over the taps, (a0 + a1) + (a2 + a3) (sum_taps); then the column sums, directly in
// row order when k <= 2s + 1, else van Herk's suffix + prefix sums inside blocks of k rows; then * scale, - sub.
// src (Hs, Ws) -> (Ho, Wo), window (m, n) = rows m*s - pad .. + k, columns likewise.
std::vector<float> box_sum_model(const float* src, int Hs, int Ws, int k, int s, int pad, int Ho, int Wo, float scale,
                                 const float* sub) {
  const int Hp = (Ho - 1) * s + k;
  const auto at = [&](int r, int c) { return r < 0 || r >= Hs || c < 0 || c >= Ws ? 0.f : src[r * Ws + c]; };
  std::vector<float> R(size_t(Hp) * Wo);
  for (int rp = 0; rp < Hp; ++rp)
    for (int n = 0; n < Wo; ++n) {
      const auto tap = [&](int kw) { return at(rp - pad, n * s + kw - pad); };
      float acc = tap(0);
      if (k <= 4) {
        for (int kw = 1; kw < k; ++kw) acc += tap(kw);
      } else {
        float a[4] = {acc, tap(1), tap(2), tap(3)};
        for (int kw = 4; kw < k; ++kw) a[kw % 4] += tap(kw);
        acc = (a[0] + a[1]) + (a[2] + a[3]);
      }
      R[size_t(rp) * Wo + n] = (rp - pad < 0 || rp - pad >= Hs) ? 0.f : acc;
    }
  const auto Rv = [&](int r, int n) { return R[size_t(r) * Wo + n]; };
  std::vector<float> y(size_t(Ho) * Wo);
  for (int m = 0; m < Ho; ++m)
    for (int n = 0; n < Wo; ++n) {
      const int a = m * s;
      float v;
      if (k <= 2 * s + 1) {
        v = Rv(a, n);
        for (int kh = 1; kh < k; ++kh) v += Rv(a + kh, n);
      } else {
        const auto prefix = [&](int i) {  // from the start of i's block down to i
          float p = Rv(i / k * k, n);
          for (int j = i / k * k + 1; j <= i; ++j) p += Rv(j, n);
          return p;
        };
        const auto suffix = [&](int i) {  // from the end of i's block up to i
          const int e = std::min(Hp, i / k * k + k);
          float q = Rv(e - 1, n);
          for (int j = e - 2; j >= i; --j) q += Rv(j, n);
          return q;
        };
        v = a % k == 0 ? prefix(a + k - 1) : suffix(a) + prefix(a + k - 1);
      }
      v *= scale;
      y[size_t(m) * Wo + n] = sub ? v - sub[m * Wo + n] : v;
    }
  return y;
}

// The mixed pool's per-plane fast path (the register row pass at stride 1, the padded-row copy at stride 2) sums
// in box_sum_plane's documented order: the same bits as the scalar model above, forward and backward (the
// adjoint: the box with pad k-1-pad on dy, dilated by the stride). The forward of small planes (<= 64 elements,
// <= 256 at stride 2: lanes across planes, pool_small.cpp) sums the clipped window in another order, within the
// same bound (FastMatchesReferenceWithinErrorBound), so only its backward, which runs per plane, is compared.
TEST(MixedPool, FastPathSumsInItsDocumentedOrder) {
  int cases = 0;
  for (int s : {1, 2})
    for (int H : {1, 3, 4, 8, 9, 16, 17, 31, 32, 33})
      for (int W : {1, 4, 8, 12, 16, 17, 30, 32, 40}) {
        rf::MixedPoolShape sh;
        sh.N = 1 + cases % 2, sh.C = (cases % 3 == 0) ? 13 : 5, sh.H = H, sh.W = W, sh.stride = s;
        SCOPED_TRACE(sh.str());
        const int OH = sh.OH(), OW = sh.OW();
        auto x = random_vec<float>(x_numel(sh), 700 + cases);
        auto dy = random_vec<float>(y_numel(sh), 800 + cases);
        std::vector<float> y(y_numel(sh)), dx(x_numel(sh)), want_y, want_dx;
        rf::mixed_avg_pool_forward_cpu(sh, x.data(), y.data());
        rf::mixed_avg_pool_backward_cpu(sh, dy.data(), dx.data());
        for (int n = 0; n < sh.N; ++n)
          for (int c = 0; c < sh.C; ++c) {
            int j = 0;
            while (c >= sh.group_begin(j + 1)) ++j;
            const int k = rf::MixedPoolShape::group_kernel(j), pad = k / 2;
            const float scale = 1.f / float(k * k);
            const float* xp = x.data() + (size_t(n) * sh.C + c) * H * W;
            const float* dyp = dy.data() + (size_t(n) * sh.C + c) * OH * OW;
            auto yp = box_sum_model(xp, H, W, k, s, pad, OH, OW, scale, s == 1 ? xp : nullptr);
            want_y.insert(want_y.end(), yp.begin(), yp.end());
            if (s == 1) {
              auto dxp = box_sum_model(dyp, OH, OW, k, 1, k - 1 - pad, H, W, scale, dyp);
              want_dx.insert(want_dx.end(), dxp.begin(), dxp.end());
            } else {  // dy on the dilated grid, zeros between
              const int Hd = (OH - 1) * s + 1, Wd = (OW - 1) * s + 1;
              std::vector<float> dil(size_t(Hd) * Wd, 0.f);
              for (int m = 0; m < OH; ++m)
                for (int q = 0; q < OW; ++q) dil[size_t(m) * s * Wd + size_t(q) * s] = dyp[m * OW + q];
              auto dxp = box_sum_model(dil.data(), Hd, Wd, k, 1, k - 1 - pad, H, W, scale, nullptr);
              want_dx.insert(want_dx.end(), dxp.begin(), dxp.end());
            }
          }
        const bool small = H * W <= 64 || (H * W <= 256 && s > 1);
        if (!small) {
          ASSERT_TRUE(same_bits(y, want_y, "forward"));
        }
        ASSERT_TRUE(same_bits(dx, want_dx, "backward"));
        ++cases;
      }
  EXPECT_EQ(cases, 2 * 10 * 9);
}

// The bound must be tight enough to notice a real mistake: one window element too many or too few.
TEST(MixedPool, ErrorBoundCatchesAnOffByOneWindow) {
  MixedPoolShape s;
  s.N = 1, s.C = 5, s.H = s.W = 9, s.stride = 1;
  auto x = random_vec<float>(x_numel(s), 4);
  for (int i : {0, 40, 80}) x[4 * 81 + i] = 0.75f;  // the inputs dropped below: 0.75/121 ~ 6e-3 >> bound ~ 1e-6
  std::vector<float> y(y_numel(s));
  std::vector<double> y_ref(y_numel(s)), y_abs(y_numel(s));
  rf::mixed_avg_pool_forward_cpu(s, x.data(), y.data());
  rf::mixed_avg_pool_forward_ref(s, cast_vec<float, double>(x).data(), y_ref.data());
  const auto xa = abs_of(x);
  rf::mixed_avg_pool_forward_ref(s, xa.data(), y_abs.data());
  for (size_t i = 0; i < y_abs.size(); ++i) y_abs[i] += xa[i];
  const auto b = mixed_bound(s, y_abs, y_ref, 81, false);
  ASSERT_TRUE(within_bound(y, y_ref, b, "fast"));
  // Channel 4 (k=11): drop one input from the window of output 40 (the centre), as an off-by-one would.
  for (int i : {0, 40, 80}) {
    auto bad = y;
    bad[4 * 81 + 40] -= x[4 * 81 + i] / 121.f;
    EXPECT_FALSE(within_bound(bad, y_ref, b, "off by one")) << "dropped input " << i;
  }
}

TEST(MixedPool, ReferenceGradientMatchesFiniteDifferences) {
  const int geoms[][5] = {{2, 5, 6, 7, 1}, {1, 7, 8, 8, 2}, {2, 6, 9, 5, 1}, {1, 5, 7, 9, 3}};
  for (auto& g : geoms) {
    MixedPoolShape s;
    s.N = g[0], s.C = g[1], s.H = g[2], s.W = g[3], s.stride = g[4];
    SCOPED_TRACE(s.str());
    auto x = random_vec<double>(x_numel(s), 27);
    auto gy = random_vec<double>(y_numel(s), 28);
    std::vector<double> dx(x_numel(s));
    rf::mixed_avg_pool_backward_ref(s, gy.data(), dx.data());
    auto loss = [&](const std::vector<double>& xv) {
      std::vector<double> y(y_numel(s));
      rf::mixed_avg_pool_forward_ref(s, xv.data(), y.data());
      return dot(y, gy);
    };
    EXPECT_TRUE(check_grad(loss, x, dx, "mixed_avg_pool dx", 1e-6, 1e-6, 200));
  }
}

// ---- strided output slices (y_nstride) -----------------------------------------------------------

// Runs forward into channels [c_off, c_off + C) of a (N, Ctot, OH, OW) buffer full of sentinels and
// backward from the same slice (the rest of dy holds values that would poison dx if read); both must
// equal the dense results and leave everything outside the slice untouched.
template <typename Shape, typename Fwd, typename Bwd>
void check_slice(Shape s, int extra_before, int extra_after, Fwd fwd, Bwd bwd, const char* what) {
  SCOPED_TRACE(std::string(what) + " " + s.str());
  const int64_t plane = int64_t(s.OH()) * s.OW(), ysample = int64_t(s.C) * plane;
  const int64_t ctot = s.C + extra_before + extra_after, nstride = ctot * plane;
  auto x = random_vec<float>(x_numel(s), 61);
  auto dy = random_vec<float>(y_numel(s), 62);
  std::vector<float> y_dense(y_numel(s)), dx_dense(x_numel(s)), dx_slice(x_numel(s));
  fwd(s, x.data(), y_dense.data());
  bwd(s, x.data(), dy.data(), dx_dense.data());

  const float sentinel = 777.25f;
  std::vector<float> big(s.N * nstride, sentinel);
  Shape t = s;
  t.y_nstride = nstride;
  float* slice = big.data() + extra_before * plane;
  fwd(t, x.data(), slice);
  for (int n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < ctot; ++c)
      for (int64_t e = 0; e < plane; ++e) {
        const float got = big[n * nstride + c * plane + e];
        if (c >= extra_before && c < extra_before + s.C)
          ASSERT_EQ(got, y_dense[n * ysample + (c - extra_before) * plane + e]) << "n=" << n << " c=" << c;
        else
          ASSERT_EQ(got, sentinel) << "written outside the slice: n=" << n << " c=" << c << " e=" << e;
      }
  std::vector<float> dybig(s.N * nstride, 1e30f);
  for (int n = 0; n < s.N; ++n)
    std::copy(dy.begin() + n * ysample, dy.begin() + (n + 1) * ysample,
              dybig.begin() + n * nstride + extra_before * plane);
  bwd(t, x.data(), dybig.data() + extra_before * plane, dx_slice.data());
  EXPECT_TRUE(all_close(dx_slice, dx_dense, 0, 0, "backward from a strided dy"));
}

TEST(PoolSlices, ForwardWritesOnlyItsSliceAndBackwardReadsIt) {
  for (int stride = 1; stride <= 2; ++stride) {
    Pool2dShape s;
    s.N = 3, s.C = 6, s.H = 9, s.W = 8, s.k = 3, s.stride = stride, s.pad = 1;
    auto max_f = [](const Pool2dShape& t, const float* x, float* y) { rf::max_pool2d_forward_cpu(t, x, y); };
    auto max_b = [](const Pool2dShape& t, const float* x, const float* dy, float* dx) {
      rf::max_pool2d_backward_cpu(t, x, dy, dx);
    };
    auto max_fr = [](const Pool2dShape& t, const float* x, float* y) { rf::max_pool2d_forward_ref(t, x, y); };
    auto max_br = [](const Pool2dShape& t, const float* x, const float* dy, float* dx) {
      rf::max_pool2d_backward_ref(t, x, dy, dx);
    };
    auto avg_f = [](const Pool2dShape& t, const float* x, float* y) { rf::avg_pool2d_forward_cpu(t, x, y); };
    auto avg_b = [](const Pool2dShape& t, const float*, const float* dy, float* dx) {
      rf::avg_pool2d_backward_cpu(t, dy, dx);
    };
    auto avg_fr = [](const Pool2dShape& t, const float* x, float* y) { rf::avg_pool2d_forward_ref(t, x, y); };
    auto avg_br = [](const Pool2dShape& t, const float*, const float* dy, float* dx) {
      rf::avg_pool2d_backward_ref(t, dy, dx);
    };
    check_slice(s, 4, 7, max_f, max_b, "max fast");
    check_slice(s, 4, 7, max_fr, max_br, "max ref");
    check_slice(s, 0, 3, avg_f, avg_b, "avg fast");
    check_slice(s, 5, 0, avg_fr, avg_br, "avg ref");

    MixedPoolShape m;
    m.N = 3, m.C = 13, m.H = 9, m.W = 8, m.stride = stride;
    auto mix_f = [](const MixedPoolShape& t, const float* x, float* y) { rf::mixed_avg_pool_forward_cpu(t, x, y); };
    auto mix_b = [](const MixedPoolShape& t, const float*, const float* dy, float* dx) {
      rf::mixed_avg_pool_backward_cpu(t, dy, dx);
    };
    auto mix_fr = [](const MixedPoolShape& t, const float* x, float* y) { rf::mixed_avg_pool_forward_ref(t, x, y); };
    auto mix_br = [](const MixedPoolShape& t, const float*, const float* dy, float* dx) {
      rf::mixed_avg_pool_backward_ref(t, dy, dx);
    };
    check_slice(m, 6, 2, mix_f, mix_b, "mixed fast");
    check_slice(m, 6, 2, mix_fr, mix_br, "mixed ref");
  }
}

// ---- fused NL pools ------------------------------------------------------------------------------

// nl_pools_forward_cpu must equal the two separate fast calls bit for bit, write only its slices of a
// concat buffer (batch stride larger than one sample), and reject mismatched shapes.
TEST(NLPools, FusedEqualsSeparateCallsBitForBit) {
  struct Case { int N, C, H, W, stride; };
  for (const Case& k : {Case{1, 5, 1, 1, 1}, Case{2, 13, 9, 8, 1}, Case{3, 13, 9, 8, 2}, Case{4, 64, 32, 32, 1},
                        Case{2, 64, 16, 16, 2}, Case{2, 13, 16, 32, 1}, Case{3, 7, 17, 5, 2}, Case{2, 21, 8, 8, 1}}) {
    Pool2dShape mp;
    mp.N = k.N, mp.C = k.C, mp.H = k.H, mp.W = k.W, mp.k = 3, mp.stride = k.stride, mp.pad = 1;
    MixedPoolShape mx;
    mx.N = k.N, mx.C = k.C, mx.H = k.H, mx.W = k.W, mx.stride = k.stride;
    SCOPED_TRACE(mp.str() + " " + mx.str());
    const int64_t plane = int64_t(mp.OH()) * mp.OW(), lead = 3 * plane, ns = lead + 2 * int64_t(k.C) * plane + 5;
    mp.y_nstride = mx.y_nstride = ns;
    auto x = random_vec<float>(size_t(k.N) * k.C * k.H * k.W, 1000 + k.C + k.H);
    std::vector<float> sep(size_t(k.N) * ns, 7.f), fused(sep.size(), 7.f);
    rf::max_pool2d_forward_cpu(mp, x.data(), sep.data() + lead);
    rf::mixed_avg_pool_forward_cpu(mx, x.data(), sep.data() + lead + int64_t(k.C) * plane);
    rf::nl_pools_forward_cpu(mp, mx, x.data(), fused.data() + lead, fused.data() + lead + int64_t(k.C) * plane);
    EXPECT_EQ(0, std::memcmp(sep.data(), fused.data(), sizeof(float) * sep.size()));
    // The max branch also against the reference (the sweep above has no rows of whole 16-float chunks,
    // where the fast column pass stores straight into the output).
    std::vector<float> ref(sep.size(), 7.f);
    rf::max_pool2d_forward_ref(mp, x.data(), ref.data() + lead);
    for (int n = 0; n < k.N; ++n)
      EXPECT_EQ(0, std::memcmp(ref.data() + n * ns + lead, fused.data() + n * ns + lead,
                               sizeof(float) * size_t(k.C) * plane));
    int64_t untouched = 0;
    for (float v : fused) untouched += v == 7.f;
    EXPECT_EQ(untouched, int64_t(k.N) * (ns - 2 * int64_t(k.C) * plane));
  }
  Pool2dShape mp;
  mp.N = 2, mp.C = 10, mp.H = 8, mp.W = 8;
  MixedPoolShape mx;
  mx.N = 2, mx.C = 10, mx.H = 8, mx.W = 9;
  std::vector<float> x(2 * 10 * 8 * 9), y(2 * 10 * 8 * 9 * 2);
  EXPECT_THROW(rf::nl_pools_forward_cpu(mp, mx, x.data(), y.data(), y.data()), rf::Error);
}

// nl_pools_backward_cpu must give the bits of the module's separate calls (max pool backward into a scratch,
// added to dx; mixed pool backward into the scratch, added to dx; test_nl_module.cpp checks the module with
// add_forward_cpu itself) over a sweep of plane sizes 1..33 (small
// planes go lanes across planes, the others per plane), strides 1-3, odd channel counts, inputs with ties
// and signed zeros, dy read from slices of a concat buffer; it writes dx only, and rejects mismatched shapes.
// With res, dx + res as add_forward_cpu adds it after the call.
TEST(NLPools, FusedBackwardEqualsSeparateCallsBitForBit) {
  const int sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 23, 32, 33};
  const int Cs[] = {5, 7, 13, 21, 64};
  int i = 0;
  for (int H : sizes)
    for (int W : {H, H % 2 ? H + 3 : H - 1})
      for (int stride = 1; stride <= 3; ++stride) {
        if (W < 1) continue;
        const int N = 1 + i % 3, C = Cs[i % 5];
        ++i;
        if (H * W > 300 && C > 13) continue;  // keep the sweep to seconds
        Pool2dShape mp;
        mp.N = N, mp.C = C, mp.H = H, mp.W = W, mp.k = 3, mp.stride = stride, mp.pad = 1;
        MixedPoolShape mx;
        mx.N = N, mx.C = C, mx.H = H, mx.W = W, mx.stride = stride;
        SCOPED_TRACE(mp.str() + " " + mx.str());
        const int64_t plane = int64_t(mp.OH()) * mp.OW(), lead = 2 * plane, ns = lead + 2 * int64_t(C) * plane + 3;
        mp.y_nstride = mx.y_nstride = ns;
        const int64_t nx = int64_t(N) * C * H * W;
        auto x = random_vec<float>(size_t(nx), 77 + uint32_t(i));
        // Ties (values on a coarse grid) in every other case, and some signed zeros.
        if (i % 2)
          for (float& v : x) v = std::round(v * 2.f) * 0.5f;
        for (size_t j = 0; j < x.size(); j += 7) x[j] = j % 2 ? -0.f : 0.f;
        auto cat = random_vec<float>(size_t(N * ns), 99 + uint32_t(i));
        const float* dymax = cat.data() + lead;
        const float* dymix = cat.data() + lead + int64_t(C) * plane;
        auto dx0 = random_vec<float>(size_t(nx), 55 + uint32_t(i));
        std::vector<float> sep = dx0, fused = dx0, tmp(static_cast<size_t>(nx));
        rf::max_pool2d_backward_cpu(mp, x.data(), dymax, tmp.data());
        for (int64_t j = 0; j < nx; ++j) sep[j] = sep[j] + tmp[j];  // add_forward_cpu's arithmetic
        rf::mixed_avg_pool_backward_cpu(mx, dymix, tmp.data());
        for (int64_t j = 0; j < nx; ++j) sep[j] = sep[j] + tmp[j];
        rf::nl_pools_backward_cpu(mp, mx, x.data(), dymax, dymix, fused.data());
        ASSERT_EQ(0, std::memcmp(sep.data(), fused.data(), sizeof(float) * sep.size()));
        // With a residual gradient added in the same pass: the bits of add_forward_cpu after the call.
        const auto res = random_vec<float>(size_t(nx), 33 + uint32_t(i));
        std::vector<float> with_res = dx0;
        rf::nl_pools_backward_cpu(mp, mx, x.data(), dymax, dymix, with_res.data(), res.data());
        for (int64_t j = 0; j < nx; ++j) sep[j] = sep[j] + res[j];
        ASSERT_EQ(0, std::memcmp(sep.data(), with_res.data(), sizeof(float) * sep.size())) << "with res";
      }
  EXPECT_GT(i, 80);
  Pool2dShape mp;
  mp.N = 2, mp.C = 10, mp.H = 8, mp.W = 8;
  MixedPoolShape mx;
  mx.N = 2, mx.C = 10, mx.H = 8, mx.W = 8, mx.stride = 2;
  std::vector<float> x(2 * 10 * 8 * 8), y(2 * 10 * 8 * 8 * 2);
  EXPECT_THROW(rf::nl_pools_backward_cpu(mp, mx, x.data(), y.data(), y.data(), x.data()), rf::Error);
}

// ---- bad shapes ----------------------------------------------------------------------------------

TEST(PoolShapes, BadShapesThrow) {
  auto bad_pool = [](auto edit) {
    Pool2dShape s;
    s.N = 2, s.C = 3, s.H = s.W = 8, s.k = 3, s.stride = 1, s.pad = 1;
    edit(s);
    std::vector<float> x(1 << 12, 1.f), y(1 << 12);
    EXPECT_THROW(s.validate(), rf::Error) << s.str();
    EXPECT_THROW(rf::max_pool2d_forward_cpu(s, x.data(), y.data()), rf::Error) << s.str();
    EXPECT_THROW(rf::avg_pool2d_forward_ref(s, x.data(), y.data()), rf::Error) << s.str();
  };
  bad_pool([](Pool2dShape& s) { s.N = 0; });
  bad_pool([](Pool2dShape& s) { s.C = -1; });
  bad_pool([](Pool2dShape& s) { s.H = 0; });
  bad_pool([](Pool2dShape& s) { s.k = 0; });
  bad_pool([](Pool2dShape& s) { s.stride = 0; });
  bad_pool([](Pool2dShape& s) { s.pad = 2; });   // > k/2: a window could be all padding
  bad_pool([](Pool2dShape& s) { s.pad = -1; });
  bad_pool([](Pool2dShape& s) { s.H = 2, s.k = 5, s.pad = 1; });  // kernel larger than the padded input
  bad_pool([](Pool2dShape& s) { s.y_nstride = 3 * 64 - 1; });     // smaller than one output sample
  try {
    Pool2dShape s;
    s.k = 3, s.pad = 2;
    s.validate();
    ADD_FAILURE() << "pad > k/2 accepted";
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("pad"), std::string::npos) << e.what();
  }

  auto bad_mixed = [](auto edit) {
    MixedPoolShape s;
    s.N = 2, s.C = 5, s.H = s.W = 8, s.stride = 1;
    edit(s);
    std::vector<float> x(1 << 12, 1.f), y(1 << 12);
    EXPECT_THROW(s.validate(), rf::Error) << s.str();
    EXPECT_THROW(rf::mixed_avg_pool_forward_cpu(s, x.data(), y.data()), rf::Error) << s.str();
    EXPECT_THROW(rf::mixed_avg_pool_backward_ref(s, x.data(), y.data()), rf::Error) << s.str();
  };
  bad_mixed([](MixedPoolShape& s) { s.C = 4; });  // a group would be empty
  bad_mixed([](MixedPoolShape& s) { s.N = 0; });
  bad_mixed([](MixedPoolShape& s) { s.W = 0; });
  bad_mixed([](MixedPoolShape& s) { s.stride = 0; });
  bad_mixed([](MixedPoolShape& s) { s.y_nstride = 5 * 64 - 1; });
}

TEST(PoolShapes, StrPrintsTheCase) {
  Pool2dShape s;
  s.N = 2, s.C = 64, s.H = 17, s.W = 9, s.k = 3, s.stride = 2, s.pad = 1;
  EXPECT_EQ(s.str(), "pool2d(N=2,C=64,H=17,W=9,k=3,s=2,p=1)");
  MixedPoolShape m;
  m.N = 2, m.C = 64, m.H = 17, m.W = 9, m.stride = 2;
  EXPECT_EQ(m.str(), "mixed_avg_pool(N=2,C=64,H=17,W=9,s=2)");
  EXPECT_EQ(m.OH(), 9);
  EXPECT_EQ(m.OW(), 5);
}

}  // namespace

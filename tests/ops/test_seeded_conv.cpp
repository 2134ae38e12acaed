// Tests of the seeded conv: weights are a function of (seed, index) only (same bits for any thread count,
// any slice), their scale is Kaiming fan_out; forward and input gradient of the CPU path and of the
// regenerating variant against the reference; the double reference against finite differences; bad specs
// throw.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <utility>
#include <functional>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/ops/seeded_conv.h"
#include "testing.h"

namespace rf {
namespace {

using namespace ::rf::testing;

SeededConvSpec spec_of(uint64_t seed, int C_in, int C_out, int groups, int stride, bool relu, int k = 3) {
  SeededConvSpec s;
  s.seed = seed, s.C_in = C_in, s.C_out = C_out, s.groups = groups, s.stride = stride, s.relu = relu;
  s.k = k, s.pad = k / 2;
  return s;
}

std::vector<float> weights_of(const SeededConvSpec& s) {
  std::vector<float> w(size_t(s.weight_numel()));
  seeded_conv_weights(s, w.data());
  return w;
}

uint64_t fnv1a(const std::vector<float>& v) {
  uint64_t h = 1469598103934665603ull;
  const auto* b = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

// The NL module shapes (C_nl = dw, 512, 768 at each stage), scaled down in channels, plus odd ones.
struct Case {
  SeededConvSpec spec;
  int N, H, W;
  int extra = 0;  // y is a channel slice of a (N, C_out + extra, OH, OW) tensor when > 0
  std::string str() const { return spec.str() + fmt::format(" N={} H={} W={} extra={}", N, H, W, extra); }
};

std::vector<Case> cases() {
  return {
      {spec_of(1, 16, 16, 16, 1, true), 2, 9, 9, 0},     // dw
      {spec_of(2, 16, 16, 16, 2, true), 3, 8, 7, 40},    // dw, stride 2, into a concat slice
      {spec_of(3, 8, 96, 8, 1, true), 2, 8, 8, 16},      // gcd(64, 768) = 64: 1 -> 12 per group
      {spec_of(4, 16, 24, 8, 1, true), 2, 4, 4, 0},      // gcd(512, 768) = 256: 2 -> 3 per group
      {spec_of(5, 16, 64, 16, 2, true), 2, 11, 11, 0},   // gcd(128, 512): 1 -> 4, stride 2
      {spec_of(6, 32, 32, 32, 1, true), 2, 4, 4, 0},     // dw at 4x4 (the oneDNN path at full size)
      {spec_of(7, 6, 10, 2, 1, false), 1, 5, 6, 3},      // dense-ish groups, no ReLU
      {spec_of(8, 4, 8, 4, 1, true, 5), 2, 7, 7, 0},     // 5x5
  };
}

std::vector<float> make_y(const Case& c, int64_t& ys, int64_t& off) {
  const Conv2dShape s = c.spec.conv_shape(c.N, c.H, c.W);
  const int64_t plane = int64_t(s.OH()) * s.OW();
  ys = c.extra ? (c.spec.C_out + c.extra) * plane : 0;
  off = c.extra ? (c.extra / 2) * plane : 0;
  return std::vector<float>(size_t(c.N * (ys ? ys : s.K * plane) + off), 777.f);
}

// A case's seeded weights and a random float input (seed x_seed).
std::pair<std::vector<float>, std::vector<float>> operands(const Case& c, uint32_t x_seed) {
  return {weights_of(c.spec), random_vec<float>(size_t(c.N) * c.spec.C_in * c.H * c.W, x_seed)};
}

TEST(SeededConv, WeightsAreAFunctionOfSeedAndIndexOnly) {
  const SeededConvSpec s = spec_of(42, 64, 768, 64, 1, true);
  const float sigma = s.weight_std();
  std::vector<float> w = weights_of(s);
  for (size_t i = 0; i < w.size(); i += 97) ASSERT_EQ(w[i], sigma * seeded_normal(42, i)) << "index " << i;
  // The same bits for any thread count.
  const int keep = omp_get_max_threads();
  const uint64_t h = fnv1a(w);
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    EXPECT_EQ(h, fnv1a(weights_of(s))) << t << " threads";
  }
  omp_set_num_threads(keep);
  // Any slice regenerates the same bits (what the regenerating kernel relies on), unaligned to Philox blocks.
  for (int64_t i0 : {0, 1, 3, 4, 577, 5909}) {  // 5909 + 1001 < 6912 weights
    std::vector<float> part(1001);
    seeded_weights_slice(42, sigma, i0, int64_t(part.size()), part.data());
    EXPECT_EQ(0, std::memcmp(part.data(), w.data() + i0, part.size() * sizeof(float))) << "slice at " << i0;
  }
  // A different seed gives different weights; a neighbouring seed too (module seeds are base + i).
  for (uint64_t other : {43ull, 42ull + (1ull << 32), 0ull}) {
    SeededConvSpec o = s;
    o.seed = other;
    const std::vector<float> v = weights_of(o);
    size_t same = 0;
    for (size_t i = 0; i < v.size(); ++i) same += v[i] == w[i];
    EXPECT_LT(same, v.size() / 100) << "seed " << other;
  }
}

TEST(SeededConv, WeightScaleIsKaimingFanOut) {
  for (auto [C_out, k] : std::initializer_list<std::pair<int, int>>{{768, 3}, {512, 3}, {64, 3}, {10, 5}, {7, 1}}) {
    SeededConvSpec s = spec_of(9, 256, C_out, 1, 1, true, k);
    const double want = std::sqrt(2.0 / (double(C_out) * k * k));
    EXPECT_EQ(s.weight_std(), std::sqrt(2.0f / float(C_out * k * k)));
    EXPECT_LE(std::fabs(double(s.weight_std()) - want), 2.4e-7 * want) << C_out;  // within 1 ulp
  }
  // Statistics of a large layer: mean 0, std = weight_std (13,824 draws: relative error of the std ~0.6 %).
  const SeededConvSpec s = spec_of(2024, 512, 768, 256, 1, true);
  const std::vector<float> w = weights_of(s);
  double sum = 0, sq = 0;
  for (float v : w) sum += v, sq += double(v) * v;
  const double n = double(w.size()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_LT(std::fabs(mean), 4 * s.weight_std() / std::sqrt(n));
  EXPECT_NEAR(sd / s.weight_std(), 1.0, 0.03);
}

TEST(SeededConv, ForwardMatchesReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.str());
    const SeededConvSpec& sp = c.spec;
    const auto [w, x] = operands(c, 31);
    int64_t ys, off;
    std::vector<float> ref = make_y(c, ys, off), got = ref, regen = ref, direct = ref;
    std::vector<double> ref_d(ref.begin(), ref.end());
    const std::vector<double> xd(x.begin(), x.end());
    seeded_conv_forward_ref<float>(sp, c.N, c.H, c.W, x.data(), w.data(), ref.data() + off, ys);
    seeded_conv_forward_ref<double>(sp, c.N, c.H, c.W, xd.data(), w.data(), ref_d.data() + off, ys);
    EXPECT_TRUE(all_close(ref, ref_d, 1e-6, 1e-6, "float ref vs double ref"));
    seeded_conv_forward_cpu(sp, c.N, c.H, c.W, x.data(), w.data(), got.data() + off, ys);
    EXPECT_TRUE(all_close(got, ref, 1e-5, 1e-5, "y"));  // sentinels outside the slice must match too
    seeded_conv_forward_regen_cpu(sp, c.N, c.H, c.W, x.data(), regen.data() + off, ys);
    EXPECT_TRUE(all_close(regen, ref, 1e-5, 1e-5, "y (regenerated weights)"));
    // The regenerating kernel is the direct kernel with other weight storage: the same bits.
    const Conv2dShape s = sp.conv_shape(c.N, c.H, c.W, ys);
    conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), nullptr, direct.data() + off, sp.relu);
    EXPECT_EQ(0, std::memcmp(regen.data(), direct.data(), regen.size() * sizeof(float)));
    if (sp.relu) {  // the ReLU did something: both signs before it
      size_t zeros = 0, owned = 0;
      for (float v : ref) zeros += v == 0.f, owned += v != 777.f;
      EXPECT_GT(zeros, owned / 5);
      EXPECT_LT(zeros, owned * 4 / 5);
    }
  }
}

TEST(SeededConv, BackwardDataMatchesReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.str());
    const SeededConvSpec& sp = c.spec;
    const auto [w, x] = operands(c, 41);
    int64_t ys, off;
    std::vector<float> y = make_y(c, ys, off);
    seeded_conv_forward_ref<float>(sp, c.N, c.H, c.W, x.data(), w.data(), y.data() + off, ys);
    auto dy = random_vec<float>(y.size(), 42);
    std::vector<float> ref(x.size()), got(x.size(), 5.f);
    seeded_conv_backward_data_ref<float>(sp, c.N, c.H, c.W, y.data() + off, dy.data() + off, w.data(), ref.data(),
                                         ys);
    seeded_conv_backward_data_cpu(sp, c.N, c.H, c.W, y.data() + off, dy.data() + off, w.data(), got.data(), ys);
    EXPECT_TRUE(all_close(got, ref, 1e-5, 1e-5, "dx"));
  }
}

// d/dx of sum(y * g) by central differences on the double reference, with the ReLU's kinks kept away:
// the pre-activations of the chosen inputs are all at least 1e-4 from zero, 100x what eps moves them.
TEST(SeededConv, ReferenceInputGradientMatchesFiniteDifferences) {
  for (const Case& c : {Case{spec_of(11, 4, 8, 4, 1, true), 2, 5, 5},
                        Case{spec_of(12, 4, 12, 2, 2, true), 1, 7, 6, 4},
                        Case{spec_of(13, 3, 6, 3, 1, false), 2, 4, 5}}) {
    SCOPED_TRACE(c.str());
    const SeededConvSpec& sp = c.spec;
    const std::vector<float> w = weights_of(sp);
    auto x = random_vec<double>(size_t(c.N) * sp.C_in * c.H * c.W, 51);
    int64_t ys, off;
    const std::vector<float> ybuf = make_y(c, ys, off);
    const size_t ny = ybuf.size();
    auto g = random_vec<double>(ny, 52);
    SeededConvSpec lin = sp;  // the pre-activation, to check the distance from the kink
    lin.relu = false;
    std::vector<double> z(ny, 1e9);  // outside the slice: far from any kink
    seeded_conv_forward_ref<double>(lin, c.N, c.H, c.W, x.data(), w.data(), z.data() + off, ys);
    double closest = 1e9;
    for (double v : z) closest = std::min(closest, std::fabs(v));
    ASSERT_GT(closest, 1e-4);
    auto loss = [&](const std::vector<double>& xx) {
      std::vector<double> y(ny, 0.0);
      seeded_conv_forward_ref<double>(sp, c.N, c.H, c.W, xx.data(), w.data(), y.data() + off, ys);
      return dot(y, g);
    };
    std::vector<double> y(ny, 0.0), dx(x.size());
    seeded_conv_forward_ref<double>(sp, c.N, c.H, c.W, x.data(), w.data(), y.data() + off, ys);
    seeded_conv_backward_data_ref<double>(sp, c.N, c.H, c.W, y.data() + off, g.data() + off, w.data(), dx.data(),
                                          ys);
    EXPECT_TRUE(check_grad(loss, x, dx, "dx", 1e-6, 1e-6, 200));
  }
}

TEST(SeededConv, BadSpecsThrow) {
  std::vector<float> buf(1 << 16, 1.f);
  auto expect_error = [&](const SeededConvSpec& s, const std::string& needle, int H = 8) {
    SCOPED_TRACE(s.str());
    try {
      seeded_conv_forward_cpu(s, 1, H, H, buf.data(), buf.data(), buf.data());
      ADD_FAILURE() << "no rf::Error thrown, expected one about " << needle;
    } catch (const rf::Error& e) {
      EXPECT_NE(std::string::npos, std::string(e.what()).find(needle)) << e.what();
    }
    EXPECT_THROW(seeded_conv_forward_regen_cpu(s, 1, H, H, buf.data(), buf.data()), rf::Error);
    EXPECT_THROW(seeded_conv_backward_data_cpu(s, 1, H, H, buf.data(), buf.data(), buf.data(), buf.data()),
                 rf::Error);
    EXPECT_THROW(seeded_conv_forward_ref<float>(s, 1, H, H, buf.data(), buf.data(), buf.data()), rf::Error);
  };
  const SeededConvSpec ok = spec_of(1, 8, 12, 4, 1, true);
  EXPECT_NO_THROW(seeded_conv_forward_cpu(ok, 1, 8, 8, buf.data(), buf.data(), buf.data()));
  // Each case: one field of ok changed, what the error must say, and the input size H (= W) to run it at.
  const struct {
    std::function<void(SeededConvSpec&)> edit;
    const char* needle;
    int H;
  } bad[] = {
      {[](SeededConvSpec& s) { s.groups = 3; }, "C_in=8 is not a multiple of groups=3", 8},
      {[](SeededConvSpec& s) { s.C_out = 10; }, "C_out=10 is not a multiple of groups=4", 8},
      {[](SeededConvSpec& s) { s.k = 0; }, "k=0", 8},
      {[](SeededConvSpec& s) { s.stride = -1; }, "stride=-1", 8},
      {[](SeededConvSpec& s) { s.k = 5, s.pad = 0; }, "larger than the padded input", 3},
  };
  for (const auto& b : bad) {
    SeededConvSpec s = ok;
    b.edit(s);
    expect_error(s, b.needle, b.H);
  }
  EXPECT_THROW(seeded_conv_weights(spec_of(1, 8, 12, 5, 1, true), buf.data()), rf::Error);
  std::vector<float> y(1 << 12);
  EXPECT_THROW(seeded_conv_forward_cpu(ok, 1, 8, 8, buf.data(), buf.data(), y.data(), 12 * 64 - 1), rf::Error);
}

}  // namespace
}  // namespace rf

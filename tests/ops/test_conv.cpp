// Tests of conv2d: every CPU algorithm (direct kernel, oneDNN plain, oneDNN blocked) and the dispatching
// entry points against the reference over a sweep of shapes (odd sizes, k 1/3/5, stride 1/2, pad 0-2, groups
// 1/2/4/depthwise, bias, y written into a channel slice of a bigger tensor); the double reference against
// finite differences; the channel shuffle folded into the 1x1 GEMM kernels against conv + shuffle, and the
// in-place ReLU-masked input gradient against conv + masking, bit for bit; bad shapes throw.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "host/core/check.h"
#include "host/core/simd.h"
#include "host/ops/conv.h"
#include "testing.h"

namespace rf {
namespace {

using namespace ::rf::testing;

// A sweep case: the shape, bias or not, and where y sits inside a bigger (N, K + extra, OH, OW) tensor.
struct Case {
  Conv2dShape s;
  bool bias = false;
  int y_channel_offset = 0;  // y starts this many channels into the bigger tensor (0 with y_nstride 0)
  std::string str() const {
    return s.str() + (bias ? "+bias" : "") + (s.y_nstride ? fmt::format("@c{}", y_channel_offset) : "");
  }
};

Case make_case(int N, int C, int H, int W, int K, int k, int stride, int pad, int groups, bool bias, int extra) {
  Case c;
  c.s.N = N, c.s.C = C, c.s.H = H, c.s.W = W, c.s.K = K, c.s.k = k, c.s.stride = stride, c.s.pad = pad;
  c.s.groups = groups, c.bias = bias;
  if (extra > 0) {
    c.s.y_nstride = int64_t(K + extra) * c.s.OH() * c.s.OW();
    c.y_channel_offset = extra / 2 + 1 <= extra ? extra / 2 + 1 : 0;
  }
  return c;
}

std::vector<Case> sweep() {
  std::vector<Case> cases;
  // Hand-picked: the model layer classes, small.
  cases.push_back(make_case(2, 6, 9, 9, 6, 3, 1, 1, 6, false, 0));       // depthwise
  cases.push_back(make_case(3, 8, 8, 7, 8, 3, 2, 1, 8, false, 5));       // depthwise, stride 2, slice
  cases.push_back(make_case(2, 4, 10, 10, 48, 3, 1, 1, 4, false, 12));   // 1 -> 12 per group (C=64, C_nl=768)
  cases.push_back(make_case(2, 8, 6, 6, 12, 3, 2, 1, 4, false, 0));      // 2 -> 3 per group (C=512, C_nl=768)
  cases.push_back(make_case(2, 3, 11, 11, 16, 3, 1, 1, 1, false, 0));    // the stem
  cases.push_back(make_case(2, 16, 9, 9, 32, 3, 2, 1, 1, false, 0));     // dense, stride 2
  cases.push_back(make_case(2, 32, 5, 5, 16, 3, 1, 1, 1, false, 0));     // dense
  cases.push_back(make_case(2, 16, 9, 9, 32, 1, 2, 0, 1, false, 0));     // 1x1 shortcut
  cases.push_back(make_case(2, 48, 6, 6, 16, 1, 1, 0, 4, true, 32));     // NL module's grouped 1x1 with bias
  cases.push_back(make_case(1, 64, 4, 4, 32, 1, 1, 0, 4, true, 0));
  cases.push_back(make_case(2, 8, 32, 33, 8, 1, 1, 0, 2, true, 0));    // gemm_1x1 weight gradient at >= 32x32
  cases.push_back(make_case(2, 48, 16, 16, 64, 1, 1, 0, 4, true, 0));  // its outer-product blocks: 16 rows of o
  cases.push_back(make_case(3, 100, 12, 12, 128, 1, 1, 0, 4, true, 7));  // 32 rows of o, 25 of x (a short block)
  cases.push_back(make_case(1, 1040, 8, 8, 4, 1, 1, 0, 1, true, 3));   // gemm_1x1 forward: 2 pixel chunks
  cases.push_back(make_case(5, 4, 18, 18, 8, 3, 1, 1, 4, true, 0));    // direct: stacks of 2, a short last one
  cases.push_back(make_case(5, 4, 18, 17, 4, 3, 2, 1, 4, false, 2));
  // Pseudo-random over the grid (fixed seed: the same cases every run).
  std::mt19937 gen(20240611);
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + gen() % v.size()); };
  while (cases.size() < 112) {
    const int N = pick({1, 2, 3}), C = pick({1, 2, 3, 4, 5, 8, 12}), K = pick({1, 2, 3, 4, 6, 8, 12});
    const int H = pick({1, 2, 4, 5, 7, 8, 11}), W = pick({1, 3, 4, 6, 7, 9});
    const int k = pick({1, 3, 5}), stride = pick({1, 2}), pad = pick({0, 1, 2});
    int groups = pick({1, 2, 4, -1});
    if (groups == -1) groups = C;  // depthwise (with K = C) or channel multiplier (K = m * C)
    const int Kc = groups == C && gen() % 2 ? C * pick({1, 2}) : K;
    if (C % groups || Kc % groups || H + 2 * pad < k || W + 2 * pad < k) continue;
    cases.push_back(make_case(N, C, H, W, Kc, k, stride, pad, groups, gen() % 2 == 0, gen() % 2 ? 3 : 0));
  }
  return cases;
}

// y-shaped buffers: the whole bigger tensor, filled with a sentinel outside the slice the conv owns.
struct YBuf {
  std::vector<float> all;
  int64_t offset = 0;  // floats from all.data() to y
  float* y() { return all.data() + offset; }
  const float* y() const { return all.data() + offset; }
};
constexpr float kSentinel = 1234.5f;

YBuf make_y(const Case& c, bool random, uint32_t seed) {
  const Conv2dShape& s = c.s;
  YBuf b;
  const int64_t plane = int64_t(s.OH()) * s.OW(), ys = s.y_batch_stride();
  b.offset = int64_t(c.y_channel_offset) * plane;
  b.all.assign(size_t(s.N * ys + b.offset), kSentinel);
  if (random) {
    auto r = random_vec<float>(size_t(s.K) * plane, seed);
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.K * plane; ++i) b.all[b.offset + n * ys + i] = r[(i * 7 + n) % r.size()];
  }
  return b;
}

// The elements of the bigger tensor the conv does not own kept the sentinel.
::testing::AssertionResult untouched(const Case& c, const YBuf& b) {
  const Conv2dShape& s = c.s;
  const int64_t owned = int64_t(s.K) * s.OH() * s.OW(), ys = s.y_batch_stride();
  for (int64_t i = 0; i < int64_t(b.all.size()); ++i) {
    const int64_t r = i - b.offset;
    const bool mine = r >= 0 && r % ys < owned && r / ys < s.N;
    if (!mine && b.all[i] != kSentinel)
      return ::testing::AssertionFailure() << "element " << i << " outside y's slice was written";
  }
  return ::testing::AssertionSuccess();
}

std::vector<float> slice_of(const Case& c, const YBuf& b) {  // y's owned elements, dense
  const Conv2dShape& s = c.s;
  const int64_t owned = int64_t(s.K) * s.OH() * s.OW(), ys = s.y_batch_stride();
  std::vector<float> r;
  for (int n = 0; n < s.N; ++n) r.insert(r.end(), b.y() + n * ys, b.y() + n * ys + owned);
  return r;
}

// Float rounding bound for sums of `terms` products of values in [-1, 1].
double atol_for(int64_t terms) { return 2e-6 * double(terms) + 1e-6; }

const ConvAlgo kAlgos[] = {ConvAlgo::direct, ConvAlgo::dnnl_plain, ConvAlgo::dnnl_blocked, ConvAlgo::gemm_1x1};

TEST(Conv2d, ForwardAllAlgorithmsMatchReference) {
  int checked = 0;
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 1);
    auto w = random_vec<float>(size_t(s.weight_numel()), 2);
    auto b = random_vec<float>(size_t(s.K), 3);
    const float* bp = c.bias ? b.data() : nullptr;
    for (bool relu : {false, true}) {
      YBuf ref = make_y(c, false, 0);
      (relu ? conv2d_forward_relu_ref<float> : conv2d_forward_ref<float>)(s, x.data(), w.data(), bp, ref.y());
      ASSERT_TRUE(untouched(c, ref));
      const double atol = atol_for(int64_t(s.C / s.groups) * s.k * s.k);
      for (ConvAlgo a : kAlgos) {
        SCOPED_TRACE(std::string(conv_algo_name(a)) + (relu ? " relu" : ""));
        YBuf got = make_y(c, false, 0);
        conv2d_forward_cpu_with(a, s, x.data(), w.data(), bp, got.y(), relu);
        EXPECT_TRUE(all_close(slice_of(c, got), slice_of(c, ref), atol, 1e-5, "y"));
        EXPECT_TRUE(untouched(c, got));
        ++checked;
      }
      YBuf got = make_y(c, false, 0);
      (relu ? conv2d_forward_relu_cpu : conv2d_forward_cpu)(s, x.data(), w.data(), bp, got.y());
      EXPECT_TRUE(all_close(slice_of(c, got), slice_of(c, ref), atol, 1e-5, "y (dispatched)"));
      EXPECT_TRUE(untouched(c, got));
    }
  }
  EXPECT_GT(checked, 600);
}

// ConvWeightPack: the forward with packed weights gives the bits of the forward without, on every algorithm,
// call after call; the blocked path packs its weights (once per layout); a pack given other weights (another
// address) drops the old copies and computes with the new weights.
TEST(Conv2d, PackedWeightsGiveTheSameBits) {
  int packed = 0;
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 1);
    auto w = random_vec<float>(size_t(s.weight_numel()), 2), w2 = random_vec<float>(size_t(s.weight_numel()), 4);
    auto b = random_vec<float>(size_t(s.K), 3);
    const float* bp = c.bias ? b.data() : nullptr;
    for (ConvAlgo a : kAlgos) {
      SCOPED_TRACE(conv_algo_name(a));
      ConvWeightPack pack;
      std::vector<int64_t> held;
      for (const auto* wp : {&w, &w, &w2}) {
        YBuf want = make_y(c, false, 0), got = make_y(c, false, 0);
        conv2d_forward_cpu_with(a, s, x.data(), wp->data(), bp, want.y());
        conv2d_forward_cpu_with(a, s, x.data(), wp->data(), bp, got.y(), false, &pack);
        ASSERT_EQ(0, std::memcmp(got.all.data(), want.all.data(), got.all.size() * sizeof(float)));
        held.push_back(pack.bytes());
      }
      if (a == ConvAlgo::dnnl_blocked && held[0] > 0) {  // 0: oneDNN computes on the plain layout here
        EXPECT_GE(held[0], int64_t(s.weight_numel() * sizeof(float)));
        EXPECT_EQ(held[0], held[1]);  // one copy per layout, reused
        EXPECT_EQ(held[0], held[2]);  // the new weights replaced the old copy
        ++packed;
      } else if (a == ConvAlgo::dnnl_blocked) {
        EXPECT_EQ(0, held[1] + held[2]);
      } else {
        EXPECT_EQ(0, pack.bytes());  // the other paths compute on the caller's weights
      }
    }
    YBuf want = make_y(c, false, 0), got = make_y(c, false, 0);
    ConvWeightPack pack;
    conv2d_forward_cpu(s, x.data(), w.data(), bp, want.y());
    conv2d_forward_packed_cpu(s, x.data(), w.data(), bp, got.y(), &pack);
    ASSERT_EQ(0, std::memcmp(got.all.data(), want.all.data(), got.all.size() * sizeof(float)));
  }
  EXPECT_GT(packed, 20);
}

// The nChw16c path: with x and/or y in nChw16c, the bits of dnnl_blocked on NCHW tensors.
TEST(Conv2d, Nc16ActivationsGiveTheBitsOfTheBlockedPath) {
  auto to_nc16 = [](const std::vector<float>& a, int N, int C, int HW) {
    std::vector<float> b(a.size());
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < HW; ++i) b[((int64_t(n) * (C / 16) + c / 16) * HW + i) * 16 + c % 16] = a[(int64_t(n) * C + c) * HW + i];
    return b;
  };
  int checked = 0;
  for (auto [N, C, H, K, stride] : std::vector<std::array<int, 5>>{
           {1, 16, 5, 32, 1}, {2, 32, 8, 16, 2}, {3, 64, 7, 64, 1}, {1, 128, 4, 128, 1}, {2, 16, 9, 48, 2}}) {
    Conv2dShape s;
    s.N = N, s.C = C, s.H = s.W = H, s.K = K, s.k = 3, s.stride = stride, s.pad = 1;
    SCOPED_TRACE(s.str());
    ASSERT_TRUE(conv2d_nc16_applies(s));
    const int HWo = s.OH() * s.OW();
    auto x = random_vec<float>(size_t(N) * C * H * H, 5), w = random_vec<float>(size_t(s.weight_numel()), 6);
    std::vector<float> want(size_t(N) * K * HWo);
    conv2d_forward_cpu_with(ConvAlgo::dnnl_blocked, s, x.data(), w.data(), nullptr, want.data());
    const auto xb = to_nc16(x, N, C, H * H), want_b = to_nc16(want, N, K, HWo);
    ConvWeightPack pack;
    for (bool x_nc16 : {false, true})
      for (bool y_nc16 : {false, true}) {
        std::vector<float> got(want.size());
        conv2d_forward_nc16_cpu(s, x_nc16 ? xb.data() : x.data(), x_nc16, w.data(), nullptr, got.data(), y_nc16,
                                &pack);
        ASSERT_EQ(0, std::memcmp(got.data(), (y_nc16 ? want_b : want).data(), got.size() * sizeof(float)));
        ++checked;
      }
  }
  EXPECT_EQ(checked, 20);
  Conv2dShape bad;
  bad.N = 1, bad.C = 8, bad.H = bad.W = 4, bad.K = 16, bad.k = 3, bad.pad = 1;
  std::vector<float> p(4096);
  EXPECT_THROW(conv2d_forward_nc16_cpu(bad, p.data(), true, p.data(), nullptr, p.data(), true, nullptr), Error);
}

// One sample's 3x3 convs with outputs of <= 8x8 and C >= 128 (ResNet-18's last two stages at batch 1): the
// blocked forward computes on nhwc activations (oneDNN's brgconv where the CPU has AVX-512), whatever layouts the
// caller's x and y are in: against the reference, with bias, ReLU and a y slice; NCHW, nChw16c and packed weights
// give the same bits. Two samples, or a 32x32 output, keep the nChw16c kernel.
TEST(Conv2d, OneSampleSmallMapsRunOnNhwc) {
  const std::vector<std::array<int, 4>> shapes{{128, 8, 128, 1}, {128, 16, 144, 2}, {160, 4, 128, 1}};
  for (auto [C, H, K, stride] : shapes) {
    Conv2dShape s;
    s.N = 1, s.C = C, s.H = s.W = H, s.K = K, s.k = 3, s.stride = stride, s.pad = 1;
    SCOPED_TRACE(s.str());
    const std::string impl = conv2d_cpu_impl_name(s, ConvPass::forward);
    if (impl.find("avx512_core") != std::string::npos) {
      EXPECT_NE(impl.find("brgconv"), std::string::npos) << impl;
    }
    Conv2dShape two = s, big = s;
    two.N = 2, big.H = big.W = 32 * stride;
    for (const Conv2dShape& o : {two, big}) {
      const std::string other = conv2d_cpu_impl_name(o, ConvPass::forward);
      EXPECT_EQ(other.find("brgconv"), std::string::npos) << o.str() << ": " << other;
    }
    auto x = random_vec<float>(size_t(C) * H * H, 7), w = random_vec<float>(size_t(s.weight_numel()), 8);
    auto b = random_vec<float>(size_t(K), 9);
    const double atol = atol_for(int64_t(C) * 9);
    for (bool bias : {false, true})
      for (bool relu : {false, true})
        for (int extra : {0, 5}) {
          Case c{s, bias, 0};
          if (extra) c = make_case(1, C, H, H, K, 3, stride, 1, 1, bias, extra);
          SCOPED_TRACE(c.str() + (relu ? " relu" : ""));
          const float* bp = bias ? b.data() : nullptr;
          YBuf ref = make_y(c, false, 0), got = make_y(c, false, 0), packed = make_y(c, false, 0);
          (relu ? conv2d_forward_relu_ref<float> : conv2d_forward_ref<float>)(c.s, x.data(), w.data(), bp, ref.y());
          conv2d_forward_cpu_with(ConvAlgo::dnnl_blocked, c.s, x.data(), w.data(), bp, got.y(), relu);
          EXPECT_TRUE(all_close(slice_of(c, got), slice_of(c, ref), atol, 1e-5, "y"));
          EXPECT_TRUE(untouched(c, got));
          ConvWeightPack pack;
          conv2d_forward_cpu_with(ConvAlgo::dnnl_blocked, c.s, x.data(), w.data(), bp, packed.y(), relu, &pack);
          ASSERT_EQ(0, std::memcmp(packed.all.data(), got.all.data(), got.all.size() * sizeof(float)));
        }
  }
}

TEST(Conv2d, BackwardDataAllAlgorithmsMatchReference) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 4);
    auto w = random_vec<float>(size_t(s.weight_numel()), 5);
    YBuf dy = make_y(c, true, 6);
    YBuf y = make_y(c, false, 0);  // a ReLU output, for the masked variant
    conv2d_forward_relu_ref<float>(s, x.data(), w.data(), nullptr, y.y());
    const size_t nx = size_t(s.N) * s.C * s.H * s.W;
    std::vector<float> ref(nx), ref_relu(nx);
    conv2d_backward_data_ref<float>(s, dy.y(), w.data(), ref.data());
    conv2d_backward_data_relu_ref<float>(s, y.y(), dy.y(), w.data(), ref_relu.data());
    const double atol = atol_for(int64_t(s.K / s.groups) * s.k * s.k);
    for (ConvAlgo a : kAlgos) {
      SCOPED_TRACE(conv_algo_name(a));
      std::vector<float> got(nx, kSentinel), got_relu(nx, kSentinel);
      conv2d_backward_data_cpu_with(a, s, dy.y(), w.data(), got.data());
      EXPECT_TRUE(all_close(got, ref, atol, 1e-5, "dx"));
      conv2d_backward_data_cpu_with(a, s, dy.y(), w.data(), got_relu.data(), y.y());
      EXPECT_TRUE(all_close(got_relu, ref_relu, atol, 1e-5, "dx (relu-masked)"));
    }
    std::vector<float> got(nx, kSentinel);
    conv2d_backward_data_cpu(s, dy.y(), w.data(), got.data());
    EXPECT_TRUE(all_close(got, ref, atol, 1e-5, "dx (dispatched)"));
    conv2d_backward_data_relu_cpu(s, y.y(), dy.y(), w.data(), got.data());
    EXPECT_TRUE(all_close(got, ref_relu, atol, 1e-5, "dx relu (dispatched)"));
  }
}

TEST(Conv2d, BackwardWeightAllAlgorithmsMatchReference) {
  for (const Case& c : sweep()) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 7);
    YBuf dy = make_y(c, true, 8);
    const size_t nw = size_t(s.weight_numel());
    std::vector<float> ref(nw), ref_b(size_t(s.K));
    conv2d_backward_weight_ref<float>(s, x.data(), dy.y(), ref.data(), c.bias ? ref_b.data() : nullptr);
    const double atol = atol_for(int64_t(s.N) * s.OH() * s.OW());
    for (ConvAlgo a : kAlgos) {
      SCOPED_TRACE(conv_algo_name(a));
      std::vector<float> got(nw, kSentinel), got_b(size_t(s.K), kSentinel);
      conv2d_backward_weight_cpu_with(a, s, x.data(), dy.y(), got.data(), c.bias ? got_b.data() : nullptr);
      EXPECT_TRUE(all_close(got, ref, atol, 1e-5, "dw"));
      if (c.bias) {
        EXPECT_TRUE(all_close(got_b, ref_b, atol, 1e-5, "db"));
      } else {
        EXPECT_TRUE(std::all_of(got_b.begin(), got_b.end(), [](float v) { return v == kSentinel; }));
      }
    }
    std::vector<float> got(nw, kSentinel), got_b(size_t(s.K), kSentinel);
    conv2d_backward_weight_cpu(s, x.data(), dy.y(), got.data(), c.bias ? got_b.data() : nullptr);
    EXPECT_TRUE(all_close(got, ref, atol, 1e-5, "dw (dispatched)"));
    if (c.bias) {
      EXPECT_TRUE(all_close(got_b, ref_b, atol, 1e-5, "db (dispatched)"));
    }
  }
}

// The channel shuffle with G groups over C channels, planes of HW (as channel_shuffle_forward_ref: dst channel
// j*(C/G) + i takes src channel i*G + j), or its inverse; written out here so that test_conv needs no other op.
void shuffle_planes(int N, int C, int HW, int G, bool inverse, const float* src, float* dst) {
  const int Cg = C / G;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < Cg; ++i)
      for (int j = 0; j < G; ++j) {
        const int64_t a = int64_t(n) * C + j * Cg + i, b = int64_t(n) * C + i * G + j;
        std::memcpy(dst + (inverse ? b : a) * HW, src + (inverse ? a : b) * HW, sizeof(float) * size_t(HW));
      }
}

// The shuffle folded into the grouped 1x1 conv (the NL module's): forward, input gradient and weight gradient
// (all at once and in sample ranges) give the bits of the unfused conv2d_*_cpu with the shuffle pass around them.
TEST(Conv2d, ShuffleFoldedIntoOneByOneEqualsConvThenShuffle) {
  const std::vector<Case> cases = {
      make_case(2, 48, 32, 32, 16, 1, 1, 0, 4, true, 0),   // the dw model's first stage: Kg = 4 = G
      make_case(3, 24, 32, 33, 24, 1, 1, 0, 4, true, 0),   // Kg = 6: G does not divide it
      make_case(2, 16, 32, 32, 10, 1, 1, 0, 2, false, 6),  // no bias, y in a channel slice
      make_case(2, 64, 4, 4, 40, 1, 1, 0, 8, true, 0),     // the last stage (4x4): mm_rows, Kg = 5
      make_case(3, 24, 4, 4, 24, 1, 1, 0, 3, true, 0),
      make_case(2, 8, 32, 32, 8, 1, 1, 0, 1, true, 0),     // one group: the identity shuffle
      make_case(3, 48, 16, 16, 16, 1, 1, 0, 4, true, 0),   // 16x16 and 8x16: sgemm, the bias by image rows
      make_case(3, 24, 8, 16, 24, 1, 1, 0, 4, true, 0),
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    ASSERT_TRUE(conv1x1_folds_shuffle(s));
    const int G = s.groups, HW = s.H * s.W;
    const int64_t ys = s.y_batch_stride(), per = int64_t(s.K) * HW;
    auto x = random_vec<float>(size_t(s.N) * s.C * HW, 21);
    auto w = random_vec<float>(size_t(s.weight_numel()), 22);
    auto b = random_vec<float>(size_t(s.K), 23);
    const float* bp = c.bias ? b.data() : nullptr;
    // Unfused: z (dense), then the shuffle into y's slice (sample by sample: y may be strided).
    std::vector<float> z(size_t(s.N * per)), want(size_t(s.N * per));
    Conv2dShape dense = s;
    dense.y_nstride = 0;
    conv2d_forward_cpu(dense, x.data(), w.data(), bp, z.data());
    shuffle_planes(s.N, s.K, HW, G, false, z.data(), want.data());
    YBuf y = make_y(c, false, 0);
    conv2d_forward_shuffled_cpu(s, x.data(), w.data(), bp, y.y());
    EXPECT_TRUE(untouched(c, y));
    EXPECT_EQ(slice_of(c, y), want);
    // Backward: dy shuffled in y's layout; unfused runs on its unshuffled dense copy.
    YBuf dy = make_y(c, true, 24);
    const std::vector<float> dy_dense = slice_of(c, dy);
    std::vector<float> dz(dy_dense.size());
    shuffle_planes(s.N, s.K, HW, G, true, dy_dense.data(), dz.data());
    std::vector<float> dx0(x.size()), dx(x.size(), kSentinel);
    conv2d_backward_data_cpu(dense, dz.data(), w.data(), dx0.data());
    conv2d_backward_data_shuffled_cpu(s, dy.y(), w.data(), dx.data());
    EXPECT_EQ(dx, dx0);
    std::vector<float> dw0(w.size()), db0(b.size());
    conv2d_backward_weight_cpu(dense, x.data(), dz.data(), dw0.data(), bp ? db0.data() : nullptr);
    for (int split = 0; split < s.N; ++split) {  // 0: all samples in one add
      SCOPED_TRACE(fmt::format("split at {}", split));
      Conv1x1WeightGrad acc(s, true);
      const int64_t xs = int64_t(s.C) * HW;
      if (split) acc.add(0, split, x.data(), dy.y());
      acc.add(split, s.N, x.data() + split * xs, dy.y() + split * ys);
      std::vector<float> dw(w.size(), kSentinel), db(b.size(), kSentinel);
      acc.finish(dw.data(), bp ? db.data() : nullptr);
      EXPECT_EQ(dw, dw0);
      if (bp) {
        EXPECT_EQ(db, db0);
      }
    }
  }
  // Where a pass runs oneDNN the fold does not apply (the NL module keeps its shuffle pass there).
  for (const Case& c : {make_case(2, 48, 6, 6, 16, 1, 1, 0, 4, true, 0),
                        make_case(2, 48, 12, 10, 16, 1, 1, 0, 4, true, 0),
                        make_case(2, 48, 32, 32, 16, 1, 2, 0, 4, true, 0)}) {
    EXPECT_FALSE(conv1x1_folds_shuffle(c.s)) << c.str();
    float d = 0;
    EXPECT_THROW(conv2d_forward_shuffled_cpu(c.s, &d, &d, &d, &d), Error) << c.str();
    EXPECT_THROW(conv2d_backward_data_shuffled_cpu(c.s, &d, &d, &d), Error) << c.str();
  }
}

// The 1x1 weight gradient on gemm_1x1 at 32x32 (own dot-product kernels) sums in its documented order, whatever
// its blocking: per (sample, group) each dW element is vector partial sums (simd::kLanes lanes) over the pixel
// vectors in order, the lanes added as simd::vhsum adds them, then added to the running sum over the samples; db
// each dy row's sequential sum, likewise. A scalar model of that order, on one thread, bit for bit: a faster kernel must keep it
// (the trained packages' bits depend on it).
TEST(Conv2d, OneByOneWeightGradientSumsInItsDocumentedOrder) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  for (const Case& c : {make_case(3, 48, 32, 32, 16, 1, 1, 0, 4, true, 0), make_case(2, 40, 32, 32, 36, 1, 1, 0, 2, true, 0)}) {
    SCOPED_TRACE(c.str());
    const Conv2dShape& s = c.s;
    ASSERT_EQ(conv2d_cpu_algo(s, ConvPass::backward_weight), ConvAlgo::gemm_1x1);
    const int Cg = s.C / s.groups, Kg = s.K / s.groups, HW = s.H * s.W;
    auto x = random_vec<float>(size_t(s.N) * s.C * HW, 41);
    auto dy = random_vec<float>(size_t(s.N) * s.K * HW, 42);
    std::vector<float> dw(size_t(s.weight_numel())), db(size_t(s.K));
    conv2d_backward_weight_cpu(s, x.data(), dy.data(), dw.data(), db.data());
    std::vector<float> want_w(dw.size(), 0.f), want_b(db.size(), 0.f);
    for (int g = 0; g < s.groups; ++g)
      for (int n = 0; n < s.N; ++n)
        for (int o = 0; o < Kg; ++o) {
          const float* d = dy.data() + (int64_t(n) * s.K + g * Kg + o) * HW;
          for (int ci = 0; ci < Cg; ++ci) {
            const float* xr = x.data() + (int64_t(n) * s.C + g * Cg + ci) * HW;
            // The build's vectors (16 lanes on AVX-512, 8 on AVX2, 4 on the portable path, where vfma is a
            // multiply and an add) and its lane sum, vhsum.
            rf::simd::Lanes lanes = rf::simd::vzero();
            int p = 0;
            for (; p + rf::simd::kLanes <= HW; p += rf::simd::kLanes)
              lanes = rf::simd::vfma(rf::simd::vload(d + p), rf::simd::vload(xr + p), lanes);
            float t = rf::simd::vhsum(lanes);
            for (; p < HW; ++p) t += d[p] * xr[p];
            want_w[(int64_t(g) * Kg + o) * Cg + ci] += t;
          }
          float sum = 0.f;
          for (int p = 0; p < HW; ++p) sum += d[p];
          want_b[g * Kg + o] += sum;
        }
    for (float& v : want_w) v = 0.f + v;  // the thread parts are added onto zeros
    for (float& v : want_b) v = 0.f + v;
    EXPECT_EQ(dw, want_w);
    EXPECT_EQ(db, want_b);
  }
  omp_set_num_threads(threads);
}

// The eval epilogue fused into the 1x1 conv's output pass (conv2d_forward_epilogue_cpu): the bits of the conv,
// the shuffle, then ((z - mean) * scale + shift) (+ res), ReLU per value, as batchnorm_eval_epilogue_cpu computes
// it (the NL module's test checks it against that op itself); y strided, bias or none, res laid out as y.
TEST(Conv2d, EpilogueFusedIntoOneByOneEqualsConvThenEpilogue) {
  const std::vector<Case> cases = {
      make_case(2, 48, 32, 32, 16, 1, 1, 0, 4, true, 0),   // sgemm rows (32x32)
      make_case(2, 16, 32, 32, 12, 1, 1, 0, 2, false, 5),  // no bias, y in a channel slice
      make_case(2, 64, 4, 4, 40, 1, 1, 0, 8, true, 3),     // mm_rows (4x4), y in a channel slice
      make_case(1, 24, 4, 4, 24, 1, 1, 0, 1, true, 0),     // one group
  };
  for (const Case& c : cases) {
    const Conv2dShape& s = c.s;
    ASSERT_TRUE(conv1x1_epilogue_applies(s)) << c.str();
    const int HW = s.H * s.W;
    const int64_t ys = s.y_batch_stride(), per = int64_t(s.K) * HW;
    auto x = random_vec<float>(size_t(s.N) * s.C * HW, 31);
    auto w = random_vec<float>(size_t(s.weight_numel()), 32);
    auto b = random_vec<float>(size_t(s.K), 33);
    auto mean = random_vec<float>(size_t(s.K), 34), scale = random_vec<float>(size_t(s.K), 35);
    auto shift = random_vec<float>(size_t(s.K), 36);
    const float* bp = c.bias ? b.data() : nullptr;
    Conv2dShape dense = s;
    dense.y_nstride = 0;
    std::vector<float> z(size_t(s.N * per)), zs(z.size());
    conv2d_forward_cpu(dense, x.data(), w.data(), bp, z.data());
    YBuf res = make_y(c, true, 37);
    for (const bool shuffled : {true, false}) {
      shuffle_planes(s.N, s.K, HW, shuffled ? s.groups : 1, false, z.data(), zs.data());
      for (int v = 0; v < 4; ++v) {
        const bool with_res = v & 1, relu = v & 2;
        SCOPED_TRACE(fmt::format("{} shuffled={} res={} relu={}", c.str(), shuffled, with_res, relu));
        std::vector<float> want(zs.size());
        for (int n = 0; n < s.N; ++n)
          for (int o = 0; o < s.K; ++o)
            for (int i = 0; i < HW; ++i) {
              const int64_t d = (int64_t(n) * s.K + o) * HW + i;
              float t = (zs[d] - mean[o]) * scale[o] + shift[o];
              if (with_res) t = t + res.y()[n * ys + int64_t(o) * HW + i];
              want[d] = relu ? (t > 0.f ? t : 0.f) : t;
            }
        ConvEpilogue ep;
        ep.mean = mean.data(), ep.scale = scale.data(), ep.shift = shift.data();
        ep.res = with_res ? res.y() : nullptr, ep.relu = relu;
        YBuf y = make_y(c, false, 0);
        conv2d_forward_epilogue_cpu(s, x.data(), w.data(), bp, shuffled, ep, y.y());
        EXPECT_TRUE(untouched(c, y));
        EXPECT_EQ(slice_of(c, y), want);
      }
    }
  }
  Conv2dShape s3 = make_case(1, 16, 8, 8, 16, 3, 1, 1, 1, true, 0).s;  // a 3x3 conv: no such path
  EXPECT_FALSE(conv1x1_epilogue_applies(s3));
  ConvEpilogue ep;
  EXPECT_THROW(conv2d_forward_epilogue_cpu(s3, nullptr, nullptr, nullptr, false, ep, nullptr), rf::Error);
}

// The input gradient written over the input, its first channels masked by [x > 0] inside the kernel's items:
// the bits of conv2d_backward_data_cpu followed by the masking pass, shuffled dy or not, the masked channels
// ending inside a group, at a group boundary, none or all.
TEST(Conv2d, InPlaceReluMaskedInputGradientEqualsUnfused) {
  const std::vector<Case> cases = {make_case(2, 48, 32, 32, 16, 1, 1, 0, 4, true, 0),
                                   make_case(2, 64, 4, 4, 40, 1, 1, 0, 8, true, 0),
                                   make_case(3, 24, 32, 33, 24, 1, 1, 0, 4, true, 0),
                                   make_case(3, 96, 8, 8, 32, 1, 1, 0, 4, true, 0)};
  for (const Case& c : cases) {
    const Conv2dShape& s = c.s;
    ASSERT_TRUE(conv1x1_backward_data_inplace_applies(s)) << c.str();
    const int HW = s.H * s.W, Cg = s.C / s.groups;
    auto x = random_vec<float>(size_t(s.N) * s.C * HW, 41);
    auto w = random_vec<float>(size_t(s.weight_numel()), 42);
    auto dy = random_vec<float>(size_t(s.N) * s.K * HW, 43);
    for (bool shuffled : {false, true})
      for (int rc : {0, Cg - 1, Cg, Cg + 3, s.C}) {
        SCOPED_TRACE(c.str() + fmt::format(" relu_channels={}{}", rc, shuffled ? " shuffled" : ""));
        std::vector<float> dz(dy.size()), dx0(x.size());
        if (shuffled) shuffle_planes(s.N, s.K, HW, s.groups, true, dy.data(), dz.data());
        conv2d_backward_data_cpu(s, shuffled ? dz.data() : dy.data(), w.data(), dx0.data());
        for (int n = 0; n < s.N; ++n)
          for (int64_t i = 0; i < int64_t(rc) * HW; ++i) {
            const int64_t j = int64_t(n) * s.C * HW + i;
            dx0[j] = x[j] > 0 ? dx0[j] : 0.f;
          }
        std::vector<float> dx = x;
        conv2d_backward_data_inplace_relu_cpu(s, dy.data(), w.data(), dx.data(), rc, shuffled);
        EXPECT_EQ(dx, dx0);
      }
  }
  float d = 0;
  EXPECT_FALSE(conv1x1_backward_data_inplace_applies(make_case(2, 48, 6, 6, 16, 1, 1, 0, 4, true, 0).s));
  EXPECT_THROW(conv2d_backward_data_inplace_relu_cpu(make_case(2, 48, 6, 6, 16, 1, 1, 0, 4, true, 0).s, &d, &d, &d,
                                                     0, false),
               Error);
  EXPECT_THROW(conv2d_backward_data_inplace_relu_cpu(cases[0].s, &d, &d, &d, 49, false), Error);  // > C
}

// Finite differences of the double reference: loss = sum(y * g) for a fixed random g.
void grad_check(const Case& c, bool relu) {
  SCOPED_TRACE(c.str() + (relu ? " relu" : ""));
  const Conv2dShape& s = c.s;
  const int64_t ys = s.y_batch_stride(), ny = s.N * ys;
  auto x = random_vec<double>(size_t(s.N) * s.C * s.H * s.W, 11);
  auto w = random_vec<double>(size_t(s.weight_numel()), 12);
  auto b = random_vec<double>(size_t(s.K), 13);
  auto g = random_vec<double>(size_t(ny), 14);
  auto fwd = relu ? conv2d_forward_relu_ref<double> : conv2d_forward_ref<double>;
  auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
    std::vector<double> y(size_t(ny), 0.0);
    fwd(s, xx.data(), ww.data(), c.bias ? bb.data() : nullptr, y.data());
    return dot(y, g);
  };
  std::vector<double> y(size_t(ny), 0.0);
  fwd(s, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data());
  std::vector<double> gm = g;  // d loss / d y, through the ReLU
  if (relu)
    for (size_t i = 0; i < gm.size(); ++i) gm[i] = y[i] > 0 ? g[i] : 0.0;
  std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
  if (relu) conv2d_backward_data_relu_ref<double>(s, y.data(), g.data(), w.data(), dx.data());
  else conv2d_backward_data_ref<double>(s, g.data(), w.data(), dx.data());
  conv2d_backward_weight_ref<double>(s, x.data(), gm.data(), dw.data(), db.data());
  EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(v, w, b); }, x, dx, "dx"));
  EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(x, v, b); }, w, dw, "dw"));
  if (c.bias) {
    EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(x, w, v); }, b, db, "db"));
  }
}

TEST(Conv2d, ReferenceGradientsMatchFiniteDifferences) {
  for (bool relu : {false, true}) {
    grad_check(make_case(2, 4, 5, 6, 6, 3, 2, 1, 2, true, 0), relu);
    grad_check(make_case(1, 3, 7, 5, 3, 5, 1, 2, 3, true, 2), relu);  // depthwise 5x5, y in a slice
    grad_check(make_case(2, 4, 5, 5, 8, 1, 2, 0, 1, true, 0), relu);  // 1x1 stride 2
    grad_check(make_case(1, 2, 4, 4, 6, 3, 1, 0, 2, false, 0), relu);
  }
}

TEST(Conv2d, DirectKernelIsDeterministicAndFnVariantMatches) {
  const Case c = make_case(3, 8, 9, 9, 24, 3, 2, 1, 4, true, 0);
  const Conv2dShape& s = c.s;
  auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 21);
  auto w = random_vec<float>(size_t(s.weight_numel()), 22);
  auto b = random_vec<float>(size_t(s.K), 23);
  const size_t ny = size_t(s.N) * s.K * s.OH() * s.OW();
  std::vector<float> y1(ny), y2(ny);
  conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), b.data(), y1.data(), true);
  const int64_t wg = s.weight_numel() / s.groups;
  int calls = 0;
  conv2d_forward_direct_cpu_fn(
      s, x.data(),
      [&](int g, float* wout) {
#pragma omp atomic
        ++calls;
        std::copy(w.data() + g * wg, w.data() + (g + 1) * wg, wout);
      },
      b.data(), y2.data(), true);
  EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), ny * sizeof(float)));
  EXPECT_GE(calls, s.groups);
  EXPECT_LE(calls, s.groups * s.N);
  std::vector<float> dw1(w.size()), dw2(w.size()), db1(b.size()), db2(b.size());
  conv2d_backward_weight_cpu_with(ConvAlgo::direct, s, x.data(), y1.data(), dw1.data(), db1.data());
  conv2d_backward_weight_cpu_with(ConvAlgo::direct, s, x.data(), y1.data(), dw2.data(), db2.data());
  EXPECT_EQ(0, std::memcmp(dw1.data(), dw2.data(), dw1.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(db1.data(), db2.data(), db1.size() * sizeof(float)));
}

// The direct kernel's 3x3 / pad-1 path (conv_direct3x3.cpp, AVX-512 builds; elsewhere this checks the general
// kernel again): sizes 1..33 (planes of 1 to 70 16-lane chunks, ragged ones too), strides 1 and 2, C/groups
// 1..4, K/groups 1..12, groups enough for its blocks of 8, a strided y slice, bias, fused ReLU; batch sizes
// chosen so that its rule (direct3x3_applies) takes it. Forward bit for bit against the general kernel (the
// fn variant always runs that one) and within tolerance against the reference; input gradient (plain and
// ReLU-masked) likewise, bit for bit against conv2d_backward_data_direct_general_cpu. ~1 s.
// The depthwise stride-1 row kernels (conv_direct3x3.cpp: rows of 16 or 32, planes of width 4 or 8 with up to 4
// vectors) over every plane shape they take and a few batches and channel counts (planes taken 1, 2 or 4 at a
// time, with a remainder), bias, ReLU, a y slice: forward and input gradient (plain and ReLU-masked) bit for bit
// against the general direct kernel.
TEST(Conv2d, DepthwiseRowKernelsMatchGeneralKernel) {
  int n_case = 0;
  const std::vector<std::array<int, 2>> planes{{4, 4},  {8, 4},  {12, 4},  {16, 4}, {2, 8},  {4, 8}, {6, 8},
                                               {8, 8},  {1, 16}, {9, 16}, {16, 16}, {5, 32}, {32, 32}};
  for (auto [H, W] : planes)
    for (auto [N, C] : std::vector<std::array<int, 2>>{{1, 7}, {3, 5}}) {
      const Case c = make_case(N, C, H, W, C, 3, 1, 1, C, n_case % 2 == 0, n_case % 3 ? 3 : 0);
      const bool relu = n_case++ % 4 < 2;
      SCOPED_TRACE(c.str() + (relu ? " relu" : ""));
      const Conv2dShape& s = c.s;
      auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 81);
      auto w = random_vec<float>(size_t(s.weight_numel()), 82);
      auto b = random_vec<float>(size_t(s.K), 83);
      const float* bp = c.bias ? b.data() : nullptr;
      YBuf got = make_y(c, false, 0), gen = make_y(c, false, 0);
      conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), bp, got.y(), relu);
      conv2d_forward_direct_cpu_fn(
          s, x.data(), [&](int g, float* wout) { std::copy(w.data() + g * 9, w.data() + (g + 1) * 9, wout); }, bp,
          gen.y(), relu);
      ASSERT_EQ(0, std::memcmp(got.all.data(), gen.all.data(), got.all.size() * sizeof(float))) << "forward";
      YBuf dyb = make_y(c, true, 84);
      const size_t nx = size_t(s.N) * s.C * s.H * s.W;
      for (const float* relu_y : {static_cast<const float*>(nullptr), static_cast<const float*>(got.y())}) {
        std::vector<float> dx(nx, kSentinel), dx_gen(nx, kSentinel);
        conv2d_backward_data_cpu_with(ConvAlgo::direct, s, dyb.y(), w.data(), dx.data(), relu_y);
        conv2d_backward_data_direct_general_cpu(s, dyb.y(), w.data(), dx_gen.data(), relu_y);
        ASSERT_EQ(0, std::memcmp(dx.data(), dx_gen.data(), nx * sizeof(float))) << (relu_y ? "dx (relu)" : "dx");
      }
    }
  EXPECT_EQ(n_case, 26);
}

TEST(Conv2d, Direct3x3PathMatchesGeneralKernelAndReference) {
  struct Grp { int Cg, Kg, groups; };
  const Grp grps[] = {{1, 1, 19}, {1, 2, 9}, {1, 3, 7}, {1, 8, 3}, {1, 12, 3},
                      {2, 1, 5},  {2, 3, 5}, {3, 5, 2}, {4, 2, 3}};
  const int sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33};
  int n_case = 0;
  for (int H : sizes)
    for (int stride : {1, 2})
      for (const Grp& gr : grps) {
        const int W = H + (H % 3 == 0), HW = H * W;
        if (HW > 256 && gr.groups * gr.Kg > 36) continue;  // keep it fast: big planes with few channels
        const int N = HW <= 256 ? 1 + n_case % 2 : 1;  // batch 1: the eval blocks' (one sample per thread)
        const Case c = make_case(N, gr.Cg * gr.groups, H, W, gr.Kg * gr.groups, 3, stride, 1, gr.groups,
                                 n_case % 3 == 0, n_case % 2 ? 3 : 0);
        ++n_case;
        SCOPED_TRACE(c.str());
        const Conv2dShape& s = c.s;
        auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 71);
        auto w = random_vec<float>(size_t(s.weight_numel()), 72);
        auto b = random_vec<float>(size_t(s.K), 73);
        const float* bp = c.bias ? b.data() : nullptr;
        const bool relu = n_case % 4 < 2;
        YBuf ref = make_y(c, false, 0), got = make_y(c, false, 0), gen = make_y(c, false, 0);
        (relu ? conv2d_forward_relu_ref<float> : conv2d_forward_ref<float>)(s, x.data(), w.data(), bp, ref.y());
        conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), bp, got.y(), relu);
        const int64_t wg = s.weight_numel() / s.groups;
        conv2d_forward_direct_cpu_fn(
            s, x.data(), [&](int g, float* wout) { std::copy(w.data() + g * wg, w.data() + (g + 1) * wg, wout); }, bp,
            gen.y(), relu);
        const std::vector<float> gs = slice_of(c, got), es = slice_of(c, gen);
        EXPECT_EQ(0, std::memcmp(gs.data(), es.data(), gs.size() * sizeof(float))) << "forward not bit-identical";
        EXPECT_TRUE(all_close(gs, slice_of(c, ref), atol_for(int64_t(gr.Cg) * 9), 1e-5, "y"));
        EXPECT_TRUE(untouched(c, got));
        // Input gradient: dy and the mask's y (the output above) live in the same strided slice.
        YBuf dyb = make_y(c, true, 74);
        const size_t nx = size_t(s.N) * s.C * s.H * s.W;
        std::vector<float> dx(nx, kSentinel), dx_ref(nx);
        const double atol = atol_for(int64_t(gr.Kg) * 9);
        std::vector<float> dx_gen(nx);
        conv2d_backward_data_cpu_with(ConvAlgo::direct, s, dyb.y(), w.data(), dx.data());
        conv2d_backward_data_ref<float>(s, dyb.y(), w.data(), dx_ref.data());
        EXPECT_TRUE(all_close(dx, dx_ref, atol, 1e-5, "dx"));
        conv2d_backward_data_direct_general_cpu(s, dyb.y(), w.data(), dx_gen.data());
        EXPECT_EQ(0, std::memcmp(dx.data(), dx_gen.data(), nx * sizeof(float))) << "dx not bit-identical";
        std::fill(dx.begin(), dx.end(), kSentinel);
        conv2d_backward_data_cpu_with(ConvAlgo::direct, s, dyb.y(), w.data(), dx.data(), got.y());
        conv2d_backward_data_relu_ref<float>(s, got.y(), dyb.y(), w.data(), dx_ref.data());
        EXPECT_TRUE(all_close(dx, dx_ref, atol, 1e-5, "dx (relu-masked)"));
        conv2d_backward_data_direct_general_cpu(s, dyb.y(), w.data(), dx_gen.data(), got.y());
        EXPECT_EQ(0, std::memcmp(dx.data(), dx_gen.data(), nx * sizeof(float))) << "dx (relu-masked) not bit-identical";
      }
  EXPECT_GT(n_case, 200);
}

#if defined(__AVX512F__)
// Where the 3x3 path replaces oneDNN's jit_dw (depthwise at <= 16x16: stride 1, and stride 2 forward), it gives
// oneDNN's bits (both sum the taps in (kh, kw) order from +0).
TEST(Conv2d, Direct3x3PathHasOneDnnDepthwiseBits) {
  for (int H : {4, 8, 16})
    for (int stride : {1, 2})
      for (int relu = 0; relu < 2; ++relu) {
        const Case c = make_case(1 + relu, 32, H, H, 32, 3, stride, 1, 32, false, 0);
        const Conv2dShape& s = c.s;
        SCOPED_TRACE(c.str());
        ASSERT_EQ(ConvAlgo::direct, conv2d_cpu_algo(s, ConvPass::forward));
        auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 81);
        auto w = random_vec<float>(size_t(s.weight_numel()), 82);
        std::vector<float> got(size_t(s.N) * s.K * s.OH() * s.OW()), want(got.size());
        conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), nullptr, got.data(), relu);
        conv2d_forward_cpu_with(ConvAlgo::dnnl_blocked, s, x.data(), w.data(), nullptr, want.data(), relu);
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
      }
}
#endif

// The direct kernel's work split depends on the thread count; its forward and input gradient must not.
TEST(Conv2d, DirectKernelIndependentOfThreadCount) {
  const Case c = make_case(7, 16, 12, 10, 32, 3, 2, 1, 8, false, 0);
  const Conv2dShape& s = c.s;
  auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 61);
  auto w = random_vec<float>(size_t(s.weight_numel()), 62);
  auto dy = random_vec<float>(size_t(s.N) * s.K * s.OH() * s.OW(), 63);
  const int keep = omp_get_max_threads();
  std::vector<float> y0, dx0, dw0;
  for (int t : {1, 2, 3, 5}) {
    omp_set_num_threads(t);
    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size());
    conv2d_forward_cpu_with(ConvAlgo::direct, s, x.data(), w.data(), nullptr, y.data(), false);
    conv2d_backward_data_cpu_with(ConvAlgo::direct, s, dy.data(), w.data(), dx.data());
    conv2d_backward_weight_cpu_with(ConvAlgo::direct, s, x.data(), dy.data(), dw.data(), nullptr);
    if (y0.empty()) {
      y0 = y, dx0 = dx, dw0 = dw;
      continue;
    }
    EXPECT_EQ(0, std::memcmp(y.data(), y0.data(), y.size() * sizeof(float))) << t << " threads";
    EXPECT_EQ(0, std::memcmp(dx.data(), dx0.data(), dx.size() * sizeof(float))) << t << " threads";
    EXPECT_TRUE(all_close(dw, dw0, atol_for(int64_t(s.N) * s.OH() * s.OW()), 1e-5, "dw"));  // summation order
  }
  omp_set_num_threads(keep);
}

// The 1x1 forward at 8x8 and 16x16 moved from oneDNN's gemm convolution to gemm_1x1 (an sgemm per sample and
// group, then the bias) because the two give the same bits: the NL models' outputs did not change. Pinned here on
// the NL shapes of those stages (batch 1, the sample-blocked eval's, and 5), with and without the bias, and at 12x12
// and 24x24 (the 24x24 runs' maps).
TEST(Conv2d, OneByOneForwardKeepsTheBitsOfOneDnnGemmConvolution) {
  for (const int N : {1, 5})
    for (const int H : {8, 12, 16, 24})
      for (const int C_in : {64, 128, 256}) {
        for (const int C_nl : {C_in, 512, 768}) {
          const Case c = make_case(N, C_nl + 2 * C_in, H, H, C_in, 1, 1, 0, 4, C_nl != 512, 0);
          SCOPED_TRACE(c.str());
          const Conv2dShape& s = c.s;
          ASSERT_EQ(conv2d_cpu_algo(s, ConvPass::forward), ConvAlgo::gemm_1x1);
          auto x = random_vec<float>(size_t(s.N) * s.C * H * H, 51);
          auto w = random_vec<float>(size_t(s.weight_numel()), 52);
          auto b = random_vec<float>(size_t(s.K), 53);
          const float* bp = c.bias ? b.data() : nullptr;
          std::vector<float> y0(size_t(s.N) * s.K * H * H), y1(y0.size());
          conv2d_forward_cpu_with(ConvAlgo::dnnl_plain, s, x.data(), w.data(), bp, y0.data());
          conv2d_forward_cpu(s, x.data(), w.data(), bp, y1.data());
          EXPECT_EQ(y0, y1);
        }
      }
}

// The gradients at 8x8 to 24x24 (and 12x20), where these 1x1 convs ran on oneDNN's gemm convolution before
// gemm_1x1 took them: the same bits, so that the switch kept the bits of training. The input gradient per value;
// the weight gradient's per-thread partial sums (oneDNN splits the (group, sample) items as we do at 1, 2 and 4
// threads, not at 3) and the bias gradient's per-channel running sum over the image rows (Conv1x1WeightGrad).
TEST(Conv2d, OneByOneGradientsKeepTheBitsOfOneDnnGemmConvolution) {
  const int keep = omp_get_max_threads();
  int checked = 0;
  for (const int threads : {1, 2, 4}) {
    omp_set_num_threads(threads);
    for (const int N : {1, 5})
      for (const int H : {8, 12, 16, 24})
        for (const int C_in : {64, 128})
          for (const int C_nl : {C_in, 512, 768}) {
            const int W = H == 12 ? 20 : H;  // and one plane that is not square: rows of 20
            const Case c = make_case(N, C_nl + 2 * C_in, H, W, 2 * C_in, 1, 1, 0, 4, true, 0);
            SCOPED_TRACE(c.str() + fmt::format(" threads={}", threads));
            const Conv2dShape& s = c.s;
            ASSERT_EQ(conv2d_cpu_algo(s, ConvPass::backward_data), ConvAlgo::gemm_1x1);
            ASSERT_EQ(conv2d_cpu_algo(s, ConvPass::backward_weight), ConvAlgo::gemm_1x1);
            auto x = random_vec<float>(size_t(s.N) * s.C * H * W, 61);
            auto dy = random_vec<float>(size_t(s.N) * s.K * H * W, 62);
            auto w = random_vec<float>(size_t(s.weight_numel()), 63);
            std::vector<float> dx0(x.size()), dx1(x.size()), dw0(w.size()), dw1(w.size()), db0(size_t(s.K)),
                db1(size_t(s.K));
            conv2d_backward_data_cpu_with(ConvAlgo::dnnl_plain, s, dy.data(), w.data(), dx0.data());
            conv2d_backward_data_cpu(s, dy.data(), w.data(), dx1.data());
            EXPECT_EQ(dx0, dx1);
            conv2d_backward_weight_cpu_with(ConvAlgo::dnnl_plain, s, x.data(), dy.data(), dw0.data(), db0.data());
            conv2d_backward_weight_cpu(s, x.data(), dy.data(), dw1.data(), db1.data());
            EXPECT_EQ(0, std::memcmp(dw0.data(), dw1.data(), dw0.size() * sizeof(float)));
            EXPECT_EQ(0, std::memcmp(db0.data(), db1.data(), db0.size() * sizeof(float)));
            ++checked;
          }
  }
  omp_set_num_threads(keep);
  EXPECT_EQ(checked, 144);
}

#if defined(__AVX512F__)
// The forward's chain kernel (conv_gemm1x1.cpp: one FMA chain per value from +0, the bias, ReLU or epilogue on the
// accumulators) keeps oneDNN's bits off the NL shapes too: rows past the last block of 8 (2, 4, 5 and 7 of them),
// pixels past the last vector, K up to its limit of 384, with and without the bias and the ReLU, and a group of 4
// rows (the sgemm's); 5 samples, so that items straddle the threads.
TEST(Conv2d, OneByOneChainKernelKeepsOneDnnBitsOnRaggedShapes) {
  struct Shape {
    int C, H, W, K, groups;
  };
  int checked = 0;
  for (const Shape& sh : {Shape{768, 5, 5, 26, 2}, Shape{100, 7, 9, 20, 1}, Shape{384, 8, 8, 8, 1},
                          Shape{96, 6, 11, 30, 3}, Shape{48, 17, 3, 16, 4}, Shape{60, 32, 32, 45, 3}})
    for (const bool bias : {false, true})
      for (const bool relu : {false, true}) {
        const Case c = make_case(5, sh.C, sh.H, sh.W, sh.K, 1, 1, 0, sh.groups, bias, 0);
        const Conv2dShape& s = c.s;
        SCOPED_TRACE(c.str() + (relu ? "+relu" : ""));
        auto x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 71);
        auto w = random_vec<float>(size_t(s.weight_numel()), 72);
        auto b = random_vec<float>(size_t(s.K), 73);
        const float* bp = bias ? b.data() : nullptr;
        std::vector<float> y0(size_t(s.N) * s.K * s.H * s.W), y1(y0.size());
        conv2d_forward_cpu_with(ConvAlgo::dnnl_plain, s, x.data(), w.data(), bp, y0.data(), false);
        if (relu)  // gemm_1x1's ReLU is std::max(v, 0) (+0 for negatives; oneDNN's post-op gives -0 there)
          for (float& v : y0) v = std::max(v, 0.f);
        conv2d_forward_cpu_with(ConvAlgo::gemm_1x1, s, x.data(), w.data(), bp, y1.data(), relu);
        EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)));
        ++checked;
      }
  EXPECT_EQ(checked, 24);
}
#endif

TEST(Conv2d, DispatchPicksTheMeasuredAlgorithm) {
  auto shape = [](int C, int H, int K, int k, int stride, int groups) {
    return make_case(64, C, H, H, K, k, stride, k / 2, groups, false, 0).s;
  };
  EXPECT_EQ(ConvAlgo::direct, conv2d_cpu_algo(shape(64, 32, 64, 3, 1, 64), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::direct, conv2d_cpu_algo(shape(512, 4, 768, 3, 1, 256), ConvPass::backward_data));
#if defined(__AVX512F__)  // the direct kernel's 3x3 path (conv_direct3x3.cpp) beats oneDNN's jit_dw at stride 1
  EXPECT_EQ(ConvAlgo::direct, conv2d_cpu_algo(shape(512, 4, 512, 3, 1, 512), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::direct, conv2d_cpu_algo(shape(128, 16, 128, 3, 1, 128), ConvPass::backward_data));
  EXPECT_EQ(ConvAlgo::direct, conv2d_cpu_algo(shape(256, 8, 256, 3, 2, 256), ConvPass::forward));  // and stride 2
  EXPECT_EQ(ConvAlgo::dnnl_blocked, conv2d_cpu_algo(shape(256, 8, 256, 3, 2, 256), ConvPass::backward_data));
#else
  EXPECT_EQ(ConvAlgo::dnnl_blocked, conv2d_cpu_algo(shape(256, 8, 256, 3, 2, 256), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::dnnl_blocked, conv2d_cpu_algo(shape(512, 4, 512, 3, 1, 512), ConvPass::forward));
#endif
  EXPECT_EQ(ConvAlgo::dnnl_blocked, conv2d_cpu_algo(shape(64, 32, 64, 3, 1, 1), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::dnnl_plain, conv2d_cpu_algo(shape(3, 32, 64, 3, 1, 1), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(192, 32, 64, 1, 1, 4), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(192, 32, 64, 1, 1, 4), ConvPass::backward_weight));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(768, 4, 512, 1, 1, 4), ConvPass::backward_data));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(384, 16, 128, 1, 1, 4), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(384, 16, 128, 1, 1, 4), ConvPass::backward_data));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(768, 8, 256, 1, 1, 4), ConvPass::backward_weight));
  EXPECT_EQ(ConvAlgo::gemm_1x1, conv2d_cpu_algo(shape(384, 12, 128, 1, 1, 4), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::dnnl_plain, conv2d_cpu_algo(shape(384, 6, 128, 1, 1, 4), ConvPass::forward));
  EXPECT_EQ(ConvAlgo::dnnl_plain, conv2d_cpu_algo(shape(384, 6, 128, 1, 1, 4), ConvPass::backward_weight));
  EXPECT_EQ(ConvAlgo::dnnl_plain, conv2d_cpu_algo(shape(384, 2, 128, 1, 1, 4), ConvPass::backward_data));
  EXPECT_EQ(ConvAlgo::dnnl_blocked, conv2d_cpu_algo(shape(256, 8, 256, 3, 2, 256), ConvPass::backward_weight));
  EXPECT_EQ(ConvAlgo::dnnl_plain, conv2d_cpu_algo(shape(64, 32, 128, 1, 2, 1), ConvPass::backward_weight));
  // oneDNN found a jit kernel (its "ref:" loops would be 10-100x slower), and the name says which.
  const std::string name = conv2d_cpu_impl_name(shape(64, 8, 64, 3, 1, 1), ConvPass::forward);
  EXPECT_EQ(0u, name.find("dnnl_blocked:")) << name;
  EXPECT_EQ(std::string::npos, name.find("ref")) << name;
  const std::string dw = conv2d_cpu_impl_name(shape(64, 8, 64, 3, 1, 64), ConvPass::backward_data);
  EXPECT_EQ(std::string::npos, dw.find("ref")) << dw;
  EXPECT_EQ("direct", conv2d_cpu_impl_name(shape(64, 32, 64, 3, 1, 64), ConvPass::forward));
  EXPECT_EQ("gemm_1x1", conv2d_cpu_impl_name(shape(192, 32, 64, 1, 1, 4), ConvPass::forward));
}

void expect_error(const Conv2dShape& s, const std::string& needle) {
  SCOPED_TRACE(s.str());
  std::vector<float> buf(4096, 1.f);
  try {
    conv2d_forward_cpu(s, buf.data(), buf.data(), nullptr, buf.data());
    ADD_FAILURE() << "no rf::Error thrown, expected one about " << needle;
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string::npos, std::string(e.what()).find(needle)) << e.what();
  }
  EXPECT_THROW(s.validate(), rf::Error);
  EXPECT_THROW(conv2d_backward_data_cpu(s, buf.data(), buf.data(), buf.data()), rf::Error);
  EXPECT_THROW(conv2d_backward_weight_cpu(s, buf.data(), buf.data(), buf.data(), nullptr), rf::Error);
  EXPECT_THROW(conv2d_forward_ref<float>(s, buf.data(), buf.data(), nullptr, buf.data()), rf::Error);
}

TEST(Conv2d, BadShapesThrow) {
  const Conv2dShape ok = make_case(1, 4, 5, 5, 4, 3, 1, 1, 2, false, 0).s;
  EXPECT_NO_THROW(ok.validate());
  // Each case: one field of ok changed, and what the error must say.
  const struct {
    std::function<void(Conv2dShape&)> edit;
    const char* needle;
  } bad[] = {
      {[](Conv2dShape& s) { s.groups = 3; }, "multiple of groups"},
      {[](Conv2dShape& s) { s.K = 5; }, "K=5 is not a multiple"},
      {[](Conv2dShape& s) { s.N = 0; }, "sizes must be >= 1"},
      {[](Conv2dShape& s) { s.k = 0; }, "k=0"},
      {[](Conv2dShape& s) { s.stride = 0; }, "stride=0"},
      {[](Conv2dShape& s) { s.pad = -1; }, "pad=-1"},
      {[](Conv2dShape& s) { s.groups = 0; }, "groups=0"},
      {[](Conv2dShape& s) { s.k = 9; }, "larger than the padded input"},
      {[](Conv2dShape& s) { s.y_nstride = 10; }, "y_nstride=10"},
  };
  for (const auto& b : bad) {
    Conv2dShape s = ok;
    b.edit(s);
    expect_error(s, b.needle);
  }
  EXPECT_EQ("conv2d(N=1,C=4,H=5,W=5,K=4,k=3,s=1,p=1,g=2)", ok.str());
}

}  // namespace
}  // namespace rf

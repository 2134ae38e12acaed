// Tests of host/ops/shuffle.cpp: channel shuffle and channel concat. Pure data movement, so every
// comparison is exact: a known permutation written out by hand, fast == reference over a sweep,
// forward-then-backward round trips, and bad shapes.
#include "host/ops/shuffle.h"

#include <fmt/format.h>

#include <numeric>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using rf::testing::all_close;
using rf::testing::random_vec;

// Channel c of sample n filled with the value 100 n + c (HW copies), to read permutations off directly.
std::vector<float> labelled(int N, int C, int HW) {
  std::vector<float> v(size_t(N) * C * HW);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int e = 0; e < HW; ++e) v[(size_t(n) * C + c) * HW + e] = float(100 * n + c);
  return v;
}

TEST(ChannelShuffle, KnownPermutation) {
  // C=6, G=2 (C/G = 3): output channel j*3 + i takes input channel i*2 + j:
  // out 0,1,2 <- in 0,2,4 (j=0); out 3,4,5 <- in 1,3,5 (j=1).
  const int N = 2, C = 6, HW = 3, G = 2;
  const std::vector<int> from = {0, 2, 4, 1, 3, 5};
  auto x = labelled(N, C, HW);
  std::vector<float> y(x.size()), y_ref(x.size());
  rf::channel_shuffle_forward_cpu(N, C, HW, G, x.data(), y.data());
  rf::channel_shuffle_forward_ref(N, C, HW, G, x.data(), y_ref.data());
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int e = 0; e < HW; ++e) {
        EXPECT_EQ(y[(n * C + c) * HW + e], float(100 * n + from[c])) << "fast n=" << n << " c=" << c;
        EXPECT_EQ(y_ref[(n * C + c) * HW + e], float(100 * n + from[c])) << "ref n=" << n << " c=" << c;
      }
  // C=8, G=4 (the NL module's G_pw): out 0,1 <- in 0,4; out 2,3 <- in 1,5; out 4,5 <- 2,6; out 6,7 <- 3,7.
  const std::vector<int> from8 = {0, 4, 1, 5, 2, 6, 3, 7};
  auto x8 = labelled(1, 8, 1);
  std::vector<float> y8(8);
  rf::channel_shuffle_forward_cpu(1, 8, 1, 4, x8.data(), y8.data());
  for (int c = 0; c < 8; ++c) EXPECT_EQ(y8[c], float(from8[c])) << "C=8 G=4 c=" << c;
}

TEST(ChannelShuffle, FastEqualsReferenceAndBackwardInverts) {
  for (int N : {1, 2, 3})
    for (int C : {4, 6, 12, 64, 96})
      for (int G : {1, 2, 3, 4, 6})
        for (int HW : {1, 5, 16, 289}) {
          if (C % G) continue;
          SCOPED_TRACE(fmt::format("channel_shuffle(N={},C={},HW={},G={})", N, C, HW, G));
          auto x = random_vec<float>(size_t(N) * C * HW, N * 1000 + C * 10 + G + HW);
          std::vector<float> y(x.size()), y_ref(x.size()), back(x.size()), back_ref(x.size());
          rf::channel_shuffle_forward_cpu(N, C, HW, G, x.data(), y.data());
          rf::channel_shuffle_forward_ref(N, C, HW, G, x.data(), y_ref.data());
          ASSERT_TRUE(all_close(y, y_ref, 0, 0, "forward"));
          rf::channel_shuffle_backward_cpu(N, C, HW, G, y.data(), back.data());
          rf::channel_shuffle_backward_ref(N, C, HW, G, y.data(), back_ref.data());
          ASSERT_TRUE(all_close(back, back_ref, 0, 0, "backward"));
          ASSERT_TRUE(all_close(back, x, 0, 0, "backward(forward(x)) == x"));
          // Only G = 1 and G = C are identities; otherwise the shuffle must move something.
          if (G > 1 && G < C) {
            ASSERT_FALSE(all_close(y, x, 0, 0)) << "shuffle moved nothing";
          }
        }
}

// The backward of a permutation is its transpose: <shuffle(x), g> == <x, shuffle_backward(g)>.
TEST(ChannelShuffle, BackwardIsTheAdjoint) {
  const int N = 2, C = 12, HW = 5, G = 4;
  auto x = random_vec<double>(size_t(N) * C * HW, 1), g = random_vec<double>(x.size(), 2);
  std::vector<double> y(x.size()), dx(x.size());
  rf::channel_shuffle_forward_ref(N, C, HW, G, x.data(), y.data());
  rf::channel_shuffle_backward_ref(N, C, HW, G, g.data(), dx.data());
  EXPECT_NEAR(rf::testing::dot(y, g), rf::testing::dot(x, dx), 1e-12);
}

TEST(ConcatChannels, KnownLayoutAndSplitRoundTrip) {
  // Three parts of 2, 3, 1 channels: y channels 0-1 <- part 0, 2-4 <- part 1, 5 <- part 2.
  const int N = 2, HW = 4, P = 3, Cs[P] = {2, 3, 1}, C = 6;
  std::vector<std::vector<float>> parts;
  for (int p = 0; p < P; ++p) {
    std::vector<float> v(size_t(N) * Cs[p] * HW);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < Cs[p]; ++c)
        for (int e = 0; e < HW; ++e) v[(size_t(n) * Cs[p] + c) * HW + e] = float(1000 * p + 100 * n + 10 * c + e);
    parts.push_back(v);
  }
  const float* xs[P] = {parts[0].data(), parts[1].data(), parts[2].data()};
  const int part_of[C] = {0, 0, 1, 1, 1, 2}, chan_of[C] = {0, 1, 0, 1, 2, 0};
  for (int fast = 0; fast < 2; ++fast) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    std::vector<float> y(size_t(N) * C * HW, -1.f);
    fast ? rf::concat_channels_forward_cpu(N, HW, P, Cs, xs, y.data())
         : rf::concat_channels_forward_ref(N, HW, P, Cs, xs, y.data());
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int e = 0; e < HW; ++e)
          ASSERT_EQ(y[(size_t(n) * C + c) * HW + e], float(1000 * part_of[c] + 100 * n + 10 * chan_of[c] + e))
              << "n=" << n << " c=" << c << " e=" << e;
    std::vector<std::vector<float>> back(P);
    float* dxs[P];
    for (int p = 0; p < P; ++p) back[p].assign(parts[p].size(), -1.f), dxs[p] = back[p].data();
    fast ? rf::concat_channels_backward_cpu(N, HW, P, Cs, y.data(), dxs)
         : rf::concat_channels_backward_ref(N, HW, P, Cs, y.data(), dxs);
    for (int p = 0; p < P; ++p) EXPECT_EQ(back[p], parts[p]) << "part " << p;
  }
}

TEST(ConcatChannels, FastEqualsReferenceOverSweep) {
  const std::vector<std::vector<int>> splits = {{5}, {64, 64, 64}, {7, 1}, {1, 13, 6, 2}, {512, 64, 64}};
  for (int N : {1, 2, 3})
    for (int HW : {1, 9, 17 * 17})
      for (const auto& Cs : splits) {
        const int P = int(Cs.size()), C = std::accumulate(Cs.begin(), Cs.end(), 0);
        SCOPED_TRACE(fmt::format("concat_channels(N={},HW={},Cs={})", N, HW, fmt::join(Cs, "+")));
        std::vector<std::vector<float>> parts;
        std::vector<const float*> xs;
        for (int p = 0; p < P; ++p) parts.push_back(random_vec<float>(size_t(N) * Cs[p] * HW, 10 * p + N + HW));
        for (auto& v : parts) xs.push_back(v.data());
        std::vector<float> y(size_t(N) * C * HW), y_ref(y.size());
        rf::concat_channels_forward_cpu(N, HW, P, Cs.data(), xs.data(), y.data());
        rf::concat_channels_forward_ref(N, HW, P, Cs.data(), xs.data(), y_ref.data());
        ASSERT_TRUE(all_close(y, y_ref, 0, 0, "forward"));
        std::vector<std::vector<float>> back(P), back_ref(P);
        std::vector<float*> dxs(P), dxs_ref(P);
        for (int p = 0; p < P; ++p) {
          back[p].resize(parts[p].size()), back_ref[p].resize(parts[p].size());
          dxs[p] = back[p].data(), dxs_ref[p] = back_ref[p].data();
        }
        rf::concat_channels_backward_cpu(N, HW, P, Cs.data(), y.data(), dxs.data());
        rf::concat_channels_backward_ref(N, HW, P, Cs.data(), y.data(), dxs_ref.data());
        for (int p = 0; p < P; ++p) {
          ASSERT_TRUE(all_close(back[p], back_ref[p], 0, 0, fmt::format("backward part {}", p)));
          ASSERT_TRUE(all_close(back[p], parts[p], 0, 0, fmt::format("split(concat) part {}", p)));
        }
      }
}

TEST(ShuffleShapes, BadShapesThrow) {
  std::vector<float> a(64, 1.f), b(64);
  EXPECT_THROW(rf::channel_shuffle_forward_cpu(1, 6, 4, 4, a.data(), b.data()), rf::Error);  // 4 does not divide 6
  EXPECT_THROW(rf::channel_shuffle_forward_ref(1, 6, 4, 0, a.data(), b.data()), rf::Error);
  EXPECT_THROW(rf::channel_shuffle_backward_cpu(0, 4, 4, 2, a.data(), b.data()), rf::Error);
  EXPECT_THROW(rf::channel_shuffle_backward_ref(1, 4, 0, 2, a.data(), b.data()), rf::Error);
  try {
    rf::channel_shuffle_forward_cpu(1, 6, 4, 4, a.data(), b.data());
  } catch (const rf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("G=4"), std::string::npos) << e.what();
  }

  const float* xs[2] = {a.data(), a.data()};
  float* dxs[2] = {b.data(), nullptr};
  const int ok[2] = {2, 3}, zero[2] = {2, 0};
  EXPECT_THROW(rf::concat_channels_forward_cpu(1, 4, 2, zero, xs, b.data()), rf::Error);
  EXPECT_THROW(rf::concat_channels_forward_ref(1, 4, 0, ok, xs, b.data()), rf::Error);
  EXPECT_THROW(rf::concat_channels_forward_cpu(1, 0, 2, ok, xs, b.data()), rf::Error);
  EXPECT_THROW(rf::concat_channels_backward_cpu(1, 4, 2, ok, a.data(), dxs), rf::Error);  // null part
  EXPECT_THROW(rf::concat_channels_backward_ref(-1, 4, 2, ok, a.data(), dxs), rf::Error);
}

}  // namespace

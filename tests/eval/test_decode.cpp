// Tests of host/eval/decode.cpp: fast == reference exactly (same detections, same order, same bits) over a
// sweep of shapes and options on random heatmaps with many ties, plus hand cases: one peak, plateaus,
// top_k cut and its tie order, threshold, clipping, image numbering, bad inputs; and a fast/ref timing ratio.
#include "host/eval/decode.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using namespace rf::eval;

using rf::testing::expect_error;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

struct Case {
  int64_t N;
  int K, Hf, Wf;
  DecodeOptions opt;
  bool quantised;  // logits on a coarse grid: plateaus and cross-class score ties everywhere
  std::string str() const {
    std::ostringstream s;
    s << "decode_centernet(N=" << N << ",K=" << K << ",Hf=" << Hf << ",Wf=" << Wf << ",top_k=" << opt.top_k
      << ",thr=" << opt.score_threshold << ",stride=" << opt.stride << (quantised ? ",quantised" : "") << ")";
    return s.str();
  }
};

struct Head {
  std::vector<float> heat, wh, off;
};

Head random_head(const Case& c, uint32_t seed) {
  const size_t HW = size_t(c.Hf) * c.Wf;
  Head h;
  h.heat = rf::testing::random_vec<float>(c.N * c.K * HW, seed, -6.0, 3.0);
  if (c.quantised)
    for (auto& v : h.heat) v = std::round(v * 1.5f) / 1.5f;
  h.wh = rf::testing::random_vec<float>(c.N * 2 * HW, seed + 1, 0.1, 12.0);
  h.off = rf::testing::random_vec<float>(c.N * 2 * HW, seed + 2, 0.0, 1.0);
  return h;
}

::testing::AssertionResult same_detections(const std::vector<Detection>& got, const std::vector<Detection>& ref) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << got.size() << " detections vs " << ref.size() << " in the reference";
  for (size_t i = 0; i < got.size(); ++i) {
    const Detection &a = got[i], &b = ref[i];
    if (a.image != b.image || a.cls != b.cls || a.score != b.score || a.box.x0 != b.box.x0 ||
        a.box.y0 != b.box.y0 || a.box.x1 != b.box.x1 || a.box.y1 != b.box.y1)
      return ::testing::AssertionFailure() << "detection " << i << ": got (image " << a.image << ", cls " << a.cls
                                           << ", score " << a.score << ", x0 " << a.box.x0 << "), ref (image "
                                           << b.image << ", cls " << b.cls << ", score " << b.score << ", x0 "
                                           << b.box.x0 << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST(DecodeCenterNet, FastMatchesReferenceSweep) {
  const int sizes[] = {1, 2, 3, 5, 8, 13, 17, 40};
  const int top_ks[] = {1, 3, 20, 100, 100000};
  const float thresholds[] = {0.05f, 0.3f, 0.0f, 0.9f};
  int i = 0;
  int64_t total = 0, cut = 0;
  for (int Hf : sizes)
    for (int Wf : sizes)
      for (int q = 0; q < 2; ++q, ++i) {
        Case c{1 + i % 3, 1 + i % 4, Hf, Wf, DecodeOptions{top_ks[i % 5], thresholds[(i / 5) % 4], i % 2 ? 8 : 4},
               q == 1};
        SCOPED_TRACE(c.str());
        Head h = random_head(c, 1000 + i);
        auto ref = decode_centernet_ref(h.heat.data(), h.wh.data(), h.off.data(), c.N, c.K, c.Hf, c.Wf, c.opt, 7);
        auto got = decode_centernet(h.heat.data(), h.wh.data(), h.off.data(), c.N, c.K, c.Hf, c.Wf, c.opt, 7);
        ASSERT_TRUE(same_detections(got, ref));
        total += int64_t(ref.size());
        // Count cases where top_k actually cut something, so that the sweep exercises the partial sort.
        auto all = decode_centernet_ref(h.heat.data(), h.wh.data(), h.off.data(), c.N, c.K, c.Hf, c.Wf,
                                        DecodeOptions{1 << 30, c.opt.score_threshold, c.opt.stride}, 7);
        cut += all.size() > ref.size();
      }
  EXPECT_GT(total, 1000);  // the sweep is not vacuous
  EXPECT_GT(cut, 20);
}

TEST(DecodeCenterNet, FastMatchesReferenceAtThresholdBoundary) {
  // The fast path skips the expf for logits below a floor derived from the threshold; logits within a few
  // ulps of logit(threshold) make sure that floor never drops a cell whose float score reaches the threshold.
  const int Hf = 17, Wf = 19;
  std::mt19937 gen(3);
  for (float thr : {0.05f, 0.3f, 0.5f, 0.9f, 0.999f, 1e-30f}) {
    SCOPED_TRACE("threshold " + std::to_string(thr));
    const float l0 = float(std::log(double(thr) / (1.0 - double(thr))));
    std::vector<float> heat(2 * Hf * Wf), wh(2 * Hf * Wf, 1.0f), off(2 * Hf * Wf, 0.5f);
    for (auto& v : heat) {
      v = l0;
      const int steps = int(gen() % 64) - 32;
      for (int j = 0; j < std::abs(steps); ++j) v = std::nextafter(v, steps > 0 ? 1e30f : -1e30f);
    }
    const DecodeOptions opt{100000, thr, 8};
    auto ref = decode_centernet_ref(heat.data(), wh.data(), off.data(), 1, 2, Hf, Wf, opt, 0);
    auto got = decode_centernet(heat.data(), wh.data(), off.data(), 1, 2, Hf, Wf, opt, 0);
    ASSERT_TRUE(same_detections(got, ref));
    EXPECT_GT(ref.size(), 0u);
  }
}

TEST(DecodeCenterNet, OnePeakGivesOneBox) {
  // K=2, 4x5 map, stride 8 (input 40x32). Background logit -10 (score 4.5e-5 < .05). Class 1, cell (y=2, x=3):
  // logit 2, wh = (2, 1.5), off = (.25, .5): cx = 3.25*8 = 26, cy = 2.5*8 = 20, w = 16, h = 12
  // -> box (18, 14, 34, 26).
  const int K = 2, Hf = 4, Wf = 5, HW = Hf * Wf;
  std::vector<float> heat(K * HW, -10.0f), wh(2 * HW, 1.0f), off(2 * HW, 0.0f);
  const int i = 2 * Wf + 3;
  heat[HW + i] = 2.0f;
  wh[i] = 2.0f, wh[HW + i] = 1.5f;
  off[i] = 0.25f, off[HW + i] = 0.5f;
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    auto d = (fast ? decode_centernet : decode_centernet_ref)(heat.data(), wh.data(), off.data(), 1, K, Hf, Wf,
                                                              DecodeOptions{}, 0);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].image, 0);
    EXPECT_EQ(d[0].cls, 1);
    EXPECT_FLOAT_EQ(d[0].score, sigmoid(2.0f));
    EXPECT_FLOAT_EQ(d[0].box.x0, 18.0f);
    EXPECT_FLOAT_EQ(d[0].box.y0, 14.0f);
    EXPECT_FLOAT_EQ(d[0].box.x1, 34.0f);
    EXPECT_FLOAT_EQ(d[0].box.y1, 26.0f);
  }
}

TEST(DecodeCenterNet, PlateauCellsAreAllPeaksShouldersAreNot) {
  // 1 class, 4x5, background -10. A 2x2 plateau of logit 1 at (1,1) (1,2) (2,1) (2,2): every plateau cell
  // equals its 3x3 max, so all four are peaks (no plateau suppression, as CenterNet's maxpool == heat).
  // Cell (1,4) has logit 0 but touches nothing higher (its neighbours are (0..2, 3..4)): a peak too.
  // Cell (3,3) has logit .5 and touches (2,2) = 1: not a peak.
  const int Hf = 4, Wf = 5;
  std::vector<float> heat(Hf * Wf, -10.0f), wh(2 * Hf * Wf, 1.0f), off(2 * Hf * Wf, 0.5f);
  for (int y : {1, 2})
    for (int x : {1, 2}) heat[y * Wf + x] = 1.0f;
  heat[1 * Wf + 4] = 0.0f;
  heat[3 * Wf + 3] = 0.5f;
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    auto d = (fast ? decode_centernet : decode_centernet_ref)(heat.data(), wh.data(), off.data(), 1, 1, Hf, Wf,
                                                              DecodeOptions{}, 0);
    ASSERT_EQ(d.size(), 5u);
    // Equal scores rank by flat index: (1,1) (1,2) (2,1) (2,2), then (1,4) with the lower score.
    const int want_x0[] = {1, 2, 1, 2, 4}, want_y0[] = {1, 1, 2, 2, 1};
    for (int j = 0; j < 5; ++j) {
      EXPECT_FLOAT_EQ(d[j].box.x0, want_x0[j] * 8.0f) << j;  // cx = (x + .5)*8, w = 8
      EXPECT_FLOAT_EQ(d[j].box.y0, want_y0[j] * 8.0f) << j;
    }
    EXPECT_FLOAT_EQ(d[4].score, 0.5f);
  }
}

TEST(DecodeCenterNet, TopKCutAndTieOrder) {
  // 3 classes, 5x5, isolated peaks (no two within a 3x3 window of the same class):
  // class 0 (0,0) logit 3; class 1 (4,4) logit 1; class 2 (0,4) logit 3 (tie with class 0); class 1 (2,2) logit 2;
  // class 2 (4,0) logit 0. Ranking: c0 (0,0) [flat 0], c2 (0,4) [flat 54], c1 (2,2), c1 (4,4), c2 (4,0).
  const int K = 3, Hf = 5, Wf = 5, HW = 25;
  std::vector<float> heat(K * HW, -10.0f), wh(2 * HW, 1.0f), off(2 * HW, 0.0f);
  heat[0 * HW + 0] = 3.0f;
  heat[1 * HW + 24] = 1.0f;
  heat[2 * HW + 4] = 3.0f;
  heat[1 * HW + 12] = 2.0f;
  heat[2 * HW + 20] = 0.0f;
  const int want_cls[] = {0, 2, 1, 1, 2};
  for (bool fast : {false, true})
    for (int top_k : {1, 2, 3, 5, 10}) {
      SCOPED_TRACE(std::string(fast ? "fast" : "ref") + " top_k=" + std::to_string(top_k));
      auto d = (fast ? decode_centernet : decode_centernet_ref)(heat.data(), wh.data(), off.data(), 1, K, Hf, Wf,
                                                                DecodeOptions{top_k, 0.05f, 8}, 0);
      ASSERT_EQ(d.size(), size_t(std::min(top_k, 5)));
      for (size_t j = 0; j < d.size(); ++j) EXPECT_EQ(d[j].cls, want_cls[j]) << j;
    }
}

TEST(DecodeCenterNet, ScoreThresholdInclusive) {
  // One peak with logit 0 -> score exactly 0.5: kept at threshold 0.5 (drop is "score < threshold"),
  // dropped just above it.
  std::vector<float> heat(9, -10.0f), wh(18, 1.0f), off(18, 0.0f);
  heat[4] = 0.0f;
  for (bool fast : {false, true}) {
    auto fn = fast ? decode_centernet : decode_centernet_ref;
    EXPECT_EQ(fn(heat.data(), wh.data(), off.data(), 1, 1, 3, 3, DecodeOptions{100, 0.5f, 8}, 0).size(), 1u);
    EXPECT_EQ(fn(heat.data(), wh.data(), off.data(), 1, 1, 3, 3, DecodeOptions{100, 0.5001f, 8}, 0).size(), 0u);
    // Threshold 0 keeps every peak, but every background cell of a 3x3 map touches the centre: still 1.
    EXPECT_EQ(fn(heat.data(), wh.data(), off.data(), 1, 1, 3, 3, DecodeOptions{100, 0.0f, 8}, 0).size(), 1u);
  }
}

TEST(DecodeCenterNet, BoxesClippedToInput) {
  // 3x4 map, stride 8: input 32 wide, 24 high. Peak at (0,0) with off (.5,.5), wh (4,4): centre (4,4),
  // half size 16 -> (-12, -12, 20, 20) clipped to (0, 0, 20, 20). Peak at (2,3), off (.5,.5), wh (4, 2):
  // centre (28, 20), half sizes 16, 8 -> (12, 12, 44, 28) clipped to (12, 12, 32, 24).
  const int Hf = 3, Wf = 4, HW = 12;
  std::vector<float> heat(HW, -10.0f), wh(2 * HW, 4.0f), off(2 * HW, 0.5f);
  heat[0] = 2.0f;
  heat[2 * Wf + 3] = 1.0f;
  wh[HW + 2 * Wf + 3] = 2.0f;
  for (bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "ref");
    auto d = (fast ? decode_centernet : decode_centernet_ref)(heat.data(), wh.data(), off.data(), 1, 1, Hf, Wf,
                                                              DecodeOptions{}, 0);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].box.x0, 0.0f);
    EXPECT_EQ(d[0].box.y0, 0.0f);
    EXPECT_EQ(d[0].box.x1, 20.0f);
    EXPECT_EQ(d[0].box.y1, 20.0f);
    EXPECT_EQ(d[1].box.x0, 12.0f);
    EXPECT_EQ(d[1].box.y0, 12.0f);
    EXPECT_EQ(d[1].box.x1, 32.0f);
    EXPECT_EQ(d[1].box.y1, 24.0f);
  }
}

TEST(DecodeCenterNet, ImageIndicesAndOneByOne) {
  // Three 1x1 images of 2 classes: a 1x1 cell is always its own 3x3 max. Logits: image 0 (2, -10),
  // image 1 (-10, -10) -> nothing, image 2 (1, 1) -> both classes, class 0 first (lower flat index).
  std::vector<float> heat = {2, -10, -10, -10, 1, 1}, wh(6, 1.0f), off(6, 0.5f);
  for (bool fast : {false, true}) {
    auto d = (fast ? decode_centernet : decode_centernet_ref)(heat.data(), wh.data(), off.data(), 3, 2, 1, 1,
                                                              DecodeOptions{}, 40);
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].image, 40);
    EXPECT_EQ(d[1].image, 42);
    EXPECT_EQ(d[1].cls, 0);
    EXPECT_EQ(d[2].image, 42);
    EXPECT_EQ(d[2].cls, 1);
    EXPECT_EQ(d[2].box.x1, 8.0f);  // centre 4, width 8
  }
}

TEST(DecodeCenterNet, BadInputsThrow) {
  std::vector<float> heat(2 * 2 * 3 * 3, 0.0f), wh(2 * 2 * 9, 1.0f), off(2 * 2 * 9, 0.0f);
  heat[1 * 18 + 9 + 5] = std::nanf("");  // n=1, k=1, y=1, x=2
  for (bool fast : {false, true}) {
    auto fn = fast ? decode_centernet : decode_centernet_ref;
    expect_error([&] { fn(heat.data(), wh.data(), off.data(), 2, 2, 3, 3, DecodeOptions{}, 0); },
                 {"heat[32]", "n=1, k=1, y=1, x=2", "NaN"});
    expect_error([&] { fn(heat.data(), wh.data(), off.data(), 1, 0, 3, 3, DecodeOptions{}, 0); }, {"(0, 3, 3)"});
    expect_error([&] { fn(heat.data(), wh.data(), off.data(), 1, 2, 3, 3, DecodeOptions{0, 0.05f, 8}, 0); },
                 {"top_k = 0"});
    expect_error([&] { fn(heat.data(), wh.data(), off.data(), 1, 2, 3, 3, DecodeOptions{10, 0.05f, 0}, 0); },
                 {"stride = 0"});
    expect_error([&] { fn(heat.data(), wh.data(), off.data(), 1, 2, 3, 3, DecodeOptions{}, -1); },
                 {"first_image_index = -1"});
    expect_error([&] { fn(nullptr, wh.data(), off.data(), 1, 2, 3, 3, DecodeOptions{}, 0); }, {"null"});
  }
}

TEST(DecodeCenterNet, FastVsReferenceTiming) {
  // A trained-looking head: 20 classes at 64x64 (512x512 input, stride 8), background logits around -6
  // with a few hundred bumps per image. Reports the ratio; asserts only equality.
  Case c{8, 20, 64, 64, DecodeOptions{}, false};
  Head h = random_head(c, 99);
  std::mt19937 gen(5);
  for (auto& v : h.heat) v = -6.0f + 0.5f * v / 9.0f;
  for (int j = 0; j < 8 * 300; ++j) h.heat[gen() % h.heat.size()] = float(gen() % 400) / 100.0f - 2.0f;
  auto time = [&](auto fn, std::vector<Detection>& out) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 3; ++r)
      out = fn(h.heat.data(), h.wh.data(), h.off.data(), c.N, c.K, c.Hf, c.Wf, c.opt, int64_t(0));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
  };
  std::vector<Detection> ref, got;
  double t_ref = time(decode_centernet_ref, ref), t_fast = time(decode_centernet, got);
  ASSERT_TRUE(same_detections(got, ref));
  EXPECT_EQ(ref.size(), size_t(8 * 100));
  std::printf("decode_centernet(N=8,K=20,64x64): ref %.2f ms, fast %.2f ms, ref/fast %.1fx\n", t_ref * 1e3,
              t_fast * 1e3, t_ref / t_fast);
}

}  // namespace

// Synthetic detection / segmentation scenes: a function of (seed, index) only; detection and segmentation
// share the images; every pixel labelled with a shape class lies inside a box of that class; boxes are
// tight; scenes hold 1..max_objects objects of all three classes.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>

#include "datasets/synthetic_dense.h"
#include "ds_testing.h"

using namespace rf::data;
using rf::testing::contains;
using rf::testing::error_of;

TEST(SyntheticDense, DeterministicAndSeedSensitive) {
  const DetDataset a = make_synthetic_det(60, 7), b = make_synthetic_det(60, 7), c = make_synthetic_det(60, 8);
  EXPECT_EQ(a.content_hash(), b.content_hash());
  EXPECT_NE(a.content_hash(), c.content_hash());
  const SegDataset s = make_synthetic_seg(60, 7), t = make_synthetic_seg(60, 7), u = make_synthetic_seg(60, 8);
  EXPECT_EQ(s.content_hash(), t.content_hash());
  EXPECT_NE(s.content_hash(), u.content_hash());
  EXPECT_NO_THROW(a.validate());
  EXPECT_NO_THROW(s.validate());
  EXPECT_EQ(a.classes, (std::vector<std::string>{"disc", "square", "triangle"}));
  EXPECT_EQ(s.classes, (std::vector<std::string>{"disc", "square", "triangle", "background"}));
  EXPECT_EQ(s.void_label, 255);
  // Same images for both tasks; different images within a set.
  for (int64_t i = 0; i < 60; ++i) ASSERT_EQ(a.images[size_t(i)].hwc, s.images[size_t(i)].hwc) << i;
  EXPECT_NE(a.images[0].hwc, a.images[1].hwc);
  EXPECT_EQ(a.images[0].H, 128);
  EXPECT_EQ(a.images[0].W, 128);
}

TEST(SyntheticDense, ThreadCountAndRangeInvariant) {
  const DetDataset one = make_synthetic_det(40, 3, 0, 64, 80, 4, 1), two = make_synthetic_det(40, 3, 0, 64, 80, 4, 2),
                   three = make_synthetic_det(40, 3, 0, 64, 80, 4, 3);
  EXPECT_EQ(one.content_hash(), two.content_hash());
  EXPECT_EQ(one.content_hash(), three.content_hash());
  const SegDataset s1 = make_synthetic_seg(40, 3, 0, 64, 80, 4, 1), s2 = make_synthetic_seg(40, 3, 0, 64, 80, 4, 2);
  EXPECT_EQ(s1.content_hash(), s2.content_hash());
  const DetDataset tail = make_synthetic_det(10, 3, 30, 64, 80);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(tail.images[size_t(i)].hwc, one.images[size_t(30 + i)].hwc) << i;
    EXPECT_EQ(tail.boxes[size_t(i)].size(), one.boxes[size_t(30 + i)].size()) << i;
    EXPECT_EQ(tail.ids[size_t(i)], one.ids[size_t(30 + i)]);
  }
  const DenseSample x = synthetic_dense_sample(3, 17, 64, 80);
  EXPECT_EQ(x.image.hwc, one.images[17].hwc);
  EXPECT_EQ(x.label, s1.labels[17]);
}

TEST(SyntheticDense, MaskPixelsLieInsideTightBoxes) {
  const int64_t n = 150;
  const DetDataset d = make_synthetic_det(n, 11);
  const SegDataset s = make_synthetic_seg(n, 11);
  std::vector<int64_t> objects_per_image(5, 0), boxes_per_class(3, 0), pix(5, 0);
  for (int64_t i = 0; i < n; ++i) {
    const auto& boxes = d.boxes[size_t(i)];
    const auto& L = s.labels[size_t(i)];
    const int H = d.images[size_t(i)].H, W = d.images[size_t(i)].W;
    ASSERT_GE(boxes.size(), 1u);
    ASSERT_LE(boxes.size(), 4u);
    ++objects_per_image[boxes.size()];
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const int v = L[size_t(y * W + x)];
        ++pix[v == 255 ? 4 : size_t(v)];
        if (v >= 3) continue;
        bool in = false;
        for (const BoxAnn& b : boxes)
          in = in || (b.cls == v && float(x) >= b.x0 && float(x) + 1 <= b.x1 && float(y) >= b.y0 && float(y) + 1 <= b.y1);
        ASSERT_TRUE(in) << "image " << i << " pixel (" << x << ", " << y << ") class " << v << " outside its boxes";
      }
    // Tight: each box edge row/column holds a pixel of its class or of void (the soft edge).
    for (const BoxAnn& b : boxes) {
      ++boxes_per_class[size_t(b.cls)];
      EXPECT_GE(b.width(), 4.0f);
      EXPECT_GE(b.height(), 4.0f);
      auto edge_ok = [&](int x0, int x1, int y0, int y1) {
        for (int y = y0; y < y1; ++y)
          for (int x = x0; x < x1; ++x) {
            const int v = L[size_t(y * W + x)];
            if (v == b.cls || v == 255) return true;
          }
        return false;
      };
      const int X0 = int(b.x0), X1 = int(b.x1), Y0 = int(b.y0), Y1 = int(b.y1);
      EXPECT_TRUE(edge_ok(X0, X0 + 1, Y0, Y1) && edge_ok(X1 - 1, X1, Y0, Y1) && edge_ok(X0, X1, Y0, Y0 + 1) &&
                  edge_ok(X0, X1, Y1 - 1, Y1))
          << "image " << i << " box not tight";
    }
  }
  for (int k = 1; k <= 4; ++k) EXPECT_GT(objects_per_image[size_t(k)], n / 10) << k << " objects";
  for (int c = 0; c < 3; ++c) EXPECT_GT(boxes_per_class[size_t(c)], n / 4) << "class " << c;
  const int64_t total = n * 128 * 128;
  EXPECT_GT(pix[3], total / 3);   // background dominates
  EXPECT_LT(pix[4], total / 10);  // the void ring is thin
  EXPECT_GT(pix[4], 0);
}

TEST(SyntheticDense, ShapesDifferFromTheirBackground) {
  // The mean colour of a lone shape's pixels differs from the background's by a visible margin (not blank
  // images); scenes with several objects may mix lighter and darker shapes, so only one-object scenes count.
  const SegDataset s = make_synthetic_seg(80, 5);
  const DetDataset d = make_synthetic_det(80, 5);
  int checked = 0;
  for (int64_t i = 0; i < 80; ++i) {
    if (d.boxes[size_t(i)].size() != 1) continue;
    ++checked;
    double fg = 0, bg = 0;
    int64_t nf = 0, nb = 0;
    const auto& L = s.labels[size_t(i)];
    const auto& P = s.images[size_t(i)].hwc;
    for (size_t p = 0; p < L.size(); ++p) {
      const double lum = (P[p * 3] + P[p * 3 + 1] + P[p * 3 + 2]) / 3.0;
      if (L[p] < 3) {
        fg += lum;
        ++nf;
      } else if (L[p] == 3) {
        bg += lum;
        ++nb;
      }
    }
    ASSERT_GT(nf, 0);
    ASSERT_GT(nb, 0);
    EXPECT_GT(std::abs(fg / double(nf) - bg / double(nb)), 30.0) << "image " << i;
  }
  EXPECT_GT(checked, 5);
}

TEST(SyntheticDense, BadArguments) {
  EXPECT_TRUE(contains(error_of([] { make_synthetic_det(0, 1); }), "n = 0"));
  EXPECT_TRUE(contains(error_of([] { make_synthetic_seg(5, 1, 0, 8, 8); }), "size 8x8"));
  EXPECT_TRUE(contains(error_of([] { make_synthetic_det(5, 1, 0, 64, 64, 0); }), "max_objects 0"));
  EXPECT_TRUE(contains(error_of([] { synthetic_dense_sample(1, -1); }), "index -1"));
}

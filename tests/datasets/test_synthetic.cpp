// Synthetic set: a function of (seed, index) only; balanced classes; images that are not blank and whose
// classes differ in shape, not in a trivial statistic.
#include <gtest/gtest.h>

#include <cmath>

#include "datasets/synthetic.h"
#include "ds_testing.h"

using namespace rf::data;

TEST(Synthetic, SameSeedSameHashDifferentSeedDiffers) {
  const Dataset a = make_synthetic(200, 7), b = make_synthetic(200, 7), c = make_synthetic(200, 8);
  EXPECT_EQ(a.content_hash(), b.content_hash());
  EXPECT_NE(a.content_hash(), c.content_hash());
  EXPECT_NO_THROW(a.validate());
  EXPECT_EQ(a.classes.size(), 10u);
}

TEST(Synthetic, ThreadCountAndRangeInvariant) {
  const Dataset one = make_synthetic(150, 3, 0, 32, 32, 1), two = make_synthetic(150, 3, 0, 32, 32, 2),
                three = make_synthetic(150, 3, 0, 32, 32, 3);
  EXPECT_EQ(one.content_hash(), two.content_hash());
  EXPECT_EQ(one.content_hash(), three.content_hash());
  // Images 100..149 made on their own equal the same indices inside the bigger set.
  const Dataset tail = make_synthetic(50, 3, 100);
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(tail.labels[size_t(i)], one.labels[size_t(100 + i)]);
    ASSERT_TRUE(std::equal(tail.image(i), tail.image(i) + tail.image_size(), one.image(100 + i))) << "image " << i;
  }
  std::vector<uint8_t> img(3 * 32 * 32);
  synthetic_image(3, 42, 32, 32, img.data());
  EXPECT_TRUE(std::equal(img.begin(), img.end(), one.image(42)));
  EXPECT_EQ(synthetic_label(3, 42), one.labels[42]);
}

TEST(Synthetic, ClassesAreBalancedAndShuffled) {
  const Dataset d = make_synthetic(1000, 11);
  for (int64_t c : d.class_counts()) EXPECT_EQ(c, 100);
  int same_as_mod = 0;  // labels are not simply index % 10
  for (int64_t i = 0; i < d.N; ++i) same_as_mod += d.labels[size_t(i)] == i % 10;
  EXPECT_LT(same_as_mod, 300);
}

TEST(Synthetic, ImagesHaveContentAndVaryWithinAClass) {
  const Dataset d = make_synthetic(100, 1);
  const int64_t isz = d.image_size();
  double sum_std = 0;
  for (int64_t i = 0; i < d.N; ++i) {
    double m = 0, m2 = 0;
    for (int64_t p = 0; p < isz; ++p) {
      m += d.image(i)[p];
      m2 += double(d.image(i)[p]) * d.image(i)[p];
    }
    m /= double(isz);
    const double sd = std::sqrt(std::max(0.0, m2 / double(isz) - m * m));
    EXPECT_GT(sd, 5.0) << "image " << i << " is nearly flat";
    sum_std += sd;
  }
  // Two images of the same class are different images.
  int64_t first = -1, second = -1;
  for (int64_t i = 0; i < d.N && second < 0; ++i)
    if (d.labels[size_t(i)] == 4) (first < 0 ? first : second) = i;
  ASSERT_GE(second, 0);
  EXPECT_FALSE(std::equal(d.image(first), d.image(first) + isz, d.image(second)));
}

// The shape, not the colour, carries the class: mean brightness per class is about the same, while a
// nearest-class-mean classifier on the shape mask (pixel differs from the border colour) beats chance.
TEST(Synthetic, ClassIsInTheShape) {
  const int n = 2000;
  const Dataset d = make_synthetic(n, 21);
  const int H = 32, W = 32, P = H * W;
  auto mask = [&](int64_t i) {  // 1 where the luminance differs from the image's corner luminance by > 40
    std::vector<float> m(static_cast<size_t>(P));
    const uint8_t* im = d.image(i);
    auto lum = [&](int p) { return (float(im[p]) + float(im[P + p]) + float(im[2 * P + p])) / 3.0f; };
    const float corner = (lum(0) + lum(W - 1) + lum((H - 1) * W) + lum(P - 1)) / 4.0f;
    for (int p = 0; p < P; ++p) m[size_t(p)] = std::fabs(lum(p) - corner) > 40.0f ? 1.0f : 0.0f;
    return m;
  };
  const int train = 1500;
  std::vector<std::vector<float>> mean(10, std::vector<float>(size_t(P), 0.0f));
  std::vector<int> count(10, 0);
  for (int64_t i = 0; i < train; ++i) {
    const auto m = mask(i);
    const int c = d.labels[size_t(i)];
    ++count[size_t(c)];
    for (int p = 0; p < P; ++p) mean[size_t(c)][size_t(p)] += m[size_t(p)];
  }
  for (int c = 0; c < 10; ++c)
    for (auto& v : mean[size_t(c)]) v /= float(count[size_t(c)]);
  int correct = 0;
  for (int64_t i = train; i < n; ++i) {
    const auto m = mask(i);
    int best = 0;
    float best_d = 1e30f;
    for (int c = 0; c < 10; ++c) {
      float dist = 0;
      for (int p = 0; p < P; ++p) dist += (m[size_t(p)] - mean[size_t(c)][size_t(p)]) * (m[size_t(p)] - mean[size_t(c)][size_t(p)]);
      if (dist < best_d) best_d = dist, best = c;
    }
    correct += best == d.labels[size_t(i)];
  }
  const double acc = double(correct) / double(n - train);
  std::printf("nearest-mean accuracy on shape masks: %.3f (chance 0.1)\n", acc);
  EXPECT_GT(acc, 0.2);   // learnable
  EXPECT_LT(acc, 0.95);  // but not trivially separable by a template
}

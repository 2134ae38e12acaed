// Dense augmentation: the segmentation mask and the detection boxes of one synthetic scene stay consistent
// through scale / crop / pad / flip; flip twice = identity and flipping = mirroring the unflipped output;
// disabled = resize_bilinear (boxes scaled, labels nearest); same (seed, epoch, index) -> same output; the box
// drop rules; batches = normalised samples, whatever the thread count.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>

#include "datasets/dense.h"
#include "datasets/synthetic_dense.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {

DenseAugment aug(int h, int w) {
  DenseAugment a;
  a.out_h = h;
  a.out_w = w;
  return a;
}

bool inside_box_of_class(const std::vector<BoxAnn>& boxes, int cls, int x, int y) {
  const float cx = float(x) + 0.5f, cy = float(y) + 0.5f;  // the pixel's centre
  for (const BoxAnn& b : boxes)
    if (b.cls == cls && cx >= b.x0 && cx < b.x1 && cy >= b.y0 && cy < b.y1) return true;
  return false;
}

void expect_same_boxes(const std::vector<BoxAnn>& a, const std::vector<BoxAnn>& b, float tol = 1e-4f) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_NEAR(a[k].x0, b[k].x0, tol) << k;
    EXPECT_NEAR(a[k].y0, b[k].y0, tol) << k;
    EXPECT_NEAR(a[k].x1, b[k].x1, tol) << k;
    EXPECT_NEAR(a[k].y1, b[k].y1, tol) << k;
    EXPECT_EQ(a[k].cls, b[k].cls) << k;
  }
}

}  // namespace

TEST(DenseAugment, MaskAndBoxesStayConsistent) {
  const int64_t n = 40;
  const DetDataset d = make_synthetic_det(n, 21);
  const SegDataset s = make_synthetic_seg(n, 21);
  DenseAugment a = aug(96, 112);
  a.scale_min = 0.6f;
  a.scale_max = 1.5f;
  a.min_visible = 0;  // keep every box that shows at all, so every visible mask pixel has its box
  a.min_side = 0;
  int64_t in = 0, total = 0, flips = 0, pads = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      const DenseSample det = augment_det(d, i, a, 5, epoch), seg = augment_seg(s, i, a, 5, epoch);
      ASSERT_EQ(det.image.hwc, seg.image.hwc) << "the two views got different transforms";
      ASSERT_EQ(seg.label.size(), 96u * 112u);
      int64_t in_i = 0, total_i = 0;
      for (int y = 0; y < 96; ++y)
        for (int x = 0; x < 112; ++x) {
          const int v = seg.label[size_t(y * 112 + x)];
          if (v >= 3) continue;
          ++total_i;
          in_i += inside_box_of_class(det.boxes, v, x, y);
        }
      if (total_i > 0) {
        EXPECT_GE(double(in_i), 0.95 * double(total_i)) << "image " << i << " epoch " << epoch;
      }
      in += in_i;
      total += total_i;
      const DenseAugParams p = dense_augment_params(a, 5, epoch, i);
      flips += p.flip;
      pads += (p.Hs < 96 || p.Ws < 112);
    }
  EXPECT_GE(double(in), 0.99 * double(total));
  EXPECT_GT(total, 100000);
  EXPECT_GT(flips, 20);  // both flips and pads were exercised
  EXPECT_GT(pads, 10);

  // Default drop rules: each kept box still shows its object (pixels of its class, or the void ring).
  const DenseAugment b = aug(96, 112);
  int64_t kept = 0, showing = 0, dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const DenseSample det = augment_det(d, i, b, 9, 0), seg = augment_seg(s, i, b, 9, 0);
    DenseAugment keep_all = b;
    keep_all.min_visible = 0;
    keep_all.min_side = 0;
    dropped += int64_t(augment_det(d, i, keep_all, 9, 0).boxes.size() - det.boxes.size());
    for (const BoxAnn& bx : det.boxes) {
      ++kept;
      int64_t cnt = 0;
      for (int y = int(bx.y0); y < int(std::ceil(bx.y1)); ++y)
        for (int x = int(bx.x0); x < int(std::ceil(bx.x1)); ++x) cnt += seg.label[size_t(y * 112 + x)] == bx.cls;
      showing += cnt > 0;
    }
  }
  EXPECT_GE(double(showing), 0.95 * double(kept));
  EXPECT_GT(kept, n);
  EXPECT_GT(dropped, 0);  // the rule did run
}

TEST(DenseAugment, FlipTwiceIsIdentityAndFlipMirrorsTheOutput) {
  const DenseSample src = synthetic_dense_sample(4, 2, 90, 120);
  const DenseAugment a = aug(80, 100);
  for (int64_t idx = 0; idx < 12; ++idx) {
    DenseAugParams p = dense_augment_params(a, 1, 0, idx);
    p.flip = false;
    DenseSample plain = apply_dense_augment(src.image, &src.boxes, &src.label, 255, p, a);
    p.flip = true;
    const DenseSample flipped = apply_dense_augment(src.image, &src.boxes, &src.label, 255, p, a);
    DenseSample twice = plain;
    hflip_sample(twice);
    EXPECT_EQ(twice.image.hwc, flipped.image.hwc) << idx;
    EXPECT_EQ(twice.label, flipped.label) << idx;
    expect_same_boxes(twice.boxes, flipped.boxes);
    hflip_sample(twice);
    EXPECT_EQ(twice.image.hwc, plain.image.hwc);
    EXPECT_EQ(twice.label, plain.label);
    expect_same_boxes(twice.boxes, plain.boxes);  // W - (W - x): float rounding only
    EXPECT_NE(flipped.image.hwc, plain.image.hwc);
  }
}

TEST(DenseAugment, DisabledIsPlainResize) {
  const DenseSample src = synthetic_dense_sample(8, 3, 50, 70);
  DenseAugment a = aug(37, 91);
  a.enabled = false;
  const DenseAugParams p = dense_augment_params(a, 1, 2, 3);
  EXPECT_EQ(p.Hs, 37);
  EXPECT_EQ(p.Ws, 91);
  EXPECT_FALSE(p.flip);
  const DenseSample out = apply_dense_augment(src.image, &src.boxes, &src.label, 255, p, a);
  EXPECT_EQ(out.image.hwc, resize_bilinear(src.image, 37, 91).hwc);
  for (int y = 0; y < 37; ++y)
    for (int x = 0; x < 91; ++x) {
      const int sy = std::min(49, int((y + 0.5) * 50 / 37)), sx = std::min(69, int((x + 0.5) * 70 / 91));
      ASSERT_EQ(out.label[size_t(y * 91 + x)], src.label[size_t(sy * 70 + sx)]) << x << "," << y;
    }
  ASSERT_EQ(out.boxes.size(), src.boxes.size());
  for (size_t k = 0; k < src.boxes.size(); ++k) {
    EXPECT_NEAR(out.boxes[k].x0, src.boxes[k].x0 * 91.0f / 70.0f, 1e-4);
    EXPECT_NEAR(out.boxes[k].x1, src.boxes[k].x1 * 91.0f / 70.0f, 1e-4);
    EXPECT_NEAR(out.boxes[k].y0, src.boxes[k].y0 * 37.0f / 50.0f, 1e-4);
    EXPECT_NEAR(out.boxes[k].y1, src.boxes[k].y1 * 37.0f / 50.0f, 1e-4);
  }
  // Enabled with scale 1..1 and no flip is the same transform.
  DenseAugment e = aug(37, 91);
  e.scale_min = e.scale_max = 1.0f;
  e.flip = false;
  const DenseSample o2 = apply_dense_augment(src.image, &src.boxes, &src.label, 255, dense_augment_params(e, 1, 2, 3), e);
  EXPECT_EQ(o2.image.hwc, out.image.hwc);
  EXPECT_EQ(o2.label, out.label);
}

TEST(DenseAugment, SameSeedEpochIndexSameOutput) {
  const DetDataset d = make_synthetic_det(8, 2, 0, 64, 64);
  const DenseAugment a = aug(48, 56);
  const DenseSample x = augment_det(d, 5, a, 77, 3), y = augment_det(d, 5, a, 77, 3);
  EXPECT_EQ(x.image.hwc, y.image.hwc);
  expect_same_boxes(x.boxes, y.boxes, 0);
  int differ_epoch = 0, differ_seed = 0, flips = 0;
  for (int64_t i = 0; i < 400; ++i) {
    const DenseAugParams p = dense_augment_params(a, 77, 0, i), q = dense_augment_params(a, 77, 1, i),
                         r = dense_augment_params(a, 78, 0, i);
    differ_epoch += (p.Hs != q.Hs || p.crop_x != q.crop_x || p.flip != q.flip);
    differ_seed += (p.Hs != r.Hs || p.crop_x != r.crop_x || p.flip != r.flip);
    flips += p.flip;
    ASSERT_GE(p.Hs, 36);  // 48 * 0.75
    ASSERT_LE(p.Hs, 60);  // 48 * 1.25
    ASSERT_GE(p.crop_y, std::min(0, p.Hs - 48));
    ASSERT_LE(p.crop_y, std::max(0, p.Hs - 48));
    ASSERT_GE(p.crop_x, std::min(0, p.Ws - 56));
    ASSERT_LE(p.crop_x, std::max(0, p.Ws - 56));
  }
  EXPECT_GT(differ_epoch, 300);
  EXPECT_GT(differ_seed, 300);
  EXPECT_GT(flips, 150);
  EXPECT_LT(flips, 250);
}

TEST(DenseAugment, DropRulesAndPadding) {
  Image img;
  img.H = img.W = 100;
  img.C = 3;
  img.hwc.assign(100 * 100 * 3, 200);
  std::vector<uint8_t> label(100 * 100, 1);
  const std::vector<BoxAnn> boxes = {
      {40, 10, 60, 30, 0},    // -> [-10, 10): half visible, kept as [0, 10)
      {30, 10, 55, 30, 1},    // -> [-20, 5): 20 % visible, dropped
      {49, 10, 51.5f, 30, 2}, // -> [-1, 1.5): 60 % visible but 1.5 px wide, dropped
      {0, 0, 20, 20, 0},      // -> [-50, -30): outside, dropped
      {55, 40, 70, 99, 2},    // -> [5, 20): inside, kept
  };
  DenseAugment a = aug(100, 100);
  DenseAugParams p;
  p.Hs = p.Ws = 100;
  p.crop_x = 50;  // output x reads scaled x + 50: x >= 50 is padding
  const DenseSample s = apply_dense_augment(img, &boxes, &label, 7, p, a);
  ASSERT_EQ(s.boxes.size(), 2u);
  EXPECT_FLOAT_EQ(s.boxes[0].x0, 0);
  EXPECT_FLOAT_EQ(s.boxes[0].x1, 10);
  EXPECT_EQ(s.boxes[1].cls, 2);
  EXPECT_FLOAT_EQ(s.boxes[1].x0, 5);
  EXPECT_FLOAT_EQ(s.boxes[1].y1, 99);
  const uint8_t pad[3] = {uint8_t(std::lround(255 * a.mean[0])), uint8_t(std::lround(255 * a.mean[1])),
                          uint8_t(std::lround(255 * a.mean[2]))};
  for (int y = 0; y < 100; y += 7)
    for (int x = 0; x < 100; ++x) {
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(s.image.hwc[size_t((y * 100 + x) * 3 + c)], x < 50 ? 200 : pad[c]) << x << "," << y;
      ASSERT_EQ(s.label[size_t(y * 100 + x)], x < 50 ? 1 : 7);
    }
  // Disabled: nothing is dropped for being small.
  a.enabled = false;
  DenseAugParams q;
  q.Hs = q.Ws = 100;
  EXPECT_EQ(apply_dense_augment(img, &boxes, nullptr, 7, q, a).boxes.size(), boxes.size());
  // A smaller scaled image is padded on every side that the offset leaves open.
  a.enabled = true;
  DenseAugParams r;
  r.Hs = r.Ws = 50;
  r.crop_y = -10;
  r.crop_x = -30;
  const DenseSample t = apply_dense_augment(img, nullptr, &label, 7, r, a);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 100; ++x) {
      const bool in = y >= 10 && y < 60 && x >= 30 && x < 80;
      ASSERT_EQ(t.label[size_t(y * 100 + x)], in ? 1 : 7) << x << "," << y;
    }
}

TEST(DenseAugment, BatchesAreNormalisedSamplesAndThreadInvariant) {
  const DetDataset d = make_synthetic_det(10, 6, 0, 64, 72);
  const SegDataset s = make_synthetic_seg(10, 6, 0, 64, 72);
  const DenseAugment a = aug(40, 48);
  const std::vector<int64_t> idx = {3, 0, 7, 3, 9};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const DenseBatch d1 = make_det_batch(d, idx, a, 12, 4), s1 = make_seg_batch(s, idx, a, 12, 4);
  omp_set_num_threads(3);
  const DenseBatch d3 = make_det_batch(d, idx, a, 12, 4), s3 = make_seg_batch(s, idx, a, 12, 4);
  omp_set_num_threads(saved);
  EXPECT_EQ(d1.x, d3.x);
  EXPECT_EQ(s1.x, s3.x);
  EXPECT_EQ(s1.labels, s3.labels);
  EXPECT_EQ(d1.x, s1.x);  // same images, same transforms
  ASSERT_EQ(d1.N, 5);
  EXPECT_EQ(d1.H, 40);
  EXPECT_EQ(d1.W, 48);
  EXPECT_EQ(d1.index, idx);
  EXPECT_TRUE(d1.labels.empty());
  ASSERT_EQ(s1.labels.size(), 5u * 40 * 48);
  ASSERT_EQ(d1.boxes.size(), 5u);
  const size_t plane = 40 * 48;
  for (size_t k = 0; k < idx.size(); ++k) {
    const DenseSample ds = augment_det(d, idx[k], a, 12, 4), ss = augment_seg(s, idx[k], a, 12, 4);
    expect_same_boxes(d1.boxes[k], ds.boxes, 0);
    EXPECT_TRUE(std::equal(ss.label.begin(), ss.label.end(), s1.labels.begin() + std::ptrdiff_t(k * plane)));
    for (size_t q = 0; q < plane; q += 13)
      for (int c = 0; c < 3; ++c) {
        const float want = (float(ds.image.hwc[q * 3 + size_t(c)]) / 255.0f - a.mean[size_t(c)]) / a.std[size_t(c)];
        ASSERT_FLOAT_EQ(d1.x[(k * 3 + size_t(c)) * plane + q], want);
      }
  }
  // Positions 0 and 3 are the same sample (index 3, same seed and epoch).
  EXPECT_TRUE(std::equal(d1.x.begin(), d1.x.begin() + std::ptrdiff_t(3 * plane), d1.x.begin() + std::ptrdiff_t(9 * plane)));
  EXPECT_TRUE(contains(error_of([&] { make_det_batch(d, {0, 10}, a, 1, 0); }), "index 10 (position 1)"));
  EXPECT_TRUE(contains(error_of([&] { make_seg_batch(s, {0}, aug(0, 8), 1, 0); }), "output size 0x8"));
}

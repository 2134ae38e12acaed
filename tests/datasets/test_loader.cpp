// Input pipeline: augmentation determinism, crop/flip on a known image, epoch permutations, and the threaded
// BatchLoader against the single-threaded definition (make_batch), early stop, worker errors.
#include <gtest/gtest.h>

#include <set>

#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "ds_testing.h"

using namespace rf::data;
using rf::testing::contains;
using rf::testing::error_of;

TEST(Augment, SameInputsSameParamsEpochsDiffer) {
  int differ = 0, flips = 0;
  std::set<int> dys, dxs;
  for (int64_t i = 0; i < 1000; ++i) {
    const Augment a = augment_params(9, 3, i, 4, true), b = augment_params(9, 3, i, 4, true);
    EXPECT_EQ(a.dy, b.dy);
    EXPECT_EQ(a.dx, b.dx);
    EXPECT_EQ(a.flip, b.flip);
    const Augment e = augment_params(9, 4, i, 4, true);
    differ += (a.dy != e.dy || a.dx != e.dx || a.flip != e.flip);
    flips += a.flip;
    dys.insert(a.dy);
    dxs.insert(a.dx);
    EXPECT_FALSE(augment_params(9, 3, i, 4, false).flip);
  }
  EXPECT_GT(differ, 900);  // 1 - 1/162 of them should differ
  EXPECT_EQ(dys.size(), 9u);
  EXPECT_EQ(dxs.size(), 9u);
  EXPECT_GT(flips, 430);
  EXPECT_LT(flips, 570);
  // The seed matters too.
  int seed_differ = 0;
  for (int64_t i = 0; i < 100; ++i) {
    const Augment a = augment_params(9, 3, i, 4, true), b = augment_params(10, 3, i, 4, true);
    seed_differ += (a.dy != b.dy || a.dx != b.dx || a.flip != b.flip);
  }
  EXPECT_GT(seed_differ, 90);
}

TEST(Augment, CropAndFlipOnAKnownImage) {
  const int C = 3, H = 4, W = 5, pad = 2;
  std::vector<uint8_t> img(size_t(C * H * W));
  for (size_t i = 0; i < img.size(); ++i) img[i] = uint8_t(10 + i);  // value = 10 + (c*H + y)*W + x
  Normalize id;
  id.mean = {0, 0, 0};
  id.std = {1, 1, 1};
  const NormalizeLut lut(id, C);
  auto in = [&](int c, int y, int x) { return float(10 + (c * H + y) * W + x) / 255.0f; };
  std::vector<float> out(img.size());
  auto at = [&](int c, int y, int x) { return out[size_t((c * H + y) * W + x)]; };

  transform_image(img.data(), C, H, W, {pad, pad, false}, pad, lut, out.data());  // centre crop = identity
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) ASSERT_FLOAT_EQ(at(c, y, x), in(c, y, x));

  transform_image(img.data(), C, H, W, {0, 0, false}, pad, lut, out.data());  // shifted down-right by 2
  EXPECT_FLOAT_EQ(at(0, 0, 0), 0.0f);
  EXPECT_FLOAT_EQ(at(1, 1, 4), 0.0f);
  EXPECT_FLOAT_EQ(at(1, 2, 2), in(1, 0, 0));
  EXPECT_FLOAT_EQ(at(2, 3, 4), in(2, 1, 2));

  transform_image(img.data(), C, H, W, {3, 4, false}, pad, lut, out.data());  // up 1, left 2
  EXPECT_FLOAT_EQ(at(0, 0, 0), in(0, 1, 2));
  EXPECT_FLOAT_EQ(at(0, 2, 2), in(0, 3, 4));
  EXPECT_FLOAT_EQ(at(0, 3, 0), 0.0f);  // row 4 is outside
  EXPECT_FLOAT_EQ(at(0, 0, 3), 0.0f);  // column 5 is outside

  transform_image(img.data(), C, H, W, {pad, pad, true}, pad, lut, out.data());  // flip only
  EXPECT_FLOAT_EQ(at(0, 0, 0), in(0, 0, 4));
  EXPECT_FLOAT_EQ(at(2, 3, 1), in(2, 3, 3));

  transform_image(img.data(), C, H, W, {pad, 3, true}, pad, lut, out.data());  // flip, then shift left 1
  EXPECT_FLOAT_EQ(at(0, 0, 0), 0.0f);  // source x = (4 - 0) + 1 = 5: padding
  EXPECT_FLOAT_EQ(at(0, 0, 1), in(0, 0, 4));
  EXPECT_FLOAT_EQ(at(1, 2, 4), in(1, 2, 1));

  // Real normalisation: (v/255 - mean)/std, padding reads as (0 - mean)/std.
  const Normalize cifar;
  const NormalizeLut L(cifar, C);
  transform_image(img.data(), C, H, W, {0, pad, false}, pad, L, out.data());
  EXPECT_FLOAT_EQ(at(1, 0, 0), (0.0f - 0.4822f) / 0.1994f);
  EXPECT_NEAR(at(2, 2, 3), (in(2, 0, 3) - 0.4465f) / 0.2010f, 1e-6);
}

TEST(Shuffle, EpochPermutation) {
  const auto p = epoch_permutation(1000, 5, 0);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[size_t(i)], i);
  EXPECT_EQ(p, epoch_permutation(1000, 5, 0));
  EXPECT_NE(p, epoch_permutation(1000, 5, 1));
  EXPECT_NE(p, epoch_permutation(1000, 6, 0));
  int fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += p[size_t(i)] == i;
  EXPECT_LT(fixed, 10);  // a real shuffle has about one fixed point
}

namespace {
void expect_same_batch(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.indices, b.indices);
  ASSERT_EQ(a.x.shape(), b.x.shape());
  ASSERT_EQ(a.epoch, b.epoch);
  ASSERT_EQ(a.batch, b.batch);
  ASSERT_EQ(0, std::memcmp(a.x.f32(), b.x.f32(), a.x.nbytes()));
  ASSERT_EQ(0, std::memcmp(a.y.data<int32_t>(), b.y.data<int32_t>(), a.y.nbytes()));
}
}  // namespace

TEST(BatchLoader, EveryIndexOncePerEpochAndEqualsSingleThreaded) {
  const Dataset d = make_synthetic(103, 2);
  for (int workers : {1, 3})
    for (int prefetch : {1, 4}) {
      SCOPED_TRACE("workers=" + std::to_string(workers) + " prefetch=" + std::to_string(prefetch));
      LoaderOptions o = LoaderOptions::train(77);
      o.batch_size = 10;
      o.workers = workers;
      o.prefetch = prefetch;
      BatchLoader loader(d, o);
      ASSERT_EQ(loader.batches_per_epoch(), 11);
      std::vector<int64_t> first_order;
      for (int64_t e = 0; e < 2; ++e) {
        loader.start_epoch(e);
        std::vector<int> seen(103, 0);
        std::vector<int64_t> order;
        int64_t nb = 0;
        for (Batch b; loader.next(b); ++nb) {
          EXPECT_EQ(b.size(), nb < 10 ? 10 : 3);
          EXPECT_EQ(b.x.shape(), (rf::Shape{b.size(), 3, 32, 32}));
          for (int64_t k = 0; k < b.size(); ++k) {
            ++seen[size_t(b.indices[size_t(k)])];
            EXPECT_EQ(b.y.data<int32_t>()[k], d.labels[size_t(b.indices[size_t(k)])]);
          }
          order.insert(order.end(), b.indices.begin(), b.indices.end());
          expect_same_batch(b, make_batch(d, o, e, nb));
        }
        EXPECT_EQ(nb, 11);
        for (int i = 0; i < 103; ++i) EXPECT_EQ(seen[size_t(i)], 1) << "index " << i << " epoch " << e;
        EXPECT_EQ(order, epoch_permutation(103, 77, e));
        if (e == 0) first_order = order;
        else EXPECT_NE(order, first_order);
      }
    }
}

TEST(BatchLoader, DropLastAndEvalMode) {
  const Dataset d = make_synthetic(25, 4);
  LoaderOptions o = LoaderOptions::train(1);
  o.batch_size = 8;
  o.drop_last = true;
  BatchLoader loader(d, o);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  loader.start_epoch(0);
  int n = 0;
  for (Batch b; loader.next(b);) {
    EXPECT_EQ(b.size(), 8);
    ++n;
  }
  EXPECT_EQ(n, 3);

  LoaderOptions ev = LoaderOptions::eval();
  ev.batch_size = 8;
  BatchLoader el(d, ev);
  el.start_epoch(5);
  int64_t next = 0;
  const NormalizeLut lut(ev.norm, 3);
  std::vector<float> ref(size_t(d.image_size()));
  for (Batch b; el.next(b);)
    for (int64_t k = 0; k < b.size(); ++k, ++next) {
      ASSERT_EQ(b.indices[size_t(k)], next);  // dataset order
      transform_image(d.image(next), 3, 32, 32, Augment{0, 0, false}, 0, lut, ref.data());
      ASSERT_EQ(0, std::memcmp(ref.data(), b.x.f32() + k * d.image_size(), ref.size() * sizeof(float)));
    }
  EXPECT_EQ(next, 25);
}

TEST(BatchLoader, EarlyStopRestartAndDestructionDoNotHang) {
  const Dataset d = make_synthetic(200, 4);
  LoaderOptions o = LoaderOptions::train(3);
  o.batch_size = 4;
  o.workers = 2;
  {
    BatchLoader loader(d, o);
    loader.start_epoch(0);
    Batch b;
    ASSERT_TRUE(loader.next(b));
    loader.start_epoch(1);  // abandon epoch 0 after one batch
    ASSERT_TRUE(loader.next(b));
    expect_same_batch(b, make_batch(d, o, 1, 0));
    ASSERT_TRUE(loader.next(b));
    expect_same_batch(b, make_batch(d, o, 1, 1));
  }  // destroyed with workers mid-epoch
  BatchLoader never_started(d, o);
  Batch b;
  EXPECT_FALSE(never_started.next(b));
  never_started.stop();
  EXPECT_FALSE(never_started.next(b));
}

TEST(BatchLoader, WorkerErrorsReachTheConsumer) {
  Dataset d = make_synthetic(64, 4);
  LoaderOptions o = LoaderOptions::eval();
  o.batch_size = 8;
  o.workers = 2;
  BatchLoader loader(d, o);
  d.labels[42] = 99;  // batch 5 fails in a worker
  loader.start_epoch(0);
  int got = 0;
  const std::string msg = error_of([&] {
    for (Batch b; loader.next(b);) ++got;
  });
  EXPECT_EQ(got, 5);  // batches 0..4 arrive, in order, before the error
  EXPECT_TRUE(contains(msg, "label of image 42 is 99, expected 0..9")) << msg;
}

TEST(BatchLoader, BadOptions) {
  const Dataset d = make_synthetic(10, 4);
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_TRUE(contains(error_of([&] { BatchLoader l(d, o); }), "batch_size 0, expected > 0"));
  o = LoaderOptions{};
  o.workers = 0;
  EXPECT_TRUE(contains(error_of([&] { BatchLoader l(d, o); }), "workers 0"));
}

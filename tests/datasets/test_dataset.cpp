// Dataset type: content hash (definition and sensitivity), subsets, the stratified held-out split.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "datasets/dataset.h"
#include "datasets/synthetic.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {
Dataset tiny(int64_t N, int K) {
  Dataset d;
  d.name = "tiny";
  d.N = N;
  d.H = 2;
  d.W = 3;
  for (int k = 0; k < K; ++k) d.classes.push_back("c" + std::to_string(k));
  d.pixels.resize(size_t(N * d.image_size()));
  for (size_t i = 0; i < d.pixels.size(); ++i) d.pixels[i] = uint8_t(i * 7 + 3);
  for (int64_t i = 0; i < N; ++i) d.labels.push_back(int32_t((i * 5 + i / 3) % K));
  return d;
}
}  // namespace

TEST(Dataset, HashFollowsItsDefinition) {
  // FNV-1a 64 over N, C, H, W (int64 LE), labels (int32 LE), pixels, written out independently here.
  Dataset d = tiny(3, 2);
  std::vector<uint8_t> bytes;
  for (int64_t v : {d.N, d.C, d.H, d.W})
    for (int b = 0; b < 8; ++b) bytes.push_back(uint8_t(uint64_t(v) >> (8 * b)));
  for (int32_t l : d.labels)
    for (int b = 0; b < 4; ++b) bytes.push_back(uint8_t(uint32_t(l) >> (8 * b)));
  bytes.insert(bytes.end(), d.pixels.begin(), d.pixels.end());
  uint64_t h = 14695981039346656037ull;
  for (uint8_t c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(d.content_hash(), h);
  EXPECT_EQ(d.hash_hex().substr(0, 8), "fnv1a64:");
  EXPECT_EQ(d.hash_hex().size(), 8u + 16u);
}

TEST(Dataset, HashSeesEveryPixelAndLabel) {
  const Dataset d = tiny(20, 3);
  const uint64_t h = d.content_hash();
  Dataset e = d;
  e.name = "renamed";
  EXPECT_EQ(e.content_hash(), h);  // name is not content
  e.pixels.back() ^= 1;
  EXPECT_NE(e.content_hash(), h);
  Dataset f = d;
  f.labels[7] = (f.labels[7] + 1) % 3;
  EXPECT_NE(f.content_hash(), h);
}

TEST(Dataset, ValidateNamesTheProblem) {
  Dataset d = tiny(5, 2);
  EXPECT_NO_THROW(d.validate());
  d.labels[3] = 2;
  EXPECT_TRUE(contains(error_of([&] { d.validate(); }), "label of image 3 is 2, expected 0..1"));
  d = tiny(5, 2);
  d.pixels.pop_back();
  EXPECT_TRUE(contains(error_of([&] { d.validate(); }), "pixels holds 89 bytes"));
}

TEST(Dataset, SubsetCopiesImagesAndLabelsInOrder) {
  const Dataset d = tiny(10, 3);
  const Dataset s = subset(d, {7, 2, 7});
  ASSERT_EQ(s.N, 3);
  EXPECT_EQ(s.labels, (std::vector<int32_t>{d.labels[7], d.labels[2], d.labels[7]}));
  EXPECT_TRUE(std::equal(s.image(0), s.image(0) + s.image_size(), d.image(7)));
  EXPECT_TRUE(std::equal(s.image(1), s.image(1) + s.image_size(), d.image(2)));
  EXPECT_TRUE(contains(error_of([&] { subset(d, {10}); }), "index 10 (position 0) out of range, expected 0..9"));
}

TEST(Dataset, HoldoutSplitIsDisjointStratifiedAndStable) {
  const Dataset d = make_synthetic(1000, 5);  // exactly 100 per class
  const TrainValSplit s = holdout_indices(d, 100, 42);
  ASSERT_EQ(s.val.size(), 100u);
  ASSERT_EQ(s.train.size(), 900u);
  std::set<int64_t> all(s.train.begin(), s.train.end());
  for (int64_t i : s.val) EXPECT_EQ(all.count(i), 0u) << "index " << i << " is in both splits";
  all.insert(s.val.begin(), s.val.end());
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  std::vector<int> per_class(10, 0);
  for (int64_t i : s.val) ++per_class[size_t(d.labels[size_t(i)])];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[size_t(c)], 10) << "class " << c;

  const TrainValSplit again = holdout_indices(d, 100, 42);
  EXPECT_EQ(again.val, s.val);
  const TrainValSplit other = holdout_indices(d, 100, 43);
  EXPECT_NE(other.val, s.val);

  const TrainVal tv = holdout_split(d, 100, 42);
  EXPECT_EQ(tv.val.N, 100);
  EXPECT_EQ(tv.train.N, 900);
  EXPECT_EQ(tv.val.labels[0], d.labels[size_t(s.val[0])]);
  EXPECT_TRUE(std::equal(tv.val.image(3), tv.val.image(3) + d.image_size(), d.image(s.val[3])));
}

TEST(Dataset, HoldoutQuotasSumExactlyOnUnevenClasses) {
  const Dataset d = tiny(37, 3);  // uneven class sizes
  const auto counts = d.class_counts();
  const TrainValSplit s = holdout_indices(d, 10, 0);
  EXPECT_EQ(s.val.size(), 10u);
  std::vector<int64_t> per(3, 0);
  for (int64_t i : s.val) ++per[size_t(d.labels[size_t(i)])];
  for (int c = 0; c < 3; ++c) {  // within one of the proportional share
    const double share = 10.0 * double(counts[size_t(c)]) / 37.0;
    EXPECT_LE(std::abs(double(per[size_t(c)]) - share), 1.0) << "class " << c;
  }
  EXPECT_TRUE(contains(error_of([&] { holdout_indices(d, 37, 0); }), "val_count 37 must be in 0..36"));
}

TEST(Dataset, WithCommas) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(1000), "1,000");
  EXPECT_EQ(with_commas(30730001), "30,730,001");
}

// Tests of host/eval/seg_metrics.cpp: a hand-computed 3-class 4x4 example with void pixels (uint8 and int32
// labels), all-correct, a class absent from both label and prediction, merge == one pass, bad inputs.
#include "host/eval/seg_metrics.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using rf::eval::ConfusionMatrix;

constexpr double kEps = 1e-12;

using rf::testing::expect_error;

// 3 classes, void = 255.
//   label          pred
//   0 0 1 1        0 1 1 1
//   0 0 1 1        0 0 1 2
//   2 2 V V        2 0 0 1
//   2 2 2 V        2 2 1 0
// 13 non-void pixels. Confusion [label][pred]:
//   label 0: pred 0 at (0,0) (1,0) (1,1), pred 1 at (0,1)         -> 3 1 0
//   label 1: pred 1 at (0,2) (0,3) (1,2), pred 2 at (1,3)         -> 0 3 1
//   label 2: pred 2 at (2,0) (3,0) (3,1), pred 0 at (2,1), 1 (3,2) -> 1 1 3
// IoU_0 = 3/(4+4-3) = 3/5, IoU_1 = 3/(4+5-3) = 1/2, IoU_2 = 3/(5+4-3) = 1/2; mIoU = 8/15.
// Pixel accuracy 9/13; class accuracy 3/4, 3/4, 3/5.
const std::vector<uint8_t> kLabel = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 255, 255, 2, 2, 2, 255};
const std::vector<int32_t> kPred = {0, 1, 1, 1, 0, 0, 1, 2, 2, 0, 0, 1, 2, 2, 1, 0};

void expect_hand_example(const ConfusionMatrix& cm) {
  EXPECT_EQ(cm.counts(), (std::vector<int64_t>{3, 1, 0, 0, 3, 1, 1, 1, 3}));
  EXPECT_EQ(cm.total(), 13);
  std::vector<double> iou = cm.iou();
  ASSERT_EQ(iou.size(), 3u);
  EXPECT_NEAR(iou[0], 3.0 / 5.0, kEps);
  EXPECT_NEAR(iou[1], 0.5, kEps);
  EXPECT_NEAR(iou[2], 0.5, kEps);
  EXPECT_NEAR(cm.miou(), 8.0 / 15.0, kEps);
  EXPECT_NEAR(cm.pixel_accuracy(), 9.0 / 13.0, kEps);
  std::vector<double> acc = cm.class_accuracy();
  EXPECT_NEAR(acc[0], 0.75, kEps);
  EXPECT_NEAR(acc[1], 0.75, kEps);
  EXPECT_NEAR(acc[2], 0.6, kEps);
}

TEST(ConfusionMatrix, HandExampleUint8Labels) {
  ConfusionMatrix cm(3, 255);
  cm.add(kPred.data(), kLabel.data(), int64_t(kLabel.size()));
  expect_hand_example(cm);
}

TEST(ConfusionMatrix, HandExampleInt32LabelsNegativeVoid) {
  std::vector<int32_t> label(kLabel.begin(), kLabel.end());
  for (auto& l : label)
    if (l == 255) l = -1;
  ConfusionMatrix cm(3, -1);
  cm.add(kPred.data(), label.data(), int64_t(label.size()));
  expect_hand_example(cm);
}

TEST(ConfusionMatrix, AllCorrect) {
  std::vector<uint8_t> label = {0, 1, 2, 2, 1, 0, 255};
  std::vector<int32_t> pred = {0, 1, 2, 2, 1, 0, 1};
  ConfusionMatrix cm(3, 255);
  cm.add(pred.data(), label.data(), int64_t(label.size()));
  EXPECT_DOUBLE_EQ(cm.miou(), 1.0);
  EXPECT_DOUBLE_EQ(cm.pixel_accuracy(), 1.0);
}

TEST(ConfusionMatrix, AbsentClassIsNaNAndExcluded) {
  // Class 3 appears in neither labels nor predictions: IoU NaN, mIoU over classes 0..2 only (8/15).
  // Class 4 appears only as a (wrong) prediction: IoU 0/1 = 0, defined and counted.
  ConfusionMatrix cm(4, 255);
  cm.add(kPred.data(), kLabel.data(), int64_t(kLabel.size()));
  EXPECT_TRUE(std::isnan(cm.iou()[3]));
  EXPECT_TRUE(std::isnan(cm.class_accuracy()[3]));
  EXPECT_NEAR(cm.miou(), 8.0 / 15.0, kEps);

  ConfusionMatrix cm5(5, 255);
  std::vector<uint8_t> label = {0, 0};
  std::vector<int32_t> pred = {0, 4};
  cm5.add(pred.data(), label.data(), 2);
  std::vector<double> iou = cm5.iou();
  EXPECT_NEAR(iou[0], 0.5, kEps);  // TP 1, FN 1
  EXPECT_EQ(iou[4], 0.0);          // FP 1
  EXPECT_TRUE(std::isnan(iou[1]));
  EXPECT_NEAR(cm5.miou(), 0.25, kEps);

  ConfusionMatrix empty(3, 255);
  EXPECT_TRUE(std::isnan(empty.miou()));
  EXPECT_TRUE(std::isnan(empty.pixel_accuracy()));
}

TEST(ConfusionMatrix, MergeOfHalvesEqualsOnePass) {
  const int K = 7;
  const int64_t n = 1001;  // odd: halves of different sizes
  std::mt19937 gen(17);
  std::vector<uint8_t> label(n);
  std::vector<int32_t> pred(n);
  for (int64_t i = 0; i < n; ++i) {
    label[i] = gen() % 10 == 0 ? 255 : uint8_t(gen() % K);
    pred[i] = int32_t(gen() % K);
  }
  ConfusionMatrix whole(K, 255), a(K, 255), b(K, 255);
  whole.add(pred.data(), label.data(), n);
  a.add(pred.data(), label.data(), n / 2);
  b.add(pred.data() + n / 2, label.data() + n / 2, n - n / 2);
  a.merge(b);
  EXPECT_EQ(a.counts(), whole.counts());
  EXPECT_GT(whole.total(), 800);  // the voids were skipped, not everything
  EXPECT_LT(whole.total(), n);
  EXPECT_EQ(a.miou(), whole.miou());
}

TEST(ConfusionMatrix, BadInputsThrow) {
  ConfusionMatrix cm(3, 255);
  std::vector<uint8_t> label = {0, 1, 2, 255, 1, 3};
  std::vector<int32_t> pred = {0, 1, 2, 0, 1, 1};
  expect_error([&] { cm.add(pred.data(), label.data(), 6); }, {"label[5] = 3", "[0, 3)", "255"});
  EXPECT_EQ(cm.total(), 0);  // the failed call left the matrix unchanged
  label[5] = 1;
  pred[2] = 3;
  expect_error([&] { cm.add(pred.data(), label.data(), 6); }, {"pred[2] = 3"});
  pred[2] = -1;
  expect_error([&] { cm.add(pred.data(), label.data(), 6); }, {"pred[2] = -1"});
  pred[2] = 2;
  pred[3] = 9;  // under a void label: still checked (a broken argmax must not hide under void)
  expect_error([&] { cm.add(pred.data(), label.data(), 6); }, {"pred[3] = 9"});
  std::vector<int32_t> label32 = {0, -5};
  expect_error([&] { cm.add(pred.data(), label32.data(), 2); }, {"label[1] = -5"});
  expect_error([] { ConfusionMatrix(3, 1); }, {"ignore_label = 1"});
  expect_error([] { ConfusionMatrix(0, 255); }, {"num_classes = 0"});
  ConfusionMatrix other(4, 255);
  expect_error([&] { cm.merge(other); }, {"4 classes"});
}

}  // namespace

// Tests of host/eval/det_metrics.cpp: IoU, the two AP interpolations on hand-computed PR curves, VOC and
// COCO matching rules (duplicates, second-best GT, difficult GT, score ties), class exclusion, threshold
// boundaries, bad inputs. Every expected value is worked out by hand in the comment beside it.
#include "host/eval/det_metrics.h"

#include <cmath>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "testing.h"

namespace {

using namespace rf::eval;

constexpr double kEps = 1e-12;

Detection det(int64_t image, int cls, float score, Box b) { return Detection{image, cls, score, b}; }
GroundTruth gt(int64_t image, int cls, Box b, bool difficult = false) { return GroundTruth{image, cls, b, difficult}; }

// Expects fn() to throw rf::Error whose message contains every string of `parts`.
using rf::testing::expect_error;

TEST(BoxIou, HandValues) {
  const Box a{0, 0, 10, 10};
  EXPECT_FLOAT_EQ(box_iou(a, a), 1.0f);
  EXPECT_FLOAT_EQ(box_iou(a, Box{5, 0, 15, 10}), 1.0f / 3.0f);  // 50 / (100 + 100 - 50)
  EXPECT_FLOAT_EQ(box_iou(a, Box{0, 0, 10, 7}), 0.7f);           // 70 / 100
  EXPECT_FLOAT_EQ(box_iou(a, Box{2, 2, 4, 4}), 0.04f);           // contained: 4 / 100
  EXPECT_EQ(box_iou(a, Box{10, 0, 20, 10}), 0.0f);               // x1 exclusive: touching edges do not overlap
  EXPECT_EQ(box_iou(a, Box{20, 20, 30, 30}), 0.0f);
  EXPECT_EQ(box_iou(a, Box{5, 5, 5, 8}), 0.0f);                  // zero width
  EXPECT_EQ(box_iou(Box{10, 10, 0, 0}, Box{10, 10, 0, 0}), 0.0f);  // reversed corners: area <= 0, not 100
}

// The hand PR curve of ClassicHandExample: ranked outcomes T F T F F T F F T F with 5 GT.
//   recall    .2  .2   .4   .4   .4   .6   .6   .6   .8   .8
//   precision 1   1/2  2/3  2/4  2/5  3/6  3/7  3/8  4/9  4/10
//   envelope  1   2/3  2/3  1/2  1/2  1/2  4/9  4/9  4/9  4/10
// All-point: recall rises at ranks 1, 3, 6, 9 by .2 each: AP = .2 * (1 + 2/3 + 1/2 + 4/9) = .2 * 47/18 = 47/90.
// 101-point: r = 0..0.20 (21 points) -> 1, .21...40 (20) -> 2/3, .41...60 (20) -> 1/2, .61...80 (20) -> 4/9,
//   .81..1 (20) -> 0: AP = (21 + 40/3 + 10 + 80/9) / 101 = (479/9) / 101 = 479/909.
const std::vector<double> kRecall = {.2, .2, .4, .4, .4, .6, .6, .6, .8, .8};
const std::vector<double> kPrecision = {1, 1. / 2, 2. / 3, 2. / 4, 2. / 5, 3. / 6, 3. / 7, 3. / 8, 4. / 9, 4. / 10};

TEST(AveragePrecision, HandCurve) {
  EXPECT_NEAR(average_precision_all_point(kRecall, kPrecision), 47.0 / 90.0, kEps);
  EXPECT_NEAR(average_precision_101(kRecall, kPrecision), 479.0 / 909.0, kEps);
}

TEST(AveragePrecision, AllPointAnd101DifferOnDesignedCurve) {
  // One detection, recall .5 at precision 1: all-point = .5; 101-point counts r = 0, .01, ..., .50 (51 of 101).
  EXPECT_NEAR(average_precision_all_point({.5}, {1.0}), 0.5, kEps);
  EXPECT_NEAR(average_precision_101({.5}, {1.0}), 51.0 / 101.0, kEps);
  // Full recall at precision 1 -> both 1; empty curve -> both 0.
  EXPECT_NEAR(average_precision_all_point({.5, 1.0}, {1.0, 1.0}), 1.0, kEps);
  EXPECT_NEAR(average_precision_101({.5, 1.0}, {1.0, 1.0}), 1.0, kEps);
  EXPECT_EQ(average_precision_all_point({}, {}), 0.0);
  EXPECT_EQ(average_precision_101({}, {}), 0.0);
  // The envelope matters: precision rising along the curve (1/2, 2/3, 3/4) is lifted to 3/4 everywhere,
  // AP = .75 * 3/4 = .5625 (without the envelope: .25 * (1/2 + 2/3 + 3/4) = .479).
  EXPECT_NEAR(average_precision_all_point({.25, .5, .75}, {.5, 2. / 3, .75}), 0.5625, kEps);
}

TEST(AveragePrecision, BadCurveThrows) {
  expect_error([] { average_precision_all_point({.1, .2}, {1.0}); }, {"2 points", "1"});
  expect_error([] { average_precision_101({.5, .4}, {1.0, 1.0}); }, {"recall[1] = 0.4", "non-decreasing"});
  expect_error([] { average_precision_all_point({.5}, {1.5}); }, {"precision[0] = 1.5"});
}

TEST(EvaluateDetections, OnePerfectDetection) {
  DetMetrics m = evaluate_detections({det(0, 0, 0.9f, {1, 2, 11, 22})}, {gt(0, 0, {1, 2, 11, 22})}, 1);
  EXPECT_DOUBLE_EQ(m.map50, 1.0);
  EXPECT_DOUBLE_EQ(m.map_coco, 1.0);
  ASSERT_EQ(m.ap_at.size(), 10u);
  for (double v : m.ap_at) EXPECT_DOUBLE_EQ(v, 1.0);
  EXPECT_EQ(m.gt_count[0], 1);
  EXPECT_EQ(m.det_count[0], 1);
}

TEST(EvaluateDetections, ClassicHandExample) {
  // 5 GT in images 0..2; 10 detections whose ranked outcomes are T F T F F T F F T F (see HandCurve).
  const Box A{0, 0, 10, 10}, B{20, 20, 40, 40}, C{0, 0, 10, 10}, D{5, 5, 25, 25}, E{50, 50, 60, 60};
  std::vector<GroundTruth> g = {gt(0, 0, A), gt(0, 0, B), gt(1, 0, C), gt(2, 0, D), gt(2, 0, E)};
  std::vector<Detection> d = {
      det(2, 0, 0.50f, {0, 0, 3, 3}),          // 10 FP: overlaps nothing
      det(0, 0, 0.95f, A),                     //  1 TP
      det(0, 0, 0.80f, {5, 0, 15, 10}),        //  4 FP: IoU 1/3 with A
      det(1, 0, 0.90f, {100, 100, 110, 110}),  //  2 FP
      det(1, 0, 0.85f, C),                     //  3 TP
      det(3, 0, 0.75f, {0, 0, 10, 10}),        //  5 FP: image without GT
      det(2, 0, 0.70f, D),                     //  6 TP
      det(0, 0, 0.65f, A),                     //  7 FP: duplicate of A
      det(1, 0, 0.60f, {50, 50, 60, 60}),      //  8 FP: E's box but in image 1
      det(0, 0, 0.55f, B),                     //  9 TP; E is never found -> recall tops at .8
  };
  DetMetrics m = evaluate_detections(d, g, 1);
  EXPECT_NEAR(m.ap50[0], 47.0 / 90.0, kEps);
  EXPECT_NEAR(m.map50, 47.0 / 90.0, kEps);
  // Every TP is exact (IoU 1) and every FP has IoU < .5, so all ten COCO thresholds give the same curve.
  for (double v : m.ap_at) EXPECT_NEAR(v, 479.0 / 909.0, kEps);
  EXPECT_NEAR(m.map_coco, 479.0 / 909.0, kEps);
  EXPECT_EQ(m.gt_count[0], 5);
  EXPECT_EQ(m.det_count[0], 10);
}

TEST(EvaluateDetections, DuplicatesAreFalsePositives) {
  // GT A, B; ranked: A (TP), A again (FP), B (TP). recall .5 .5 1, precision 1 1/2 2/3, envelope 1 2/3 2/3.
  // VOC: .5*1 + .5*2/3 = 5/6 (were the duplicate ignored, AP would be 1).
  // COCO: r = 0...50 (51 points) -> 1, .51..1 (50) -> 2/3: (51 + 100/3)/101 = 253/303 at every threshold.
  const Box A{0, 0, 10, 10}, B{30, 30, 40, 40};
  DetMetrics m = evaluate_detections({det(0, 0, .9f, A), det(0, 0, .8f, A), det(0, 0, .7f, B)},
                                     {gt(0, 0, A), gt(0, 0, B)}, 1);
  EXPECT_NEAR(m.map50, 5.0 / 6.0, kEps);
  EXPECT_NEAR(m.map_coco, 253.0 / 303.0, kEps);
}

TEST(EvaluateDetections, VocTakesBestGtCocoFallsBackToNextUnmatched) {
  // GT A (0,0,10,10) and B (2,0,12,10). det1 = A exactly (.9). det2 = (0.5,0,10.5,10) (.8):
  // IoU(det2, A) = 95/105 = .905 (best, but A is taken), IoU(det2, B) = 85/115 = .739.
  // VOC: det2's best GT is A, already matched -> FP: recall .5 .5, precision 1 .5 -> AP .5.
  // COCO: det2 falls back to B when .739 >= t, i.e. t = .50 .. .70 -> AP 1; t = .75 .. .95 -> FP, AP 51/101.
  //   mean = (5 + 5*51/101)/10 = 76/101.
  const Box A{0, 0, 10, 10}, B{2, 0, 12, 10};
  DetMetrics m = evaluate_detections({det(0, 0, .9f, A), det(0, 0, .8f, {0.5f, 0, 10.5f, 10})},
                                     {gt(0, 0, A), gt(0, 0, B)}, 1);
  EXPECT_NEAR(m.map50, 0.5, kEps);
  for (int t = 0; t < 10; ++t) EXPECT_NEAR(m.ap_at[t], t < 5 ? 1.0 : 51.0 / 101.0, kEps) << "threshold " << t;
  EXPECT_NEAR(m.map_coco, 76.0 / 101.0, kEps);
}

TEST(EvaluateDetections, DifficultGtIgnored) {
  // Image 0: N (normal), D1 and D2 (difficult). Ranked: det on D1 (.9, ignored), det on N (.8, TP).
  // Ignoring is right: AP 1. Counting the D1 hit as FP would give precision .5 at recall 1 (AP .5);
  // treating D1/D2 as normal GT would leave recall at 2/3 (AP 2/3).
  const Box N{0, 0, 10, 10}, D1{30, 30, 40, 40}, D2{60, 60, 70, 70};
  std::vector<GroundTruth> g = {gt(0, 0, N), gt(0, 0, D1, true), gt(0, 0, D2, true)};
  DetMetrics m = evaluate_detections({det(0, 0, .9f, D1), det(0, 0, .8f, N)}, g, 1);
  EXPECT_NEAR(m.map50, 1.0, kEps);
  EXPECT_NEAR(m.map_coco, 1.0, kEps);
  EXPECT_EQ(m.gt_count[0], 1);
  // A second hit on D1 is ignored again under VOC (best GT difficult); under COCO D1 is then taken, so it is FP:
  // ranked ignored, FP, TP -> recall 0 then 1 with precision 0, 1/2 -> envelope 1/2: AP_coco = 1/2.
  m = evaluate_detections({det(0, 0, .9f, D1), det(0, 0, .85f, D1), det(0, 0, .8f, N)}, g, 1);
  EXPECT_NEAR(m.map50, 1.0, kEps);
  EXPECT_NEAR(m.map_coco, 0.5, kEps);
}

TEST(EvaluateDetections, ClassesWithoutGtExcludedFromMean) {
  // class 0: perfect (AP 1); class 1: detections but no GT (NaN); class 2: GT but no detections (AP 0);
  // class 3: only a difficult GT (NaN). mAP = (1 + 0) / 2.
  const Box b{0, 0, 10, 10};
  std::vector<GroundTruth> g = {gt(0, 0, b), gt(0, 2, b), gt(1, 3, b, true)};
  std::vector<Detection> d = {det(0, 0, .9f, b), det(0, 1, .8f, b), det(1, 3, .7f, b)};
  DetMetrics m = evaluate_detections(d, g, 4);
  EXPECT_DOUBLE_EQ(m.ap50[0], 1.0);
  EXPECT_TRUE(std::isnan(m.ap50[1]));
  EXPECT_DOUBLE_EQ(m.ap50[2], 0.0);
  EXPECT_TRUE(std::isnan(m.ap50[3]));
  EXPECT_TRUE(std::isnan(m.ap_coco[1]));
  EXPECT_DOUBLE_EQ(m.map50, 0.5);
  EXPECT_DOUBLE_EQ(m.map_coco, 0.5);
  EXPECT_EQ(m.gt_count, (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_EQ(m.det_count, (std::vector<int64_t>{1, 1, 0, 1}));
  // No GT at all: the means are undefined.
  EXPECT_TRUE(std::isnan(evaluate_detections(d, {}, 4).map50));
}

TEST(EvaluateDetections, CocoThresholdBoundaries) {
  // One GT (0,0,10,10), one detection (0,0,10,h): IoU = h/10. TP at thresholds t <= IoU, FP (AP 0) above.
  const Box G{0, 0, 10, 10};
  struct Case { float h; int tp_thresholds; };
  // IoU .72: TP at .50 .55 .60 .65 .70 -> 5/10. IoU exactly .7 (70/100 in double): TP at .70 too -> 5/10.
  // IoU .69 (float 6.9 ~ 6.8999996): TP at .50 .. .65 -> 4/10. IoU .95 exactly: all 10. IoU .5: only .50.
  for (Case c : {Case{7.2f, 5}, Case{7.0f, 5}, Case{6.9f, 4}, Case{9.5f, 10}, Case{5.0f, 1}}) {
    SCOPED_TRACE("h = " + std::to_string(c.h));
    DetMetrics m = evaluate_detections({det(0, 0, .9f, {0, 0, 10, c.h})}, {gt(0, 0, G)}, 1);
    EXPECT_DOUBLE_EQ(m.map50, 1.0);
    EXPECT_NEAR(m.map_coco, c.tp_thresholds / 10.0, kEps);
    for (int t = 0; t < 10; ++t) EXPECT_DOUBLE_EQ(m.ap_at[t], t < c.tp_thresholds ? 1.0 : 0.0) << "threshold " << t;
  }
  // IoU .49 < .5: FP under VOC as well.
  EXPECT_DOUBLE_EQ(evaluate_detections({det(0, 0, .9f, {0, 0, 10, 4.9f})}, {gt(0, 0, G)}, 1).map50, 0.0);
}

TEST(EvaluateDetections, EqualScoresKeepInputOrder) {
  // Two detections with the same score, one FP and one TP, one GT. FP first: precision 0 then 1/2 at
  // recall 1 -> AP 1/2. TP first: AP 1. A sort that is not stable (or breaks ties otherwise) fails one of them.
  const Box G{0, 0, 10, 10}, miss{50, 50, 60, 60};
  EXPECT_DOUBLE_EQ(evaluate_detections({det(0, 0, .5f, miss), det(0, 0, .5f, G)}, {gt(0, 0, G)}, 1).map50, 0.5);
  EXPECT_DOUBLE_EQ(evaluate_detections({det(0, 0, .5f, G), det(0, 0, .5f, miss)}, {gt(0, 0, G)}, 1).map50, 1.0);
}

TEST(EvaluateDetections, BadInputsThrow) {
  const Box b{0, 0, 10, 10};
  const std::vector<GroundTruth> g = {gt(0, 0, b)};
  const float nan = std::nanf("");
  expect_error([&] { evaluate_detections({det(0, 0, .9f, b), det(0, 3, .9f, b)}, g, 3); },
               {"detections[1].cls = 3", "[0, 3)"});
  expect_error([&] { evaluate_detections({det(0, -1, .9f, b)}, g, 3); }, {"detections[0].cls = -1"});
  expect_error([&] { evaluate_detections({det(0, 0, .9f, b), det(0, 0, nan, b)}, g, 3); },
               {"detections[1].score is NaN"});
  expect_error([&] { evaluate_detections({det(-2, 0, .9f, b)}, g, 3); }, {"detections[0].image = -2"});
  expect_error([&] { evaluate_detections({det(0, 0, .9f, {0, 0, nan, 1})}, g, 3); }, {"detections[0].box"});
  expect_error([&] { evaluate_detections({}, {gt(0, 0, b), gt(0, 7, b)}, 3); }, {"ground_truth[1].cls = 7"});
  expect_error([&] { evaluate_detections({}, {gt(-1, 0, b)}, 3); }, {"ground_truth[0].image = -1"});
  expect_error([&] { evaluate_detections({}, g, 0); }, {"num_classes = 0"});
}

}  // namespace

// issue 18: a split with no objects must not report mAP 0.0.
TEST(EvaluateDetections, NoGroundTruthIsNaNNotZero) {
  std::vector<Detection> dets = {{0, 0, 0.9f, {0, 0, 10, 10}}, {1, 1, 0.5f, {2, 2, 8, 8}}};
  for (const auto& gts : {std::vector<GroundTruth>{}, std::vector<GroundTruth>{{0, 0, {0, 0, 10, 10}, true}}}) {
    const DetMetrics m = evaluate_detections(dets, gts, 3);
    EXPECT_FALSE(m.has_ground_truth());
    EXPECT_TRUE(std::isnan(m.map50));
    EXPECT_TRUE(std::isnan(m.map_coco));
    for (double v : m.ap_at) EXPECT_TRUE(std::isnan(v));
    EXPECT_EQ(format_metric(m.map50), "no ground truth");
  }
  // No detections either: still no ground truth, not 0.
  const DetMetrics e = evaluate_detections({}, {}, 2);
  EXPECT_TRUE(std::isnan(e.map50));
  // With ground truth: a number, 0 when nothing was found.
  const DetMetrics z = evaluate_detections({}, {{0, 1, {0, 0, 4, 4}}}, 2);
  EXPECT_TRUE(z.has_ground_truth());
  EXPECT_EQ(z.map50, 0.0);
  EXPECT_EQ(format_metric(z.map50), "0.0000");
  EXPECT_EQ(format_metric(0.51234, 2), "0.51");
}

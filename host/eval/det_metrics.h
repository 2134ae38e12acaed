// Detection metrics: VOC mAP@0.5 (all-point interpolation) and COCO-style mAP@[.5:.95] (101-point), with
// the AP building blocks exposed. Checked by tests/eval/test_det_metrics.cpp against hand-computed curves.
//
// Rules (what a reader needs to compare our numbers with published ones):
// - Boxes are continuous pixel coordinates, x1/y1 exclusive: area = (x1-x0)*(y1-y0), no VOC "+1". IoU is
//   computed in double; a box with width or height <= 0 has IoU 0 with everything. The IoU thresholds are
//   t = (50 + 5*i)/100.0 in double and a match needs IoU >= t, so a box pair with IoU exactly 0.7
//   (e.g. 70/100) is a true positive at t = 0.70.
// - Detections of a class are sorted by descending score; equal scores keep input order (stable sort).
//   Matching only looks at ground truth (GT) of the same image and class.
// - VOC (mAP@0.5): each detection takes the GT with the highest IoU (ties: first in input order), matched
//   or not. If that IoU >= 0.5: best GT difficult -> detection ignored (neither TP nor FP); best GT not yet
//   matched -> TP and the GT is marked; best GT already matched -> FP (a duplicate, even when another
//   unmatched GT also overlaps >= 0.5). IoU < 0.5 or no GT in the image -> FP. AP: all-point interpolation.
// - COCO (mAP@[.5:.95]): for each t, each detection takes the not-yet-matched non-difficult GT with the
//   highest IoU >= t (ties: first); if there is none, the not-yet-matched difficult GT with the highest
//   IoU >= t, and the detection is ignored (COCO's "iscrowd=0, ignore" GT); if none of either, FP. AP per
//   threshold: 101 recall points; ap_coco = mean over the 10 thresholds. No per-image cap on detections
//   (COCO's maxDets=100): the decoder's top_k plays that role. No area ranges.
// - Recall denominator = number of non-difficult GT of the class (gt_count). A class without non-difficult
//   GT has AP NaN and is left out of the means; a class with GT but no detections has AP 0. With no class
//   having GT ("no ground truth": e.g. a test split without objects), the means are NaN, never 0: an mAP of
//   0.0 would claim the detector found nothing that was there. has_ground_truth() says which case it is;
//   format_metric() prints NaN as "no ground truth", and JSON writers emit null (nlohmann::json does for NaN).
// - Inputs are validated: class outside [0, num_classes), NaN score, image < 0 or a non-finite box
//   coordinate -> rf::Error naming the array, the index and the value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rf::eval {

struct Box {
  float x0, y0, x1, y1;  // x1/y1 exclusive
};

// Intersection over union; 0 when either box has width or height <= 0.
float box_iou(const Box& a, const Box& b);

struct Detection {
  int64_t image;
  int cls;
  float score;
  Box box;
};

struct GroundTruth {
  int64_t image;
  int cls;
  Box box;
  bool difficult = false;
};

constexpr int kCocoThresholds = 10;  // IoU .50, .55, ..., .95
double coco_iou_threshold(int i);     // (50 + 5*i) / 100.0

struct DetMetrics {
  double map50 = 0, map_coco = 0;        // mean over classes that have at least one non-difficult GT
  std::vector<double> ap50, ap_coco;     // per class; NaN for a class without non-difficult GT
  std::vector<double> ap_at;             // mAP at each IoU threshold .50, .55, ..., .95 (10 values)
  std::vector<int64_t> gt_count;         // non-difficult GT per class (the recall denominator)
  std::vector<int64_t> det_count;        // detections per class
  bool has_ground_truth() const;          // some class has a non-difficult GT (else map50/map_coco are NaN)
};

// "no ground truth" for NaN (a mean over no class), else the value with `decimals` decimals.
std::string format_metric(double v, int decimals = 4);

DetMetrics evaluate_detections(const std::vector<Detection>& dets, const std::vector<GroundTruth>& gts,
                               int num_classes);

// recall / precision: one point per ranked (non-ignored) detection, recall non-decreasing, values in [0, 1].
// All-point (VOC 2010+): envelope p~(i) = max_{j>=i} p(j); AP = sum over points where recall increases
// of (r_i - r_{i-1}) * p~(i), with r_0 = 0. Empty curve -> 0.
double average_precision_all_point(const std::vector<double>& recall, const std::vector<double>& precision);
// 101-point (COCO): mean over r in {0, 0.01, ..., 1} (r = i/100.0) of p~ at the first point with
// recall >= r, 0 when no point reaches r. Empty curve -> 0.
double average_precision_101(const std::vector<double>& recall, const std::vector<double>& precision);

}  // namespace rf::eval

// Detection metrics (VOC mAP@0.5, COCO-style mAP@[.5:.95]); the rules are in det_metrics.h.
// Checked by tests/eval/test_det_metrics.cpp (hand-computed PR curves, matching rules, bad inputs).
#include "host/eval/det_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "host/core/check.h"

namespace rf::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// In double so that thresholds like 0.7 compare exactly for boxes with integer sides (70/100 == 0.7).
double iou_d(const Box& a, const Box& b) {
  double aw = double(a.x1) - a.x0, ah = double(a.y1) - a.y0;
  double bw = double(b.x1) - b.x0, bh = double(b.y1) - b.y0;
  if (!(aw > 0 && ah > 0 && bw > 0 && bh > 0)) return 0.0;
  double iw = std::min(double(a.x1), double(b.x1)) - std::max(double(a.x0), double(b.x0));
  double ih = std::min(double(a.y1), double(b.y1)) - std::max(double(a.y0), double(b.y0));
  if (iw <= 0 || ih <= 0) return 0.0;
  double inter = iw * ih;
  return inter / (aw * ah + bw * bh - inter);
}

bool box_finite(const Box& b) {
  return std::isfinite(b.x0) && std::isfinite(b.y0) && std::isfinite(b.x1) && std::isfinite(b.y1);
}

void check_curve(const std::vector<double>& recall, const std::vector<double>& precision, const char* fn) {
  RF_CHECK(recall.size() == precision.size(), "{}: recall has {} points, precision {}: expected equal sizes",
           fn, recall.size(), precision.size());
  for (size_t i = 0; i < recall.size(); ++i) {
    RF_CHECK(recall[i] >= 0 && recall[i] <= 1, "{}: recall[{}] = {}, expected in [0, 1]", fn, i, recall[i]);
    RF_CHECK(precision[i] >= 0 && precision[i] <= 1, "{}: precision[{}] = {}, expected in [0, 1]", fn, i,
             precision[i]);
    RF_CHECK(i == 0 || recall[i] >= recall[i - 1], "{}: recall[{}] = {} < recall[{}] = {}: expected non-decreasing",
             fn, i, recall[i], i - 1, recall[i - 1]);
  }
}

// Envelope made monotone from the right: q[i] = max_{j>=i} p[j].
std::vector<double> precision_envelope(const std::vector<double>& precision) {
  std::vector<double> q = precision;
  for (size_t i = q.size(); i-- > 1;) q[i - 1] = std::max(q[i - 1], q[i]);
  return q;
}

// Outcome of one ranked detection at one threshold.
enum Outcome : int8_t { kFP = 0, kTP = 1, kIgnored = 2 };

// Cumulative TP/FP over the ranked outcomes -> PR curve (ignored detections add no point).
void pr_curve(const std::vector<int8_t>& outcome, int64_t npos, std::vector<double>& recall,
              std::vector<double>& precision) {
  recall.clear();
  precision.clear();
  int64_t tp = 0, fp = 0;
  for (int8_t o : outcome) {
    if (o == kIgnored) continue;
    (o == kTP ? tp : fp) += 1;
    recall.push_back(double(tp) / double(npos));
    precision.push_back(double(tp) / double(tp + fp));
  }
}

double mean_defined(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : kNaN;
}

}  // namespace

float box_iou(const Box& a, const Box& b) { return float(iou_d(a, b)); }

bool DetMetrics::has_ground_truth() const {
  for (int64_t n : gt_count)
    if (n > 0) return true;
  return false;
}

std::string format_metric(double v, int decimals) {
  if (std::isnan(v)) return "no ground truth";
  return fmt::format("{:.{}f}", v, decimals);
}

double coco_iou_threshold(int i) {
  RF_CHECK(i >= 0 && i < kCocoThresholds, "coco_iou_threshold: index {}, expected in [0, {})", i,
           kCocoThresholds);
  return double(50 + 5 * i) / 100.0;
}

double average_precision_all_point(const std::vector<double>& recall, const std::vector<double>& precision) {
  check_curve(recall, precision, "average_precision_all_point");
  std::vector<double> q = precision_envelope(precision);
  double ap = 0, prev_r = 0;
  for (size_t i = 0; i < recall.size(); ++i) {
    if (recall[i] != prev_r) ap += (recall[i] - prev_r) * q[i];
    prev_r = recall[i];
  }
  return ap;  // the VOC sentinel (recall 1, precision 0) adds nothing
}

double average_precision_101(const std::vector<double>& recall, const std::vector<double>& precision) {
  check_curve(recall, precision, "average_precision_101");
  std::vector<double> q = precision_envelope(precision);
  double sum = 0;
  for (int i = 0; i <= 100; ++i) {
    double r = double(i) / 100.0;
    auto it = std::lower_bound(recall.begin(), recall.end(), r);
    if (it != recall.end()) sum += q[size_t(it - recall.begin())];
  }
  return sum / 101.0;
}

DetMetrics evaluate_detections(const std::vector<Detection>& dets, const std::vector<GroundTruth>& gts,
                               int num_classes) {
  RF_CHECK(num_classes > 0, "evaluate_detections: num_classes = {}, expected > 0", num_classes);
  for (size_t i = 0; i < dets.size(); ++i) {
    const Detection& d = dets[i];
    RF_CHECK(d.cls >= 0 && d.cls < num_classes, "evaluate_detections: detections[{}].cls = {}, expected in [0, {})",
             i, d.cls, num_classes);
    RF_CHECK(!std::isnan(d.score), "evaluate_detections: detections[{}].score is NaN", i);
    RF_CHECK(d.image >= 0, "evaluate_detections: detections[{}].image = {}, expected >= 0", i, d.image);
    RF_CHECK(box_finite(d.box), "evaluate_detections: detections[{}].box = ({}, {}, {}, {}), expected finite", i,
             d.box.x0, d.box.y0, d.box.x1, d.box.y1);
  }
  for (size_t i = 0; i < gts.size(); ++i) {
    const GroundTruth& g = gts[i];
    RF_CHECK(g.cls >= 0 && g.cls < num_classes,
             "evaluate_detections: ground_truth[{}].cls = {}, expected in [0, {})", i, g.cls, num_classes);
    RF_CHECK(g.image >= 0, "evaluate_detections: ground_truth[{}].image = {}, expected >= 0", i, g.image);
    RF_CHECK(box_finite(g.box), "evaluate_detections: ground_truth[{}].box = ({}, {}, {}, {}), expected finite",
             i, g.box.x0, g.box.y0, g.box.x1, g.box.y1);
  }

  const int K = num_classes;
  DetMetrics m;
  m.ap50.assign(K, kNaN);
  m.ap_coco.assign(K, kNaN);
  m.ap_at.assign(kCocoThresholds, kNaN);
  m.gt_count.assign(K, 0);
  m.det_count.assign(K, 0);

  std::vector<std::vector<int64_t>> dets_of(K), gts_of(K);
  for (size_t i = 0; i < dets.size(); ++i) dets_of[dets[i].cls].push_back(int64_t(i));
  for (size_t i = 0; i < gts.size(); ++i) {
    gts_of[gts[i].cls].push_back(int64_t(i));
    if (!gts[i].difficult) m.gt_count[gts[i].cls] += 1;
  }

  std::vector<std::vector<double>> ap_t(kCocoThresholds, std::vector<double>(K, kNaN));
  std::vector<double> recall, precision;
  for (int c = 0; c < K; ++c) {
    m.det_count[c] = int64_t(dets_of[c].size());
    const int64_t npos = m.gt_count[c];
    if (npos == 0) continue;

    // GT of this class grouped by image; matched flags per threshold live beside them.
    std::unordered_map<int64_t, std::vector<int64_t>> gt_by_image;
    for (int64_t g : gts_of[c]) gt_by_image[gts[g].image].push_back(g);

    std::vector<int64_t> order = dets_of[c];
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return dets[a].score > dets[b].score; });

    // IoU of each ranked detection with each GT of its image, computed once for the 11 matchings.
    const size_t D = order.size();
    std::vector<const std::vector<int64_t>*> cand(D, nullptr);
    std::vector<std::vector<double>> ious(D);
    for (size_t r = 0; r < D; ++r) {
      const Detection& d = dets[order[r]];
      auto it = gt_by_image.find(d.image);
      if (it == gt_by_image.end()) continue;
      cand[r] = &it->second;
      for (int64_t g : it->second) ious[r].push_back(iou_d(d.box, gts[g].box));
    }

    std::vector<int8_t> outcome(D);
    // VOC @ 0.5.
    {
      std::unordered_map<int64_t, std::vector<char>> matched;
      for (size_t r = 0; r < D; ++r) {
        outcome[r] = kFP;
        if (!cand[r]) continue;
        size_t best = 0;
        for (size_t j = 1; j < ious[r].size(); ++j)
          if (ious[r][j] > ious[r][best]) best = j;
        if (!(ious[r][best] >= 0.5)) continue;
        const GroundTruth& g = gts[(*cand[r])[best]];
        if (g.difficult) {
          outcome[r] = kIgnored;
          continue;
        }
        std::vector<char>& mk = matched[dets[order[r]].image];
        if (mk.empty()) mk.assign(cand[r]->size(), 0);
        if (!mk[best]) outcome[r] = kTP, mk[best] = 1;
      }
      pr_curve(outcome, npos, recall, precision);
      m.ap50[c] = average_precision_all_point(recall, precision);
    }
    // COCO, one greedy matching per threshold.
    double sum = 0;
    for (int ti = 0; ti < kCocoThresholds; ++ti) {
      const double t = coco_iou_threshold(ti);
      std::unordered_map<int64_t, std::vector<char>> matched;
      for (size_t r = 0; r < D; ++r) {
        outcome[r] = kFP;
        if (!cand[r]) continue;
        std::vector<char>& mk = matched[dets[order[r]].image];
        if (mk.empty()) mk.assign(cand[r]->size(), 0);
        // Non-difficult GT first; a difficult one only when no non-difficult GT reaches t.
        long best = -1;
        for (int pass = 0; pass < 2 && best < 0; ++pass) {
          const bool want_difficult = pass == 1;
          double best_iou = t;
          for (size_t j = 0; j < ious[r].size(); ++j) {
            if (mk[j] || gts[(*cand[r])[j]].difficult != want_difficult) continue;
            if (ious[r][j] >= best_iou && (best < 0 || ious[r][j] > best_iou)) best = long(j), best_iou = ious[r][j];
          }
        }
        if (best < 0) continue;
        mk[size_t(best)] = 1;
        outcome[r] = gts[(*cand[r])[size_t(best)]].difficult ? kIgnored : kTP;
      }
      pr_curve(outcome, npos, recall, precision);
      ap_t[ti][c] = average_precision_101(recall, precision);
      sum += ap_t[ti][c];
    }
    m.ap_coco[c] = sum / kCocoThresholds;
  }

  m.map50 = mean_defined(m.ap50);
  m.map_coco = mean_defined(m.ap_coco);
  for (int ti = 0; ti < kCocoThresholds; ++ti) m.ap_at[ti] = mean_defined(ap_t[ti]);
  return m;
}

}  // namespace rf::eval

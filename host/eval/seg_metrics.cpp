// Segmentation confusion matrix and the metrics derived from it; rules in seg_metrics.h.
// Checked by tests/eval/test_seg_metrics.cpp.
#include "host/eval/seg_metrics.h"

#include <cmath>
#include <limits>

#include "host/core/check.h"

namespace rf::eval {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

ConfusionMatrix::ConfusionMatrix(int num_classes, int ignore_label) : K_(num_classes), ignore_(ignore_label) {
  RF_CHECK(num_classes > 0, "ConfusionMatrix: num_classes = {}, expected > 0", num_classes);
  RF_CHECK(ignore_label < 0 || ignore_label >= num_classes,
           "ConfusionMatrix: ignore_label = {} is a real class of [0, {}): expected a value outside it (e.g. 255)",
           ignore_label, num_classes);
  counts_.assign(size_t(K_) * size_t(K_), 0);
}

// Two passes: validate everything first so that a bad pixel leaves the matrix untouched.
// A 512x512 image is 0.26 M pixels, ~1 ms for both passes: no threads needed.
template <typename L>
void ConfusionMatrix::add_impl(const int32_t* pred, const L* label, int64_t n) {
  RF_CHECK(n >= 0, "ConfusionMatrix::add: n = {}, expected >= 0", n);
  if (n == 0) return;
  RF_CHECK(pred && label, "ConfusionMatrix::add: null pointer for {} pixels", n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = int64_t(label[i]), p = pred[i];
    RF_CHECK(p >= 0 && p < K_, "ConfusionMatrix::add: pred[{}] = {}, expected in [0, {})", i, p, K_);
    RF_CHECK(l == ignore_ || (l >= 0 && l < K_),
             "ConfusionMatrix::add: label[{}] = {}, expected in [0, {}) or the ignore label {}", i, l, K_, ignore_);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = int64_t(label[i]);
    if (l == ignore_) continue;
    counts_[size_t(l * K_ + pred[i])] += 1;
  }
}

void ConfusionMatrix::add(const int32_t* pred, const uint8_t* label, int64_t n) { add_impl(pred, label, n); }
void ConfusionMatrix::add(const int32_t* pred, const int32_t* label, int64_t n) { add_impl(pred, label, n); }

std::vector<double> ConfusionMatrix::iou() const {
  std::vector<double> out(K_);
  for (int c = 0; c < K_; ++c) {
    int64_t tp = counts_[size_t(c) * K_ + c], row = 0, col = 0;
    for (int j = 0; j < K_; ++j) row += counts_[size_t(c) * K_ + j], col += counts_[size_t(j) * K_ + c];
    const int64_t denom = row + col - tp;  // TP + FN + FP
    out[c] = denom > 0 ? double(tp) / double(denom) : kNaN;
  }
  return out;
}

double ConfusionMatrix::miou() const {
  double s = 0;
  int n = 0;
  for (double v : iou())
    if (!std::isnan(v)) s += v, ++n;
  return n ? s / n : kNaN;
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts_) t += v;
  return t;
}

double ConfusionMatrix::pixel_accuracy() const {
  int64_t correct = 0;
  for (int c = 0; c < K_; ++c) correct += counts_[size_t(c) * K_ + c];
  const int64_t t = total();
  return t ? double(correct) / double(t) : kNaN;
}

std::vector<double> ConfusionMatrix::class_accuracy() const {
  std::vector<double> out(K_);
  for (int c = 0; c < K_; ++c) {
    int64_t row = 0;
    for (int j = 0; j < K_; ++j) row += counts_[size_t(c) * K_ + j];
    out[c] = row ? double(counts_[size_t(c) * K_ + c]) / double(row) : kNaN;
  }
  return out;
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  RF_CHECK(other.K_ == K_ && other.ignore_ == ignore_,
           "ConfusionMatrix::merge: other has {} classes / ignore label {}, expected {} / {}", other.K_,
           other.ignore_, K_, ignore_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

}  // namespace rf::eval

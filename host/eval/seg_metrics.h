// Segmentation metrics: a confusion matrix over real classes with a void label, and mIoU, pixel accuracy
// and per-class accuracy derived from it. Checked by tests/eval/test_seg_metrics.cpp (hand-computed 4x4).
//
// Rules: pixels whose label equals ignore_label are skipped (their prediction is still range-checked, so a
// broken argmax never hides under void). A label outside [0, num_classes) that is not ignore_label, or a
// prediction outside [0, num_classes) -> rf::Error naming the value and the pixel index; on error the matrix
// is left unchanged. IoU_c = TP/(TP+FP+FN), NaN when class c appears in neither label nor prediction;
// mIoU = mean over classes with a defined IoU (NaN when none). Accuracies are NaN on an empty matrix.
#pragma once
#include <cstdint>
#include <vector>

namespace rf::eval {

class ConfusionMatrix {
 public:
  // ignore_label must lie outside [0, num_classes) (e.g. 255 for VOC / Cityscapes).
  ConfusionMatrix(int num_classes, int ignore_label);

  void add(const int32_t* pred, const uint8_t* label, int64_t n);  // n pixels
  void add(const int32_t* pred, const int32_t* label, int64_t n);

  std::vector<double> iou() const;             // per class
  double miou() const;
  double pixel_accuracy() const;               // correct / non-ignored pixels
  std::vector<double> class_accuracy() const;  // TP / label count, NaN for a class absent from labels
  const std::vector<int64_t>& counts() const { return counts_; }  // row-major [label][pred]
  int64_t total() const;                       // non-ignored pixels seen
  void merge(const ConfusionMatrix& other);    // same num_classes and ignore_label

  int num_classes() const { return K_; }
  int ignore_label() const { return ignore_; }

 private:
  template <typename L> void add_impl(const int32_t* pred, const L* label, int64_t n);
  int K_, ignore_;
  std::vector<int64_t> counts_;  // (K, K)
};

}  // namespace rf::eval

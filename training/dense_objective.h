// Detection and segmentation (the dense-prediction tasks) as objectives of the one trainer
// (training/objective.h), and their evaluation on a split: the data of a run (DenseData), the batches
// (seeded permutation, random scale / crop / flip), the task losses of host/models/dense_head.h, mAP@0.5 or
// mIoU on the validation split, BN recalibration from un-augmented training images.
// Checked by tests/training/test_dense_trainer.cpp (resume equals an uninterrupted run, per task) and
// tests/suites/test_dense_suite.cpp (the suites end to end).
#pragma once
#include <string>
#include <vector>

#include "datasets/dense.h"
#include "host/models/dense_head.h"
#include "training/objective.h"

namespace rf {

// One split of either task: the dataset held by the run and which task it serves.
struct DenseSplit {
  data::DetDataset det;
  data::SegDataset seg;
  int64_t size(bool detect) const { return detect ? det.size() : seg.size(); }
  std::string hash_hex(bool detect) const { return detect ? det.hash_hex() : seg.hash_hex(); }
};

struct DenseData {
  bool detect = true;
  DenseSplit train, val, test;
  std::vector<std::string> classes;
  int void_label = 255;
  std::string source;
  int in_h = 0, in_w = 0;  // the network input
};

// The plain resize to the network input (no augmentation): evaluation, BN recalibration, packages' metadata.
data::DenseAugment dense_eval_augment(const DenseData& d);
data::DenseBatch make_dense_batch(const DenseSplit& s, bool detect, const std::vector<int64_t>& idx,
                                  const data::DenseAugment& a, uint64_t seed, int64_t epoch);
inline Tensor dense_batch_tensor(data::DenseBatch& b) { return Tensor::borrow(b.x.data(), Shape{b.N, 3, b.H, b.W}); }
// The dataset's boxes as the heads' target boxes.
std::vector<std::vector<TargetBox>> target_boxes(const std::vector<std::vector<data::BoxAnn>>& boxes);
inline DetTargets make_det_targets(const std::vector<std::vector<data::BoxAnn>>& boxes, int K, int stride, int Hf,
                                   int Wf) {
  return make_det_targets(target_boxes(boxes), K, stride, Hf, Wf);
}

struct DenseMetrics {
  double main = 0, second = 0;     // detect: mAP@0.5, mAP@[.5:.95]; segment: mIoU, pixel accuracy
  std::vector<double> per_class;   // AP@0.5 or IoU
  double loss = 0;                 // segment only: mean pixel cross-entropy
};

// Evaluates a model (eval mode) on a split at the network input size, without augmentation. Detection boxes are
// mapped back to the original image's pixels and compared with the dataset's ground truth there; segmentation
// compares with the label maps resized (nearest) to the input size.
DenseMetrics evaluate_dense(Model& m, const DenseSplit& s, const DenseData& d, float score_threshold,
                            int64_t batch = 8);

struct DenseLossOptions {
  float size_weight = 0.1f, offset_weight = 1.f;  // detection: focal + w_s L1(size) + w_o L1(offset)
  float score_threshold = 0.01f;                  // detections kept for the validation mAP
};

class DenseObjective : public Objective {
 public:
  DenseObjective(const DenseData& d, const TrainOptions& o, const DenseLossOptions& lo);
  int64_t batches_per_epoch() const override;
  // The schedule counts a last batch of one image too (it is skipped: BN needs two), as it always has.
  int64_t schedule_steps_per_epoch() const override { return (n_ + batch_ - 1) / batch_; }
  int64_t epoch_images(int64_t) const override { return n_; }
  void start_epoch(int epoch) override;
  bool next(Tensor& x) override;
  BatchLoss loss(const Tensor& out, Tensor& dout) override;
  bool has_validation() const override { return true; }
  Validation validate(Model& model) override;
  std::string metric_name() const override { return d_.detect ? "mAP@0.5" : "mIoU"; }
  int64_t recalibrate_bn(Model& model, int64_t max_images) override;
  nlohmann::json settings() const override;
  // Each rank builds only its images of the global batch (augmentation is per image, so the images are those
  // of one process). The losses are normalised per rank (objects, non-void pixels), so N ranks train close to,
  // not exactly, what one process trains.
  bool set_rank_share(int rank, int ranks) override;

 private:
  const DenseData& d_;
  DenseLossOptions lo_;
  int64_t n_, batch_;
  uint64_t seed_;
  data::DenseAugment aug_;
  int epoch_ = 0;
  int64_t b0_ = 0;
  std::vector<int64_t> perm_;
  data::DenseBatch b_;
  int rank_ = 0, ranks_ = 1;
};

}  // namespace rf

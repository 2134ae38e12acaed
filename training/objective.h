// What the trainer (training/trainer.h) needs from a task: how the batches of an epoch are produced from the
// task's data, the loss and its gradient on the model's output, the validation metric, how BN statistics are
// recalibrated, and what a checkpoint records about the data. Classification (ClassifyObjective, below) and
// detection / segmentation (training/dense_objective.h) implement it, so every task gets the same loop,
// checkpoints, --resume, progress lines, divergence checks and BN recalibration.
// Checked by tests/training/test_trainer.cpp (classification) and tests/training/test_dense_trainer.cpp.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "host/models/model.h"

namespace rf {

struct TrainOptions;

struct BatchLoss {
  double loss = 0;      // mean over the batch's images
  int64_t correct = 0;  // images classified correctly (tasks without a training accuracy: 0)
};

struct Validation {
  double loss = 0;    // mean loss on the validation split (0 where the task does not measure it)
  double metric = 0;  // the task's validation figure: accuracy, mAP@0.5 or mIoU
};

class Objective {
 public:
  virtual ~Objective() = default;
  // Batches next() yields per epoch (the same count every epoch): optimizer step = epoch * this + batch index.
  virtual int64_t batches_per_epoch() const = 0;
  // Steps per epoch of the learning-rate schedule (total = this * epochs, warm-up = this * warmup_epochs).
  virtual int64_t schedule_steps_per_epoch() const { return batches_per_epoch(); }
  // The images an epoch's mean training loss (and images/s) is taken over, given the images trained on.
  virtual int64_t epoch_images(int64_t trained) const { return trained; }
  virtual void start_epoch(int epoch) = 0;
  // The next training batch's input (N >= 2, 3, H, W); false at the end of the epoch. The data order and
  // augmentation must depend only on (seed, epoch, batch), so a resumed run takes the same batches.
  virtual bool next(Tensor& x) = 0;
  // Loss of the batch last returned by next() on the model's output `out`; writes d loss / d out into dout.
  virtual BatchLoss loss(const Tensor& out, Tensor& dout) = 0;
  virtual bool has_accuracy() const { return false; }  // progress lines show the training accuracy
  virtual bool has_validation() const = 0;
  virtual Validation validate(Model& model) = 0;       // eval mode, no augmentation
  // "" for accuracy (printed as a fraction), else the metric's name ("mAP@0.5", "mIoU").
  virtual std::string metric_name() const { return ""; }
  // BN running statistics recomputed from up to max_images un-augmented training images (recalibrate_bn);
  // returns the images used (0: not done).
  virtual int64_t recalibrate_bn(Model& model, int64_t max_images) = 0;
  // Data-parallel training: from now on next() returns only rank `rank`'s share of each global batch (a contiguous
  // slice of its images, the shares of all ranks making up the batch), and loss() is on that share. false: the
  // task cannot split its batches (the trainer refuses to run it on more than one rank).
  virtual bool set_rank_share(int rank, int ranks) { (void)rank, (void)ranks; return false; }
  // What a checkpoint records about the data and the task (hashes, sizes, task settings); --resume refuses a
  // checkpoint whose record differs.
  virtual nlohmann::json settings() const = 0;
};

// Classification on a data::Dataset: the BatchLoader's crop + flip, softmax cross-entropy with label
// smoothing, accuracy on the validation split.
class ClassifyObjective : public Objective {
 public:
  ClassifyObjective(Model& model, const data::Dataset& train, const data::Dataset& val, const TrainOptions& o);
  int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  void start_epoch(int epoch) override { loader_.start_epoch(epoch); }
  bool next(Tensor& x) override;
  BatchLoss loss(const Tensor& out, Tensor& dout) override;
  bool has_accuracy() const override { return true; }
  bool has_validation() const override { return val_.size() > 0; }
  Validation validate(Model& model) override;
  int64_t recalibrate_bn(Model& model, int64_t max_images) override;
  nlohmann::json settings() const override;
  bool set_rank_share(int rank, int ranks) override;

 private:
  static data::LoaderOptions loader_options(const data::Dataset& train, const TrainOptions& o, int classes);
  const data::Dataset& train_;
  const data::Dataset& val_;
  int classes_;
  float label_smoothing_;
  int64_t batch_;
  uint64_t seed_;
  data::BatchLoader loader_;
  data::Batch b_;
  int rank_ = 0, ranks_ = 1;
};

}  // namespace rf

// The one training loop of every task (classification, detection, segmentation) on the host: SGD with
// momentum, weight decay on 2+-dim weights only, cosine schedule with optional linear warm-up, gradient-norm
// clipping, divergence checks, a validation split evaluated every epoch, progress lines, checkpoints written
// atomically every epoch, --resume, BN recalibration after the last epoch. The task comes in as an Objective
// (training/objective.h: batches, loss, validation metric); train_model is the classification entry point.
// Checked by tests/training/test_trainer.cpp (schedule, resume equals an uninterrupted run, loss goes down) and
// tests/training/test_dense_trainer.cpp (the same for detection and segmentation).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "host/models/model.h"
#include "training/objective.h"

namespace rf {

struct TrainOptions {
  int epochs = 10;
  int64_t batch = 128;
  float lr = 0.1f, momentum = 0.9f, weight_decay = 5e-4f;
  float label_smoothing = 0.f;
  float clip_norm = 5.f;  // <= 0: no clipping
  int warmup_epochs = 0;
  uint64_t seed = 0;       // data order and augmentation
  bool augment = true;     // random crop (pad 4) + horizontal flip
  int pad = 4;
  std::string checkpoint;  // written atomically after every epoch when set
  bool resume = false;     // continue from `checkpoint` if it exists
  bool progress = true;    // a progress line per epoch on stderr
  int stop_after_epochs = -1;  // for tests: return after this many epochs of this call (simulates a kill)
  // After the last epoch, recompute every BN layer's running statistics as the plain average of batch
  // statistics over up to this many training images, without augmentation (0: keep the running averages).
  int64_t bn_recalibrate = 4096;
  // Checkpoint safety. The checkpoint records these options, the model config and the data's hashes; --resume
  // refuses a checkpoint whose record differs (each differing field named) unless resume_force. An existing
  // checkpoint is not replaced by a fresh run (resume false) unless overwrite.
  std::string data_source;    // recorded for the message (the data itself is compared by hash)
  bool resume_force = false;
  bool overwrite = false;
  // Data-parallel training (under mpirun; host/core/comm.h): each rank trains on its share of every global batch
  // (`batch` images), gradients summed over the ranks. BN normalises each rank's share (the default) or, with
  // sync_bn, the global batch (then N ranks train what one process would, up to float summation order).
  bool sync_bn = false;
};

// Refuses options no run should start with, naming the option and the accepted range: lr finite in (0, 10],
// momentum in [0, 1), weight_decay in [0, 1), label_smoothing in [0, 1), clip_norm finite, epochs 1..10000,
// batch 2..65536, warmup_epochs 0..epochs, bn_recalibrate 0..100000000, pad 0..64.
void validate_train_options(const TrainOptions& o);

// The first parameter (learnable, seeded or BN state) holding a NaN or infinity: "" if none, else its name
// (and *index, the value's position, *value the value).
std::string first_non_finite_param(Model& model, int64_t* index = nullptr, float* value = nullptr);

// Learning rate at optimizer step `step` of `total` (0-based): linear warm-up over `warmup` steps from
// lr/warmup to lr, then cosine from lr to 0 over the remaining steps.
float cosine_lr(float lr, int64_t step, int64_t total, int64_t warmup);

// val_acc: the task's validation metric (accuracy; mAP@0.5 or mIoU for detection / segmentation);
// train_acc: 0 for tasks without a training accuracy.
struct EpochLog {
  int epoch = 0;  // 1-based
  double lr = 0, train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
  double seconds = 0, images_per_s = 0;
};

struct EvalResult {
  double loss = 0, acc = 0;  // acc: the task's validation metric (see EpochLog)
  int64_t n = 0;
  double seconds = 0;
};

// Accuracy and mean cross-entropy of `model` (eval mode) on `ds` (no augmentation).
EvalResult evaluate(Model& model, const data::Dataset& ds, int64_t batch = 256);

struct TrainResult {
  std::vector<EpochLog> epochs;
  bool resumed = false;
  int start_epoch = 0;
  // BN recalibration after the last epoch (TrainOptions::bn_recalibrate): images used (0: not done) and
  // the validation figures after it (the epochs' val figures are from before).
  int64_t bn_recalibrated = 0;
  EvalResult final_val;
};

// BN running statistics recomputed from the model's current weights: train-mode forward passes over up to
// max_images images of `ds` (shuffled with `seed`, no augmentation, batches of `batch`), each BN layer's
// running mean and variance set to the average of its batch statistics. Why: the running averages taken
// during training lag the weights (at lr 0.05 they move fast) and see augmented inputs (the pad-4 crop's
// zero border raises the input variance by ~30 %); on short runs that gap put NL-ResNet-18 512/768 at
// chance in eval mode while train-mode BN scored 42 %. Learnable weights are untouched. Returns the number
// of images used (0 when the set is too small for a batch of 2).
int64_t recalibrate_bn(Model& model, const data::Dataset& ds, int64_t max_images, int64_t batch, uint64_t seed);

// The loop under recalibrate_bn, for any source of batches (the dense suites use it too): add(x) runs a
// train-mode forward of batch k with BN momentum 1/(k+1); the destructor restores the normal momentum, also
// when a forward throws.
class BnRecalibration {
 public:
  explicit BnRecalibration(Model& model) : model_(model) {}
  ~BnRecalibration();
  BnRecalibration(const BnRecalibration&) = delete;
  BnRecalibration& operator=(const BnRecalibration&) = delete;
  void add(const Tensor& x);                   // x (N >= 2, 3, H, W)
  int64_t images() const { return images_; }

 private:
  Model& model_;
  int64_t batches_ = 0, images_ = 0;
};

// Trains `model` on the task's training data, validating after each epoch. The test set is not an argument: it
// is touched once, by the caller, after training. The numbers depend on o.seed through the objective only.
TrainResult train_task(Model& model, Objective& task, const TrainOptions& o);
// Classification: train_task with a ClassifyObjective on `train` / `val`.
TrainResult train_model(Model& model, const data::Dataset& train, const data::Dataset& val, const TrainOptions& o);

// Checkpoint: the model's package (fp32) plus the momentum buffers, the epoch log and the training settings
// (a JSON object, train_settings_json, stored one byte per value as the f32 tensor "trainer.settings"), one .rfpk.
void save_checkpoint(const std::string& path, Model& model, SGD& opt, const std::vector<EpochLog>& log,
                     const std::string& settings = "");
// Loads into an existing model of the same config; returns the epoch log and, in *settings, the recorded
// settings ("" for a checkpoint without them). Errors name the file and field.
std::vector<EpochLog> load_checkpoint(const std::string& path, Model& model, SGD& opt,
                                      std::string* settings = nullptr);
// What a checkpoint records about its run: model config, every option that changes the weights, the data
// hashes and sizes, and (informational) the data source.
std::string train_settings_json(const Model& model, const data::Dataset& train, const data::Dataset& val,
                                const TrainOptions& o);
// The same with the data's record given by the task (Objective::settings(): hashes, sizes, task fields).
std::string train_settings_json(const Model& model, const nlohmann::json& task_settings, const TrainOptions& o);
// "" when `recorded` and `current` (train_settings_json texts) agree on every compared field, else the
// differing fields, "batch: 32 in the checkpoint, 64 now; lr: ...".
std::string train_settings_diff(const std::string& recorded, const std::string& current);

}  // namespace rf

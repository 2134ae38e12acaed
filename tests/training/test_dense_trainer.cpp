// The one trainer on the dense-prediction tasks (training/dense_objective.h): for detection and for
// segmentation, a run killed after each epoch and resumed from its checkpoint ends bit-identical to an
// uninterrupted run (weights, epoch log, BN recalibration), and a checkpoint of the other task is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "datasets/synthetic_dense.h"
#include "training/dense_objective.h"
#include "training/trainer.h"
#include "testing.h"

using namespace rf;

namespace {

using rf::testing::temp_dir;

// 9 training scenes with batch 4: the last batch of one image is skipped (BN needs two), as in the suite.
DenseData tiny_data(bool detect) {
  DenseData d;
  d.detect = detect;
  d.in_h = d.in_w = 32;  // the smallest input the trunk takes: keeps the test short
  if (detect) {
    d.train.det = data::make_synthetic_det(9, 3, 0, 64, 64);
    d.val.det = data::make_synthetic_det(4, 3, 9, 64, 64);
    d.classes = data::synthetic_det_class_names();
  } else {
    d.train.seg = data::make_synthetic_seg(9, 3, 0, 64, 64);
    d.val.seg = data::make_synthetic_seg(4, 3, 9, 64, 64);
    d.classes = data::synthetic_seg_class_names();
    d.void_label = d.train.seg.void_label;
  }
  d.source = "synthetic (test)";
  return d;
}

ModelConfig tiny_config(bool detect, int classes) {
  ModelConfig cfg = ModelConfig::parse("nl-resnet18:cnl=dw");
  cfg.task = detect ? "detect" : "segment", cfg.stem = "large", cfg.neck = 16, cfg.classes = classes;
  cfg.validate();
  return cfg;
}

}  // namespace

class DenseTrainer : public ::testing::TestWithParam<const char*> {};

TEST_P(DenseTrainer, ResumedRunEqualsUninterruptedRun) {
  const bool detect = std::string(GetParam()) == "detect";
  const DenseData d = tiny_data(detect);
  const ModelConfig cfg = tiny_config(detect, int(d.classes.size()));
  TrainOptions o;
  o.epochs = 3, o.batch = 4, o.lr = 0.05f, o.warmup_epochs = 1, o.seed = 7, o.progress = false;
  o.bn_recalibrate = 8;
  const DenseLossOptions lo;
  Model a(cfg);
  DenseObjective ta(d, o, lo);
  TrainResult ra = train_task(a, ta, o);
  ASSERT_EQ(ra.epochs.size(), 3u);
  EXPECT_EQ(ra.bn_recalibrated, 8);

  const std::string dir = temp_dir(std::string("dense_resume_") + GetParam());
  o.checkpoint = dir + "/ckpt.rfpk";
  o.resume = true;
  o.stop_after_epochs = 1;  // "killed" after epoch 1, then after epoch 2
  for (int part = 0; part < 2; ++part) {
    Model b(cfg);
    DenseObjective tb(d, o, lo);
    TrainResult r = train_task(b, tb, o);
    EXPECT_EQ(r.resumed, part == 1);
    EXPECT_EQ(r.bn_recalibrated, 0);  // not the last epoch yet
  }
  Model b(cfg);
  o.stop_after_epochs = -1;
  DenseObjective tb(d, o, lo);
  TrainResult rb = train_task(b, tb, o);
  EXPECT_EQ(rb.start_epoch, 2);
  ASSERT_EQ(rb.epochs.size(), ra.epochs.size());
  EXPECT_EQ(rb.bn_recalibrated, ra.bn_recalibrated);
  auto pa = a.params(), pb = b.params();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    ASSERT_EQ(0, std::memcmp(pa[i]->value.raw(), pb[i]->value.raw(), pa[i]->value.nbytes())) << pa[i]->name;
  EXPECT_EQ(ra.epochs.back().train_loss, rb.epochs.back().train_loss);  // the last epoch ran in both
  EXPECT_EQ(ra.epochs.back().val_acc, rb.epochs.back().val_acc);
  EXPECT_EQ(ra.final_val.acc, rb.final_val.acc);

  // The checkpoint records the task and its data: the other task's data is refused, naming the fields.
  const DenseData other = tiny_data(!detect);
  Model c(tiny_config(!detect, int(other.classes.size())));
  DenseObjective tc(other, o, lo);
  EXPECT_THROW(train_task(c, tc, o), rf::Error);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Tasks, DenseTrainer, ::testing::Values("detect", "segment"));

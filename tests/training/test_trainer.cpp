// Trainer: the schedule, checkpoint/resume equivalence (bit for bit), learning on the synthetic set, and the
// option and checkpoint safety rules (the classify suite's own test: tests/suites/test_classify_suite.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "datasets/synthetic.h"
#include "training/trainer.h"
#include "testing.h"

using namespace rf;

using rf::testing::temp_dir;

TEST(Schedule, CosineWithWarmup) {
  EXPECT_FLOAT_EQ(cosine_lr(0.1f, 0, 100, 0), 0.1f);
  EXPECT_NEAR(cosine_lr(0.1f, 50, 100, 0), 0.05f, 1e-6);
  EXPECT_NEAR(cosine_lr(0.1f, 100, 100, 0), 0.0f, 1e-7);
  EXPECT_NEAR(cosine_lr(0.1f, 0, 100, 10), 0.01f, 1e-7);  // warm-up starts at lr / warmup
  EXPECT_NEAR(cosine_lr(0.1f, 9, 100, 10), 0.1f, 1e-7);
  EXPECT_NEAR(cosine_lr(0.1f, 10, 100, 10), 0.1f, 1e-7);
  EXPECT_NEAR(cosine_lr(0.1f, 55, 100, 10), 0.05f, 1e-6);
  for (int s = 11; s < 100; ++s) EXPECT_LE(cosine_lr(0.1f, s, 100, 10), cosine_lr(0.1f, s - 1, 100, 10));
}

TEST(Trainer, ResumedRunEqualsUninterruptedRun) {
  data::Dataset train = data::make_synthetic(96, 3, 0, 8, 8), val = data::make_synthetic(32, 3, 96, 8, 8);
  ModelConfig cfg = ModelConfig::parse("nl-resnet18:cnl=dw");
  TrainOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.lr = 0.05f;
  o.seed = 5;
  o.progress = false;
  Model a(cfg);
  TrainResult ra = train_model(a, train, val, o);

  std::string dir = temp_dir("resume");
  o.checkpoint = dir + "/ckpt.rfpk";
  o.resume = true;
  o.stop_after_epochs = 1;  // "killed" after epoch 1, then after epoch 2
  {
    Model b(cfg);
    TrainResult r1 = train_model(b, train, val, o);
    EXPECT_FALSE(r1.resumed);
    EXPECT_EQ(r1.epochs.size(), 1u);
  }
  {
    Model b(cfg);
    TrainResult r2 = train_model(b, train, val, o);
    EXPECT_TRUE(r2.resumed);
    EXPECT_EQ(r2.start_epoch, 1);
  }
  Model b(cfg);
  o.stop_after_epochs = -1;
  TrainResult rb = train_model(b, train, val, o);
  EXPECT_EQ(rb.start_epoch, 2);
  ASSERT_EQ(rb.epochs.size(), ra.epochs.size());
  auto pa = a.params(), pb = b.params();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i)
    ASSERT_EQ(0, std::memcmp(pa[i]->value.raw(), pb[i]->value.raw(), pa[i]->value.nbytes())) << pa[i]->name;
  EXPECT_FLOAT_EQ(float(ra.epochs.back().val_acc), float(rb.epochs.back().val_acc));
  std::filesystem::remove_all(dir);
}

TEST(Trainer, CheckpointOfAnotherModelIsRefused) {
  data::Dataset train = data::make_synthetic(64, 3, 0, 8, 8);
  std::string dir = temp_dir("refuse");
  TrainOptions o;
  o.epochs = 1;
  o.batch = 32;
  o.progress = false;
  o.checkpoint = dir + "/ckpt.rfpk";
  Model a(ModelConfig::parse("nl-resnet18:cnl=dw"));
  train_model(a, train, train, o);
  Model b(ModelConfig::parse("nl-resnet18:cnl=512"));
  o.resume = true;
  o.epochs = 2;
  EXPECT_THROW(train_model(b, train, train, o), rf::Error);
  std::filesystem::remove_all(dir);
}

namespace {
std::vector<std::vector<float>> snapshot(Model& m, bool running_stats) {
  std::vector<std::vector<float>> out;
  for (Param* p : m.params()) {
    const bool stat = p->name.find("running_") != std::string::npos;
    if (stat != running_stats) continue;
    out.emplace_back(p->value.f32(), p->value.f32() + p->value.numel());
  }
  return out;
}
void restore_running_stats(Model& m, const std::vector<std::vector<float>>& v) {
  size_t i = 0;
  for (Param* p : m.params())
    if (p->name.find("running_") != std::string::npos) std::copy(v[i].begin(), v[i].end(), p->value.f32()), ++i;
}
}  // namespace

// recalibrate_bn: running statistics = the average of batch statistics, whatever they were before; learnable
// weights untouched; afterwards train-mode BN is back to momentum 0.1; with the whole set in one batch, eval
// mode reproduces train mode on that set (up to the unbiased/biased variance factor n/(n-1)).
TEST(Trainer, BnRecalibrationAveragesBatchStatistics) {
  // 16x16: the last stage's maps are 2x2, so n/(n-1) over a batch of 64 is 1.004 (8x8 images: 1.016 at 1x1).
  data::Dataset train = data::make_synthetic(64, 3, 0, 16, 16);
  Model m(ModelConfig::parse("nl-resnet18:cnl=dw"));
  TrainOptions o;
  o.epochs = 1, o.batch = 32, o.lr = 0.05f, o.progress = false, o.bn_recalibrate = 0;
  TrainResult tr = train_model(m, train, train, o);
  EXPECT_EQ(tr.bn_recalibrated, 0);
  const auto learnable = snapshot(m, false);
  const auto trained = snapshot(m, true);  // the running averages of training

  EXPECT_EQ(recalibrate_bn(m, train, 64, 32, 1), 64);
  const auto fresh = snapshot(m, true);
  for (Param* p : m.params())  // garbage in the running statistics: the result must not depend on it
    if (p->name.find("running_") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = 7.f;
  EXPECT_EQ(recalibrate_bn(m, train, 64, 32, 1), 64);
  EXPECT_EQ(snapshot(m, true), fresh);
  EXPECT_EQ(snapshot(m, false), learnable);

  // Averaging: the statistics of batches A and B (one batch each) average to those of the pair.
  data::LoaderOptions lo = data::LoaderOptions::eval();
  lo.batch_size = 64;
  data::BatchLoader loader(train, lo);
  loader.start_epoch(0);
  data::Batch all;
  ASSERT_TRUE(loader.next(all));
  ASSERT_EQ(all.size(), 64);
  // max |eval - train-mode| over the logits of `all`, relative to max |train-mode|
  auto eval_gap = [&] {
    Tensor ev = m.forward(all.x, false);
    Tensor trm = m.forward(all.x, true);
    m.clear_cache();
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < ev.numel(); ++i) {
      scale = std::max(scale, double(std::fabs(trm.f32()[i])));
      diff = std::max(diff, double(std::fabs(ev.f32()[i] - trm.f32()[i])));
    }
    return diff / scale;
  };
  restore_running_stats(m, trained);
  const double before = eval_gap();
  restore_running_stats(m, trained);
  EXPECT_EQ(recalibrate_bn(m, train, 64, 64, 1), 64);
  const double gap = eval_gap();
  // Not zero: running_var is the unbiased variance, train mode divides by n (1.004 on the 2x2 maps of the
  // last stage, compounded over 20 BN layers).
  EXPECT_LT(gap, 0.02) << "eval after recalibrating on the whole set should match train mode on it";
  EXPECT_LT(gap, before / 4) << "training's running averages: gap " << before;

  // Bad input: a batch of one (no variance) is refused; a forward that throws mid-recalibration still
  // leaves BN at its normal momentum (checked by the momentum test below, which runs after it).
  EXPECT_THROW(recalibrate_bn(m, train, 64, 1, 1), rf::Error);
  {
    BnRecalibration recal(m);
    EXPECT_THROW(recal.add(Tensor::zeros(Shape{2, 5, 16, 16})), rf::Error);  // 5 channels: the stem wants 3
  }

  // Train-mode BN after recalibration: momentum 0.1 again (running = 0.9 R + 0.1 S, S = this batch's stats).
  const auto whole = snapshot(m, true);  // S: the statistics of `all`, from the one-batch recalibration
  restore_running_stats(m, fresh);
  m.forward(all.x, true);
  m.clear_cache();
  const auto after = snapshot(m, true);
  for (size_t t = 0; t < after.size(); ++t)
    for (size_t i = 0; i < after[t].size(); ++i)
      ASSERT_NEAR(after[t][i], 0.9f * fresh[t][i] + 0.1f * whole[t][i], 1e-4f * (1 + std::fabs(whole[t][i])))
          << "running statistic " << t << " element " << i;
}

TEST(Trainer, LearnsTheSyntheticSet) {
  data::Dataset train = data::make_synthetic(1000, 11, 0, 24, 24), val = data::make_synthetic(200, 11, 1000, 24, 24);
  Model m(ModelConfig::parse("nl-resnet18:cnl=dw"));
  TrainOptions o;
  o.epochs = 4;
  o.batch = 50;
  o.lr = 0.05f;
  o.progress = false;
  TrainResult r = train_model(m, train, val, o);
  EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss);
  EXPECT_GT(r.epochs.back().val_acc, 0.2) << "chance is 0.1";
}

// ---- issue 18: options, divergence, checkpoint safety -----------------------------------------------------

namespace {
template <typename F>
void expect_error(F fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << *needles.begin() << "'";
  } catch (const rf::Error& e) {
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}
TrainOptions tiny_options() {
  TrainOptions o;
  o.epochs = 1, o.batch = 16, o.lr = 0.05f, o.progress = false, o.bn_recalibrate = 0;
  return o;
}
}  // namespace

TEST(TrainerOptions, OutOfRangeAndNonFiniteOptionsAreRefusedNamingTheOption) {
  auto bad = [](auto change, std::initializer_list<std::string> needles) {
    TrainOptions o = tiny_options();
    change(o);
    expect_error([&] { validate_train_options(o); }, needles);
  };
  bad([](TrainOptions& o) { o.lr = std::nanf(""); }, {"--lr nan", "finite", "> 0"});
  bad([](TrainOptions& o) { o.lr = -1.f; }, {"--lr -1", "> 0"});
  bad([](TrainOptions& o) { o.lr = INFINITY; }, {"--lr inf"});
  bad([](TrainOptions& o) { o.lr = 0.f; }, {"--lr 0"});
  bad([](TrainOptions& o) { o.momentum = 1.f; }, {"momentum 1", "[0, 1)"});
  bad([](TrainOptions& o) { o.momentum = std::nanf(""); }, {"momentum nan"});
  bad([](TrainOptions& o) { o.weight_decay = -0.1f; }, {"weight decay -0.1"});
  bad([](TrainOptions& o) { o.label_smoothing = 1.f; }, {"--label-smoothing 1"});
  bad([](TrainOptions& o) { o.clip_norm = std::nanf(""); }, {"clip norm nan"});
  bad([](TrainOptions& o) { o.epochs = 0; }, {"--epochs 0", "1..10000"});
  bad([](TrainOptions& o) { o.batch = 1; }, {"--batch 1", "2..65536"});
  bad([](TrainOptions& o) { o.warmup_epochs = 5; }, {"--warmup 5", "at most --epochs"});
  bad([](TrainOptions& o) { o.bn_recalibrate = -3; }, {"--bn-recalibrate -3"});
  bad([](TrainOptions& o) { o.resume_force = true; }, {"--resume-force needs --resume"});
  // train_model checks too, before any epoch.
  data::Dataset train = data::make_synthetic(32, 3, 0, 8, 8);
  Model m(ModelConfig::parse("nl-resnet18:cnl=dw"));
  TrainOptions o = tiny_options();
  o.lr = std::nanf("");
  expect_error([&] { train_model(m, train, train, o); }, {"--lr nan"});
}

TEST(TrainerOptions, DivergenceStopsTrainingNamingEpochStepAndTensorAndWritesNoCheckpoint) {
  data::Dataset train = data::make_synthetic(64, 3, 0, 8, 8);
  Model m(ModelConfig::parse("nl-resnet18:cnl=dw"));
  const std::string dir = temp_dir("diverge");
  TrainOptions o = tiny_options();
  o.lr = 10.f;  // allowed, but with a poisoned weight the update is NaN
  o.clip_norm = 0.f;
  o.checkpoint = dir + "/ckpt.rfpk";
  m.params()[0]->value.f32()[0] = INFINITY;
  expect_error([&] { train_model(m, train, train, o); }, {"diverged at epoch 1, step 1 of", "tensor", "lower --lr"});
  EXPECT_FALSE(std::filesystem::exists(o.checkpoint));
  std::filesystem::remove_all(dir);
}

TEST(TrainerCheckpoint, ExistingCheckpointIsNotOverwrittenWithoutResumeOrOverwrite) {
  data::Dataset train = data::make_synthetic(48, 3, 0, 8, 8);
  const std::string dir = temp_dir("overwrite");
  TrainOptions o = tiny_options();
  o.checkpoint = dir + "/ckpt.rfpk";
  Model a(ModelConfig::parse("nl-resnet18:cnl=dw"));
  train_model(a, train, train, o);
  const auto before = std::filesystem::last_write_time(o.checkpoint);
  Model b(ModelConfig::parse("nl-resnet18:cnl=dw"));
  expect_error([&] { train_model(b, train, train, o); }, {"--checkpoint", "ckpt.rfpk", "exists", "--resume",
                                                          "--overwrite"});
  EXPECT_EQ(std::filesystem::last_write_time(o.checkpoint), before);
  o.overwrite = true;
  Model c(ModelConfig::parse("nl-resnet18:cnl=dw"));
  EXPECT_NO_THROW(train_model(c, train, train, o));
  std::filesystem::remove_all(dir);
}

TEST(TrainerCheckpoint, ResumeRefusesOtherSettingsNamingEachFieldUnlessForced) {
  data::Dataset train = data::make_synthetic(48, 3, 0, 8, 8), other = data::make_synthetic(48, 4, 0, 8, 8);
  const std::string dir = temp_dir("settings");
  TrainOptions o = tiny_options();
  o.epochs = 2;
  o.checkpoint = dir + "/ckpt.rfpk";
  o.resume = true;
  o.stop_after_epochs = 1;
  o.data_source = "set-a";
  {
    Model a(ModelConfig::parse("nl-resnet18:cnl=dw"));
    train_model(a, train, train, o);
  }
  o.stop_after_epochs = -1;
  TrainOptions changed = o;
  changed.batch = 24, changed.lr = 0.1f, changed.seed = 9, changed.data_source = "set-b";
  Model b(ModelConfig::parse("nl-resnet18:cnl=dw"));
  expect_error([&] { train_model(b, other, other, changed); },
               {"--resume", "ckpt.rfpk", "batch: 16 in the checkpoint, 24 now", "lr: 0.05", "seed: 0 in the "
                "checkpoint, 9 now", "train_data", "set-a", "set-b", "--resume-force"});
  for (auto change : {+[](TrainOptions& t) { t.epochs = 3; }, +[](TrainOptions& t) { t.augment = false; },
                      +[](TrainOptions& t) { t.label_smoothing = 0.1f; }}) {
    TrainOptions t = o;
    change(t);
    Model x(ModelConfig::parse("nl-resnet18:cnl=dw"));
    EXPECT_THROW(train_model(x, train, train, t), rf::Error);
  }
  changed.resume_force = true;
  Model c(ModelConfig::parse("nl-resnet18:cnl=dw"));
  TrainResult r = train_model(c, other, other, changed);
  EXPECT_TRUE(r.resumed);
  // The same settings resume silently (a moved data path alone is not a difference: the data is hashed).
  std::filesystem::remove_all(dir);
  o.stop_after_epochs = 1;
  {
    Model a(ModelConfig::parse("nl-resnet18:cnl=dw"));
    train_model(a, train, train, o);
  }
  o.stop_after_epochs = -1;
  o.data_source = "moved/set-a";
  Model d(ModelConfig::parse("nl-resnet18:cnl=dw"));
  TrainResult rd = train_model(d, train, train, o);
  EXPECT_TRUE(rd.resumed);
  EXPECT_EQ(rd.start_epoch, 1);
  std::filesystem::remove_all(dir);
}

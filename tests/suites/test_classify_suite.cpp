// The classification suite end to end on a tiny synthetic set: two models, two seeds, pack and evaluate once per
// package (suites/classify.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "suites/classify.h"
#include "testing.h"

using namespace rf;

using rf::testing::temp_dir;

TEST(Classify, ReportsLastEpochAndTouchesTestOncePerPackage) {
  ClassifyOptions o;
  o.models = {"nl-resnet18:cnl=dw", "resnet18"};
  o.synthetic_train = 120;
  o.synthetic_test = 40;
  o.image_size = 8;
  o.seeds = 2;
  o.train.epochs = 2;
  o.train.batch = 40;
  o.train.progress = false;
  o.throughput_batches = {8};
  o.latency_reps = 2;
  o.throughput_reps = 1;
  o.out_dir = temp_dir("classify");
  nlohmann::json r = run_classify(o);
  ASSERT_TRUE(std::filesystem::exists(o.out_dir + "/classify.json"));
  EXPECT_EQ(r["schema"], "reframe.classify/1");
  ASSERT_EQ(r["models"].size(), 2u);
  EXPECT_NE(r["dataset"]["val_hash"], r["dataset"]["test_hash"]);
  EXPECT_EQ(r["dataset"]["train"].get<int>() + r["dataset"]["val"].get<int>(), 120);
  for (const auto& m : r["models"]) {
    ASSERT_EQ(m["runs"].size(), 2u);
    std::vector<double> vals;
    for (const auto& run : m["runs"]) {
      EXPECT_EQ(run["test_evaluations_per_package"], 1);
      EXPECT_GT(run["train_peak_tensor_bytes"].get<int64_t>(), 0);  // per run; the model's figure is their max
      // The reported validation accuracy is the last epoch's model (never the best epoch's), after BN
      // recalibration; the epoch log keeps the figure from before it.
      EXPECT_EQ(run["val_acc_last_epoch"], run["epochs"].back()["val_acc"]);
      EXPECT_GT(run["bn_recalibration_images"].get<int64_t>(), 0);
      vals.push_back(run["val_acc_final"].get<double>());
    }
    EXPECT_NEAR(m["val_acc"]["mean"].get<double>(), (vals[0] + vals[1]) / 2, 1e-12);
    EXPECT_GT(m["package_bytes"]["f32"].get<int64_t>(), m["package_bytes"]["i8"].get<int64_t>());
  }
  double dw = r["models"][0]["package_bytes"]["f32"].get<double>();
  double r18 = r["models"][1]["package_bytes"]["f32"].get<double>();
  EXPECT_LT(dw / r18, 0.11);
  EXPECT_FALSE(classify_table(r).empty());
  std::filesystem::remove_all(o.out_dir);
}

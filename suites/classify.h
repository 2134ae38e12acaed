// The classification suite (`reframe bench classify`): for each model and seed, train (cloud side), pack
// (fp32/fp16/int8), read the package back as the device would, regenerate the seeded weights, and evaluate on
// the test split, touched once per package after training. Writes results/<run>/classify.json (schema
// reframe.classify/1) and prints a table. Checked by tests/suites/test_suite_tables.cpp
// (its table), tests/suites/test_classify_suite.cpp (a tiny run end to end) and scripts/ci-gate.sh.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/package/package.h"
#include "suites/runs.h"
#include "training/trainer.h"

namespace rf {

struct ClassifyOptions {
  std::vector<std::string> models = {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512",
                                     "nl-resnet18:cnl=768"};
  int seeds = 1;
  uint64_t base_seed = 0;
  std::string data;          // empty: the built-in synthetic set
  int64_t synthetic_train = 4000, synthetic_test = 1000;
  int image_size = 32;       // synthetic images only
  int64_t val_count = -1;    // -1: 10 % of the training set (5,000 for CIFAR-10)
  TrainOptions train;
  Device train_device = Device::cpu;  // --device: where the cloud side trains (the device side runs on the CPU)
  std::vector<int> throughput_batches = {64, 256};
  int latency_reps = 20, throughput_reps = 3;
  std::string out_dir;       // where classify.json and the packages go
  std::string command_line;
  Shard shard;               // --shard I/N: only this part's (model, seed) runs; the JSON records the part
  bool write_results = true; // false: return the results only (--rank-groups: world rank 0 writes the merged file)
};

nlohmann::json run_classify(const ClassifyOptions& o);
// The package metadata (docs/PACKAGE.md, version 2) of a classifier trained on `train` with the trainer's
// loaders: the images' size, the loaders' normalisation (data::Normalize) and the dataset's class names.
PackageMeta inference_meta(const data::Dataset& train);
// A classify row's figures over seeds from its "runs": val_acc, test_acc, test_acc_fp16, test_acc_int8 (run_classify
// and `reframe merge` both use it).
void summarize_classify_row(nlohmann::json& row);
// The terminal table of a classify.json.
std::string classify_table(const nlohmann::json& results);

}  // namespace rf

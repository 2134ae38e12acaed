// The detection and segmentation suites (`reframe bench detect`, `reframe bench segment`): the same backbones
// as the classification suite with the large stem, the stride-8 merge and the task heads of MODELS.md
// (host/models/dense.h); for each model and seed: train (cloud side), pack fp32/fp16/int8, read each package
// back as the device would, regenerate the seeded weights, evaluate on the test split once per package.
// Figures per model as in classify.json (MACs at the task's input size, package bytes, storage, peak memory,
// latency, throughput) plus mAP@0.5 / COCO mAP@[.5:.95] (detect) or mIoU / pixel accuracy (segment), per
// class too. Writes <out>/detect.json or <out>/segment.json (schema reframe.detect/1, reframe.segment/1) and
// pictures (<out>/pictures/*.png: ground truth, then each model's prediction, side by side).
// Data: the built-in synthetic scenes by default; --data a Pascal VOC root (BCCD), a CamVid root, or a
// .tar.zst of either. Training is the one trainer's (training/trainer.h with training/dense_objective.h: so
// checkpoints, --resume, BN recalibration as for classification); the task heads' targets and losses are
// host/models/dense_head.h, decoding host/eval/decode.h. Checked by tests/suites/test_dense_suite.cpp (losses and
// targets glue, a tiny end-to-end run of both suites) and the scripts/run.sh main job.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/eval/decode.h"
#include "suites/runs.h"
#include "training/dense_objective.h"
#include "training/trainer.h"

namespace rf {

// The trainer's options with the dense suites' defaults: 10 epochs, batch 16, lr 0.05 with 1 warm-up epoch,
// random scale 0.75-1.25 / crop / flip (boxes and masks follow), BN statistics recomputed after training from
// <= 4096 un-augmented training images (training/trainer.h; 0: off). A checkpoint names a folder (suites/runs.h).
inline TrainOptions dense_train_defaults() {
  TrainOptions t;
  t.epochs = 10, t.batch = 16, t.lr = 0.05f, t.momentum = 0.9f, t.weight_decay = 5e-4f, t.clip_norm = 5.f;
  t.warmup_epochs = 1, t.augment = true, t.bn_recalibrate = 4096;
  return t;
}

struct DenseOptions {
  std::string task = "detect";  // detect | segment
  std::vector<std::string> models = {"resnet18", "nl-resnet18:cnl=dw"};
  int seeds = 1;
  uint64_t base_seed = 0;
  std::string data;                  // empty: synthetic scenes
  int64_t synthetic_train = 480, synthetic_val = 64, synthetic_test = 128;
  int synthetic_size = 128;          // rendered scene size (square)
  int input_h = 0, input_w = 0;      // network input; 0: 128x128 synthetic, 256x320 VOC, 256x352 CamVid
  TrainOptions train = dense_train_defaults();  // train.seed is set per run (suites/runs.h)
  Device train_device = Device::cpu;  // --device: where the cloud side trains (the device side runs on the CPU)
  int neck = 64;
  bool head_nl = false;              // NL modules in the merge and head (NL backbones only)
  float size_weight = 0.1f, offset_weight = 1.f;  // detection loss: focal + w_s L1(size) + w_o L1(offset)
  float score_threshold = 0.01f;     // detections kept for mAP
  int pictures = 4;                  // test images drawn per suite
  std::vector<int> throughput_batches = {1, 8};
  int latency_reps = 10, throughput_reps = 3;
  std::string out_dir, command_line;
  bool overwrite = false;            // CLI: --out may hold a previous run (its results are removed first)
  Shard shard;                       // --shard I/N: only this part's (model, seed) runs; the JSON records the part
  bool write_results = true;         // false: return the results only (--rank-groups: world rank 0 writes them)
  int rank_groups = 1;               // CLI: --rank-groups G (app/cmd_bench.cpp splits the world, sets shard)
};

nlohmann::json run_dense(const DenseOptions& o);
std::string dense_table(const nlohmann::json& results);
// A row's task figures over seeds from its "runs" (packages' metrics, the last epoch's validation figure, the f32
// package's per-class values): run_dense and `reframe merge` both use it. `classes`: the dataset's class names.
void summarize_dense_row(nlohmann::json& row, const std::string& task, const std::vector<std::string>& classes);

}  // namespace rf

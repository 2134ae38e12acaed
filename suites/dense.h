// The detection and segmentation suites (`reframe bench detect`, `reframe bench segment`): the same backbones
// as the classification suite with the large stem, the stride-8 merge and the task heads of MODELS.md
// (host/models/dense.h); for each model and seed: train (cloud side), pack fp32/fp16/int8, read each package
// back as the device would, regenerate the seeded weights, evaluate on the test split once per package.
// Figures per model as in classify.json (MACs at the task's input size, package bytes, storage, peak memory,
// latency, throughput) plus mAP@0.5 / COCO mAP@[.5:.95] (detect) or mIoU / pixel accuracy (segment), per
// class too. Writes <out>/detect.json or <out>/segment.json (schema reframe.detect/1, reframe.segment/1) and
// pictures (<out>/pictures/*.png: ground truth, then each model's prediction, side by side).
// Data: the built-in synthetic scenes by default; --data a Pascal VOC root (BCCD), a CamVid root, or a
// .tar.zst of either. Checked by tests/suites/test_dense_suite.cpp (losses and targets glue, a tiny end-to-end
// run of both suites) and the scripts/run.sh main job.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/dense.h"
#include "host/core/tensor.h"
#include "host/eval/det_metrics.h"

namespace rf {

struct DenseOptions {
  std::string task = "detect";  // detect | segment
  std::vector<std::string> models = {"resnet18", "nl-resnet18:cnl=dw"};
  int seeds = 1;
  uint64_t base_seed = 0;
  std::string data;                  // empty: synthetic scenes
  int64_t synthetic_train = 480, synthetic_val = 64, synthetic_test = 128;
  int synthetic_size = 128;          // rendered scene size (square)
  int input_h = 0, input_w = 0;      // network input; 0: 128x128 synthetic, 256x320 VOC, 256x352 CamVid
  int epochs = 10;
  int64_t batch = 16;
  float lr = 0.05f, momentum = 0.9f, weight_decay = 5e-4f, clip_norm = 5.f;
  int warmup_epochs = 1;
  bool augment = true;               // random scale 0.75-1.25, crop, flip (boxes and masks follow)
  int64_t bn_recalibrate = 4096;     // BN statistics recomputed after training from <= this many training
                                     // images without augmentation (training/trainer.h; 0: off)
  int neck = 64;
  bool head_nl = false;              // NL modules in the merge and head (NL backbones only)
  float size_weight = 0.1f, offset_weight = 1.f;  // detection loss: focal + w_s L1(size) + w_o L1(offset)
  float score_threshold = 0.01f;     // detections kept for mAP
  int pictures = 4;                  // test images drawn per suite
  std::vector<int> throughput_batches = {1, 8};
  int latency_reps = 10, throughput_reps = 3;
  std::string out_dir, command_line;
  bool overwrite = false;            // CLI: --out may hold a previous run (its results are removed first)
};

nlohmann::json run_dense(const DenseOptions& o);
std::string dense_table(const nlohmann::json& results);

// Pieces the suite is built from (tested on their own).
struct DetTargets {
  Tensor heat, size, offset, mask;  // (N,K,Hf,Wf), (N,2,Hf,Wf), (N,2,Hf,Wf), (N,Hf,Wf)
};
DetTargets make_det_targets(const std::vector<std::vector<data::BoxAnn>>& boxes, int K, int stride, int Hf, int Wf);
struct DetLoss {
  double total = 0, heat = 0, size = 0, offset = 0;
};
// out: the detection trunk's (N, K+4, Hf, Wf); writes dout (same shape).
DetLoss det_loss(const Tensor& out, const DetTargets& t, float size_weight, float offset_weight, Tensor& dout);
// out: (N, C, H, W) logits; labels (N, H, W); void_label ignored. Writes dout.
double seg_loss(const Tensor& out, const uint8_t* labels, int void_label, Tensor& dout);
// Detections of an output batch, in network-input pixels.
std::vector<eval::Detection> det_decode(const Tensor& out, int K, float score_threshold, int64_t first_image);
// Per-pixel argmax of (N, C, H, W) logits.
std::vector<int32_t> seg_argmax(const Tensor& out);

}  // namespace rf

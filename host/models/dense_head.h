// The task heads' training targets and losses on the dense-prediction trunk's output (host/models/dense.h):
// detection (CenterNet targets; focal loss on the heatmap + weighted L1 on size and offset) and segmentation
// (pixel cross-entropy, void ignored). The kernels are host/ops/dense_loss.h; this file glues them to the
// trunk's channel layout [heat K | size 2 | offset 2]. Decoding of the outputs is host/eval/decode.h.
// Checked by tests/suites/test_dense_suite.cpp (targets, gradients against finite differences, losses go down).
#pragma once
#include <cstdint>
#include <vector>

#include "host/core/tensor.h"

namespace rf {

// One ground-truth box in network-input pixels (x1/y1 exclusive) and its class.
struct TargetBox {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int32_t cls = 0;
};

struct DetTargets {
  Tensor heat, size, offset, mask;  // (N,K,Hf,Wf), (N,2,Hf,Wf), (N,2,Hf,Wf), (N,Hf,Wf)
};
// boxes: per image of the batch.
DetTargets make_det_targets(const std::vector<std::vector<TargetBox>>& boxes, int K, int stride, int Hf, int Wf);

struct DetLoss {
  double total = 0, heat = 0, size = 0, offset = 0;
};
// out: the detection trunk's (N, K+4, Hf, Wf); writes dout (same shape).
// total = focal(heat) + size_weight * L1(size) + offset_weight * L1(offset).
DetLoss det_loss(const Tensor& out, const DetTargets& t, float size_weight, float offset_weight, Tensor& dout);
// out: (N, C, H, W) logits; labels (N, H, W) in host memory; void_label ignored. Writes dout. Both losses run on
// out's device (cuda/ops/dense_loss.h on a GPU; the targets and labels are uploaded).
double seg_loss(const Tensor& out, const uint8_t* labels, int void_label, Tensor& dout);

}  // namespace rf

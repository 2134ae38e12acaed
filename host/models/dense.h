// The dense-prediction trunk of MODELS.md's detection and segmentation models: backbone stages 2-4, a small
// top-down merge to a stride-8 map, and the task head. The stem and stage 1 stay in Model's Sequential; this
// module takes stage 1's output (N, 64, H/4, W/4) and returns one tensor:
//   detect:  (N, K + 4, H/8, W/8)  channels [0, K) heatmap logits, K..K+1 box size (w, h) in stride-8 cells,
//            K+2..K+3 centre offset (x, y) in cells (decoded by host/eval/decode.h)
//   segment: (N, classes, H, W)    per-pixel logits (the stride-8 logits bilinearly upsampled)
// The merge (identical for both backbones so that the comparison isolates the backbone):
//   l4 = lat4(c4); p3 = lat3(c3) + up(l4); p2 = lat2(c2) + up(p3); s = ReLU(BN(smooth3x3(p2)))
// lat* are learnable 1x1 convs (with bias) to `neck` channels, up is bilinear (align_corners = false) to the
// lateral's size. Detection: h = ReLU(conv3x3(s) + b), then three 1x1 convs (heat with bias -2.19 =
// -log((1 - 0.1) / 0.1), CenterNet's prior; size; offset). Segmentation: a 1x1 classifier, then the bilinear
// upsampling by 8. With head_nl the 3x3 convs of the merge and the head are NL modules (seeded conv + pools +
// learnable grouped 1x1), as in the backbone. Inputs must have H and W divisible by 32 (checked).
// Checked by tests/models/test_dense.cpp (shapes, accounting, gradients of the whole trunk against finite
// differences on a tiny input, an overfit test per task and backbone, package round trip).
#pragma once
#include <functional>

#include "host/models/layers.h"

namespace rf {

// Channels [c0, c0 + C) of an (N, Ct, H, W) tensor as a contiguous (N, C, H, W) copy, and the inverse: src's
// channels written into dst from channel c0 (the detection output's heat | size | offset layout).
Tensor channel_slice(const Tensor& t, int c0, int C);
void put_channels(const Tensor& src, Tensor& dst, int c0);

class DenseTrunk : public Module {
 public:
  enum class Task { detect, segment };
  // layer2..4: the backbone stages; smooth / head_conv: the merge's and the detection head's 3x3 slot
  // (Conv2d or NLModule; head_conv is null for segmentation).
  DenseTrunk(std::string name, ModulePtr layer2, ModulePtr layer3, ModulePtr layer4, ModulePtr smooth,
             ModulePtr head_conv, Task task, int classes, int neck, const std::function<uint64_t()>& init_seed);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override;
  Task task() const { return task_; }
  int out_channels() const { return task_ == Task::detect ? classes_ + 4 : classes_; }

 private:
  Task task_;
  int classes_, neck_;
  ModulePtr layer2_, layer3_, layer4_;
  Conv2d lat2_, lat3_, lat4_;
  ModulePtr smooth_;
  BatchNorm2d smooth_bn_;
  ReLU smooth_relu_;
  ModulePtr head_conv_;           // detect only
  ReLU head_relu_;
  std::unique_ptr<Conv2d> heat_, size_, offset_;  // detect
  std::unique_ptr<Conv2d> cls_;                   // segment
  Shape in_, c2_, c3_, c4_, p2_;  // shapes of the last forward (backward needs them)
};

}  // namespace rf

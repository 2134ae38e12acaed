// ResNet-18 and NL-ResNet-18 (MODELS.md) built from a ModelConfig, and their exact accounting, derived from
// the layer graph (never typed by hand). Checked by tests/models/test_models.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "host/models/config.h"
#include "host/models/layers.h"

namespace rf {

struct ModelTotals {
  int64_t learnable = 0, seeded = 0, state = 0, macs = 0, pool_reads = 0;
  int64_t act_bytes = 0;       // sum of all layer outputs (fp32): what a training step keeps, roughly
  int64_t peak_act_bytes = 0;  // largest single layer output
};

class Model {
 public:
  explicit Model(const ModelConfig& cfg);
  const ModelConfig& config() const { return cfg_; }
  // x (N, 3, H, W) -> logits (N, classes).
  Tensor forward(const Tensor& x, bool train) { return net_.forward(x, train); }
  Tensor backward(const Tensor& dlogits) { return net_.backward(dlogits); }
  void clear_cache() { net_.clear_cache(); }
  std::vector<Param*> params();  // network order; learnable, seeded and state
  std::vector<Param*> params(ParamKind kind);
  std::vector<NLModule*> nl_modules() const { return nl_modules_; }
  // Regenerates every seeded weight from the config's seeds (the device side of the flow).
  void regenerate_seeded();
  // Moves the learnable parameters (values and gradients) and the BN statistics to `device`; the seeded weights
  // stay on the host (on a GPU the seeded convs regenerate them in shared memory). Drops cached activations.
  // Moving to cuda starts the GPU backend (cuda/runtime.h) and needs a device (select_device chose it).
  void to(Device device);
  Device device() const { return device_; }  // where forward() expects its input
  Shape out_shape(const Shape& in) const { return net_.out_shape(in); }
  std::vector<LayerCost> account(const Shape& in) const;  // per-layer rows
  ModelTotals totals(const Shape& in) const;
  const Sequential& net() const { return net_; }

 private:
  ModelConfig cfg_;
  Sequential net_;
  Device device_ = Device::cpu;
  std::vector<NLModule*> nl_modules_;
};

std::unique_ptr<Model> build_model(const ModelConfig& cfg);
ModelTotals sum_costs(const std::vector<LayerCost>& rows);

// SGD with momentum (PyTorch semantics: v = m*v + g + wd*w; w -= lr*v), weight decay only on params with
// decay=true (weights of 2+ dims), gradient-norm clipping over all learnable params. On the device of the
// parameters (cuda/ops/train_step.h on a GPU, the same arithmetic); the momentum buffers follow them (to()).
class SGD {
 public:
  SGD(std::vector<Param*> params, float momentum, float weight_decay);
  // Returns the gradient norm before clipping; clip <= 0 disables clipping.
  double step(float lr, float clip_norm = 0.f);
  // The momentum buffers, one per learnable param in params() order (checkpoints save and restore them).
  const std::vector<Param*>& params() const { return params_; }
  std::vector<Tensor>& velocity() { return velocity_; }
  void to(Device device);  // moves the momentum buffers (after Model::to)

 private:
  double step_cuda(float lr, float clip_norm);
  std::vector<Param*> params_;
  std::vector<Tensor> velocity_;
  float momentum_, weight_decay_;
};

}  // namespace rf

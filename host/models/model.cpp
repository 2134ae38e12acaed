// Network construction (names as in PyTorch's ResNet: stem, layer1..4, head) and accounting totals.
#include "host/models/model.h"

#include <algorithm>
#include <cmath>

#include "cuda/ops/train_step.h"
#include "cuda/runtime.h"
#include "host/core/philox.h"
#include "host/models/dense.h"

namespace rf {

namespace {
// Per-layer init seeds: splitmix64 of (init_seed, layer counter), so adding a layer does not shift others' seeds.
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

Model::Model(const ModelConfig& cfg) : cfg_(cfg), net_(cfg.name()) {
  cfg_.validate();
  uint64_t counter = 0;
  auto init_seed = [&]() { return splitmix64(cfg_.init_seed * 0x100000001B3ull + counter++); };
  int nl_index = 0;

  auto stem = std::make_unique<Sequential>("stem");
  if (cfg_.stem == "cifar") {
    stem->add(std::make_unique<Conv2d>("stem.conv", 3, 64, 3, 1, 1, 1, false, init_seed()));
    stem->add(std::make_unique<BatchNorm2d>("stem.bn", 64));
    stem->add(std::make_unique<ReLU>("stem.relu"));
  } else {
    stem->add(std::make_unique<Conv2d>("stem.conv", 3, 64, 7, 2, 3, 1, false, init_seed()));
    stem->add(std::make_unique<BatchNorm2d>("stem.bn", 64));
    stem->add(std::make_unique<ReLU>("stem.relu"));
    stem->add(std::make_unique<MaxPool2d>("stem.maxpool", 3, 2, 1));
  }
  net_.add(std::move(stem));

  auto conv_slot = [&](const std::string& name, int C_in, int C_out, int stride) -> ModulePtr {
    if (!cfg_.is_nl()) return std::make_unique<Conv2d>(name, C_in, C_out, 3, stride, 1, 1, false, init_seed());
    auto m = std::make_unique<NLModule>(name, C_in, C_out, stride, cfg_.nl_width(C_in), cfg_.gpw, cfg_.shuffle,
                                        cfg_.module_seed(nl_index++), init_seed());
    nl_modules_.push_back(m.get());
    return m;
  };

  const int widths[4] = {64, 128, 256, 512};
  int C = 64;
  ModulePtr stages[4];
  for (int stage = 0; stage < 4; ++stage) {
    auto layer = std::make_unique<Sequential>("layer" + std::to_string(stage + 1));
    for (int b = 0; b < 2; ++b) {
      const int out = widths[stage], stride = (stage > 0 && b == 0) ? 2 : 1;
      std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      const char* slot = cfg_.is_nl() ? ".nl" : ".conv";
      ModulePtr c1 = conv_slot(name + slot + "1", C, out, stride);
      ModulePtr c2 = conv_slot(name + slot + "2", out, out, 1);
      layer->add(std::make_unique<BasicBlock>(name, std::move(c1), std::move(c2), C, out, stride, init_seed()));
      C = out;
    }
    stages[stage] = std::move(layer);
  }
  if (!cfg_.is_dense()) {
    for (ModulePtr& s : stages) net_.add(std::move(s));
    net_.add(std::make_unique<Head>("head", 512, cfg_.classes, init_seed()));
    return;
  }
  // Dense tasks: stage 1 in the Sequential, stages 2-4 + merge + head in the trunk. The 3x3 slots of the
  // merge and the detection head are learnable convs, or NL modules (after the backbone's, in network order)
  // with head_nl.
  net_.add(std::move(stages[0]));
  const int D = cfg_.neck;
  auto head_slot = [&](const std::string& name, bool bias) -> ModulePtr {
    if (!cfg_.head_nl) return std::make_unique<Conv2d>(name, D, D, 3, 1, 1, 1, bias, init_seed());
    auto m = std::make_unique<NLModule>(name, D, D, 1, cfg_.nl_width(D), cfg_.gpw, cfg_.shuffle,
                                        cfg_.module_seed(nl_index++), init_seed());
    nl_modules_.push_back(m.get());
    return m;
  };
  const bool detect = cfg_.task == "detect";
  ModulePtr smooth = head_slot(cfg_.head_nl ? "neck.nl" : "neck.conv", false);
  ModulePtr head_conv = detect ? head_slot(cfg_.head_nl ? "head.nl" : "head.conv", true) : nullptr;
  net_.add(std::make_unique<DenseTrunk>("trunk", std::move(stages[1]), std::move(stages[2]), std::move(stages[3]),
                                        std::move(smooth), std::move(head_conv),
                                        detect ? DenseTrunk::Task::detect : DenseTrunk::Task::segment, cfg_.classes,
                                        D, init_seed));
}

void Model::to(Device device) {
  if (device == Device::cuda) gpu_runtime_init();
  net_.clear_cache();
  for (Param* p : params()) {
    if (p->kind == ParamKind::seeded) continue;
    p->value = p->value.to(device);
    if (p->grad.defined()) p->grad = p->grad.to(device);
  }
  device_ = device;
}

std::vector<Param*> Model::params() {
  std::vector<Param*> out;
  net_.collect(out);
  return out;
}

std::vector<Param*> Model::params(ParamKind kind) {
  std::vector<Param*> out;
  for (Param* p : params())
    if (p->kind == kind) out.push_back(p);
  return out;
}

void Model::regenerate_seeded() {
  for (NLModule* m : nl_modules_) m->regenerate();
}

std::vector<LayerCost> Model::account(const Shape& in) const {
  RF_CHECK(in.ndim == 4 && in[1] == 3 && in[0] >= 1 && in[2] >= 1 && in[3] >= 1,
           "{} input: expected shape (N, 3, H, W), got {}", cfg_.name(), in.str());
  std::vector<LayerCost> rows;
  net_.account(in, rows);
  return rows;
}

ModelTotals sum_costs(const std::vector<LayerCost>& rows) {
  ModelTotals t;
  for (const LayerCost& r : rows) {
    t.learnable += r.learnable;
    t.seeded += r.seeded;
    t.state += r.state;
    t.macs += r.macs;
    t.pool_reads += r.pool_reads;
    t.act_bytes += r.act_bytes;
    t.peak_act_bytes = std::max(t.peak_act_bytes, r.act_bytes);
  }
  return t;
}

ModelTotals Model::totals(const Shape& in) const { return sum_costs(account(in)); }

std::unique_ptr<Model> build_model(const ModelConfig& cfg) { return std::make_unique<Model>(cfg); }

// ---- SGD -------------------------------------------------------------------------------------------

SGD::SGD(std::vector<Param*> params, float momentum, float weight_decay)
    : momentum_(momentum), weight_decay_(weight_decay) {
  for (Param* p : params)
    if (p->kind == ParamKind::learnable) {
      params_.push_back(p);
      velocity_.push_back(Tensor::zeros(p->value.shape(), DType::f32, p->value.device()));
    }
}

void SGD::to(Device device) {
  for (Tensor& v : velocity_) v = v.to(device);
}

double SGD::step(float lr, float clip_norm) {
  if (!params_.empty() && params_[0]->value.device() == Device::cuda) return step_cuda(lr, clip_norm);
  double sq = 0;
  for (Param* p : params_) {
    const float* g = p->grad_f32();
    double s = 0;
    for (int64_t i = 0; i < p->value.numel(); ++i) s += double(g[i]) * g[i];
    sq += s;
  }
  double norm = std::sqrt(sq);
  RF_CHECK(std::isfinite(norm), "SGD: gradient norm is {} (the loss diverged)", norm);
  float scale = (clip_norm > 0 && norm > clip_norm) ? float(clip_norm / (norm + 1e-6)) : 1.f;
  for (size_t j = 0; j < params_.size(); ++j) {
    Param* p = params_[j];
    float* w = p->value.f32();
    const float* g = p->grad_f32();
    float* v = velocity_[j].f32();
    const float wd = p->decay ? weight_decay_ : 0.f;
    const int64_t n = p->value.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      float d = g[i] * scale + wd * w[i];
      v[i] = momentum_ * v[i] + d;
      w[i] -= lr * v[i];
    }
  }
  return norm;
}

double SGD::step_cuda(float lr, float clip_norm) {
  double sq = 0;
  for (Param* p : params_) sq += sum_squares_cuda(p->value.numel(), p->grad_f32());
  const double norm = std::sqrt(sq);
  RF_CHECK(std::isfinite(norm), "SGD: gradient norm is {} (the loss diverged)", norm);
  const float scale = (clip_norm > 0 && norm > clip_norm) ? float(clip_norm / (norm + 1e-6)) : 1.f;
  for (size_t j = 0; j < params_.size(); ++j) {
    Param* p = params_[j];
    RF_CHECK(velocity_[j].device() == Device::cuda, "SGD: parameter '{}' is on the GPU, its momentum buffer is not "
             "(SGD::to after Model::to)", p->name);
    sgd_update_cuda(p->value.numel(), p->value.f32(), p->grad_f32(), velocity_[j].f32(), lr, momentum_,
                    p->decay ? weight_decay_ : 0.f, scale);
  }
  return norm;
}

}  // namespace rf

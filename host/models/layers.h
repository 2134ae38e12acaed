// Layers of ResNet-18 and NL-ResNet-18 on the host: forward (train/eval), backward, parameters split into
// learnable / seeded / state, and exact accounting from the layer's own shapes. Each layer drives the fast CPU
// op of host/ops; the ops' references are tested in tests/ops. Models are checked by tests/models/.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host/core/tensor.h"
#include "host/ops/conv.h"
#include "host/ops/nl_module.h"
#include "host/ops/pool.h"
#include "host/ops/seeded_conv.h"

namespace rf {

enum class ParamKind { learnable, seeded, state };
const char* param_kind_name(ParamKind k);

struct Param {
  std::string name;  // "layer1.0.conv1.weight"
  ParamKind kind = ParamKind::learnable;
  // grad: learnable params only, and only once something needs it (grad_f32: a backward, the optimizer): a model
  // that only runs inference (the device side) never holds gradient buffers (ResNet-18: 44.7 MB).
  Tensor value, grad;
  bool decay = false;  // weight decay applies (learnable weights of 2+ dims)
  float* grad_f32();   // the gradient buffer, allocated (zeros, on value's device) on first use
};

// One row of the accounting table: what a layer holds and costs for a given input shape.
struct LayerCost {
  std::string name, type;
  Shape in, out;
  int64_t learnable = 0, seeded = 0, state = 0;
  int64_t macs = 0, pool_reads = 0;
  int64_t act_bytes = 0;  // fp32 bytes of the layer's output
};

class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  const std::string& name() const { return name_; }
  // train=true keeps what backward needs and uses batch statistics in BN.
  virtual Tensor forward(const Tensor& x, bool train) = 0;
  // Returns dL/dx and writes the learnable params' gradients (overwriting). Needs a prior forward(train=true).
  // Inside a Sequential, a module's backward is followed by its clear_cache(): one backward per forward.
  virtual Tensor backward(const Tensor& dy) = 0;
  virtual void collect(std::vector<Param*>& out) = 0;
  virtual Shape out_shape(const Shape& in) const = 0;
  virtual void account(const Shape& in, std::vector<LayerCost>& rows) const = 0;
  // Drops what forward kept for backward (activations), e.g. after an eval pass.
  virtual void clear_cache() {}

 protected:
  std::string name_;
};

using ModulePtr = std::unique_ptr<Module>;

// While one lives, the process promises that no model's learnable weights change: an inference session (the
// device side's run, eval and predict, the forward benchmarks). Conv2d layers then keep their weights in the
// fast path's layout from one forward to the next (ConvWeightPack) instead of reordering them on every call,
// and drop those copies at the next forward outside the session. A training forward inside one throws: it
// would change the weights. Nestable; not for sessions that overlap training on other threads.
class FrozenWeights {
 public:
  FrozenWeights();
  ~FrozenWeights();
  FrozenWeights(const FrozenWeights&) = delete;
  FrozenWeights& operator=(const FrozenWeights&) = delete;
  // Nonzero while a session lives: a number no earlier session had (a pack from an earlier one is stale).
  static uint64_t session();
};

// Learnable conv (Kaiming-normal fan_out init), optional bias (zero init).
class Conv2d : public Module {
 public:
  Conv2d(std::string name, int C, int K, int k, int stride, int pad, int groups, bool has_bias, uint64_t init_seed);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override { x_ = Tensor(); }
  Conv2dShape conv_shape(const Shape& in) const;
  Param weight, bias;
  // Forward writing into a caller's buffer (a channel slice with batch stride y_nstride); see NLModule.
  void forward_into(const Tensor& x, float* y, int64_t y_nstride, bool train);
  // Inference on oneDNN's nChw16c activations (conv2d_forward_nc16_cpu): x's data in nChw16c when x_nc16 (its
  // shape says N, C, H, W), y (numel of out_shape) written in nChw16c when y_nc16. False where it does not
  // apply (then nothing is written): see BasicBlock::forward_eval_fused.
  bool forward_nc16(const Tensor& x, bool x_nc16, float* y, bool y_nc16);

 private:
  Tensor forward_cuda(const Tensor& x, bool train);  // layers_cuda.cpp: the same layer on a cuda tensor
  Tensor backward_cuda(const Tensor& dy);
  ConvWeightPack* weight_pack(bool train);  // the session's pack (null outside FrozenWeights)
  int C_, K_, k_, stride_, pad_, groups_;
  bool has_bias_;
  Tensor x_;
  // The weights reordered in FrozenWeights session pack_session_. Under pack_mu_: the sample-blocked NL eval
  // runs a block's shortcut conv on several threads at once.
  std::mutex pack_mu_;
  std::unique_ptr<ConvWeightPack> pack_;
  uint64_t pack_session_ = 0;
};

class BatchNorm2d : public Module {
 public:
  BatchNorm2d(std::string name, int C);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override { return in; }
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  // Host tensors: act(bn(x) (+ res)), the residual add and the ReLU after BN fused into its output pass (the
  // bits of forward, then add_forward_cpu / relu_forward_cpu). With the ReLU and no residual in training,
  // backward() then takes the gradient of the ReLU's output (it masks dy itself).
  Tensor forward_act(const Tensor& x, bool train, const Tensor* res, bool relu);
  void clear_cache() override { x_ = save_mean_ = save_invstd_ = save_scale_ = relu_y_ = Tensor(); }
  Param gamma, beta, running_mean, running_var;

 private:
  Tensor forward_cuda(const Tensor& x, bool train);
  Tensor backward_cuda(const Tensor& dy);
  int C_;
  Tensor x_, save_mean_, save_invstd_;
  Tensor save_scale_;  // forward_act with the ReLU: the output pass's scale (backward recomputes the mask)
  Tensor relu_y_;      // the same, synchronised BN: the ReLU's output (the mask read back)
};

class ReLU : public Module {
 public:
  explicit ReLU(std::string name) : Module(std::move(name)) {}
  Tensor forward(const Tensor& x, bool train) override;  // in place on x's storage when not training
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>&) override {}
  Shape out_shape(const Shape& in) const override { return in; }
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override { y_ = Tensor(); }

 private:
  Tensor forward_cuda(const Tensor& x, bool train);
  Tensor backward_cuda(const Tensor& dy);
  Tensor y_;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(std::string name, int k, int stride, int pad) : Module(std::move(name)), k_(k), stride_(stride), pad_(pad) {}
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>&) override {}
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override { x_ = Tensor(); }

 private:
  Tensor forward_cuda(const Tensor& x, bool train);
  Tensor backward_cuda(const Tensor& dy);
  int k_, stride_, pad_;
  Tensor x_;
};

// The NL module of MODELS.md: [seeded conv + ReLU | 3x3 max pool | mixed avg pool] written straight into
// their channel slices of one concat buffer, then the learnable grouped 1x1 conv (with bias), then the
// channel shuffle: the op nl_module_forward_cpu / nl_module_backward_cpu (host/ops/nl_module.h) on this
// layer's parameters.
class NLModule : public Module {
 public:
  NLModule(std::string name, int C_in, int C_out, int stride, int C_nl, int gpw, bool shuffle, uint64_t seed,
           uint64_t init_seed);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  // Host tensors: backward(dy) + res (res shaped as the input), res added in the module's last pass over dx:
  // the bits of backward then add_forward_cpu, one pass over dx less (a residual block's shortcut gradient).
  Tensor backward_plus(const Tensor& dy, const Tensor& res);
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override { x_ = cat_ = Tensor(); pw_.clear_cache(); }
  const SeededConvSpec& seeded_spec() const { return spec_; }
  // Eval only: the pointwise conv's output before the channel shuffle, and the shuffle's group count (1 when
  // off), so that BasicBlock can fuse shuffle + BN + ReLU into one pass.
  Tensor forward_unshuffled(const Tensor& x);
  int shuffle_groups() const { return shuffle_ ? gpw_ : 1; }
  // Eval only: the module, then bn's eval epilogue (+ res, then ReLU when relu) fused into the 1x1 conv's
  // output pass (nl_module_forward_epilogue_cpu), written into `into` when not null; the bits of
  // forward_unshuffled + batchnorm_eval_epilogue_cpu. An undefined Tensor where that path does not apply.
  Tensor forward_eval_bn(const Tensor& x, BatchNorm2d& bn, const Tensor* res, bool relu, float* into);
  // Regenerates the seeded weights from the seed (what the device does after reading a package).
  void regenerate();
  Param seeded_weight;  // kind seeded: materialised from (seed, index), never trained
  Conv2d& pointwise() { return pw_; }

 private:
  int C_in_, C_out_, stride_, C_nl_, gpw_;
  bool shuffle_;
  SeededConvSpec spec_;
  Conv2d pw_;
  Tensor x_;  // the training forward's input: backward rebuilds the concat buffer from it
  Tensor cat_;  // on a GPU the training forward keeps the concat buffer instead (device memory is not the limit)
  Tensor forward_cuda(const Tensor& x, bool train);
  Tensor backward_cuda(const Tensor& dy);
  NLModuleShape op_shape(const Shape& in) const;  // the op's shape for input `in` (host/ops/nl_module.h)
  Tensor forward_with(const Tensor& x, bool train, bool shuffle);
  int Ccat() const { return C_nl_ + 2 * C_in_; }
};

// BasicBlock(in, out, s) with either learnable 3x3 convs or NL modules in its two conv slots.
class BasicBlock : public Module {
 public:
  BasicBlock(std::string name, ModulePtr conv1, ModulePtr conv2, int C_in, int C_out, int stride,
             uint64_t init_seed);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override;

 private:
  // Inference: each conv slot's BN (and the NL module's shuffle, the ReLU, the residual add) in one pass.
  // out: where the block's output goes (N * C_out * OH * OW floats), or nullptr for a new tensor.
  Tensor forward_eval_fused(const Tensor& x, float* out);
  // NL blocks: forward_eval_fused on blocks of eval_sample_block() samples, in parallel over blocks.
  Tensor forward_eval_blocked(const Tensor& x);
  Tensor forward_cuda(const Tensor& x, bool train);  // op by op (no eval fusion) with the CUDA add
  Tensor backward_cuda(const Tensor& dy);
  ModulePtr conv1_, conv2_;
  BatchNorm2d bn1_, bn2_;
  ReLU relu1_;
  std::unique_ptr<Conv2d> sc_conv_;
  std::unique_ptr<BatchNorm2d> sc_bn_;
  bool has_nl_ = false;  // a conv slot holds an NL module (memory-bound: eval runs sample-blocked)
  Tensor out_;
};

// Global average pool + linear classifier (weight N(0, 0.01^2), bias 0).
class Head : public Module {
 public:
  Head(std::string name, int C, int classes, uint64_t init_seed);
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override { return Shape{in[0], classes_}; }
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override { pooled_ = Tensor(); }
  Param weight, bias;

 private:
  Tensor forward_cuda(const Tensor& x, bool train);
  Tensor backward_cuda(const Tensor& dy);
  int C_, classes_;
  Shape in_;
  Tensor pooled_;
};

class Sequential : public Module {
 public:
  explicit Sequential(std::string name) : Module(std::move(name)) {}
  void add(ModulePtr m) { mods_.push_back(std::move(m)); }
  Tensor forward(const Tensor& x, bool train) override;
  Tensor backward(const Tensor& dy) override;
  void collect(std::vector<Param*>& out) override;
  Shape out_shape(const Shape& in) const override;
  void account(const Shape& in, std::vector<LayerCost>& rows) const override;
  void clear_cache() override;
  const std::vector<ModulePtr>& modules() const { return mods_; }

 private:
  std::vector<ModulePtr> mods_;
};

// Eval-mode fusion of BasicBlock epilogues (on by default). Off gives the op-by-op sequence, which the fused
// path equals bit for bit (tests/models/test_models.cpp); benchmarks can switch it to measure the gain.
void set_eval_fusion(bool on);
bool eval_fusion();
// Eval-mode NL blocks run on blocks of this many samples, one thread per block (0: off; default 1, or
// $RF_EVAL_SAMPLE_BLOCK). Cache blocking only: the same arithmetic per sample (tests/models/test_models.cpp).
void set_eval_sample_block(int samples);
int eval_sample_block();
// Train-mode BN normally updates its running statistics with momentum 0.1; with an override m in [0, 1]
// it uses m instead (< 0: no override). recalibrate_bn (training/) sets 1/(k+1) on its k-th batch, which
// makes the running statistics the plain average over its batches.
void set_bn_momentum_override(float m);
// Synchronised BN (--sync-bn) for data-parallel training: while on and the world has more than one process
// (host/core/comm.h), train-mode BN layers take their batch statistics, and in backward the sums over dy, over
// every rank's share of the batch (batchnorm_forward_train_sync_cpu). Off: each rank normalises its own share.
void set_bn_sync(bool on);
// What the BN layers read: the momentum override (< 0: none), and whether train-mode BN syncs over processes now.
float bn_momentum_override();
bool bn_sync_active();

// A layer's input check: (N, C, H, W), contiguous f32, either device; what names the layer's input.
void check_nchw(const Tensor& x, int C, const std::string& what);
// A backward's preconditions: the training forward saved `saved` (the layer's input or output), and dy has its
// shape.
void check_backward(const Tensor& saved, const Tensor& dy, const std::string& name);

// Fills t with std * N(0,1) from (seed, index): used for the learnable initialisation too.
void init_normal(Tensor& t, uint64_t seed, float std);

}  // namespace rf

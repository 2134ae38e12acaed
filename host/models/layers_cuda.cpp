// The layers of host/models/layers.h on cuda tensors: each layer's forward and backward dispatch here when their
// input lives on the GPU (Model::to(Device::cuda)), so the models, the trainer and the commands stay one code path.
// Kernels: cuda/ops (our seeded conv regenerating its weights in shared memory, the pools writing into their
// concat slices, the grouped 1x1 conv with the shuffle folded into its output indexing, BN, the small ops), and
// cuDNN for the learnable convs where the build has it (RF_GPU_CONV=own runs our conv kernels instead, as the CUDA
// emulation always does). BN is always ours: cuDNN's FP32 NCHW batch norm is only in its deprecated legacy API
// (docs/DEVICE-CHECK.md, "cuDNN 9 deprecations"). Inference runs op by op (the CPU's eval fusion is a cache
// optimisation). The seeded weights never exist in device memory. Checked by tests/gpu/test_models_gpu.cpp (each
// model's forward, backward and a training step against the CPU; emulated in CI under label gpu-emu).
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/cudnn_ops.h"
#include "cuda/ops/batchnorm.h"
#include "cuda/ops/conv.h"
#include "cuda/ops/elementwise.h"
#include "cuda/ops/nl_module.h"
#include "cuda/ops/pool.h"
#include "cuda/ops/seeded_conv.h"
#include "host/models/layers.h"

namespace rf {

namespace {

// cuDNN for the learnable convs and BN: when the build has it, unless RF_GPU_CONV=own.
bool use_cudnn() {
  static const bool on = [] {
    const char* e = std::getenv("RF_GPU_CONV");
    return cudnn_available() && !(e && std::strcmp(e, "own") == 0);
  }();
  return on;
}

CudnnContext& cudnn() {
  thread_local CudnnContext* ctx = new CudnnContext();  // never destroyed: it would outlive the CUDA context
  return *ctx;
}

Tensor device_empty(const Shape& shape) { return Tensor::empty(shape, DType::f32, Device::cuda); }

void conv_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  if (use_cudnn())
    cudnn_conv2d_forward(cudnn(), s, x, w, b, y);
  else
    conv2d_forward_cuda(s, x, w, b, y);
}

void conv_backward(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw,
                   float* db) {
  if (use_cudnn()) {
    cudnn_conv2d_backward_data(cudnn(), s, dy, w, dx);
    cudnn_conv2d_backward_weight(cudnn(), s, x, dy, dw, db);
  } else {
    conv2d_backward_data_cuda(s, dy, w, dx);
    conv2d_backward_weight_cuda(s, x, dy, dw, db);
  }
}

void check_on_device(const Param& p, const std::string& layer) {
  RF_CHECK(p.value.device() == Device::cuda, "{}: input on the GPU but parameter '{}' is {} (move the model with "
           "Model::to)", layer, p.name, p.value.str());
}

}  // namespace

// ---- Conv2d ----------------------------------------------------------------------------------------

Tensor Conv2d::forward_cuda(const Tensor& x, bool train) {
  check_nchw(x, C_, name_ + " input");
  check_on_device(weight, name_);
  Conv2dShape s = conv_shape(x.shape());
  s.validate();
  Tensor y = device_empty(out_shape(x.shape()));
  conv_forward(s, x.f32(), weight.value.f32(), has_bias_ ? bias.value.f32() : nullptr, y.f32());
  if (train) x_ = x;
  return y;
}

Tensor Conv2d::backward_cuda(const Tensor& dy) {
  RF_CHECK(x_.defined(), "{}: backward without a training forward", name_);
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  const Conv2dShape s = conv_shape(x_.shape());
  Tensor dx = device_empty(x_.shape());
  conv_backward(s, x_.f32(), dy.f32(), weight.value.f32(), dx.f32(), weight.grad_f32(),
                has_bias_ ? bias.grad_f32() : nullptr);
  return dx;
}

// ---- BatchNorm2d -----------------------------------------------------------------------------------

Tensor BatchNorm2d::forward_cuda(const Tensor& x, bool train) {
  check_nchw(x, C_, name_ + " input");
  check_on_device(gamma, name_);
  RF_CHECK(!(train && bn_sync_active()), "{}: --sync-bn on the GPU needs a device all-reduce of the BN sums, which "
           "this build does not have: train on one GPU, or on the CPU with --sync-bn", name_);
  BatchNormShape s{int(x.size(0)), C_, int(x.size(2) * x.size(3))};
  if (bn_momentum_override() >= 0) s.momentum = bn_momentum_override();
  Tensor y = device_empty(x.shape());
  if (train) {
    save_mean_ = device_empty(Shape{C_});
    save_invstd_ = device_empty(Shape{C_});
    batchnorm_forward_train_cuda(s, x.f32(), gamma.value.f32(), beta.value.f32(), y.f32(), save_mean_.f32(),
                                 save_invstd_.f32(), running_mean.value.f32(), running_var.value.f32());
    x_ = x;
  } else {
    batchnorm_forward_eval_cuda(s, x.f32(), gamma.value.f32(), beta.value.f32(), running_mean.value.f32(),
                                running_var.value.f32(), y.f32());
  }
  return y;
}

Tensor BatchNorm2d::backward_cuda(const Tensor& dy) {
  check_backward(x_, dy, name_);
  const BatchNormShape s{int(x_.size(0)), C_, int(x_.size(2) * x_.size(3))};
  Tensor dx = device_empty(x_.shape());
  batchnorm_backward_cuda(s, x_.f32(), dy.f32(), gamma.value.f32(), save_mean_.f32(), save_invstd_.f32(), dx.f32(),
                          gamma.grad_f32(), beta.grad_f32());
  return dx;
}

// ---- ReLU, MaxPool2d -------------------------------------------------------------------------------

Tensor ReLU::forward_cuda(const Tensor& x, bool train) {
  relu_forward_cuda(x.numel(), x.f32(), x.f32());  // in place, as on the CPU
  if (train) y_ = x;
  return x;
}

Tensor ReLU::backward_cuda(const Tensor& dy) {
  check_backward(y_, dy, name_);
  Tensor dx = device_empty(dy.shape());
  relu_backward_cuda(dy.numel(), y_.f32(), dy.f32(), dx.f32());
  return dx;
}

Tensor MaxPool2d::forward_cuda(const Tensor& x, bool train) {
  check_nchw(x, int(x.size(1)), name_ + " input");
  Pool2dShape s{int(x.size(0)), int(x.size(1)), int(x.size(2)), int(x.size(3)), k_, stride_, pad_};
  s.validate();
  Tensor y = device_empty(out_shape(x.shape()));
  max_pool2d_forward_cuda(s, x.f32(), y.f32());
  if (train) x_ = x;
  return y;
}

Tensor MaxPool2d::backward_cuda(const Tensor& dy) {
  RF_CHECK(x_.defined(), "{}: backward without a training forward", name_);
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  const Pool2dShape s{int(x_.size(0)), int(x_.size(1)), int(x_.size(2)), int(x_.size(3)), k_, stride_, pad_};
  Tensor dx = device_empty(x_.shape());
  max_pool2d_backward_cuda(s, x_.f32(), dy.f32(), dx.f32());
  return dx;
}

// ---- NLModule --------------------------------------------------------------------------------------

Tensor NLModule::forward_cuda(const Tensor& x, bool train) {
  check_nchw(x, C_in_, name_ + " input");
  check_on_device(pw_.weight, name_);
  const NLModuleShape s = op_shape(x.shape());
  s.validate();
  Tensor cat = device_empty(Shape{s.N, Ccat(), s.OH(), s.OW()});
  Tensor y = device_empty(out_shape(x.shape()));
  // Branch a regenerates its weights per thread block in shared memory (no materialised weights).
  nl_module_forward_cuda(s, x.f32(), pw_.weight.value.f32(), pw_.bias.value.f32(), cat.f32(), y.f32());
  if (train) {
    x_ = x;
    cat_ = cat;
  }
  return y;
}

Tensor NLModule::backward_cuda(const Tensor& dy) {
  RF_CHECK(x_.defined() && cat_.defined(), "{}: backward without a training forward", name_);
  check_shape(dy, out_shape(x_.shape()), name_ + " output gradient");
  const NLModuleShape s = op_shape(x_.shape());
  const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(Ccat()) * plane;
  // The shuffle's adjoint, then the grouped 1x1 conv's gradients (its input is the kept concat buffer).
  Tensor dz = dy;
  if (shuffle_) {
    dz = device_empty(dy.shape());
    channel_shuffle_backward_cuda(s.N, C_out_, int(plane), gpw_, dy.f32(), dz.f32());
  }
  const Conv2dShape ps = s.pointwise_shape();
  Tensor dcat = device_empty(cat_.shape());
  conv_backward(ps, cat_.f32(), dz.f32(), pw_.weight.value.f32(), dcat.f32(), pw_.weight.grad_f32(),
                pw_.bias.grad_f32());
  // The branches' input gradients, each from its slice of dcat: the seeded conv's (masked by its ReLU output,
  // the slice of cat) overwrites dx, the two pools' are added to it.
  Tensor dx = device_empty(x_.shape()), tmp = device_empty(x_.shape());
  seeded_conv_backward_data_cuda(spec_, s.N, s.H, s.W, cat_.f32(), dcat.f32(), dx.f32(), ns, nullptr);
  max_pool2d_backward_cuda(Pool2dShape{s.N, C_in_, s.H, s.W, 3, stride_, 1, ns}, x_.f32(), dcat.f32() + C_nl_ * plane,
                           tmp.f32());
  accumulate_cuda(tmp.numel(), tmp.f32(), dx.f32());
  mixed_avg_pool_backward_cuda(MixedPoolShape{s.N, C_in_, s.H, s.W, stride_, ns},
                               dcat.f32() + (C_nl_ + C_in_) * plane, tmp.f32());
  accumulate_cuda(tmp.numel(), tmp.f32(), dx.f32());
  return dx;
}

// ---- BasicBlock ------------------------------------------------------------------------------------

Tensor BasicBlock::forward_cuda(const Tensor& x, bool train) {
  Tensor a = relu1_.forward(bn1_.forward(conv1_->forward(x, train), train), train);
  Tensor b = bn2_.forward(conv2_->forward(a, train), train);
  Tensor sc = sc_conv_ ? sc_bn_->forward(sc_conv_->forward(x, train), train) : x;
  RF_CHECK(sc.shape() == b.shape(), "{}: shortcut {} vs main path {}", name_, sc.shape().str(), b.shape().str());
  Tensor out = device_empty(b.shape());
  add_forward_cuda(out.numel(), b.f32(), sc.f32(), out.f32(), true);
  if (train) out_ = out;
  return out;
}

Tensor BasicBlock::backward_cuda(const Tensor& dy) {
  check_backward(out_, dy, name_);
  Tensor d = device_empty(dy.shape());
  add_backward_cuda(d.numel(), out_.f32(), dy.f32(), d.f32(), nullptr, true);
  Tensor dx = conv1_->backward(bn1_.backward(relu1_.backward(conv2_->backward(bn2_.backward(d)))));
  Tensor dsc = sc_conv_ ? sc_conv_->backward(sc_bn_->backward(d)) : d;
  accumulate_cuda(dx.numel(), dsc.f32(), dx.f32());
  return dx;
}

// ---- Head ------------------------------------------------------------------------------------------

Tensor Head::forward_cuda(const Tensor& x, bool train) {
  check_nchw(x, C_, name_ + " input");
  check_on_device(weight, name_);
  const int N = int(x.size(0)), HW = int(x.size(2) * x.size(3));
  Tensor pooled = device_empty(Shape{N, C_});
  global_avg_pool_forward_cuda(N, C_, HW, x.f32(), pooled.f32());
  Tensor y = device_empty(Shape{N, classes_});
  linear_forward_cuda(N, C_, classes_, pooled.f32(), weight.value.f32(), bias.value.f32(), y.f32());
  if (train) {
    pooled_ = pooled;
    in_ = x.shape();
  }
  return y;
}

Tensor Head::backward_cuda(const Tensor& dy) {
  RF_CHECK(pooled_.defined(), "{}: backward without a training forward", name_);
  const int N = int(in_[0]), HW = int(in_[2] * in_[3]);
  check_shape(dy, Shape{N, classes_}, name_ + " output gradient");
  Tensor dpooled = device_empty(Shape{N, C_});
  linear_backward_cuda(N, C_, classes_, pooled_.f32(), weight.value.f32(), dy.f32(), dpooled.f32(),
                       weight.grad_f32(), bias.grad_f32());
  Tensor dx = device_empty(in_);
  global_avg_pool_backward_cuda(N, C_, HW, dpooled.f32(), dx.f32());
  return dx;
}

}  // namespace rf

// The dense-prediction trunk (see dense.h): stages 2-4, the top-down merge, the detection or segmentation head.
#include "host/models/dense.h"

#include <cmath>

#include "cuda/ops/elementwise.h"
#include "cuda/ops/upsample.h"
#include "host/core/check.h"
#include "host/ops/elementwise.h"
#include "host/ops/upsample.h"

namespace rf {

namespace {

UpsampleShape up_shape(const Shape& from, const Shape& to) {
  UpsampleShape u;
  u.N = int(from[0]), u.C = int(from[1]), u.H = int(from[2]), u.W = int(from[3]);
  u.Ho = int(to[2]), u.Wo = int(to[3]);
  return u;
}

// y += bilinear(x) to y's size (both NCHW with the same N, C).
// The trunk's own ops on either device (the layers dispatch themselves: host/models/layers_cuda.cpp).
Tensor like(const Tensor& t, const Shape& shape) { return Tensor::empty(shape, DType::f32, t.device()); }

void upsample_forward(const UpsampleShape& u, const Tensor& x, Tensor& y) {
  if (x.device() == Device::cuda)
    upsample_bilinear_forward_cuda(u, x.f32(), y.f32());
  else
    upsample_bilinear_forward_cpu(u, x.f32(), y.f32());
}

void accumulate(Tensor& acc, const Tensor& add) {
  RF_CHECK(acc.shape() == add.shape(), "gradient shapes {} and {} differ", acc.shape().str(), add.shape().str());
  if (acc.device() == Device::cuda)
    accumulate_cuda(acc.numel(), add.f32(), acc.f32());
  else
    add_forward_cpu(acc.numel(), acc.f32(), add.f32(), acc.f32(), false);
}

void add_upsampled(const Tensor& x, Tensor& y) {
  Tensor t = like(y, y.shape());
  upsample_forward(up_shape(x.shape(), y.shape()), x, t);
  accumulate(y, t);
}

Tensor upsample_backward(const Tensor& dy, const Shape& x_shape) {
  UpsampleShape u = up_shape(x_shape, dy.shape());
  Tensor dx = like(dy, x_shape);
  if (dy.device() == Device::cuda)
    upsample_bilinear_backward_cuda(u, dy.f32(), dx.f32());
  else
    upsample_bilinear_backward_cpu(u, dy.f32(), dx.f32());
  return dx;
}

LayerCost upsample_row(const std::string& name, const Shape& in, const Shape& out) {
  LayerCost r;
  r.name = name, r.type = "upsample", r.in = in, r.out = out;
  r.act_bytes = out.numel() * int64_t(sizeof(float));
  return r;
}

}  // namespace

// Channels [c0, c0 + C) of an NCHW tensor as a contiguous copy.
// One sample's run of C*HW floats from src to dst, on the tensors' device (Tensor::copy_from).
static void copy_run(const Tensor& src, int64_t src_at, Tensor& dst, int64_t dst_at, int64_t n) {
  Tensor d = Tensor::borrow(dst.f32() + dst_at, Shape{n}, DType::f32, dst.device());
  d.copy_from(Tensor::borrow(const_cast<float*>(src.f32()) + src_at, Shape{n}, DType::f32, src.device()));
}

Tensor channel_slice(const Tensor& t, int c0, int C) {
  const int64_t N = t.size(0), Ct = t.size(1), HW = t.size(2) * t.size(3);
  Tensor out = like(t, Shape{N, C, t.size(2), t.size(3)});
  for (int64_t n = 0; n < N; ++n) copy_run(t, (n * Ct + c0) * HW, out, n * C * HW, C * HW);
  return out;
}

void put_channels(const Tensor& src, Tensor& dst, int c0) {
  const int64_t N = dst.size(0), Cd = dst.size(1), C = src.size(1), HW = dst.size(2) * dst.size(3);
  for (int64_t n = 0; n < N; ++n) copy_run(src, n * C * HW, dst, (n * Cd + c0) * HW, C * HW);
}

DenseTrunk::DenseTrunk(std::string name, ModulePtr layer2, ModulePtr layer3, ModulePtr layer4, ModulePtr smooth,
                       ModulePtr head_conv, Task task, int classes, int neck,
                       const std::function<uint64_t()>& init_seed)
    : Module(std::move(name)),
      task_(task),
      classes_(classes),
      neck_(neck),
      layer2_(std::move(layer2)),
      layer3_(std::move(layer3)),
      layer4_(std::move(layer4)),
      lat2_("neck.lat2", 128, neck, 1, 1, 0, 1, true, init_seed()),
      lat3_("neck.lat3", 256, neck, 1, 1, 0, 1, true, init_seed()),
      lat4_("neck.lat4", 512, neck, 1, 1, 0, 1, true, init_seed()),
      smooth_(std::move(smooth)),
      smooth_bn_("neck.bn", neck),
      smooth_relu_("neck.relu"),
      head_conv_(std::move(head_conv)),
      head_relu_("head.relu") {
  RF_CHECK(classes >= 1, "dense head: classes={} (expected >= 1)", classes);
  if (task_ == Task::detect) {
    RF_CHECK(head_conv_ != nullptr, "detection head: the 3x3 head conv is missing");
    heat_ = std::make_unique<Conv2d>("head.heat", neck, classes, 1, 1, 0, 1, true, init_seed());
    size_ = std::make_unique<Conv2d>("head.size", neck, 2, 1, 1, 0, 1, true, init_seed());
    offset_ = std::make_unique<Conv2d>("head.offset", neck, 2, 1, 1, 0, 1, true, init_seed());
    // Heatmap prior 0.1 (CenterNet): early training is not swamped by the many background cells.
    heat_->bias.value.fill(-std::log((1.f - 0.1f) / 0.1f));
    // Small initial outputs (std 0.01 weights): the heatmap starts at its prior everywhere and the size and
    // offset regressions near 0, instead of Kaiming-scale logits whose focal loss swamps the first steps.
    for (Conv2d* c : {heat_.get(), size_.get(), offset_.get()}) init_normal(c->weight.value, init_seed(), 1e-2f);
  } else {
    cls_ = std::make_unique<Conv2d>("head.cls", neck, classes, 1, 1, 0, 1, true, init_seed());
    init_normal(cls_->weight.value, init_seed(), 1e-2f);  // start at uniform class scores (loss ln C)
  }
}

Shape DenseTrunk::out_shape(const Shape& in) const {
  RF_CHECK(in.ndim == 4 && in[1] == 64, "{}: input (stage 1 output) {}, expected (N, 64, H/4, W/4)", name_, in.str());
  if (task_ == Task::detect) return Shape{in[0], classes_ + 4, in[2] / 2, in[3] / 2};
  return Shape{in[0], classes_, in[2] * 4, in[3] * 4};
}

Tensor DenseTrunk::forward(const Tensor& x, bool train) {
  RF_CHECK(x.ndim() == 4 && x.size(1) == 64 && x.size(2) % 8 == 0 && x.size(3) % 8 == 0,
           "{}: input {} (stage 1 output): the image's height and width must be multiples of 32", name_,
           x.shape().str());
  in_ = x.shape();
  Tensor c2 = layer2_->forward(x, train);
  Tensor c3 = layer3_->forward(c2, train);
  Tensor c4 = layer4_->forward(c3, train);
  c2_ = c2.shape(), c3_ = c3.shape(), c4_ = c4.shape();
  Tensor l4 = lat4_.forward(c4, train);
  Tensor p3 = lat3_.forward(c3, train);
  add_upsampled(l4, p3);
  Tensor p2 = lat2_.forward(c2, train);
  add_upsampled(p3, p2);
  p2_ = p2.shape();
  Tensor s = smooth_relu_.forward(smooth_bn_.forward(smooth_->forward(p2, train), train), train);
  if (task_ == Task::detect) {
    Tensor h = head_relu_.forward(head_conv_->forward(s, train), train);
    Tensor out = like(x, out_shape(in_));
    put_channels(heat_->forward(h, train), out, 0);
    put_channels(size_->forward(h, train), out, classes_);
    put_channels(offset_->forward(h, train), out, classes_ + 2);
    return out;
  }
  Tensor logits8 = cls_->forward(s, train);
  Tensor out = like(x, out_shape(in_));
  upsample_forward(up_shape(logits8.shape(), out.shape()), logits8, out);
  return out;
}

Tensor DenseTrunk::backward(const Tensor& dy) {
  RF_CHECK(dy.shape() == out_shape(in_), "{}: output gradient {}, expected {}", name_, dy.shape().str(),
           out_shape(in_).str());
  Tensor ds;
  if (task_ == Task::detect) {
    Tensor dh = heat_->backward(channel_slice(dy, 0, classes_));
    accumulate(dh, size_->backward(channel_slice(dy, classes_, 2)));
    accumulate(dh, offset_->backward(channel_slice(dy, classes_ + 2, 2)));
    ds = head_conv_->backward(head_relu_.backward(dh));
  } else {
    ds = cls_->backward(upsample_backward(dy, Shape{dy.size(0), classes_, p2_[2], p2_[3]}));
  }
  Tensor dp2 = smooth_->backward(smooth_bn_.backward(smooth_relu_.backward(ds)));
  // p2 = lat2(c2) + up(p3), p3 = lat3(c3) + up(l4), l4 = lat4(c4).
  Tensor dp3 = upsample_backward(dp2, Shape{c3_[0], neck_, c3_[2], c3_[3]});
  Tensor dl4 = upsample_backward(dp3, Shape{c4_[0], neck_, c4_[2], c4_[3]});
  Tensor dc2 = lat2_.backward(dp2);
  Tensor dc3 = lat3_.backward(dp3);
  Tensor dc4 = lat4_.backward(dl4);
  Tensor g3 = layer4_->backward(dc4);
  accumulate(g3, dc3);
  Tensor g2 = layer3_->backward(g3);
  accumulate(g2, dc2);
  return layer2_->backward(g2);
}

void DenseTrunk::collect(std::vector<Param*>& out) {
  layer2_->collect(out);
  layer3_->collect(out);
  layer4_->collect(out);
  lat2_.collect(out);
  lat3_.collect(out);
  lat4_.collect(out);
  smooth_->collect(out);
  smooth_bn_.collect(out);
  if (task_ == Task::detect) {
    head_conv_->collect(out);
    heat_->collect(out);
    size_->collect(out);
    offset_->collect(out);
  } else {
    cls_->collect(out);
  }
}

void DenseTrunk::account(const Shape& in, std::vector<LayerCost>& rows) const {
  Shape c2 = layer2_->out_shape(in), c3 = layer3_->out_shape(c2), c4 = layer4_->out_shape(c3);
  layer2_->account(in, rows);
  layer3_->account(c2, rows);
  layer4_->account(c3, rows);
  lat4_.account(c4, rows);
  Shape l4 = lat4_.out_shape(c4), p3 = lat3_.out_shape(c3), p2 = lat2_.out_shape(c2);
  lat3_.account(c3, rows);
  rows.push_back(upsample_row("neck.up4", l4, p3));
  lat2_.account(c2, rows);
  rows.push_back(upsample_row("neck.up3", p3, p2));
  smooth_->account(p2, rows);
  Shape s = smooth_->out_shape(p2);
  smooth_bn_.account(s, rows);
  if (task_ == Task::detect) {
    head_conv_->account(s, rows);
    Shape h = head_conv_->out_shape(s);
    heat_->account(h, rows);
    size_->account(h, rows);
    offset_->account(h, rows);
  } else {
    cls_->account(s, rows);
    rows.push_back(upsample_row("head.up", cls_->out_shape(s), out_shape(in)));
  }
}

void DenseTrunk::clear_cache() {
  for (Module* m : {layer2_.get(), layer3_.get(), layer4_.get(), smooth_.get(), head_conv_.get()})
    if (m) m->clear_cache();
  for (Module* m : {static_cast<Module*>(&lat2_), static_cast<Module*>(&lat3_), static_cast<Module*>(&lat4_),
                    static_cast<Module*>(&smooth_bn_), static_cast<Module*>(&smooth_relu_),
                    static_cast<Module*>(&head_relu_)})
    m->clear_cache();
  for (Conv2d* c : {heat_.get(), size_.get(), offset_.get(), cls_.get()})
    if (c) c->clear_cache();
}

}  // namespace rf

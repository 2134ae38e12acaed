// Detection and segmentation targets and losses on the trunk's output (see dense_head.h).
#include "host/models/dense_head.h"

#include "cuda/ops/dense_loss.h"
#include "cuda/ops/elementwise.h"

#include "host/core/check.h"
#include "host/models/dense.h"
#include "host/ops/dense_loss.h"

namespace rf {

DetTargets make_det_targets(const std::vector<std::vector<TargetBox>>& boxes, int K, int stride, int Hf, int Wf) {
  const int64_t N = int64_t(boxes.size());
  DetTargets t;
  t.heat = Tensor::empty(Shape{N, K, Hf, Wf});
  t.size = Tensor::empty(Shape{N, 2, Hf, Wf});
  t.offset = Tensor::empty(Shape{N, 2, Hf, Wf});
  t.mask = Tensor::empty(Shape{N, Hf, Wf});
  const int64_t cells = int64_t(Hf) * Wf;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> xyxy;
    std::vector<int32_t> cls;
    for (const TargetBox& b : boxes[size_t(n)]) {
      xyxy.insert(xyxy.end(), {b.x0, b.y0, b.x1, b.y1});
      cls.push_back(b.cls);
    }
    draw_centernet_targets(xyxy.data(), cls.data(), int(cls.size()), stride, K, Hf, Wf, t.heat.f32() + n * K * cells,
                           t.size.f32() + n * 2 * cells, t.offset.f32() + n * 2 * cells, t.mask.f32() + n * cells);
  }
  return t;
}

DetLoss det_loss(const Tensor& out, const DetTargets& t, float size_weight, float offset_weight, Tensor& dout) {
  const int N = int(out.size(0)), K = int(out.size(1)) - 4, Hf = int(out.size(2)), Wf = int(out.size(3));
  RF_CHECK(K >= 1 && t.heat.shape() == Shape({N, K, Hf, Wf}), "detection loss: output {} and targets {} disagree",
           out.shape().str(), t.heat.shape().str());
  const Device dev = out.device();
  Tensor heat = channel_slice(out, 0, K), size = channel_slice(out, K, 2), off = channel_slice(out, K + 2, 2);
  Tensor dheat = Tensor::empty(heat.shape(), DType::f32, dev), dsize = Tensor::empty(size.shape(), DType::f32, dev),
         doff = Tensor::empty(off.shape(), DType::f32, dev);
  DetLoss l;
  if (dev == Device::cuda) {  // the targets go up once (host-drawn: draw_centernet_targets)
    const Tensor th = t.heat.to(dev), ts = t.size.to(dev), to = t.offset.to(dev), tm = t.mask.to(dev);
    l.heat = centernet_focal_loss_cuda(N, K, Hf, Wf, heat.f32(), th.f32(), dheat.f32());
    l.size = masked_l1_loss_cuda(N, 2, Hf, Wf, size.f32(), ts.f32(), tm.f32(), dsize.f32());
    l.offset = masked_l1_loss_cuda(N, 2, Hf, Wf, off.f32(), to.f32(), tm.f32(), doff.f32());
    scale_cuda(dsize.numel(), size_weight, dsize.f32());
    scale_cuda(doff.numel(), offset_weight, doff.f32());
  } else {
    l.heat = centernet_focal_loss_cpu(N, K, Hf, Wf, heat.f32(), t.heat.f32(), dheat.f32());
    l.size = masked_l1_loss_cpu(N, 2, Hf, Wf, size.f32(), t.size.f32(), t.mask.f32(), dsize.f32());
    l.offset = masked_l1_loss_cpu(N, 2, Hf, Wf, off.f32(), t.offset.f32(), t.mask.f32(), doff.f32());
    for (int64_t i = 0; i < dsize.numel(); ++i) dsize.f32()[i] *= size_weight;
    for (int64_t i = 0; i < doff.numel(); ++i) doff.f32()[i] *= offset_weight;
  }
  l.total = l.heat + size_weight * l.size + offset_weight * l.offset;
  dout = Tensor::empty(out.shape(), DType::f32, dev);
  put_channels(dheat, dout, 0);
  put_channels(dsize, dout, K);
  put_channels(doff, dout, K + 2);
  return l;
}

double seg_loss(const Tensor& out, const uint8_t* labels, int void_label, Tensor& dout) {
  const int N = int(out.size(0)), C = int(out.size(1)), H = int(out.size(2)), W = int(out.size(3));
  dout = Tensor::empty(out.shape(), DType::f32, out.device());
  if (out.device() == Device::cuda) {  // the labels go up (host memory: the batch's)
    const Tensor l = Tensor::borrow(const_cast<uint8_t*>(labels), Shape{N, H, W}, DType::u8).to(Device::cuda);
    return pixel_cross_entropy_cuda(N, C, H, W, out.f32(), l.data<uint8_t>(), void_label, dout.f32());
  }
  return pixel_cross_entropy_cpu(N, C, H, W, out.f32(), labels, void_label, dout.f32());
}

}  // namespace rf

// Detection and segmentation suites (see dense.h). Every figure is measured here, in this process.
#include "suites/dense.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "datasets/source.h"
#include "datasets/camvid.h"
#include "datasets/overlay.h"
#include "datasets/loader.h"
#include "datasets/synthetic_dense.h"
#include "datasets/voc.h"
#include "host/core/philox.h"
#include "host/eval/decode.h"
#include "host/eval/det_metrics.h"
#include "host/models/dense.h"
#include "host/eval/seg_metrics.h"
#include "host/ops/dense_loss.h"
#include "host/package/model_package.h"
#include "host/core/printable.h"
#include "training/outputs.h"
#include "training/provenance.h"
#include "training/trainer.h"
#include "suites/measure.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rf {

// ---- losses, targets, decoding ----------------------------------------------------------------------

DetTargets make_det_targets(const std::vector<std::vector<data::BoxAnn>>& boxes, int K, int stride, int Hf, int Wf) {
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
    for (const data::BoxAnn& b : boxes[size_t(n)]) {
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
  Tensor heat = channel_slice(out, 0, K), size = channel_slice(out, K, 2), off = channel_slice(out, K + 2, 2);
  Tensor dheat = Tensor::empty(heat.shape()), dsize = Tensor::empty(size.shape()), doff = Tensor::empty(off.shape());
  DetLoss l;
  l.heat = centernet_focal_loss_cpu(N, K, Hf, Wf, heat.f32(), t.heat.f32(), dheat.f32());
  l.size = masked_l1_loss_cpu(N, 2, Hf, Wf, size.f32(), t.size.f32(), t.mask.f32(), dsize.f32());
  l.offset = masked_l1_loss_cpu(N, 2, Hf, Wf, off.f32(), t.offset.f32(), t.mask.f32(), doff.f32());
  l.total = l.heat + size_weight * l.size + offset_weight * l.offset;
  for (int64_t i = 0; i < dsize.numel(); ++i) dsize.f32()[i] *= size_weight;
  for (int64_t i = 0; i < doff.numel(); ++i) doff.f32()[i] *= offset_weight;
  dout = Tensor::empty(out.shape());
  put_channels(dheat, dout, 0);
  put_channels(dsize, dout, K);
  put_channels(doff, dout, K + 2);
  return l;
}

double seg_loss(const Tensor& out, const uint8_t* labels, int void_label, Tensor& dout) {
  dout = Tensor::empty(out.shape());
  return pixel_cross_entropy_cpu(int(out.size(0)), int(out.size(1)), int(out.size(2)), int(out.size(3)), out.f32(),
                                 labels, void_label, dout.f32());
}

std::vector<eval::Detection> det_decode(const Tensor& out, int K, float score_threshold, int64_t first_image) {
  Tensor heat = channel_slice(out, 0, K), size = channel_slice(out, K, 2), off = channel_slice(out, K + 2, 2);
  eval::DecodeOptions d;
  d.score_threshold = score_threshold;
  d.stride = 8;
  return eval::decode_centernet(heat.f32(), size.f32(), off.f32(), out.size(0), K, int(out.size(2)),
                                int(out.size(3)), d, first_image);
}

std::vector<int32_t> seg_argmax(const Tensor& out) {
  const int64_t N = out.size(0), C = out.size(1), HW = out.size(2) * out.size(3);
  std::vector<int32_t> pred(size_t(N * HW));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p) {
      const float* x = out.f32() + n * C * HW + p;
      int best = 0;
      for (int64_t c = 1; c < C; ++c)
        if (x[c * HW] > x[best * HW]) best = int(c);
      pred[size_t(n * HW + p)] = best;
    }
  return pred;
}

// ---- the suite -----------------------------------------------------------------------------------------

namespace {

using Clock = SuiteClock;
double since(Clock::time_point t0) { return seconds_since(t0); }

// One split of either task: the dataset held by the suite and which task it serves.
struct Split {
  data::DetDataset det;
  data::SegDataset seg;
  int64_t size(bool detect) const { return detect ? det.size() : seg.size(); }
};

struct Data {
  Split train, val, test;
  std::vector<std::string> classes;
  int void_label = 255;
  std::string source;
  int in_h = 0, in_w = 0;
};

// The folder a --data path stands for: an archive is unpacked into the cache; a folder holding exactly one
// sub-folder (the unpacked archive's BCCD/ or CamVid/) is looked into.
std::string resolve_root(const std::string& path, bool detect) {
  std::string root = path;
  if (root.size() > 8 && root.substr(root.size() - 8) == ".tar.zst")
    root = data::prepare_archive(root, data::default_cache_dir());
  auto fits = [&](const std::string& r) { return detect ? data::looks_like_voc(r) : data::looks_like_camvid(r); };
  if (fits(root)) return root;
  RF_CHECK(fs::is_directory(root), "{}: no such folder or .tar.zst archive", path);
  std::vector<std::string> subs;
  for (auto& e : fs::directory_iterator(root))
    if (e.is_directory()) subs.push_back(e.path().string());
  for (const std::string& s : subs)
    if (fits(s)) return s;
  RF_FAIL("{}: not a {} dataset (expected {} here or in a sub-folder)", path, detect ? "Pascal VOC" : "CamVid",
          detect ? "JPEGImages/, Annotations/ and ImageSets/Main/<split>.txt" : "train.txt / val.txt / test.txt pairs");
}

Data load_data(const DenseOptions& o, bool detect) {
  Data d;
  if (o.data.empty()) {
    const int64_t a = o.synthetic_train, b = a + o.synthetic_val;
    const int S = o.synthetic_size;
    if (detect) {
      d.train.det = data::make_synthetic_det(o.synthetic_train, o.base_seed, 0, S, S);
      d.val.det = data::make_synthetic_det(o.synthetic_val, o.base_seed, a, S, S);
      d.test.det = data::make_synthetic_det(o.synthetic_test, o.base_seed, b, S, S);
      d.classes = data::synthetic_det_class_names();
    } else {
      d.train.seg = data::make_synthetic_seg(o.synthetic_train, o.base_seed, 0, S, S);
      d.val.seg = data::make_synthetic_seg(o.synthetic_val, o.base_seed, a, S, S);
      d.test.seg = data::make_synthetic_seg(o.synthetic_test, o.base_seed, b, S, S);
      d.classes = data::synthetic_seg_class_names();
      d.void_label = d.train.seg.void_label;
    }
    d.source = fmt::format("synthetic {}(seed={}, train={}, val={}, test={}, {}x{})", detect ? "detection " : "segmentation ",
                           o.base_seed, o.synthetic_train, o.synthetic_val, o.synthetic_test, S, S);
    d.in_h = o.input_h ? o.input_h : 128, d.in_w = o.input_w ? o.input_w : 128;
  } else {
    std::string root = resolve_root(o.data, detect);
    if (detect) {
      d.train.det = data::load_voc(root, "train");
      d.classes = d.train.det.classes;
      d.val.det = data::load_voc(root, "val", d.classes);
      d.test.det = data::load_voc(root, "test", d.classes);
      d.in_h = o.input_h ? o.input_h : 256, d.in_w = o.input_w ? o.input_w : 320;
    } else {
      d.train.seg = data::load_camvid(root, "train");
      d.val.seg = data::load_camvid(root, "val");
      d.test.seg = data::load_camvid(root, "test");
      d.classes = d.train.seg.classes;
      d.void_label = d.train.seg.void_label;
      d.in_h = o.input_h ? o.input_h : 256, d.in_w = o.input_w ? o.input_w : 352;
    }
    d.source = fmt::format("{} ({})", printable(o.data), detect ? "Pascal VOC" : "CamVid");
  }
  RF_CHECK(d.in_h % 32 == 0 && d.in_w % 32 == 0 && d.in_h >= 32 && d.in_w >= 32,
           "{}: --input {}x{}: height and width must be multiples of 32", detect ? "detect" : "segment", d.in_h, d.in_w);
  RF_CHECK(d.train.size(detect) > 0 && d.test.size(detect) > 0, "{}: empty train or test split", d.source);
  if (detect) {
    // mAP over a split without (non-difficult) objects has no ground truth to measure: refuse before training
    // rather than report a number (it would read as 0.0 = the detector found nothing).
    for (const auto& [name, split] : {std::pair<const char*, const Split*>{"train", &d.train}, {"val", &d.val},
                                      {"test", &d.test}}) {
      int64_t objects = 0;
      for (const auto& bl : split->det.boxes)
        for (const data::BoxAnn& b : bl) objects += b.difficult ? 0 : 1;
      RF_CHECK(objects > 0,
               "{}: the {} split ({} images) has no objects that are not marked difficult: mAP would have no ground "
               "truth; give a split with annotated objects",
               d.source, name, split->size(true));
    }
  } else {
    // Likewise mIoU over a split whose label maps are all void.
    for (const auto& [name, split] : {std::pair<const char*, const Split*>{"train", &d.train}, {"val", &d.val},
                                      {"test", &d.test}}) {
      int64_t labelled = 0;
      for (const auto& L : split->seg.labels)
        for (uint8_t v : L) labelled += v != d.void_label ? 1 : 0;
      RF_CHECK(labelled > 0,
               "{}: every label in the {} split ({} images) is void ({}): mIoU would have no ground truth; give a "
               "split with labelled pixels",
               d.source, name, split->size(false), d.void_label);
    }
  }
  return d;
}

data::DenseAugment eval_augment(const Data& d) {
  data::DenseAugment a;
  a.out_h = d.in_h, a.out_w = d.in_w, a.enabled = false;
  return a;
}

data::DenseBatch make_batch(const Split& s, bool detect, const std::vector<int64_t>& idx, const data::DenseAugment& a,
                            uint64_t seed, int64_t epoch) {
  return detect ? data::make_det_batch(s.det, idx, a, seed, epoch) : data::make_seg_batch(s.seg, idx, a, seed, epoch);
}

Tensor batch_tensor(data::DenseBatch& b) { return Tensor::borrow(b.x.data(), Shape{b.N, 3, b.H, b.W}); }

struct TaskMetrics {
  double main = 0, second = 0;     // detect: mAP@0.5, mAP@[.5:.95]; segment: mIoU, pixel accuracy
  std::vector<double> per_class;   // AP@0.5 or IoU
  double loss = 0;
};

// Evaluates a model (eval mode) on a split at the network input size, without augmentation. Detection boxes are
// mapped back to the original image's pixels and compared with the dataset's ground truth there; segmentation
// compares with the label maps resized (nearest) to the input size.
TaskMetrics evaluate_split(Model& m, const Split& s, const Data& d, bool detect, float thr, int64_t batch = 8) {
  const int64_t n = s.size(detect);
  const int K = int(d.classes.size());
  std::vector<eval::Detection> dets;
  std::vector<eval::GroundTruth> gts;
  eval::ConfusionMatrix cm(K, d.void_label);
  double loss_sum = 0;
  data::DenseAugment a = eval_augment(d);
  for (int64_t i0 = 0; i0 < n; i0 += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = i0; i < std::min(n, i0 + batch); ++i) idx.push_back(i);
    data::DenseBatch b = make_batch(s, detect, idx, a, 0, 0);
    Tensor out = m.forward(batch_tensor(b), false);
    if (detect) {
      for (eval::Detection det : det_decode(out, K, thr, i0)) {
        const data::Image& img = s.det.images[size_t(det.image)];
        const float sx = float(img.W) / float(d.in_w), sy = float(img.H) / float(d.in_h);
        det.box = {det.box.x0 * sx, det.box.y0 * sy, det.box.x1 * sx, det.box.y1 * sy};
        dets.push_back(det);
      }
      for (int64_t i : idx)
        for (const data::BoxAnn& g : s.det.boxes[size_t(i)])
          gts.push_back({i, g.cls, {g.x0, g.y0, g.x1, g.y1}, g.difficult});
    } else {
      Tensor dout;
      loss_sum += seg_loss(out, b.labels.data(), d.void_label, dout) * double(idx.size());
      std::vector<int32_t> pred = seg_argmax(out);
      cm.add(pred.data(), b.labels.data(), int64_t(pred.size()));
    }
  }
  TaskMetrics r;
  if (detect) {
    eval::DetMetrics dm = eval::evaluate_detections(dets, gts, K);
    r.main = dm.map50;  // NaN when the split has no ground truth: JSON null, "no ground truth" in text
    r.second = dm.map_coco;
    r.per_class = dm.ap50;
  } else {
    r.main = cm.miou();
    r.second = cm.pixel_accuracy();
    r.per_class = cm.iou();
    r.loss = loss_sum / double(std::max<int64_t>(1, n));
  }
  return r;
}

struct DenseEpoch {
  int epoch = 0;
  double lr = 0, loss = 0, seconds = 0, images_per_s = 0, val_main = 0;
  int64_t bn_recalibrated = 0;            // last epoch only: images of the BN recalibration (0: none)
  double val_before_recalibration = 0;    // last epoch only: val_main before it
};

std::vector<DenseEpoch> train(Model& model, const Data& d, bool detect, const DenseOptions& o, uint64_t seed) {
  const int64_t n = d.train.size(detect);
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total = steps_per_epoch * o.epochs, warmup = steps_per_epoch * o.warmup_epochs;
  const int K = int(d.classes.size());
  SGD opt(model.params(), o.momentum, o.weight_decay);
  data::DenseAugment aug = eval_augment(d);
  aug.enabled = o.augment;
  std::vector<DenseEpoch> log;
  int64_t step = 0;
  for (int e = 0; e < o.epochs; ++e) {
    auto t0 = Clock::now();
    std::vector<int64_t> perm = data::epoch_permutation(n, seed, e);
    double loss_sum = 0;
    float lr = 0;
    for (int64_t b0 = 0; b0 < n; b0 += o.batch) {
      std::vector<int64_t> idx(perm.begin() + b0, perm.begin() + std::min(n, b0 + o.batch));
      if (idx.size() < 2) continue;  // BN needs two samples
      data::DenseBatch b = make_batch(d.train, detect, idx, aug, seed, e);
      Tensor out = model.forward(batch_tensor(b), true);
      Tensor dout;
      double loss;
      if (detect) {
        DetTargets t = make_det_targets(b.boxes, K, 8, int(out.size(2)), int(out.size(3)));
        loss = det_loss(out, t, o.size_weight, o.offset_weight, dout).total;
      } else {
        loss = seg_loss(out, b.labels.data(), d.void_label, dout);
      }
      RF_CHECK(std::isfinite(loss), "{}: the loss is {} at epoch {} step {} (diverged; lower --lr)",
               model.config().name(), loss, e + 1, step);
      model.backward(dout);
      lr = cosine_lr(o.lr, step++, total, warmup);
      opt.step(lr, o.clip_norm);
      loss_sum += loss * double(idx.size());
      std::fprintf(stderr, "\r  %s epoch %d/%d  batch %lld/%lld  loss %.4f  ", model.config().name().c_str(), e + 1,
                   o.epochs, (long long)(b0 / o.batch + 1), (long long)steps_per_epoch, loss);
    }
    model.clear_cache();
    {
      int64_t at = 0;
      float v = 0.f;
      const std::string bad = first_non_finite_param(model, &at, &v);
      RF_CHECK(bad.empty(), "{}: diverged at epoch {} (lr {}): tensor '{}' value {} is {}; no package written; lower "
               "--lr", model.config().name(), e + 1, lr, bad, at, v);
    }
    DenseEpoch l;
    l.epoch = e + 1, l.lr = lr, l.loss = loss_sum / double(n), l.seconds = since(t0);
    l.images_per_s = double(n) / l.seconds;
    l.val_main = evaluate_split(model, d.val, d, detect, o.score_threshold).main;
    model.clear_cache();
    std::fprintf(stderr, "\r  %s epoch %d/%d  loss %.4f  val %s %s  %.1f img/s  %.1fs          \n",
                 model.config().name().c_str(), e + 1, o.epochs, l.loss, detect ? "mAP@0.5" : "mIoU",
                 eval::format_metric(l.val_main).c_str(), l.images_per_s, l.seconds);
    log.push_back(l);
  }
  if (o.bn_recalibrate > 0 && n >= 2) {
    // As recalibrate_bn (training/trainer.h) for the classification suite: running statistics = the
    // average of batch statistics over un-augmented training images, in a seeded order. The last epoch's
    // val_main is replaced by the figure after it (the packed model's); the epoch logged keeps both.
    std::vector<int64_t> perm = data::epoch_permutation(n, seed ^ 0x9e3779b97f4a7c15ull, 0);
    const int64_t bs = std::max<int64_t>(2, std::min<int64_t>(o.batch, o.bn_recalibrate));
    const data::DenseAugment plain = eval_augment(d);
    int64_t used = 0;
    {
      BnRecalibration recal(model);
      for (int64_t b0 = 0; b0 + bs <= n && recal.images() + bs <= o.bn_recalibrate; b0 += bs) {
        std::vector<int64_t> idx(perm.begin() + b0, perm.begin() + b0 + bs);
        data::DenseBatch b = make_batch(d.train, detect, idx, plain, seed, 0);
        recal.add(batch_tensor(b));
      }
      used = recal.images();
    }
    if (used > 0 && !log.empty()) {
      const double before = log.back().val_main;
      log.back().val_before_recalibration = before;
      log.back().val_main = evaluate_split(model, d.val, d, detect, o.score_threshold).main;
      log.back().bn_recalibrated = used;
      model.clear_cache();
      std::fprintf(stderr, "  %s BN statistics recomputed from %lld training images: val %s %.4f -> %.4f\n",
                   model.config().name().c_str(), (long long)used, detect ? "mAP@0.5" : "mIoU", before,
                   log.back().val_main);
    }
  }
  return log;
}

// Pictures: for the first few test images, the ground truth and each model's prediction side by side.
void write_pictures(const DenseOptions& o, const Data& d, bool detect,
                    const std::vector<std::pair<std::string, Model*>>& models, const std::vector<double>& scores,
                    json& out) {
  fs::create_directories(o.out_dir + "/pictures");
  data::DenseAugment a = eval_augment(d);
  const int64_t n = std::min<int64_t>(o.pictures, d.test.size(detect));
  const int K = int(d.classes.size());
  const int up = std::max(1, 256 / std::max(d.in_h, d.in_w) + (d.in_h < 128 ? 1 : 0));
  for (int64_t i = 0; i < n; ++i) {
    data::DenseBatch b = make_batch(d.test, detect, {i}, a, 0, 0);
    // The network's input image (denormalised), upscaled for small inputs so the labels stay readable.
    data::Image img;
    img.H = int(b.H), img.W = int(b.W), img.C = 3;
    img.hwc.resize(size_t(img.H) * img.W * 3);
    for (int c = 0; c < 3; ++c)
      for (int64_t p = 0; p < b.H * b.W; ++p) {
        float v = (b.x[size_t(c * b.H * b.W + p)] * a.std[size_t(c)] + a.mean[size_t(c)]) * 255.f;
        img.hwc[size_t(p * 3 + c)] = uint8_t(std::clamp(std::lround(v), 0l, 255l));
      }
    std::vector<data::Image> panels;
    std::vector<std::string> titles;
    auto scale_boxes = [&](std::vector<data::DrawnBox> v) {
      for (auto& x : v) x.x0 *= float(up), x.y0 *= float(up), x.x1 *= float(up), x.y1 *= float(up);
      return v;
    };
    std::vector<data::DrawnBox> gt;
    if (detect)
      for (const data::BoxAnn& g : b.boxes[0]) gt.push_back({g.x0, g.y0, g.x1, g.y1, g.cls, -1.f});
    data::Image big = data::upscale_nearest(img, up);
    auto labels_up = [&](const std::vector<uint8_t>& lab) {
      std::vector<uint8_t> o2(size_t(big.H) * big.W);
      for (int y = 0; y < big.H; ++y)
        for (int x = 0; x < big.W; ++x) o2[size_t(y) * big.W + x] = lab[size_t(y / up) * img.W + x / up];
      return o2;
    };
    if (detect) {  // ground truth drawn solid with its class name (score -1: no score printed)
      panels.push_back(data::draw_detections(big, scale_boxes(gt), {}, d.classes));
    } else {
      std::vector<uint8_t> l = labels_up(b.labels);
      panels.push_back(data::overlay_mask(big, l.data(), d.void_label));
    }
    titles.push_back("ground truth");
    for (size_t m = 0; m < models.size(); ++m) {
      Tensor y = models[m].second->forward(batch_tensor(b), false);
      if (detect) {
        std::vector<data::DrawnBox> pred;
        for (const eval::Detection& det : det_decode(y, K, 0.3f, 0))
          pred.push_back({det.box.x0, det.box.y0, det.box.x1, det.box.y1, det.cls, det.score});
        panels.push_back(data::draw_detections(big, scale_boxes(pred), {}, d.classes));
      } else {
        std::vector<int32_t> pred = seg_argmax(y);
        std::vector<uint8_t> p8(pred.begin(), pred.end());
        std::vector<uint8_t> l = labels_up(p8);
        panels.push_back(data::overlay_mask(big, l.data(), d.void_label));
      }
      titles.push_back(fmt::format("{}  {} {:.3f}", models[m].first, detect ? "mAP@0.5" : "mIoU", scores[m]));
    }
    data::Image all = data::compose_panels(panels, titles, d.classes);
    std::string id = detect ? d.test.det.ids[size_t(i)] : d.test.seg.ids[size_t(i)];
    for (char& c : id)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
    std::string path = fmt::format("{}/pictures/{}-{:02d}-{}.png", o.out_dir, o.task, i, id);
    data::write_png_file(path, all.hwc.data(), all.H, all.W, 3);
    out.push_back(path);
  }
}

}  // namespace

json run_dense(const DenseOptions& o) {
  const bool detect = o.task == "detect";
  RF_CHECK(detect || o.task == "segment", "dense suite: task '{}' (expected detect or segment)", o.task);
  RF_CHECK(o.seeds >= 1 && !o.models.empty(), "{}: need at least one model and one seed", o.task);
  // Everything that can be refused is refused before the first epoch (issue 18: options checked after the work).
  for (const std::string& text : o.models) (void)ModelConfig::parse(text);
  {
    TrainOptions t;  // the shared range checks of the trainer's options
    t.epochs = o.epochs, t.batch = o.batch, t.lr = o.lr, t.momentum = o.momentum, t.weight_decay = o.weight_decay;
    t.clip_norm = o.clip_norm, t.warmup_epochs = o.warmup_epochs, t.bn_recalibrate = o.bn_recalibrate;
    validate_train_options(t);
  }
  RF_CHECK(o.latency_reps >= 1 && o.latency_reps <= 100000, "{}: --latency-reps {} (expected 1..100000)", o.task,
           o.latency_reps);
  for (int B : o.throughput_batches)
    RF_CHECK(B >= 1 && B <= 256, "{}: --throughput-batches {} (expected 1..256)", o.task, B);
  RF_CHECK(!o.out_dir.empty(), "{}: --out is empty (expected a folder)", o.task);
  fs::create_directories(o.out_dir + "/packages");
  auto t_start = Clock::now();
  Data d = load_data(o, detect);
  const int K = int(d.classes.size());
  std::fprintf(stderr, "%s: %s: %lld train / %lld val / %lld test images, input %dx%d, %d classes\n", o.task.c_str(),
               d.source.c_str(), (long long)d.train.size(detect), (long long)d.val.size(detect),
               (long long)d.test.size(detect), d.in_h, d.in_w, K);

  json models = json::array();
  std::vector<std::unique_ptr<Model>> device_models;
  std::vector<std::pair<std::string, Model*>> picture_models;
  std::vector<double> picture_scores;
  const char* main_key = detect ? "map50" : "miou";
  const char* second_key = detect ? "map_coco" : "pixel_acc";
  for (const std::string& text : o.models) {
    ModelConfig base = ModelConfig::parse(text);
    base.classes = K, base.stem = "large", base.task = o.task, base.neck = o.neck;
    base.head_nl = o.head_nl && base.is_nl();
    base.validate();
    Model probe(base);
    ModelTotals tot = probe.totals(Shape{1, 3, d.in_h, d.in_w});
    json runs = json::array();
    std::vector<double> main_v, second_v, main_f16, main_i8, epoch_s, regen_s, regen_cold_s, val_v;
    std::vector<std::vector<double>> per_class;
    json bytes;
    std::unique_ptr<Model> device_model;
    int64_t train_peak = 0;
    for (int s = 0; s < o.seeds; ++s) {
      ModelConfig cfg = base;
      if (cfg.is_nl()) cfg.seed = o.base_seed + 1000 * uint64_t(s);
      cfg.init_seed = o.base_seed + uint64_t(s) + 1;
      Model model(cfg);
      host_reset_peak();
      std::fprintf(stderr, "%s: %s seed %d/%d: training %d epochs\n", o.task.c_str(), cfg.name().c_str(), s + 1,
                   o.seeds, o.epochs);
      std::vector<DenseEpoch> log = train(model, d, detect, o, o.base_seed + uint64_t(s));
      train_peak = std::max<int64_t>(train_peak, int64_t(host_memory_stats().peak_live_bytes));
      model.clear_cache();
      json pk;
      for (const char* dt : {"f32", "f16", "i8"}) {
        PackOptions po;
        po.dtype = parse_storage_dtype(dt);
        Package p = pack_model(model, po);
        // What inference needs: the network input size, the normalisation of eval_augment and the class names.
        const data::DenseAugment ea = eval_augment(d);
        p.meta.input_h = ea.out_h, p.meta.input_w = ea.out_w;
        p.meta.mean.assign(ea.mean.begin(), ea.mean.end());
        p.meta.std.assign(ea.std.begin(), ea.std.end());
        p.meta.classes = d.classes;
        std::string path = fmt::format("{}/packages/{}-{}-s{}-{}.rfpk", o.out_dir, o.task, cfg.name(), s, dt);
        write_package(path, p);
        double regen = 0;
        std::unique_ptr<Model> dev = load_model(read_package(path), path, &regen);
        TaskMetrics tm = evaluate_split(*dev, d.test, d, detect, o.score_threshold);
        dev->clear_cache();
        pk[dt] = {{"path", path}, {"bytes", fs::file_size(path)}, {main_key, tm.main}, {second_key, tm.second},
                  {"regen_cold_seconds", regen}};
        const std::string sdt = dt;
        if (sdt == "f32") {
          main_v.push_back(tm.main), second_v.push_back(tm.second), regen_cold_s.push_back(regen);
          regen_s.push_back(regen_seconds_median(*dev));
          pk[dt]["regen_seconds_median"] = regen_s.back();
          per_class.push_back(tm.per_class);
          device_model = std::move(dev);
        } else if (sdt == "f16") {
          main_f16.push_back(tm.main);
        } else {
          main_i8.push_back(tm.main);
        }
      }
      bytes = {{"f32", pk["f32"]["bytes"]}, {"f16", pk["f16"]["bytes"]}, {"i8", pk["i8"]["bytes"]}};
      double ep = 0;
      json epochs = json::array();
      for (const DenseEpoch& l : log) {
        ep += l.seconds;
        json e = {{"epoch", l.epoch}, {"lr", l.lr}, {"train_loss", l.loss}, {"seconds", l.seconds},
                  {"images_per_s", l.images_per_s}, {std::string("val_") + main_key, l.val_main}};
        if (l.bn_recalibrated > 0) {
          e["bn_recalibration_images"] = l.bn_recalibrated;
          e[std::string("val_") + main_key + "_before_bn_recalibration"] = l.val_before_recalibration;
        }
        epochs.push_back(e);
      }
      epoch_s.push_back(ep / double(std::max<size_t>(1, log.size())));
      val_v.push_back(log.empty() ? 0.0 : log.back().val_main);
      runs.push_back({{"seed", s}, {"config", cfg.str()}, {"epochs", epochs}, {"packages", pk},
                      {"test_evaluations_per_package", 1}});
      std::fprintf(stderr, "%s: %s seed %d: test %s %s (fp32 package), %s %s, int8 %s %s\n", o.task.c_str(),
                   cfg.name().c_str(), s + 1, main_key, eval::format_metric(main_v.back()).c_str(), second_key,
                   eval::format_metric(second_v.back()).c_str(), main_key, eval::format_metric(main_i8.back()).c_str());
    }
    host_reset_peak();
    double lat = time_forward(*device_model, 1, d.in_h, d.in_w, o.latency_reps);
    json thr;
    for (int B : o.throughput_batches)
      thr[std::to_string(B)] = double(B) / time_forward(*device_model, B, d.in_h, d.in_w, o.throughput_reps);
    int64_t eval_peak = int64_t(host_memory_stats().peak_live_bytes);
    device_model->clear_cache();
    json pcl = json::array();
    for (int k = 0; k < K; ++k) {
      std::vector<double> v;
      for (const auto& pc : per_class)
        if (std::isfinite(pc[size_t(k)])) v.push_back(pc[size_t(k)]);
      pcl.push_back({{"class", d.classes[size_t(k)]}, {"value", v.empty() ? json(nullptr) : mean_std_json(v)["mean"]}});
    }
    json m = {{"model", base.name()},
              {"config", base.str()},
              {"learnable_params", tot.learnable},
              {"seeded_weights", tot.seeded},
              {"bn_state", tot.state},
              {"macs", tot.macs},
              {"pool_window_reads", tot.pool_reads},
              {"input", {3, d.in_h, d.in_w}},
              {"package_bytes", bytes},
              {"device_storage_bytes", bytes["f32"]},
              {"resident_weight_bytes", (tot.learnable + tot.seeded + tot.state) * int64_t(sizeof(float))},
              {"peak_memory_bytes", {{"train_tensors", train_peak}, {"inference_tensors", eval_peak}}},
              {"train_seconds_per_epoch", mean_std_json(epoch_s)},
              {"regen_seconds_median", mean_std_json(regen_s)},  // warm, see suites/measure.h
              {"regen_reps", kRegenReps},
              {"regen_cold_seconds", mean_std_json(regen_cold_s)},
              {"latency_batch1_ms", lat * 1e3},
              {"throughput_images_per_s", thr},
              {std::string("val_") + main_key, mean_std_json(val_v)},
              {main_key, mean_std_json(main_v)},
              {second_key, mean_std_json(second_v)},
              {std::string(main_key) + "_fp16", mean_std_json(main_f16)},
              {std::string(main_key) + "_int8", mean_std_json(main_i8)},
              {detect ? "ap50_per_class" : "iou_per_class", pcl},
              {"runs", runs}};
    models.push_back(m);
    picture_scores.push_back(main_v.back());
    device_models.push_back(std::move(device_model));
    picture_models.push_back({base.name(), device_models.back().get()});
  }
  json pictures = json::array();
  if (o.pictures > 0) write_pictures(o, d, detect, picture_models, picture_scores, pictures);

  const Split& tr = d.train;
  json out = {
      {"schema", fmt::format("reframe.{}/1", o.task)},
      {"provenance", provenance_json(o.command_line)},
      {"dataset",
       {{"source", d.source},
        {"train", d.train.size(detect)},
        {"val", d.val.size(detect)},
        {"test", d.test.size(detect)},
        {"input", {3, d.in_h, d.in_w}},
        {"classes", d.classes},
        {"train_hash", detect ? tr.det.hash_hex() : tr.seg.hash_hex()},
        {"val_hash", detect ? d.val.det.hash_hex() : d.val.seg.hash_hex()},
        {"test_hash", detect ? d.test.det.hash_hex() : d.test.seg.hash_hex()},
        {"warnings", detect ? tr.det.warnings.size() + d.val.det.warnings.size() + d.test.det.warnings.size()
                            : tr.seg.warnings.size() + d.val.seg.warnings.size() + d.test.seg.warnings.size()}}},
      {"budget",
       {{"epochs", o.epochs}, {"batch", o.batch}, {"optimizer", "sgd"}, {"lr", o.lr}, {"momentum", o.momentum},
        {"weight_decay", o.weight_decay}, {"schedule", "cosine"}, {"warmup_epochs", o.warmup_epochs},
        {"clip_norm", o.clip_norm}, {"augment", o.augment}, {"bn_recalibrate", o.bn_recalibrate}, {"seeds", o.seeds}, {"base_seed", o.base_seed},
        {"neck", o.neck}, {"head_nl", o.head_nl},
        {"loss", detect ? fmt::format("focal + {} L1(size) + {} L1(offset)", o.size_weight, o.offset_weight)
                        : std::string("pixel cross-entropy, void ignored")},
        {"metric", detect ? "VOC mAP@0.5 (all-point) and COCO mAP@[.5:.95] (101-point) in original image pixels; "
                            "test split touched once per package"
                          : "mIoU over the real classes (void ignored) and pixel accuracy at the network input size "
                            "(labels resized nearest); test split touched once per package"}}},
      {"models", models},
      {"pictures", pictures},
      {"wall_seconds", since(t_start)},
      {"max_rss_bytes", max_rss_bytes()}};
  write_json_atomic(o.out_dir + "/" + o.task + ".json", out);  // invalid UTF-8 in names repaired, never a throw
  return out;
}

std::string dense_table(const json& r) {
  const bool detect = r["schema"] == "reframe.detect/1";
  const char* mk = detect ? "map50" : "miou";
  const char* sk = detect ? "map_coco" : "pixel_acc";
  std::string s = fmt::format("{:<16} {:>10} {:>14} {:>11} {:>10} {:>7} {:>9} {:>10} {:>14} {:>14} {:>9}\n", "model",
                              "learnable", "MACs", "pkg fp32", "pkg int8", "% R18", "lat b1", "regen ms",
                              detect ? "mAP@0.5" : "mIoU", detect ? "mAP@.5:.95" : "pixel acc",
                              detect ? "int8 mAP" : "int8 mIoU");
  double base_bytes = 0, base_macs = 0;
  for (const auto& m : r["models"])
    if (m["model"] == "resnet18") base_bytes = m["package_bytes"]["f32"].get<double>(), base_macs = m["macs"].get<double>();
  // NaN is written as null: a metric without ground truth.
  auto pm = [](const json& j) {
    return j.is_object() && j["mean"].is_number() && j["std"].is_number() ? pct_mean_std_cell(j)
                                                                           : std::string("no ground truth");
  };
  auto pct = [](const json& j) {
    return j.is_number() ? fmt::format("{:.2f}%", 100 * j.get<double>()) : std::string("no ground truth");
  };
  for (const auto& m : r["models"]) {
    double fp32 = m["package_bytes"]["f32"].get<double>();
    const json& rg = m.contains("regen_seconds_median") ? m["regen_seconds_median"] : json();
    s += fmt::format("{:<16} {:>10} {:>14} {:>11} {:>10} {:>7} {:>7.2f}ms {:>10} {:>14} {:>14} {:>9}\n",
                     m["model"].get<std::string>(), m["learnable_params"].get<int64_t>(), m["macs"].get<int64_t>(),
                     int64_t(fp32), m["package_bytes"]["i8"].get<int64_t>(), pct_of_r18_cell(fp32, base_bytes),
                     m["latency_batch1_ms"].get<double>(),
                     rg.is_object() ? fmt::format("{:.3f}", 1e3 * rg["mean"].get<double>()) : "—", pm(m[mk]),
                     pm(m[sk]), pct(m[std::string(mk) + "_int8"]["mean"]));
  }
  s += fmt::format("\n% R18:    fp32 package bytes as a share of resnet18's in this run{}\n"
                   "regen ms: regenerating the seeded weights of the loaded fp32 package, median of {} warm calls\n",
                   base_bytes > 0 ? "" : " (no resnet18 in this run: shown as —)", kRegenReps);
  if (base_bytes > 0) {
    s += "\nAgainst resnet18 in this run:";
    for (const auto& m : r["models"]) {
      if (m["model"] == "resnet18") continue;
      s += fmt::format("\n  {:<16} bytes {:.1f}%, MACs {:.1f}%", m["model"].get<std::string>(),
                       100 * m["package_bytes"]["f32"].get<double>() / base_bytes,
                       100 * m["macs"].get<double>() / base_macs);
    }
    s += "\n";
  }
  const auto& b = r["budget"];
  s += fmt::format("\nbudget: {} epochs, batch {}, SGD lr {} cosine, {}; {} seed(s); input {}x{}\n", b["epochs"].get<int>(),
                   b["batch"].get<int64_t>(), b["lr"].get<double>(), b["loss"].get<std::string>(), b["seeds"].get<int>(),
                   r["dataset"]["input"][1].get<int>(), r["dataset"]["input"][2].get<int>());
  return s;
}

}  // namespace rf

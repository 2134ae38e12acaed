// Detection and segmentation objectives and their evaluation (see dense_objective.h).
#include "training/dense_objective.h"

#include <algorithm>
#include <cmath>

#include "datasets/loader.h"
#include "host/eval/decode.h"
#include "host/eval/det_metrics.h"
#include "host/eval/seg_metrics.h"
#include "training/trainer.h"

namespace rf {

data::DenseAugment dense_eval_augment(const DenseData& d) {
  data::DenseAugment a;
  a.out_h = d.in_h, a.out_w = d.in_w, a.enabled = false;
  return a;
}

data::DenseBatch make_dense_batch(const DenseSplit& s, bool detect, const std::vector<int64_t>& idx,
                                  const data::DenseAugment& a, uint64_t seed, int64_t epoch) {
  return detect ? data::make_det_batch(s.det, idx, a, seed, epoch) : data::make_seg_batch(s.seg, idx, a, seed, epoch);
}

std::vector<std::vector<TargetBox>> target_boxes(const std::vector<std::vector<data::BoxAnn>>& boxes) {
  std::vector<std::vector<TargetBox>> out(boxes.size());
  for (size_t n = 0; n < boxes.size(); ++n)
    for (const data::BoxAnn& b : boxes[n]) out[n].push_back({b.x0, b.y0, b.x1, b.y1, b.cls});
  return out;
}

DenseMetrics evaluate_dense(Model& m, const DenseSplit& s, const DenseData& d, float thr, int64_t batch) {
  const bool detect = d.detect;
  const int64_t n = s.size(detect);
  const int K = int(d.classes.size());
  std::vector<eval::Detection> dets;
  std::vector<eval::GroundTruth> gts;
  eval::ConfusionMatrix cm(K, d.void_label);
  double loss_sum = 0;
  data::DenseAugment a = dense_eval_augment(d);
  for (int64_t i0 = 0; i0 < n; i0 += batch) {
    std::vector<int64_t> idx;
    for (int64_t i = i0; i < std::min(n, i0 + batch); ++i) idx.push_back(i);
    data::DenseBatch b = make_dense_batch(s, detect, idx, a, 0, 0);
    Tensor out = m.forward(dense_batch_tensor(b).to(m.device()), false).to(Device::cpu);
    if (detect) {
      for (eval::Detection det : eval::det_decode(out, K, thr, i0)) {
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
      std::vector<int32_t> pred = eval::seg_argmax(out);
      cm.add(pred.data(), b.labels.data(), int64_t(pred.size()));
    }
  }
  DenseMetrics r;
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

DenseObjective::DenseObjective(const DenseData& d, const TrainOptions& o, const DenseLossOptions& lo)
    : d_(d), lo_(lo), n_(d.train.size(d.detect)), batch_(o.batch), seed_(o.seed), aug_(dense_eval_augment(d)) {
  RF_CHECK(n_ > 0, "train: the {} training set '{}' is empty", d.detect ? "detection" : "segmentation", d.source);
  aug_.enabled = o.augment;
}

int64_t DenseObjective::batches_per_epoch() const { return n_ / batch_ + (n_ % batch_ >= 2 ? 1 : 0); }

void DenseObjective::start_epoch(int epoch) {
  epoch_ = epoch;
  b0_ = 0;
  perm_ = data::epoch_permutation(n_, seed_, epoch);
}

bool DenseObjective::next(Tensor& x) {
  for (; b0_ < n_; b0_ += batch_) {
    std::vector<int64_t> idx(perm_.begin() + b0_, perm_.begin() + std::min(n_, b0_ + batch_));
    // BN needs two samples (on every rank: a last batch too small to share is skipped by all ranks alike)
    if (idx.size() < size_t(2 * ranks_)) continue;
    if (ranks_ > 1) {  // this rank's images [n r / R, n (r + 1) / R) of the global batch
      const size_t n = idx.size(), lo = n * size_t(rank_) / size_t(ranks_), hi = n * size_t(rank_ + 1) / size_t(ranks_);
      idx = std::vector<int64_t>(idx.begin() + int64_t(lo), idx.begin() + int64_t(hi));
    }
    b_ = make_dense_batch(d_.train, d_.detect, idx, aug_, seed_, epoch_);
    b0_ += batch_;
    x = dense_batch_tensor(b_);
    return true;
  }
  return false;
}

bool DenseObjective::set_rank_share(int rank, int ranks) {
  rank_ = rank, ranks_ = ranks;
  return true;
}

BatchLoss DenseObjective::loss(const Tensor& out, Tensor& dout) {
  BatchLoss l;
  if (d_.detect) {
    DetTargets t = make_det_targets(b_.boxes, int(d_.classes.size()), 8, int(out.size(2)), int(out.size(3)));
    l.loss = det_loss(out, t, lo_.size_weight, lo_.offset_weight, dout).total;
  } else {
    l.loss = seg_loss(out, b_.labels.data(), d_.void_label, dout);
  }
  return l;
}

Validation DenseObjective::validate(Model& model) {
  DenseMetrics m = evaluate_dense(model, d_.val, d_, lo_.score_threshold);
  return {m.loss, m.main};
}

int64_t DenseObjective::recalibrate_bn(Model& model, int64_t max_images) {
  // As rf::recalibrate_bn for classification: running statistics = the average of batch statistics over
  // un-augmented training images, in a seeded order.
  if (n_ < 2) return 0;
  std::vector<int64_t> perm = data::epoch_permutation(n_, seed_ ^ 0x9e3779b97f4a7c15ull, 0);
  const int64_t bs = std::max<int64_t>(2, std::min<int64_t>(batch_, max_images));
  const data::DenseAugment plain = dense_eval_augment(d_);
  BnRecalibration recal(model);
  for (int64_t b0 = 0; b0 + bs <= n_ && recal.images() + bs <= max_images; b0 += bs) {
    std::vector<int64_t> idx(perm.begin() + b0, perm.begin() + b0 + bs);
    data::DenseBatch b = make_dense_batch(d_.train, d_.detect, idx, plain, seed_, 0);
    recal.add(dense_batch_tensor(b));
  }
  return recal.images();
}

nlohmann::json DenseObjective::settings() const {
  nlohmann::json j = {{"task", d_.detect ? "detect" : "segment"},
                      {"train_data", d_.train.hash_hex(d_.detect)},
                      {"train_images", n_},
                      {"val_data", d_.val.hash_hex(d_.detect)},
                      {"val_images", d_.val.size(d_.detect)},
                      {"input", {d_.in_h, d_.in_w}}};
  // Floats by their shortest text, as train_settings_json records the trainer's.
  auto f = [](float v) { return std::stod(fmt::format("{}", v)); };
  if (d_.detect) j["size_weight"] = f(lo_.size_weight), j["offset_weight"] = f(lo_.offset_weight);
  return j;
}

}  // namespace rf

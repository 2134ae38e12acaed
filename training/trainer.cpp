// Host training loop. The data order and augmentation depend only on (seed, epoch, batch), so a run resumed
// from a checkpoint takes exactly the batches an uninterrupted run would have taken.
#include "training/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "cuda/ops/train_step.h"
#include "cuda/runtime.h"
#include "host/core/comm.h"
#include "host/eval/det_metrics.h"
#include "host/ops/loss.h"
#include "host/core/printable.h"
#include "host/package/model_package.h"

namespace rf {

float cosine_lr(float lr, int64_t step, int64_t total, int64_t warmup) {
  if (warmup > 0 && step < warmup) return lr * float(step + 1) / float(warmup);
  int64_t span = std::max<int64_t>(1, total - warmup);
  double t = double(step - warmup) / double(span);
  return float(0.5 * lr * (1.0 + std::cos(M_PI * std::min(1.0, t))));
}

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t count_correct(const Tensor& logits, const int32_t* labels) {
  const int N = int(logits.size(0)), C = int(logits.size(1));
  int64_t correct = 0;
  for (int i = 0; i < N; ++i) {
    const float* row = logits.f32() + int64_t(i) * C;
    int best = 0;
    for (int c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == labels[i];
  }
  return correct;
}

const char* kEpochTensor = "trainer.epochs";       // (E, 8) f32: the EpochLog rows
const char* kSettingsTensor = "trainer.settings";  // (bytes,) f32: the settings JSON, one byte per value
const char* kMomentumPrefix = "optimizer.momentum.";

// What a classification checkpoint records about its data.
nlohmann::json classify_data_settings(const data::Dataset& train, const data::Dataset& val) {
  return {{"train_data", train.hash_hex()},
          {"train_images", train.size()},
          {"val_data", val.hash_hex()},
          {"val_images", val.size()}};
}
}  // namespace

void validate_train_options(const TrainOptions& o) {
  auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  RF_CHECK(in(o.lr, 0, 10) && o.lr > 0, "train: --lr {} (expected a finite learning rate > 0 and <= 10)", o.lr);
  RF_CHECK(in(o.momentum, 0, 1) && o.momentum < 1, "train: momentum {} (expected a finite value in [0, 1))",
           o.momentum);
  RF_CHECK(in(o.weight_decay, 0, 1) && o.weight_decay < 1,
           "train: weight decay {} (expected a finite value in [0, 1))", o.weight_decay);
  RF_CHECK(in(o.label_smoothing, 0, 1) && o.label_smoothing < 1,
           "train: --label-smoothing {} (expected a value in [0, 1))", o.label_smoothing);
  RF_CHECK(std::isfinite(o.clip_norm), "train: clip norm {} (expected a finite value; <= 0 turns clipping off)",
           o.clip_norm);
  RF_CHECK(o.epochs >= 1 && o.epochs <= 10000, "train: --epochs {} (expected 1..10000)", o.epochs);
  RF_CHECK(o.batch >= 2 && o.batch <= 65536, "train: --batch {} (expected 2..65536: BN needs two samples)", o.batch);
  RF_CHECK(o.warmup_epochs >= 0 && o.warmup_epochs <= o.epochs,
           "train: --warmup {} (expected 0..{}, at most --epochs)", o.warmup_epochs, o.epochs);
  RF_CHECK(o.bn_recalibrate >= 0 && o.bn_recalibrate <= 100000000,
           "train: --bn-recalibrate {} (expected 0..100000000 images)", o.bn_recalibrate);
  RF_CHECK(o.pad >= 0 && o.pad <= 64, "train: crop padding {} (expected 0..64)", o.pad);
  RF_CHECK(!o.resume_force || o.resume, "train: --resume-force needs --resume");
}

std::string first_non_finite_param(Model& model, int64_t* index, float* value) {
  for (Param* p : model.params()) {
    const Tensor host = p->value.to(Device::cpu);  // a copy only for a model on the GPU
    const float* v = host.f32();
    const int64_t n = p->value.numel();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(v[i])) {
        if (index) *index = i;
        if (value) *value = v[i];
        return p->name;
      }
  }
  return "";
}

std::string train_settings_json(const Model& model, const data::Dataset& train, const data::Dataset& val,
                                const TrainOptions& o) {
  return train_settings_json(model, classify_data_settings(train, val), o);
}

std::string train_settings_json(const Model& model, const nlohmann::json& task_settings, const TrainOptions& o) {
  // Floats by their shortest text (0.1, not 0.10000000149011612): exact for a float, readable in the message.
  auto f = [](float v) { return std::stod(fmt::format("{}", v)); };
  nlohmann::json j = {{"model", model.config().str()},
                      {"epochs", o.epochs},
                      {"batch", o.batch},
                      {"lr", f(o.lr)},
                      {"momentum", f(o.momentum)},
                      {"weight_decay", f(o.weight_decay)},
                      {"label_smoothing", f(o.label_smoothing)},
                      {"clip_norm", f(o.clip_norm)},
                      {"warmup_epochs", o.warmup_epochs},
                      {"seed", o.seed},
                      {"augment", o.augment},
                      {"pad", o.pad},
                      {"bn_recalibrate", o.bn_recalibrate},
                      {"data", o.data_source.empty() ? std::string("(not recorded)") : o.data_source}};
  if (comm::size() > 1 || o.sync_bn) {  // absent in a single process's record, as before data-parallel runs
    j["world_size"] = comm::size();
    j["sync_bn"] = o.sync_bn;
  }
  for (auto it = task_settings.begin(); it != task_settings.end(); ++it) j[it.key()] = it.value();
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);  // ASCII only
}

std::string train_settings_diff(const std::string& recorded, const std::string& current) {
  nlohmann::json a = nlohmann::json::parse(recorded, nullptr, false), b = nlohmann::json::parse(current);
  if (a.is_discarded() || !a.is_object()) return "settings: unreadable in the checkpoint";
  std::string out;
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (it.key() == "data") continue;  // the path may move; the data is compared by its hashes
    const nlohmann::json was = a.contains(it.key()) ? a[it.key()] : nlohmann::json("(not recorded)");
    if (was == it.value()) continue;
    std::string line = fmt::format("{}: {} in the checkpoint, {} now", it.key(), was.dump(), it.value().dump());
    if (it.key() == "train_data" || it.key() == "val_data")
      line += fmt::format(" (data {} in the checkpoint, {} now)", a.value("data", std::string("?")),
                          b.value("data", std::string("?")));
    out += (out.empty() ? "" : "; ") + line;
  }
  return printable(out);
}

EvalResult evaluate(Model& model, const data::Dataset& ds, int64_t batch) {
  EvalResult r;
  auto t0 = Clock::now();
  data::LoaderOptions lo = data::LoaderOptions::eval();
  lo.batch_size = batch;
  data::BatchLoader loader(ds, lo);
  loader.start_epoch(0);
  double loss_sum = 0;
  int64_t correct = 0;
  const int C = model.config().classes;
  for (data::Batch b; loader.next(b);) {
    const int N = int(b.size());
    Tensor logits = model.forward(b.x.to(model.device()), false).to(Device::cpu);
    Tensor probs = Tensor::empty(Shape{N, C});
    loss_sum += N * softmax_cross_entropy_forward_cpu(N, C, logits.f32(), b.y.data<int32_t>(), probs.f32());
    correct += count_correct(logits, b.y.data<int32_t>());
    r.n += N;
  }
  r.loss = r.n ? loss_sum / double(r.n) : 0;
  r.acc = r.n ? double(correct) / double(r.n) : 0;
  r.seconds = since(t0);
  return r;
}

int64_t recalibrate_bn(Model& model, const data::Dataset& ds, int64_t max_images, int64_t batch, uint64_t seed) {
  RF_CHECK(batch >= 2, "recalibrate_bn: batch={} (expected >= 2: BN needs two samples)", batch);
  if (max_images < 2 || ds.size() < 2) return 0;
  data::LoaderOptions lo = data::LoaderOptions::train(seed ^ 0x9e3779b97f4a7c15ull);
  lo.batch_size = std::min<int64_t>(batch, std::min<int64_t>(max_images, ds.size()));
  lo.augment = false;
  lo.drop_last = true;
  data::BatchLoader loader(ds, lo);
  loader.start_epoch(0);
  BnRecalibration recal(model);
  for (data::Batch b; recal.images() + lo.batch_size <= max_images && loader.next(b);) recal.add(b.x);
  return recal.images();
}

BnRecalibration::~BnRecalibration() { set_bn_momentum_override(-1.f); }

void BnRecalibration::add(const Tensor& x) {
  set_bn_momentum_override(1.f / float(batches_ + 1));  // running = mean of the batch statistics so far
  model_.forward(x.to(model_.device()), true);
  model_.clear_cache();
  ++batches_;
  images_ += x.size(0);
}

ClassifyObjective::ClassifyObjective(Model& model, const data::Dataset& train, const data::Dataset& val,
                                     const TrainOptions& o)
    : train_(train),
      val_(val),
      classes_(model.config().classes),
      label_smoothing_(o.label_smoothing),
      batch_(o.batch),
      seed_(o.seed),
      loader_(train, loader_options(train, o, classes_)) {}

data::LoaderOptions ClassifyObjective::loader_options(const data::Dataset& train, const TrainOptions& o, int classes) {
  // Checked here, before the loader is built from the data.
  RF_CHECK(train.size() > 0, "train: the training set '{}' is empty", printable(train.name));
  RF_CHECK(train.num_classes() <= classes, "train: dataset '{}' has {} classes, the model {}",
           printable(train.name), train.num_classes(), classes);
  data::LoaderOptions lo = data::LoaderOptions::train(o.seed);
  lo.batch_size = o.batch;
  lo.augment = o.augment;
  lo.pad = o.pad;
  lo.drop_last = train.size() > o.batch;  // BN needs > 1 sample; a ragged last batch adds noise
  return lo;
}

bool ClassifyObjective::next(Tensor& x) {
  if (!loader_.next(b_)) return false;
  if (ranks_ > 1) {  // this rank's rows [N r / R, N (r + 1) / R) of the global batch
    const int64_t N = b_.x.size(0), lo = N * rank_ / ranks_, hi = N * (rank_ + 1) / ranks_;
    const int64_t per = b_.x.numel() / N;
    Tensor xs = Tensor::empty(Shape{hi - lo, b_.x.size(1), b_.x.size(2), b_.x.size(3)});
    std::memcpy(xs.f32(), b_.x.f32() + lo * per, size_t((hi - lo) * per) * sizeof(float));
    Tensor ys = Tensor::empty(Shape{hi - lo}, b_.y.dtype());
    std::memcpy(ys.raw(), b_.y.data<int32_t>() + lo, size_t(hi - lo) * sizeof(int32_t));
    b_.x = xs, b_.y = ys;
  }
  x = b_.x;
  return true;
}

bool ClassifyObjective::set_rank_share(int rank, int ranks) {
  rank_ = rank, ranks_ = ranks;
  return true;
}

BatchLoss ClassifyObjective::loss(const Tensor& logits, Tensor& dlogits) {
  const int N = int(logits.size(0)), C = classes_;
  if (logits.device() == Device::cuda) {  // the loss, its gradient and the count on the GPU (CUB sums)
    const Tensor y = b_.y.to(Device::cuda);
    Tensor probs = Tensor::empty(Shape{N, C}, DType::f32, Device::cuda);
    dlogits = Tensor::empty(Shape{N, C}, DType::f32, Device::cuda);
    BatchLoss l;
    l.loss = softmax_cross_entropy_forward_cuda(N, C, logits.f32(), y.data<int32_t>(), probs.f32(), label_smoothing_);
    if (std::isfinite(l.loss))
      softmax_cross_entropy_backward_cuda(N, C, probs.f32(), y.data<int32_t>(), dlogits.f32(), label_smoothing_);
    l.correct = count_correct_cuda(N, C, logits.f32(), y.data<int32_t>());
    return l;
  }
  Tensor probs = Tensor::empty(Shape{N, C});
  dlogits = Tensor::empty(Shape{N, C});
  const int32_t* y = b_.y.data<int32_t>();
  BatchLoss l;
  l.loss = softmax_cross_entropy_forward_cpu(N, C, logits.f32(), y, probs.f32(), label_smoothing_);
  // A non-finite loss is reported by the trainer; its gradient is not needed then.
  if (std::isfinite(l.loss)) softmax_cross_entropy_backward_cpu(N, C, probs.f32(), y, dlogits.f32(), label_smoothing_);
  l.correct = count_correct(logits, y);
  return l;
}

Validation ClassifyObjective::validate(Model& model) {
  EvalResult r = evaluate(model, val_);
  return {r.loss, r.acc};
}

int64_t ClassifyObjective::recalibrate_bn(Model& model, int64_t max_images) {
  return rf::recalibrate_bn(model, train_, max_images, std::min<int64_t>(batch_, 256), seed_);
}

nlohmann::json ClassifyObjective::settings() const { return classify_data_settings(train_, val_); }

TrainResult train_model(Model& model, const data::Dataset& train, const data::Dataset& val, const TrainOptions& o) {
  validate_train_options(o);
  ClassifyObjective task(model, train, val, o);
  return train_task(model, task, o);
}

namespace {
// Sums every parameter's gradient over the ranks, in buckets of up to kBucket values packed into one buffer
// (one all-reduce per bucket instead of one per tensor: ResNet-18 has 62 gradient tensors, many of a few
// hundred values, where the per-call latency would dominate).
void allreduce_gradients(const std::vector<Param*>& params) {
  constexpr int64_t kBucket = int64_t(1) << 22;  // 16 MiB of floats
  std::vector<float> buf;
  size_t first = 0;
  while (first < params.size()) {
    size_t last = first;
    int64_t n = 0;
    while (last < params.size() && (n == 0 || n + params[last]->value.numel() <= kBucket))
      n += params[last++]->value.numel();
    buf.resize(size_t(n));
    int64_t at = 0;
    for (size_t i = first; i < last; ++i, at += params[i - 1]->value.numel())
      std::memcpy(buf.data() + at, params[i]->grad_f32(), size_t(params[i]->value.numel()) * sizeof(float));
    comm::allreduce_sum(buf.data(), n);
    at = 0;
    for (size_t i = first; i < last; ++i, at += params[i - 1]->value.numel())
      std::memcpy(params[i]->grad_f32(), buf.data() + at, size_t(params[i]->value.numel()) * sizeof(float));
    first = last;
  }
}

// --sync-bn for the length of a training call (BN layers read a process-wide switch; host/models/layers.h).
struct BnSyncScope {
  explicit BnSyncScope(bool on) { set_bn_sync(on); }
  ~BnSyncScope() { set_bn_sync(false); }
};
}  // namespace

TrainResult train_task(Model& model, Objective& task, const TrainOptions& o) {
  validate_train_options(o);
  TrainResult result;
  // Data parallel under mpirun: every rank holds the same model, trains on its share of each global batch and
  // applies the summed gradient; rank 0 alone writes the checkpoint and prints progress.
  const int ranks = comm::size(), rank = comm::rank();
  if (ranks > 1) {
    RF_CHECK(o.batch >= 2 * ranks, "train: --batch {} over {} ranks (expected >= 2 images per rank: BN needs two "
             "samples)", o.batch, ranks);
    RF_CHECK(task.set_rank_share(rank, ranks), "train: this task cannot split its batches over {} ranks (run it "
             "without mpirun)", ranks);
  }
  const bool root = rank == 0, progress = o.progress && root;
  const Device device = model.device();  // the model trains where it is (Model::to)
  RF_CHECK(device == Device::cpu || ranks == 1, "train: data-parallel training on GPUs needs a device all-reduce "
           "(NCCL), which the trainer does not wire yet: run one process with --device cuda, or --device cpu under "
           "mpirun");
  BnSyncScope bn_sync(o.sync_bn && ranks > 1);
  SGD opt(model.params(), o.momentum, o.weight_decay);
  const std::string settings = train_settings_json(model, task.settings(), o);
  if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    RF_CHECK(o.resume || o.overwrite, "--checkpoint {}: exists (a previous run's); pass --resume to continue it, or "
             "--overwrite to start over and replace it", printable(o.checkpoint));
  }
  if (o.resume && !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    std::string recorded;
    result.epochs = load_checkpoint(o.checkpoint, model, opt, &recorded);
    const std::string diff = recorded.empty() ? std::string("the checkpoint records no training settings (an older "
                                                            "version wrote it)")
                                              : train_settings_diff(recorded, settings);
    if (!diff.empty()) {
      RF_CHECK(o.resume_force, "--resume {}: this run's settings differ from the checkpoint's: {}; rerun with the "
               "checkpoint's settings, or pass --resume-force to continue with the new ones",
               printable(o.checkpoint), diff);
      std::fprintf(stderr, "warning: --resume-force: %s: continuing although %s\n", printable(o.checkpoint).c_str(),
                   diff.c_str());
    }
    result.resumed = true;
    result.start_epoch = int(result.epochs.size());
    RF_CHECK(result.start_epoch <= o.epochs, "{}: checkpoint has {} epochs, the run asks for {}",
             printable(o.checkpoint), result.start_epoch, o.epochs);
  }

  const int64_t steps_per_epoch = task.batches_per_epoch(), schedule = task.schedule_steps_per_epoch();
  const int64_t total = schedule * o.epochs, warmup = schedule * o.warmup_epochs;
  const std::string name = model.config().name(), metric = task.metric_name();
  // "val 0.412" for an accuracy, "val mIoU 0.412" (or "no ground truth") for a named metric.
  auto val_text = [&](double v) {
    return metric.empty() ? fmt::format("val {:.3f}", v) : fmt::format("val {} {}", metric, eval::format_metric(v));
  };

  int done_this_call = 0;
  for (int epoch = result.start_epoch; epoch < o.epochs; ++epoch) {
    auto t0 = Clock::now();
    task.start_epoch(epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    EpochLog log;
    log.epoch = epoch + 1;
    Tensor x;
    for (int64_t batch = 0; task.next(x); ++batch) {
      const int N = int(x.size(0));
      if (device != Device::cpu) x = gpu_upload(x);  // pinned staging, the upload stream (cuda/runtime.h)
      const int64_t step = int64_t(epoch) * steps_per_epoch + batch;
      const float lr = cosine_lr(o.lr, step, total, warmup);
      Tensor out = model.forward(x, true), dout;
      BatchLoss bl = task.loss(out, dout);
      double share = 1.0;  // this rank's images over the global batch's: the weight of its mean loss
      if (ranks > 1) {
        double n_all = double(N);
        comm::allreduce_sum(&n_all, 1);
        share = double(N) / n_all;
        if (std::isfinite(bl.loss)) {
          float* d = dout.f32();
          for (int64_t i = 0; i < dout.numel(); ++i) d[i] *= float(share);
        }
      }
      const double loss = bl.loss;
      // Divergence stops the run here, before a checkpoint or package of NaN weights is written.
      auto diverged = [&](const std::string& what) {
        RF_FAIL("train: {} diverged at epoch {}, step {} of {} (lr {}): {}; nothing written for this epoch{}; "
                "lower --lr", name, epoch + 1, batch + 1, steps_per_epoch, lr, what,
                o.checkpoint.empty() ? "" : ", the checkpoint holds the last good epoch");
      };
      if (!std::isfinite(loss)) {
        int64_t at = 0;
        const std::string bad = first_non_finite_param(model, &at);
        diverged(fmt::format("the loss is {}{}", loss,
                             bad.empty() ? std::string(" (weights finite: the forward pass overflowed)")
                                         : fmt::format(" (tensor '{}' value {} is not finite)", bad, at)));
      }
      model.backward(dout);
      if (ranks > 1) allreduce_gradients(opt.params());
      // A non-finite gradient: name the first tensor whose gradient holds one (the weights are still finite). On
      // a GPU the optimizer's gradient norm is the check (a scan would copy every gradient to the host each step),
      // and the scan names the tensor only when the norm is not finite.
      auto check_gradients = [&] {
        for (Param* p : opt.params()) {
          if (!p->grad.defined()) continue;  // no backward has written it
          const Tensor host = p->grad.to(Device::cpu);
          const float* g = host.f32();
          for (int64_t i = 0; i < host.numel(); ++i)
            if (!std::isfinite(g[i])) diverged(fmt::format("the gradient of tensor '{}' value {} is {}", p->name, i, g[i]));
        }
      };
      if (device == Device::cpu) check_gradients();
      try {
        opt.step(lr, o.clip_norm);
      } catch (const Error&) {
        check_gradients();
        throw;
      }
      if (device == Device::cpu) {
        int64_t at = 0;
        float v = 0.f;
        const std::string bad = first_non_finite_param(model, &at, &v);
        if (!bad.empty()) diverged(fmt::format("tensor '{}' value {} is {} after the optimizer step", bad, at, v));
      }
      loss_sum += loss * N;
      correct += bl.correct;
      seen += N;
      log.lr = lr;
      if (progress && (batch % 10 == 9 || batch + 1 == steps_per_epoch)) {
        double el = since(t0), ips = double(seen) / std::max(el, 1e-9);
        double eta = double(steps_per_epoch - batch - 1) * double(o.batch) / std::max(ips, 1e-9) +
                     double(o.epochs - epoch - 1) * double(steps_per_epoch * o.batch) / std::max(ips, 1e-9);
        const std::string acc = task.has_accuracy() ? fmt::format("  acc {:.3f}", double(correct) / double(seen)) : "";
        std::fprintf(stderr, "\r  %s epoch %d/%d  batch %lld/%lld  loss %.4f%s  %.0f img/s  ETA %.0fs   ",
                     name.c_str(), epoch + 1, o.epochs, (long long)(batch + 1), (long long)steps_per_epoch,
                     loss_sum / double(seen), acc.c_str(), ips, eta);
      }
    }
    model.clear_cache();
    if (ranks > 1) {  // the epoch's figures over the global batches
      double sums[3] = {loss_sum, double(correct), double(seen)};
      comm::allreduce_sum(sums, 3);
      loss_sum = sums[0], correct = int64_t(sums[1]), seen = int64_t(sums[2]);
    }
    log.seconds = since(t0);
    const int64_t images = task.epoch_images(seen);
    log.train_loss = images ? loss_sum / double(images) : 0;
    log.train_acc = seen ? double(correct) / double(seen) : 0;
    log.images_per_s = double(images) / std::max(log.seconds, 1e-9);
    if (task.has_validation()) {
      Validation v = task.validate(model);
      model.clear_cache();
      log.val_loss = v.loss;
      log.val_acc = v.metric;
    }
    if (progress) {
      const std::string acc = task.has_accuracy() ? fmt::format("  acc {:.3f}", log.train_acc) : "";
      std::fprintf(stderr, "\r  %s epoch %d/%d  loss %.4f%s  %s  %.0f img/s  %.1fs%20s\n", name.c_str(), epoch + 1,
                   o.epochs, log.train_loss, acc.c_str(), val_text(log.val_acc).c_str(), log.images_per_s,
                   log.seconds, "");
    }
    result.epochs.push_back(log);
    if (device != Device::cpu) {  // the per-step weight scan of the CPU, once an epoch on a GPU
      int64_t at = 0;
      float v = 0.f;
      const std::string bad = first_non_finite_param(model, &at, &v);
      RF_CHECK(bad.empty(), "train: {} diverged in epoch {} (lr {}): tensor '{}' value {} is {}; nothing written for "
               "this epoch; lower --lr", name, epoch + 1, log.lr, bad, at, v);
    }
    if (!o.checkpoint.empty() && root) save_checkpoint(o.checkpoint, model, opt, result.epochs, settings);
    if (o.stop_after_epochs > 0 && ++done_this_call >= o.stop_after_epochs) break;
  }
  set_bn_sync(false);  // every rank recalibrates on the same images: the same statistics, no sums needed
  if (o.bn_recalibrate > 0 && int(result.epochs.size()) == o.epochs) {
    // After the last checkpoint: a resumed run that finished recalibrates the same way (the statistics
    // depend only on the weights and the data).
    result.bn_recalibrated = task.recalibrate_bn(model, o.bn_recalibrate);
    if (result.bn_recalibrated > 0 && task.has_validation()) {
      const Validation v = task.validate(model);
      model.clear_cache();
      result.final_val.loss = v.loss;
      result.final_val.acc = v.metric;
      if (progress)
        std::fprintf(stderr, "  %s BN statistics recomputed from %lld training images: %s -> %s\n", name.c_str(),
                     (long long)result.bn_recalibrated, val_text(result.epochs.back().val_acc).c_str(),
                     metric.empty() ? fmt::format("{:.3f}", result.final_val.acc).c_str()
                                    : eval::format_metric(result.final_val.acc).c_str());
    }
  }
  return result;
}

void save_checkpoint(const std::string& path, Model& model, SGD& opt, const std::vector<EpochLog>& log,
                     const std::string& settings) {
  PackOptions po;  // fp32, not folded: a checkpoint restores training exactly
  Package p = pack_model(model, po);
  for (size_t i = 0; i < opt.params().size(); ++i) {
    PackedTensor t;
    t.name = kMomentumPrefix + opt.params()[i]->name;
    t.kind = TensorKind::state;
    t.dtype = DType::f32;
    t.shape = opt.velocity()[i].shape().vec();
    const Tensor v = opt.velocity()[i].to(Device::cpu);
    t.data.resize(v.nbytes());
    std::memcpy(t.data.data(), v.raw(), t.data.size());
    p.tensors.push_back(std::move(t));
  }
  PackedTensor e;
  e.name = kEpochTensor;
  e.kind = TensorKind::state;
  e.dtype = DType::f32;
  e.shape = {int64_t(log.size()), 8};
  std::vector<float> rows;
  for (const EpochLog& l : log)
    for (double v : {double(l.epoch), l.lr, l.train_loss, l.train_acc, l.val_loss, l.val_acc, l.seconds,
                     l.images_per_s})
      rows.push_back(float(v));
  e.data.resize(rows.size() * sizeof(float));
  if (!rows.empty()) std::memcpy(e.data.data(), rows.data(), e.data.size());
  p.tensors.push_back(std::move(e));
  if (!settings.empty()) {
    PackedTensor st;
    st.name = kSettingsTensor;
    st.kind = TensorKind::state;
    st.dtype = DType::f32;
    st.shape = {int64_t(settings.size())};
    std::vector<float> bytes;
    for (char c : settings) bytes.push_back(float(static_cast<unsigned char>(c)));
    st.data.resize(bytes.size() * sizeof(float));
    std::memcpy(st.data.data(), bytes.data(), st.data.size());
    p.tensors.push_back(std::move(st));
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  write_package(path, p);
}

std::vector<EpochLog> load_checkpoint(const std::string& path, Model& model, SGD& opt, std::string* settings) {
  Package p = read_package(path);
  std::vector<EpochLog> log;
  std::vector<PackedTensor> model_tensors;
  std::map<std::string, const PackedTensor*> extra;
  for (const PackedTensor& t : p.tensors) {
    if (t.name == kEpochTensor || t.name == kSettingsTensor || t.name.rfind(kMomentumPrefix, 0) == 0)
      extra[t.name] = &t;
    else
      model_tensors.push_back(t);
  }
  RF_CHECK(extra.count(kEpochTensor), "{}: not a training checkpoint (no tensor '{}')", path, kEpochTensor);
  Package mp = p;
  mp.tensors = model_tensors;
  std::unique_ptr<Model> loaded = load_model(mp, path);
  RF_CHECK(loaded->config() == model.config(), "{}: checkpoint of model '{}', the run trains '{}'", path,
           loaded->config().str(), model.config().str());
  std::vector<Param*> dst = model.params(), src = loaded->params();
  RF_CHECK(dst.size() == src.size(), "{}: {} tensors, the model has {}", path, src.size(), dst.size());
  for (size_t i = 0; i < dst.size(); ++i) dst[i]->value.copy_from(src[i]->value);
  for (size_t i = 0; i < opt.params().size(); ++i) {
    std::string name = kMomentumPrefix + opt.params()[i]->name;
    auto it = extra.find(name);
    RF_CHECK(it != extra.end(), "{}: missing tensor '{}'", path, name);
    std::vector<float> v = decode_tensor(*it->second, path);
    RF_CHECK(int64_t(v.size()) == opt.velocity()[i].numel(), "{}: tensor '{}' has {} values, expected {}", path,
             name, v.size(), opt.velocity()[i].numel());
    opt.velocity()[i].copy_from(Tensor::borrow(v.data(), opt.velocity()[i].shape()));
  }
  if (settings) {
    settings->clear();
    auto st = extra.find(kSettingsTensor);
    if (st != extra.end()) {
      for (float v : decode_tensor(*st->second, path)) {
        RF_CHECK(v >= 0.f && v <= 255.f && v == float(int(v)), "{}: tensor '{}' holds {}, expected bytes 0..255",
                 path, kSettingsTensor, v);
        settings->push_back(char(int(v)));
      }
    }
  }
  const PackedTensor& e = *extra[kEpochTensor];
  RF_CHECK(e.shape.size() == 2 && e.shape[1] == 8, "{}: tensor '{}' must be (epochs, 8)", path, kEpochTensor);
  std::vector<float> rows = decode_tensor(e, path);
  for (int64_t i = 0; i < e.shape[0]; ++i) {
    const float* r = rows.data() + i * 8;
    log.push_back({int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]});
  }
  return log;
}

}  // namespace rf

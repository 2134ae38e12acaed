// `reframe train`, `reframe eval` and `reframe bench classify`.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "datasets/cache.h"
#include "datasets/synthetic.h"
#include "host/cli/commands.h"
#include "suites/dense.h"
#include "host/package/model_package.h"
#include "host/train/provenance.h"
#include "suites/classify.h"

namespace rf {

namespace {
std::string default_run_dir() {
  std::string t = utc_now_iso();
  for (char& c : t)
    if (c == ':' || c == '-') c = c == ':' ? '\0' : '-';
  std::string clean;
  for (char c : t)
    if (c) clean += c;
  return "results/runs/" + clean;
}
}  // namespace

int cmd_bench_classify(const BenchClassifyOptions& bo) {
  ClassifyOptions o;
  if (!bo.models.empty()) o.models = bo.models;
  o.seeds = bo.seeds;
  o.base_seed = bo.seed;
  o.data = bo.data;
  o.synthetic_train = bo.synthetic_train;
  o.synthetic_test = bo.synthetic_test;
  o.image_size = bo.image_size;
  o.val_count = bo.val;
  o.train.epochs = bo.epochs;
  o.train.batch = bo.batch;
  o.train.lr = bo.lr;
  o.train.warmup_epochs = bo.warmup;
  o.train.label_smoothing = bo.label_smoothing;
  o.train.bn_recalibrate = bo.bn_recalibrate;
  o.train.augment = !bo.no_augment;
  o.throughput_batches = bo.throughput_batches;
  o.latency_reps = bo.latency_reps;
  o.out_dir = bo.out.empty() ? default_run_dir() : bo.out;
  o.command_line = bo.command_line;
  nlohmann::json r = run_classify(o);
  std::printf("\n%s\n", classify_table(r).c_str());
  std::printf("budget: %d epochs, batch %lld, SGD lr %.3g momentum 0.9 wd 5e-4 (2+-dim weights), cosine, clip 5, "
              "%s; %d seed(s); accuracy = last epoch%s, test split touched once per package\n",
              o.train.epochs, (long long)o.train.batch, o.train.lr,
              o.train.augment ? "crop+flip" : "no augmentation", o.seeds,
              o.train.bn_recalibrate > 0 ? fmt::format(" with BN statistics recomputed from <= {} training images",
                                                       o.train.bn_recalibrate).c_str() : "");
  std::printf("results: %s/classify.json  (%.0f s)\n", o.out_dir.c_str(), r["wall_seconds"].get<double>());
  return 0;
}

int cmd_bench_dense(DenseOptions o) {
  if (o.out_dir.empty()) o.out_dir = default_run_dir();
  nlohmann::json r = run_dense(o);
  std::printf("\n%s", dense_table(r).c_str());
  for (const auto& p : r["pictures"]) std::printf("picture: %s\n", p.get<std::string>().c_str());
  std::printf("results: %s/%s.json  (%.0f s)\n", o.out_dir.c_str(), o.task.c_str(), r["wall_seconds"].get<double>());
  return 0;
}

int cmd_train(const TrainCmdOptions& t) {
  ModelConfig cfg = ModelConfig::parse(t.model);
  data::Dataset full, unused;
  if (t.data.empty()) {
    full = data::make_synthetic(t.synthetic_train, t.seed, 0, t.image_size, t.image_size);
  } else {
    full = data::load_classification(t.data).train;
  }
  cfg.classes = std::max(cfg.classes, full.num_classes());
  int64_t val = t.val >= 0 ? t.val : full.size() / 10;
  data::TrainVal tv = data::holdout_split(full, val, t.seed);
  Model m(cfg);
  TrainOptions o;
  o.epochs = t.epochs;
  o.batch = t.batch;
  o.lr = t.lr;
  o.warmup_epochs = t.warmup;
  o.label_smoothing = t.label_smoothing;
  o.bn_recalibrate = t.bn_recalibrate;
  o.seed = t.seed;
  o.augment = !t.no_augment;
  o.checkpoint = t.checkpoint;
  o.resume = t.resume;
  TrainResult r = train_model(m, tv.train, tv.val, o);
  if (!t.out.empty()) {
    PackOptions po;
    po.dtype = parse_storage_dtype(t.dtype);
    Package p = pack_model(m, po);
    p.meta = inference_meta(tv.train);  // input size, normalisation, class names: what `reframe predict` needs
    write_package(t.out, p);
    std::printf("wrote %s (%llu bytes)\n", t.out.c_str(), (unsigned long long)std::filesystem::file_size(t.out));
  }
  const EpochLog& last = r.epochs.back();
  std::printf("%s: %zu epochs, last epoch: train loss %.4f acc %.4f, val loss %.4f acc %.4f\n", cfg.name().c_str(),
              r.epochs.size(), last.train_loss, last.train_acc, last.val_loss, last.val_acc);
  if (r.bn_recalibrated > 0 && tv.val.size() > 0)
    std::printf("%s: BN statistics recomputed from %lld training images: val loss %.4f acc %.4f\n",
                cfg.name().c_str(), (long long)r.bn_recalibrated, r.final_val.loss, r.final_val.acc);
  return 0;
}

int cmd_eval(const EvalCmdOptions& e) {
  double regen = 0;
  std::unique_ptr<Model> m = load_model(read_package(e.package), e.package, &regen);
  data::Dataset ds;
  if (e.data.empty()) {
    ds = data::make_synthetic(e.synthetic_test, e.seed, e.synthetic_train, e.image_size, e.image_size);
  } else {
    data::ClassificationData cd = data::load_classification(e.data);
    if (e.split == "test") {
      ds = std::move(cd.test);
    } else {
      RF_CHECK(e.split == "val", "eval: --split {} (expected test or val)", e.split);
      int64_t val = e.val >= 0 ? e.val : cd.train.size() / 10;
      ds = data::holdout_split(cd.train, val, e.seed).val;
    }
  }
  EvalResult r = evaluate(*m, ds);
  std::printf("%s on %s (%lld images, %s): accuracy %.4f, loss %.4f, %.1f images/s, regeneration %.2f ms\n",
              m->config().name().c_str(), e.data.empty() ? "synthetic" : e.data.c_str(), (long long)r.n,
              ds.hash_hex().c_str(), r.acc, r.loss, double(r.n) / std::max(r.seconds, 1e-9), regen * 1e3);
  return 0;
}

}  // namespace rf

// `reframe train`, `reframe eval` and `reframe bench classify`.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "datasets/source.h"
#include "datasets/synthetic.h"
#include "app/commands.h"
#include "suites/dense.h"
#include "host/package/model_package.h"
#include "host/core/printable.h"
#include "training/outputs.h"
#include "training/provenance.h"
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
  // Two runs started in the same second get their own folders (a reused folder is refused).
  std::string dir = "results/runs/" + clean;
  for (int k = 2; std::filesystem::exists(dir); ++k) dir = "results/runs/" + clean + "-" + std::to_string(k);
  return dir;
}

// Synthetic sets are generated in memory (3 bytes a pixel): refuse sizes no machine holds, before generating.
void check_synthetic_bytes(int64_t images, int size, const char* count_option) {
  const double bytes = double(images) * 3.0 * double(size) * double(size);
  RF_CHECK(bytes <= double(int64_t(8) << 30), "{} {} at size {}: {:.1f} GiB of images (expected at most 8 GiB; "
           "lower either)", count_option, images, size, bytes / double(int64_t(1) << 30));
}
}  // namespace

int cmd_bench_classify(const BenchClassifyOptions& bo) {
  // Every option and the run folder are checked before any work (run_classify re-checks the options).
  for (const std::string& m : bo.models) (void)ModelConfig::parse(m);
  if (bo.data.empty()) {
    check_synthetic_bytes(bo.synthetic_train, bo.image_size, "--synthetic-train");
    check_synthetic_bytes(bo.synthetic_test, bo.image_size, "--synthetic-test");
  }
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
  validate_train_options(o.train);
  prepare_run_dir(o.out_dir, bo.overwrite, "--out");
  nlohmann::json r = run_classify(o);
  std::printf("\n%s\n", classify_table(r).c_str());
  std::printf("budget: %d epochs, batch %lld, SGD lr %.3g momentum 0.9 wd 5e-4 (2+-dim weights), cosine, clip 5, "
              "%s; %d seed(s); accuracy = last epoch%s, test split touched once per package\n",
              o.train.epochs, (long long)o.train.batch, o.train.lr,
              o.train.augment ? "crop+flip" : "no augmentation", o.seeds,
              o.train.bn_recalibrate > 0 ? fmt::format(" with BN statistics recomputed from <= {} training images",
                                                       o.train.bn_recalibrate).c_str() : "");
  std::printf("results: %s/classify.json  (%.0f s)\n", printable(o.out_dir).c_str(), r["wall_seconds"].get<double>());
  return 0;
}

int cmd_bench_dense(DenseOptions o) {
  for (const std::string& m : o.models) (void)ModelConfig::parse(m);
  if (o.data.empty())
    check_synthetic_bytes(o.synthetic_train + o.synthetic_val + o.synthetic_test, o.synthetic_size,
                          "--synthetic-train + --synthetic-val + --synthetic-test");
  if (o.out_dir.empty()) o.out_dir = default_run_dir();
  prepare_run_dir(o.out_dir, o.overwrite, "--out");
  nlohmann::json r = run_dense(o);
  std::printf("\n%s", dense_table(r).c_str());
  for (const auto& p : r["pictures"]) std::printf("picture: %s\n", p.get<std::string>().c_str());
  std::printf("results: %s/%s.json  (%.0f s)\n", printable(o.out_dir).c_str(), o.task.c_str(), r["wall_seconds"].get<double>());
  return 0;
}

int cmd_train(const TrainCmdOptions& t) {
  // Everything is checked before the data is loaded or an epoch runs: a bad -o must not cost a training run.
  ModelConfig cfg = ModelConfig::parse(t.model);
  const DType out_dtype = parse_storage_dtype(t.dtype);
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
  o.resume_force = t.resume_force;
  o.overwrite = t.overwrite;
  o.data_source = t.data.empty() ? fmt::format("synthetic(n={}, size={}, seed={})", t.synthetic_train, t.image_size,
                                               t.seed)
                                 : t.data;
  validate_train_options(o);
  RF_CHECK(!t.resume || !t.checkpoint.empty(), "train: --resume needs --checkpoint FILE");
  if (t.data.empty()) check_synthetic_bytes(t.synthetic_train, t.image_size, "--synthetic-train");
  if (!t.out.empty()) check_output_file(t.out, "--out");
  if (!t.checkpoint.empty()) {
    RF_CHECK(t.out.empty() || std::filesystem::weakly_canonical(t.out) != std::filesystem::weakly_canonical(t.checkpoint),
             "train: --out and --checkpoint name the same file {} (expected two files)", printable(t.out));
    check_output_file(t.checkpoint, "--checkpoint");
    const bool exists = std::filesystem::exists(t.checkpoint);
    RF_CHECK(!exists || t.resume || t.overwrite, "--checkpoint {}: exists (a previous run's); pass --resume to "
             "continue it, or --overwrite to start over and replace it", printable(t.checkpoint));
  }
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
  TrainResult r = train_model(m, tv.train, tv.val, o);
  if (!t.out.empty()) {
    PackOptions po;
    po.dtype = out_dtype;
    Package p = pack_model(m, po);
    p.meta = inference_meta(tv.train);  // input size, normalisation, class names: what `reframe predict` needs
    write_package(t.out, p);
    std::printf("wrote %s (%llu bytes)\n", printable(t.out).c_str(), (unsigned long long)std::filesystem::file_size(t.out));
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
  RF_CHECK(e.split == "test" || e.split == "val", "eval: --split {} (expected test or val)", printable(e.split));
  if (e.data.empty()) check_synthetic_bytes(e.synthetic_test, e.image_size, "--synthetic-test");
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
              m->config().name().c_str(), e.data.empty() ? "synthetic" : printable(e.data).c_str(), (long long)r.n,
              ds.hash_hex().c_str(), r.acc, r.loss, double(r.n) / std::max(r.seconds, 1e-9), regen * 1e3);
  return 0;
}

}  // namespace rf

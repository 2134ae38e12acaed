// Classification suite. Every figure is measured here, in this process; ratios against ResNet-18 are taken
// between rows of the same run.
#include "suites/classify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "datasets/source.h"
#include "datasets/synthetic.h"
#include "cuda/runtime.h"
#include "host/core/comm.h"
#include "host/core/philox.h"
#include "host/package/model_package.h"
#include "host/core/printable.h"
#include "training/outputs.h"
#include "training/provenance.h"
#include "suites/measure.h"
#include "suites/runs.h"

namespace rf {

namespace {

using Clock = SuiteClock;
double since(Clock::time_point t0) { return seconds_since(t0); }

struct Data {
  data::Dataset train, val, test;
  std::string source;
};

Data load_data(const ClassifyOptions& o) {
  Data d;
  data::Dataset full;
  if (o.data.empty()) {
    full = data::make_synthetic(o.synthetic_train, o.base_seed, 0, o.image_size, o.image_size);
    d.test = data::make_synthetic(o.synthetic_test, o.base_seed, o.synthetic_train, o.image_size, o.image_size);
    d.source = fmt::format("synthetic(seed={}, train={}, test={}, {}x{})", o.base_seed, o.synthetic_train,
                           o.synthetic_test, o.image_size, o.image_size);
  } else {
    data::ClassificationData cd = data::load_classification(o.data);
    full = std::move(cd.train);
    d.test = std::move(cd.test);
    d.source = fmt::format("{} ({})", printable(o.data), data::layout_name(cd.layout));
  }
  int64_t val = o.val_count >= 0 ? o.val_count : full.size() / 10;
  RF_CHECK(val < full.size(), "classify: validation split of {} leaves no training data (of {})", val, full.size());
  data::TrainVal tv = data::holdout_split(full, val, o.base_seed);
  d.train = std::move(tv.train);
  d.val = std::move(tv.val);
  return d;
}

}  // namespace

PackageMeta inference_meta(const data::Dataset& train) {
  PackageMeta m;
  m.input_h = train.H, m.input_w = train.W;
  const data::Normalize norm;  // what LoaderOptions::train/eval use, the only normalisation the trainer applies
  m.mean.assign(norm.mean.begin(), norm.mean.end());
  m.std.assign(norm.std.begin(), norm.std.end());
  m.classes = train.classes;
  return m;
}

nlohmann::json run_classify(const ClassifyOptions& o) {
  // Everything that can be refused is refused before the first epoch (issue 18: options checked after the work).
  RF_CHECK(o.seeds >= 1 && o.seeds <= 100, "classify: --seeds {} (expected 1..100)", o.seeds);
  RF_CHECK(!o.models.empty(), "classify: no models");
  RF_CHECK(o.shard.count >= 1 && o.shard.index >= 0 && o.shard.index < o.shard.count,
           "classify: --shard {}/{} (expected 0 <= I < N)", o.shard.index, o.shard.count);
  for (const std::string& text : o.models) (void)ModelConfig::parse(text);
  validate_train_options(o.train);
  RF_CHECK(o.latency_reps >= 1 && o.latency_reps <= 100000, "classify: --latency-reps {} (expected 1..100000)",
           o.latency_reps);
  for (int B : o.throughput_batches)
    RF_CHECK(B >= 1 && B <= 1024, "classify: --throughput-batches {} (expected 1..1024)", B);
  RF_CHECK(!o.out_dir.empty(), "classify: --out is empty (expected a folder)");
  if (comm::is_root()) std::filesystem::create_directories(o.out_dir + "/packages");
  auto t_start = Clock::now();
  Data d = load_data(o);
  const int S = int(d.train.H);
  std::fprintf(stderr, "classify: %s: %lld train / %lld val / %lld test images, %dx%d, %d classes\n",
               d.source.c_str(), (long long)d.train.size(), (long long)d.val.size(), (long long)d.test.size(), S,
               int(d.train.W), d.train.num_classes());

  nlohmann::json models = nlohmann::json::array();
  std::vector<int> row_models;  // the model index of each row (a shard holds the models it has runs of)
  for (size_t mi = 0; mi < o.models.size(); ++mi) {
    if (!shard_has_model(o.shard, int(mi), o.seeds)) continue;
    ModelConfig base_cfg = ModelConfig::parse(o.models[mi]);
    base_cfg.classes = std::max(d.train.num_classes(), d.test.num_classes());
    Model probe(base_cfg);
    ModelTotals tot = probe.totals(Shape{1, 3, S, S});
    ModelRuns mr;
    std::vector<double> val_acc, test_acc, test_acc_f16, test_acc_i8;
    for (int s = 0; s < o.seeds; ++s) {
      if (!o.shard.owns(int64_t(mi) * o.seeds + s)) continue;
      const ModelConfig cfg = run_config(base_cfg, o.base_seed, s);
      Model model(cfg);
      const TrainOptions to = run_train_options(o.train, o.base_seed, s, cfg.name());
      mr.device_model.reset();  // the previous seed's: not part of this run's peak (and not needed again)
      host_reset_peak();
      std::fprintf(stderr, "classify: %s seed %d/%d: training %d epochs\n", cfg.name().c_str(), s + 1, o.seeds,
                   to.epochs);
      if (o.train_device == Device::cuda) {
        model.to(Device::cuda);
        gpu_reset_peak();
      }
      TrainResult tr = train_model(model, d.train, d.val, to);
      const int64_t run_peak = int64_t(host_memory_stats().peak_live_bytes);  // this run's training
      const int64_t gpu_peak = o.train_device == Device::cuda ? gpu_memory_stats().peak_bytes : 0;
      model.to(Device::cpu);  // packed and evaluated as the device side does
      if (!comm::is_root()) continue;  // data parallel (mpirun): rank 0 alone packs, evaluates and writes
      mr.train_peak = std::max<int64_t>(mr.train_peak, run_peak);
      model.clear_cache();

      // Cloud side: pack. Device side: read back, verify, regenerate, evaluate on the test split (once each).
      PackedRun packed = pack_and_evaluate(
          model, inference_meta(d.train), fmt::format("{}/packages/{}-s{}", o.out_dir, cfg.name(), s),
          [&](Model& dev, const std::string&) {
            EvalResult te = evaluate(dev, d.test);
            return nlohmann::json{{"test_acc", te.acc}, {"test_loss", te.loss}};
          });
      const nlohmann::json pk = packed.packages;
      test_acc.push_back(pk["f32"]["test_acc"].get<double>());
      test_acc_f16.push_back(pk["f16"]["test_acc"].get<double>());
      test_acc_i8.push_back(pk["i8"]["test_acc"].get<double>());
      mr.add(packed);
      // The model that is packed: after BN recalibration when it ran (then the last epoch's val is before it).
      const bool recal = tr.bn_recalibrated > 0 && d.val.size() > 0;
      val_acc.push_back(recal ? tr.final_val.acc : tr.epochs.empty() ? 0.0 : tr.epochs.back().val_acc);
      nlohmann::json log = nlohmann::json::array();
      for (const EpochLog& l : tr.epochs)
        log.push_back({{"epoch", l.epoch}, {"lr", l.lr}, {"train_loss", l.train_loss}, {"train_acc", l.train_acc},
                       {"val_loss", l.val_loss}, {"val_acc", l.val_acc}, {"seconds", l.seconds},
                       {"images_per_s", l.images_per_s}});
      mr.runs.push_back({{"seed", s}, {"config", cfg.str()}, {"epochs", log},
                      {"val_acc_last_epoch", tr.epochs.empty() ? 0.0 : tr.epochs.back().val_acc},
                      {"bn_recalibration_images", tr.bn_recalibrated}, {"val_acc_final", val_acc.back()},
                      {"packages", pk}, {"test_evaluations_per_package", 1},
                      {"train_peak_tensor_bytes", run_peak}, {"train_device", device_name(o.train_device)},
                      {"train_gpu_peak_bytes", gpu_peak}});
      std::fprintf(stderr, "classify: %s seed %d: val %.4f (%s), test %.4f (fp32 package), int8 %.4f\n",
                   cfg.name().c_str(), s + 1, val_acc.back(), recal ? "after BN recalibration" : "last epoch",
                   test_acc.back(), test_acc_i8.back());
    }

    if (!comm::is_root()) continue;
    nlohmann::json row = model_row(base_cfg, tot, mr, S, S, {o.latency_reps, o.throughput_reps, o.throughput_batches});
    summarize_classify_row(row);
    models.push_back(row);
    row_models.push_back(int(mi));
  }

  if (!comm::is_root()) return nlohmann::json();
  const TrainOptions& t = o.train;
  nlohmann::json out = {
      {"schema", "reframe.classify/1"},
      {"provenance", provenance_json(o.command_line)},
      {"dataset",
       {{"source", d.source}, {"train", d.train.size()}, {"val", d.val.size()}, {"test", d.test.size()},
        {"image", {3, d.train.H, d.train.W}}, {"classes", d.train.classes},
        {"train_hash", d.train.hash_hex()}, {"val_hash", d.val.hash_hex()}, {"test_hash", d.test.hash_hex()}}},
      {"budget",
       {{"epochs", t.epochs}, {"batch", t.batch}, {"optimizer", "sgd"}, {"lr", t.lr}, {"momentum", t.momentum},
        {"weight_decay", t.weight_decay}, {"schedule", "cosine"}, {"warmup_epochs", t.warmup_epochs},
        {"label_smoothing", t.label_smoothing}, {"clip_norm", t.clip_norm}, {"augment", t.augment},
        {"seeds", o.seeds}, {"base_seed", o.base_seed}, {"accuracy", "last epoch's weights, BN statistics recomputed after training (bn_recalibrate training images, no augmentation; 0: off); test split touched once per package"},
        {"bn_recalibrate", t.bn_recalibrate}}},
      {"models", models},
      {"wall_seconds", since(t_start)},
      {"max_rss_bytes", max_rss_bytes()}};
  if (!o.shard.whole()) out["shard"] = shard_json(o.shard, o.models, o.seeds, row_models);
  // Invalid UTF-8 in names repaired, never a throw.
  if (o.write_results) write_json_atomic(o.out_dir + "/classify.json", out);
  return out;
}

void summarize_classify_row(nlohmann::json& row) {
  std::vector<double> val_acc, test_acc, test_acc_f16, test_acc_i8;
  for (const nlohmann::json& run : row["runs"]) {
    val_acc.push_back(run["val_acc_final"].get<double>());
    test_acc.push_back(run["packages"]["f32"]["test_acc"].get<double>());
    test_acc_f16.push_back(run["packages"]["f16"]["test_acc"].get<double>());
    test_acc_i8.push_back(run["packages"]["i8"]["test_acc"].get<double>());
  }
  row["val_acc"] = mean_std_json(val_acc);
  row["test_acc"] = mean_std_json(test_acc);
  row["test_acc_fp16"] = mean_std_json(test_acc_f16);
  row["test_acc_int8"] = mean_std_json(test_acc_i8);
}

// Throughput at the largest measured batch (JSON object keys sort as strings, so pick numerically).
static std::pair<std::string, double> top_throughput(const nlohmann::json& m) {
  std::pair<std::string, double> best{"-", 0.0};
  int best_b = -1;
  for (auto it = m["throughput_images_per_s"].begin(); it != m["throughput_images_per_s"].end(); ++it)
    if (std::stoi(it.key()) > best_b) {
      best_b = std::stoi(it.key());
      best = {it.key(), it.value().get<double>()};
    }
  return best;
}

std::string classify_table(const nlohmann::json& r) {
  std::string s;
  const auto& models = r["models"];
  double base_bytes = 0, base_macs = 0, base_thr = 0;
  for (const auto& m : models)
    if (m["model"] == "resnet18") {
      base_bytes = m["package_bytes"]["f32"].get<double>();
      base_macs = m["macs"].get<double>();
      base_thr = top_throughput(m).second;
    }
  std::string thr_key = models.empty() ? "-" : top_throughput(models[0]).first;
  s += fmt::format("{:<16} {:>10} {:>12} {:>11} {:>10} {:>7} {:>9} {:>11} {:>10} {:>15} {:>15} {:>9}\n", "model",
                   "learnable", "MACs", "pkg fp32", "pkg int8", "% R18", "lat b1", "img/s b" + thr_key,
                   "regen ms", "val acc", "test acc", "int8 acc");
  for (const auto& m : models) {
    double fp32 = m["package_bytes"]["f32"].get<double>(), i8 = m["package_bytes"]["i8"].get<double>();
    double thr = top_throughput(m).second;
    const nlohmann::json& rg = m.contains("regen_seconds_median") ? m["regen_seconds_median"] : nlohmann::json();
    s += fmt::format("{:<16} {:>10} {:>12} {:>11} {:>10} {:>7} {:>7.2f}ms {:>11.1f} {:>10} {:>15} {:>15} {:>8.2f}%\n",
                     m["model"].get<std::string>(), m["learnable_params"].get<int64_t>(), m["macs"].get<int64_t>(),
                     int64_t(fp32), int64_t(i8), pct_of_r18_cell(fp32, base_bytes),
                     m["latency_batch1_ms"].get<double>(), thr,
                     rg.is_object() ? fmt::format("{:.3f}", 1e3 * rg["mean"].get<double>()) : "—",
                     pct_mean_std_cell(m["val_acc"]), pct_mean_std_cell(m["test_acc"]),
                     100 * m["test_acc_int8"]["mean"].get<double>());
  }
  const size_t seeds = models.empty() ? 0 : models[0]["test_acc"]["values"].size();
  s += fmt::format("\n% R18:    fp32 package bytes as a share of resnet18's in this run{}\n"
                   "regen ms: regenerating the seeded weights of the loaded fp32 package, median of {} warm calls\n"
                   "          (the first, cold call is regen_cold_seconds in the JSON)\n"
                   "acc:      {}\n",
                   base_bytes > 0 ? "" : " (no resnet18 in this run: shown as —)", kRegenReps,
                   seeds > 1 ? fmt::format("mean ± std over {} seeds", seeds) : std::string("one seed (no spread)"));
  if (base_bytes > 0) {
    s += "\nAgainst resnet18 in this run:";
    for (const auto& m : models) {
      if (m["model"] == "resnet18") continue;
      double thr = top_throughput(m).second;
      s += fmt::format("\n  {:<16} bytes {:.1f}%, int8 bytes {:.1f}%, MACs {:.1f}%, throughput (batch " + thr_key + ") {:.2f}x", m["model"].get<std::string>(),
                       100 * m["package_bytes"]["f32"].get<double>() / base_bytes,
                       100 * m["package_bytes"]["i8"].get<double>() / base_bytes,
                       100 * m["macs"].get<double>() / base_macs, base_thr > 0 ? thr / base_thr : 0.0);
    }
    s += "\n";
  }
  return s;
}

}  // namespace rf

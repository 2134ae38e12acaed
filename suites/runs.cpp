// Seed policy, per-run training options, pack -> read back -> regenerate -> evaluate (see runs.h).
#include "suites/runs.h"

#include <filesystem>

#include <fmt/format.h>

#include "host/models/layers.h"
#include "host/package/model_package.h"
#include "suites/measure.h"

namespace rf {

ModelConfig run_config(const ModelConfig& base_cfg, uint64_t base, int s) {
  ModelConfig cfg = base_cfg;
  if (cfg.is_nl()) cfg.seed = base + 1000 * uint64_t(s);  // NL modules' seeds: base + 1000 s + i
  cfg.init_seed = base + uint64_t(s) + 1;
  return cfg;
}

TrainOptions run_train_options(const TrainOptions& t, uint64_t base, int s, const std::string& run_name) {
  TrainOptions to = t;
  to.seed = base + uint64_t(s);
  if (!t.checkpoint.empty()) to.checkpoint = fmt::format("{}/{}-s{}.ckpt.rfpk", t.checkpoint, run_name, s);
  return to;
}

Shard Shard::parse(const std::string& text, const std::string& option) {
  auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 6 && t.find_first_not_of("0123456789") == std::string::npos;
  };
  const size_t slash = text.find('/');
  const std::string i = slash == std::string::npos ? "" : text.substr(0, slash);
  const std::string n = slash == std::string::npos ? "" : text.substr(slash + 1);
  RF_CHECK(digits(i) && digits(n), "{} '{}': expected I/N in decimal digits (the I-th of N parts, 0 <= I < N), "
           "e.g. 0/4", option, text);
  Shard s;
  s.index = std::stoi(i), s.count = std::stoi(n);
  RF_CHECK(s.count >= 1 && s.count <= 100000, "{} '{}': N = {} (expected 1..100000 parts)", option, text, s.count);
  RF_CHECK(s.index < s.count, "{} '{}': I = {} is not a part of {} (expected 0 <= I < N)", option, text, s.index,
           s.count);
  return s;
}

bool shard_has_model(const Shard& sh, int model, int seeds) {
  for (int s = 0; s < seeds; ++s)
    if (sh.owns(int64_t(model) * seeds + s)) return true;
  return false;
}

nlohmann::json shard_json(const Shard& sh, const std::vector<std::string>& models, int seeds,
                          const std::vector<int>& row_models) {
  return {{"index", sh.index}, {"count", sh.count}, {"models", models}, {"seeds", seeds}, {"rows", row_models}};
}

PackedRun pack_and_evaluate(Model& model, const PackageMeta& meta, const std::string& stem,
                            const std::function<nlohmann::json(Model&, const std::string&)>& evaluate) {
  PackedRun r;
  for (const char* dt : {"f32", "f16", "i8"}) {
    PackOptions po;
    po.dtype = parse_storage_dtype(dt);
    Package p = pack_model(model, po);
    p.meta = meta;  // what inference needs: input size, normalisation, class names
    const std::string path = fmt::format("{}-{}.rfpk", stem, dt);
    write_package(path, p);
    double regen = 0;
    std::unique_ptr<Model> dev = load_model(read_package(path), path, &regen);
    nlohmann::json e = {{"path", path}, {"bytes", std::filesystem::file_size(path)}, {"regen_cold_seconds", regen}};
    {
      FrozenWeights frozen;  // the device side: inference only
      e.update(evaluate(*dev, dt));
    }
    dev->clear_cache();
    if (std::string(dt) == "f32") {
      e["regen_seconds_median"] = regen_seconds_median(*dev);
      r.f32_model = std::move(dev);
    }
    r.packages[dt] = e;
  }
  return r;
}

void ModelRuns::add(PackedRun& packed) {
  const nlohmann::json& pk = packed.packages;
  bytes = {{"f32", pk["f32"]["bytes"]}, {"f16", pk["f16"]["bytes"]}, {"i8", pk["i8"]["bytes"]}};
  device_model = std::move(packed.f32_model);
}

void summarize_runs(nlohmann::json& row) {
  std::vector<double> epoch_s, regen_s, regen_cold_s;
  for (const nlohmann::json& run : row["runs"]) {
    const nlohmann::json& f32 = run["packages"]["f32"];
    regen_cold_s.push_back(f32["regen_cold_seconds"].get<double>());
    regen_s.push_back(f32["regen_seconds_median"].get<double>());
    double ep = 0;
    for (const nlohmann::json& e : run["epochs"]) ep += e["seconds"].get<double>();
    epoch_s.push_back(ep / double(std::max<size_t>(1, run["epochs"].size())));
  }
  row["train_seconds_per_epoch"] = mean_std_json(epoch_s);
  // Warm: median of kRegenReps calls after one untimed call (suites/measure.h); cold: the single call
  // inside load_model, first touch included (kept, labelled, not used in tables).
  row["regen_seconds_median"] = mean_std_json(regen_s);
  row["regen_cold_seconds"] = mean_std_json(regen_cold_s);
}

nlohmann::json model_row(const ModelConfig& base_cfg, const ModelTotals& tot, ModelRuns& r, int H, int W,
                         const ModelTimings& t) {
  // Device-side timings on the regenerated fp32 model of the last seed.
  host_reset_peak();
  nlohmann::json thr;
  double lat = 0;
  {
    FrozenWeights frozen;  // inference only: the convs keep their weights in the fast path's layout
    lat = time_forward(*r.device_model, 1, H, W, t.latency_reps);
    for (int B : t.throughput_batches)
      thr[std::to_string(B)] = double(B) / time_forward(*r.device_model, B, H, W, t.throughput_reps);
  }
  const int64_t eval_peak = int64_t(host_memory_stats().peak_live_bytes);
  r.device_model->clear_cache();
  nlohmann::json row = {{"model", base_cfg.name()},
          {"config", base_cfg.str()},
          {"learnable_params", tot.learnable},
          {"seeded_weights", tot.seeded},
          {"bn_state", tot.state},
          {"macs", tot.macs},
          {"pool_window_reads", tot.pool_reads},
          {"package_bytes", r.bytes},
          {"device_storage_bytes", r.bytes["f32"]},
          {"resident_weight_bytes", (tot.learnable + tot.seeded + tot.state) * int64_t(sizeof(float))},
          {"peak_memory_bytes", {{"train_tensors", r.train_peak}, {"inference_tensors", eval_peak}}},
          {"regen_reps", kRegenReps},
          {"latency_batch1_ms", lat * 1e3},
          {"throughput_images_per_s", thr},
          {"runs", r.runs}};
  summarize_runs(row);
  return row;
}

}  // namespace rf

// What every suite does per model and seed, written once: the seed policy (which seeds run s of a suite
// uses), the training options of one run (seed, per-run checkpoint), and the device-side check of a trained
// model: pack fp32 / fp16 / int8, read each package back as the device would, regenerate the seeded weights,
// evaluate on the test split once per package. Used by suites/classify.cpp and suites/dense.cpp; checked by
// tests/suites/test_classify_suite.cpp and tests/suites/test_dense_suite.cpp (tiny runs end to end).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/models/model.h"
#include "host/package/package.h"
#include "training/trainer.h"

namespace rf {

// Run s (0-based) of a suite with base seed `base`: NL modules' seeds base + 1000 s (+ module index), weight
// initialisation base + s + 1, data order and augmentation base + s.
ModelConfig run_config(const ModelConfig& base_cfg, uint64_t base, int s);
// A suite's share of the work when it is spread over machines (`--shard I/N`, for job arrays): the suite's
// (model, seed) runs in their fixed order (model by model, seed by seed: run k = model * seeds + seed) are dealt
// round-robin, run k to shard k % N, so every shard gets some of each model's seeds and the slow models are
// spread. count 1 is the whole suite. `reframe merge` (suites/merge.h) puts the parts back together.
struct Shard {
  int index = 0, count = 1;
  bool owns(int64_t run) const { return run % count == index; }
  bool whole() const { return count == 1; }
  // "I/N" with 0 <= I < N, 1 <= N <= 100000, decimal digits only; errors name `option` and the text.
  static Shard parse(const std::string& text, const std::string& option = "--shard");
};

// Whether shard `sh` has any run of model `model` (index in the suite's list) among `seeds` seeds.
bool shard_has_model(const Shard& sh, int model, int seeds);
// What a part's results JSON records (key "shard"; absent for a whole suite): index, count, the suite's model
// list, seeds, and the model index of each of the part's rows. `reframe merge` checks the parts against it.
nlohmann::json shard_json(const Shard& sh, const std::vector<std::string>& models, int seeds,
                          const std::vector<int>& row_models);

// The trainer's options of run s: the seed above; a checkpoint set in `t` names a folder, each run's file in
// it is <checkpoint>/<run_name>-s<s>.ckpt.rfpk (so --resume continues every run of the suite).
TrainOptions run_train_options(const TrainOptions& t, uint64_t base, int s, const std::string& run_name);

struct PackedRun {
  nlohmann::json packages;             // per dtype "f32" | "f16" | "i8": path, bytes, regen_cold_seconds, the
                                       // evaluation's fields (f32: regen_seconds_median too)
  std::unique_ptr<Model> f32_model;    // the regenerated fp32 device model (for latency and throughput)
};

// Packs `model` three ways with `meta` into <stem>-<dtype>.rfpk, reads each back (load_model regenerates the
// seeded weights), and calls evaluate(device_model, dtype) once per package; its JSON object is merged into the
// package's entry.
PackedRun pack_and_evaluate(Model& model, const PackageMeta& meta, const std::string& stem,
                            const std::function<nlohmann::json(Model&, const std::string&)>& evaluate);

// What the seeds of one model collect for its row of the results (the figures every suite reports).
struct ModelRuns {
  nlohmann::json runs = nlohmann::json::array();  // one object per seed (the suite's own fields)
  nlohmann::json bytes;                           // package bytes per dtype (the last seed's)
  int64_t train_peak = 0;  // peak live host tensor bytes while training, max over runs (each run: runs[i])
  std::unique_ptr<Model> device_model;            // the last seed's regenerated fp32 model
  // Records a seed's packages (pack_and_evaluate's result: bytes, device model taken); the seed's figures go
  // into `runs` (summarize_runs reads them).
  void add(PackedRun& packed);
};

struct ModelTimings {
  int latency_reps = 10, throughput_reps = 3;
  std::vector<int> throughput_batches;
};

// A row's figures over seeds that every suite has, from its "runs" (each with "epochs"[].seconds and
// "packages".f32.regen_seconds_median / regen_cold_seconds): train_seconds_per_epoch, regen_seconds_median,
// regen_cold_seconds. model_row and `reframe merge` both call it, so a merged row is summarised the same way.
void summarize_runs(nlohmann::json& row);

// The row's shared figures: accounting (`tot` at the input size H x W), package bytes, memory, training and
// regeneration seconds, batch-1 latency and throughput of the device model (timed here), and the runs. The
// suite adds its task's metrics.
nlohmann::json model_row(const ModelConfig& base_cfg, const ModelTotals& tot, ModelRuns& r, int H, int W,
                         const ModelTimings& t);

}  // namespace rf

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
  std::vector<double> epoch_s, regen_s, regen_cold_s;
  int64_t train_peak = 0;  // peak live host tensor bytes while training, max over runs (each run: runs[i])
  std::unique_ptr<Model> device_model;            // the last seed's regenerated fp32 model
  // Records a seed's training (its epoch log) and packages (pack_and_evaluate's result, device model taken).
  void add(const TrainResult& tr, PackedRun& packed);
};

struct ModelTimings {
  int latency_reps = 10, throughput_reps = 3;
  std::vector<int> throughput_batches;
};

// The row's shared figures: accounting (`tot` at the input size H x W), package bytes, memory, training and
// regeneration seconds, batch-1 latency and throughput of the device model (timed here), and the runs. The
// suite adds its task's metrics.
nlohmann::json model_row(const ModelConfig& base_cfg, const ModelTotals& tot, ModelRuns& r, int H, int W,
                         const ModelTimings& t);

}  // namespace rf

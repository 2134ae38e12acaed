// `reframe train`: one model trained (cloud side) on a dataset or a synthetic set, checkpointed every epoch
// (resumable), optionally packed with the inference metadata `reframe predict` needs. Binds the trainer's own
// TrainOptions (the shared training options of app/options.h, the checkpoint, the seed).
// Covered by tests/app/cli_options.sh.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/options.h"
#include "datasets/source.h"
#include "datasets/synthetic.h"
#include "host/core/device.h"
#include "host/core/printable.h"
#include "host/package/model_package.h"
#include "suites/classify.h"
#include "training/outputs.h"
#include "host/core/comm.h"
#include "training/trainer.h"

namespace rf {

namespace {

struct TrainCmdOptions {
  std::string model = "nl-resnet18:cnl=dw", data, out, dtype = "f32";
  int image_size = 32;
  int64_t val = -1, synthetic_train = 4000;
  TrainOptions train;  // the trainer's options, bound directly; data_source is filled in before the run
};

int cmd_train(TrainCmdOptions& t) {
  // Everything is checked before the data is loaded or an epoch runs: a bad -o must not cost a training run.
  ModelConfig cfg = ModelConfig::parse(t.model);
  const DType out_dtype = parse_storage_dtype(t.dtype);
  TrainOptions& o = t.train;
  o.data_source = t.data.empty() ? fmt::format("synthetic(n={}, size={}, seed={})", t.synthetic_train, t.image_size,
                                               o.seed)
                                 : t.data;
  validate_train_options(o);
  RF_CHECK(!o.resume || !o.checkpoint.empty(), "train: --resume needs --checkpoint FILE");
  if (t.data.empty()) check_synthetic_bytes(t.synthetic_train, t.image_size, "--synthetic-train");
  if (!t.out.empty()) check_output_file(t.out, "--out");
  if (!o.checkpoint.empty()) {
    RF_CHECK(t.out.empty() || std::filesystem::weakly_canonical(t.out) != std::filesystem::weakly_canonical(o.checkpoint),
             "train: --out and --checkpoint name the same file {} (expected two files)", printable(t.out));
    check_output_file(o.checkpoint, "--checkpoint");
    const bool exists = std::filesystem::exists(o.checkpoint);
    RF_CHECK(!exists || o.resume || o.overwrite, "--checkpoint {}: exists (a previous run's); pass --resume to "
             "continue it, or --overwrite to start over and replace it", printable(o.checkpoint));
  }
  data::Dataset full, unused;
  if (t.data.empty()) {
    full = data::make_synthetic(t.synthetic_train, o.seed, 0, t.image_size, t.image_size);
  } else {
    full = data::load_classification(t.data).train;
  }
  cfg.classes = std::max(cfg.classes, full.num_classes());
  int64_t val = t.val >= 0 ? t.val : full.size() / 10;
  data::TrainVal tv = data::holdout_split(full, val, o.seed);
  Model m(cfg);
  m.to(run_device());  // --device: the trainer runs where the model is
  TrainResult r = train_model(m, tv.train, tv.val, o);
  if (!t.out.empty() && comm::is_root() && int(r.epochs.size()) == o.epochs) {  // rank 0 writes; not a stopped run
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

}  // namespace

void add_train_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<TrainCmdOptions>(
      app, out, "train", "Train one model (cloud side), checkpoint every epoch, optionally pack it", cmd_train);
  TrainOptions& t = o->train;
  add_device_option(c, out.back(), true);
  c->add_option("--model,-m", o->model, "model config");
  add_data_option(c, o->data);
  add_train_options(c, t);
  c->add_option("--seed", t.seed, "seed of the split, order and augmentation")->check(seed_value());
  c->add_option("--val", o->val, "validation images held out (default -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  c->add_option("--synthetic-train", o->synthetic_train, "synthetic training images")
      ->check(CLI::Range(int64_t(10), int64_t(10000000)));
  c->add_option("--image-size", o->image_size, "synthetic image size (4..512)")->check(CLI::Range(4, 512));
  c->add_option("--checkpoint", t.checkpoint, "checkpoint file, written atomically every epoch");
  c->add_flag("--resume", t.resume, "continue from --checkpoint if it exists (its recorded settings must match)");
  c->add_flag("--resume-force", t.resume_force, "with --resume: continue even if the settings differ");
  c->add_flag("--overwrite", t.overwrite, "replace an existing --checkpoint instead of refusing to start");
  c->add_option("--out,-o", o->out, "write the trained model's package here");
  c->add_option("--dtype", o->dtype, "package storage: f32, f16, int8")->check(storage_dtype());
}

}  // namespace rf

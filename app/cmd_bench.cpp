// `reframe bench classify|detect|segment`: a benchmark suite end to end (train, pack, regenerate, evaluate,
// tabulate) into a run folder. classify binds the suite's own ClassifyOptions (with the shared training options
// of app/options.h); detect and segment bind DenseOptions (suites/dense.h). Covered by tests/app/cli_options.sh;
// --rank-groups by tests/training/mpi_train.sh.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/options.h"
#include "host/core/comm.h"
#include "host/core/device.h"
#include "host/core/printable.h"
#include "host/models/model.h"
#include "suites/classify.h"
#include "suites/dense.h"
#include "suites/merge.h"
#include "training/outputs.h"
#include "training/trainer.h"

namespace rf {

namespace {

struct ClassifyCmdOptions {
  ClassifyOptions suite;   // out_dir "" : default_run_dir()
  bool overwrite = false;  // --out may hold a previous run (prepare_run_dir)
  int rank_groups = 1;     // --rank-groups G
};

// --rank-groups G under mpirun: the world split into G groups of consecutive ranks (host/core/comm.h: split),
// group g running shard g/G of the suite's `runs` (model, seed) runs data-parallel inside the group; the parts
// are merged at world rank 0 (suites/merge.h: merge_rank_groups), which writes the one results file. Checked
// before any work. Not combined with --shard (a part of a part would need its own merge; give one of them).
void start_rank_groups(int groups, Shard& shard, int64_t runs) {
  if (groups == 1) return;
  RF_CHECK(shard.whole(), "--rank-groups {} with --shard {}/{}: give one of them (--shard splits a suite over jobs, "
           "--rank-groups over the processes of one mpirun)", groups, shard.index, shard.count);
  comm::split(groups, "--rank-groups");  // checks 1 <= G <= world size, G divides it (every rank the same)
  RF_CHECK(groups <= runs, "--rank-groups {}: more groups than the suite's {} (model, seed) runs (expected 1..{})",
           groups, runs, runs);
  shard = Shard{comm::group(), groups};
}

// The checks and the run folder every suite needs before any work: the training options, --checkpoint, and --out
// (defaulted, then created or, with --overwrite, reused).
void prepare_suite(std::string& out_dir, TrainOptions& train, bool overwrite) {
  if (out_dir.empty()) out_dir = default_run_dir();
  validate_train_options(train);
  check_suite_checkpoint_options(train);
  train.overwrite = overwrite;  // --overwrite also lets a fresh run replace --checkpoint's files
  // World rank 0 alone prepares (mpirun); the rank groups' roots write their packages into it after the barrier.
  if (comm::is_world_root()) prepare_run_dir(out_dir, overwrite, "--out");
  comm::world_barrier();
}

int cmd_bench_classify(ClassifyCmdOptions& c) {
  ClassifyOptions& o = c.suite;
  // Every option and the run folder are checked before any work (run_classify re-checks the options).
  for (const std::string& m : o.models) (void)ModelConfig::parse(m);
  if (o.data.empty()) {
    check_synthetic_bytes(o.synthetic_train, o.image_size, "--synthetic-train");
    check_synthetic_bytes(o.synthetic_test, o.image_size, "--synthetic-test");
  }
  start_rank_groups(c.rank_groups, o.shard, int64_t(o.models.size()) * o.seeds);
  o.write_results = comm::groups() == 1;
  o.train_device = run_device();
  RF_CHECK(o.train_device == Device::cpu || comm::world_size() == 1, "bench classify --device cuda under mpirun: "
           "data-parallel GPU training is not wired (NCCL); run one process");
  prepare_suite(o.out_dir, o.train, c.overwrite);
  nlohmann::json r = run_classify(o);
  if (comm::groups() > 1) r = merge_rank_groups(r, o.out_dir + "/classify.json");
  if (!comm::is_world_root()) return 0;  // the other ranks of a data-parallel run only trained
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
  start_rank_groups(o.rank_groups, o.shard, int64_t(o.models.size()) * o.seeds);
  o.write_results = comm::groups() == 1;
  o.train_device = run_device();
  RF_CHECK(o.train_device == Device::cpu || comm::world_size() == 1, "bench {} --device cuda under mpirun: "
           "data-parallel GPU training is not wired (NCCL); run one process", o.task);
  // Pictures (every model of a group side by side, one file per test image) are drawn by group 0 alone, of the
  // models it ran, so that no two groups write one file.
  if (comm::group() > 0) o.pictures = 0;
  prepare_suite(o.out_dir, o.train, o.overwrite);
  nlohmann::json r = run_dense(o);
  if (comm::groups() > 1) r = merge_rank_groups(r, o.out_dir + "/" + o.task + ".json");
  if (!comm::is_world_root()) return 0;
  std::printf("\n%s", dense_table(r).c_str());
  for (const auto& p : r["pictures"]) std::printf("picture: %s\n", p.get<std::string>().c_str());
  std::printf("results: %s/%s.json  (%.0f s)\n", printable(o.out_dir).c_str(), o.task.c_str(), r["wall_seconds"].get<double>());
  return 0;
}

// --shard I/N (suites/runs.h: Shard), parsed and checked when the command line is.
void add_shard_option(CLI::App* app, Shard& shard) {
  app->add_option_function<std::string>(
         "--shard", [&shard](const std::string& t) { shard = Shard::parse(t); },
         "run only part I of N of the suite's (model, seed) runs (0 <= I < N); `reframe merge` combines the parts")
      ->type_name("I/N")
      ->check(CLI::Validator(
          [](std::string& t) {
            try {
              (void)Shard::parse(t);
              return std::string();
            } catch (const Error& e) {  // the message without RF_CHECK's source location
              std::string m = e.what();
              const size_t at = m.rfind(" (");
              if (at != std::string::npos && m.find("check `", at) != std::string::npos) m.resize(at);
              return m;
            }
          },
          "I/N"));
}

void add_rank_groups_option(CLI::App* app, int& groups) {
  app->add_option("--rank-groups", groups,
                  "under mpirun -np N: G groups of N/G ranks (G divides N), each training its share of the (model, "
                  "seed) runs data-parallel; one results file (default 1: every rank trains every run)")
      ->type_name("G")
      ->check(CLI::Range(1, 100000));
}

void add_classify(CLI::App* bench, Commands& out, const std::string& command_line) {
  auto [a, c] = add_command<ClassifyCmdOptions>(
      *bench, out, "classify", "ResNet-18 vs NL-ResNet-18: train, pack, regenerate, evaluate", cmd_bench_classify);
  add_device_option(a, out.back(), true);  // training on the GPU; the device side (packages, timing) on the CPU
  ClassifyOptions& o = c->suite;
  o.train.epochs = 3;  // the suite's budget (the trainer's default is 10)
  o.command_line = command_line;
  add_data_option(a, o.data, "CIFAR-10 binary dir, image-folder root or .tar.zst archive (default: synthetic)");
  a->add_option("--models,-m", o.models, "model configs (default: resnet18, nl-resnet18 dw/512/768)");
  a->add_option("--seeds", o.seeds, "runs per model (mean ± std)")->check(CLI::Range(1, 100));
  a->add_option("--seed", o.base_seed, "base seed (data split, order, augmentation, init, NL seeds)")
      ->check(seed_value());
  add_train_options(a, o.train, suite_train_texts());
  add_suite_checkpoint_options(a, o.train);
  a->add_option("--val", o.val_count, "validation images held out of the training set (default -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  a->add_option("--synthetic-train", o.synthetic_train, "synthetic training images")->check(CLI::Range(10, 10000000));
  a->add_option("--synthetic-test", o.synthetic_test, "synthetic test images")->check(CLI::Range(10, 10000000));
  a->add_option("--image-size", o.image_size, "synthetic image size")->check(CLI::Range(4, 512));
  a->add_option("--throughput-batches", o.throughput_batches, "batch sizes for throughput (1..1024)")
      ->check(CLI::Range(1, 1024));
  a->add_option("--latency-reps", o.latency_reps, "batch-1 latency repetitions (median)")->check(CLI::Range(1, 100000));
  add_run_dir_options(a, o.out_dir, c->overwrite);
  add_shard_option(a, o.shard);
  add_rank_groups_option(a, c->rank_groups);
}

// bench detect / bench segment share one option set (suites/dense.h), bound once per subcommand.
void add_dense(CLI::App* bench, Commands& out, const std::string& command_line, const char* task) {
  const bool detect = std::string(task) == "detect";
  auto [a, d] = add_command<DenseOptions>(
      *bench, out, task,
      detect ? "Detection (centre-point head): train, pack, regenerate, evaluate mAP; pictures"
             : "Segmentation (stride-8 merge + 1x1 classifier): train, pack, regenerate, evaluate mIoU; pictures",
      cmd_bench_dense);
  add_device_option(a, out.back(), true);  // training on the GPU; the device side (packages, timing) on the CPU
  d->task = task;
  d->command_line = command_line;
  add_data_option(a, d->data, detect ? "Pascal VOC root (e.g. BCCD) or its .tar.zst (default: synthetic scenes)"
                                     : "CamVid root or its .tar.zst (default: synthetic scenes)");
  a->add_option("--models,-m", d->models, "backbone configs (default: resnet18, nl-resnet18:cnl=dw)");
  a->add_option("--seeds", d->seeds, "runs per model (mean ± std)")->check(CLI::Range(1, 100));
  a->add_option("--seed", d->base_seed, "base seed (data, order, augmentation, init, NL seeds)")->check(seed_value());
  TrainOptionTexts texts = suite_train_texts();
  texts.batch_max = 4096;
  texts.lr = "peak learning rate (warm-up 1 epoch, then cosine), finite in (0, 10]";
  texts.warmup = "linear warm-up epochs";
  texts.warmup_max = 1000;
  texts.no_augment = "no random scale / crop / flip";
  texts.label_smoothing = false;
  add_train_options(a, d->train, texts);
  add_suite_checkpoint_options(a, d->train);
  a->add_option("--input-h", d->input_h, "network input height (multiple of 32)")->check(CLI::Range(32, 4096));
  a->add_option("--input-w", d->input_w, "network input width (multiple of 32)")->check(CLI::Range(32, 4096));
  a->add_option("--neck", d->neck, "channels of the stride-8 merge")->check(CLI::Range(8, 1024));
  a->add_flag("--head-nl", d->head_nl, "NL modules for the 3x3 convs of the merge and head (NL backbones)");
  a->add_option("--synthetic-train", d->synthetic_train, "synthetic training scenes")->check(CLI::Range(2, 1000000));
  a->add_option("--synthetic-val", d->synthetic_val, "synthetic validation scenes")->check(CLI::Range(1, 1000000));
  a->add_option("--synthetic-test", d->synthetic_test, "synthetic test scenes")->check(CLI::Range(1, 1000000));
  a->add_option("--synthetic-size", d->synthetic_size, "synthetic scene size")->check(CLI::Range(32, 4096));
  a->add_option("--pictures", d->pictures, "test images drawn (predictions side by side)")->check(CLI::Range(0, 1000));
  a->add_option("--throughput-batches", d->throughput_batches, "batch sizes for throughput (1..256)")
      ->check(CLI::Range(1, 256));
  a->add_option("--latency-reps", d->latency_reps, "batch-1 latency repetitions (median)")->check(CLI::Range(1, 100000));
  add_run_dir_options(a, d->out_dir, d->overwrite);
  add_shard_option(a, d->shard);
  add_rank_groups_option(a, d->rank_groups);
}

}  // namespace

void add_bench_command(CLI::App& app, Commands& out, const std::string& command_line) {
  CLI::App* bench = app.add_subcommand("bench", "Run a benchmark suite end to end");
  bench->require_subcommand(1);
  add_classify(bench, out, command_line);
  add_dense(bench, out, command_line, "detect");
  add_dense(bench, out, command_line, "segment");
}

}  // namespace rf

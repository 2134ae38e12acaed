// reframe: the command-line entry point. Every error is printed as one line naming what was wrong; exit 1.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include <fmt/format.h>

#include "datasets/image_folder.h"
#include "app/commands.h"
#include "suites/dense.h"
#include "host/core/check.h"
#include "host/core/parallel.h"
#include "training/provenance.h"
#include "host/core/printable.h"

namespace {

// A finite number in [lo, hi] (open at an end when asked). CLI::Range alone lets "nan" through (every comparison
// with NaN is false) and CLI11 parses "nan" and "inf" as floats.
CLI::Validator finite_in(double lo, double hi, bool lo_open = false, bool hi_open = false) {
  const std::string desc = fmt::format("{}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v) || v < lo || v > hi ||
            (lo_open && v <= lo) || (hi_open && v >= hi))
          return fmt::format("{} is not a finite number in {}", rf::printable(s), desc);
        return std::string();
      },
      "FINITE in " + desc);
}

// Seeds: unsigned 64-bit in decimal digits, 0..18446744073709551615 (README: model configs). CLI11 would
// take "-1" as 2^64-1, "0x10" as hex and an overflowing value as 2^64-1 without a word.
CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        bool ok = !s.empty() && s.size() <= 20 && s.find_first_not_of("0123456789") == std::string::npos;
        if (ok) {
          errno = 0;
          (void)std::strtoull(s.c_str(), nullptr, 10);
          ok = errno != ERANGE;
        }
        return ok ? std::string()
                  : fmt::format("{} is not a seed (expected an unsigned integer 0..18446744073709551615)",
                                rf::printable(s));
      },
      "SEED 0..2^64-1");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reframe: benchmarks for ReFrame's seeded (non-learnable) ResNets against ResNet-18"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return rf::version_text(); },
                       "version, git revision, compiler, SIMD level, CUDA/cuDNN/MPI, oneDNN version");
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads 0..1024 (0: OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(0, 1024));
  app.fallthrough();  // global options (--threads, --max-image-pixels) also after the subcommand
  int64_t max_image_pixels = rf::data::kDefaultMaxImagePixels;
  app.add_option("--max-image-pixels", max_image_pixels,
                 "refuse dataset images whose header declares more pixels (default 67108864 = 8192x8192)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));

  rf::ModelsOptions mo;
  CLI::App* models = app.add_subcommand("models", "Parameter, seed, state, MAC and pooling accounting of the models");
  models->add_option("--model,-m", mo.models, "model configs, e.g. nl-resnet18:cnl=dw,gpw=4 (default: all of MODELS.md)");
  models->add_option("--input", mo.input, "input height and width")->check(CLI::Range(1, 4096));
  models->add_option("--classes", mo.classes, "number of classes")->check(CLI::Range(1, 100000));
  models->add_option("--batch", mo.batch, "batch size")->check(CLI::Range(1, 65536));
  models->add_flag("--json", mo.json, "emit JSON");
  models->add_flag("--layers", mo.layers, "per-layer breakdown");

  rf::PackCmdOptions po;
  CLI::App* pack = app.add_subcommand("pack", "Write a model package (.rfpk): config, seeds, learnable tensors, BN state");
  pack->add_option("--model,-m", po.model, "model config: pack the freshly initialised model, e.g. nl-resnet18:cnl=dw");
  pack->add_option("--from", po.from, "package (checkpoint) to repack with other options");
  pack->add_option("--base", po.base, "write a delta (update) against this package: only changed tensors");
  pack->add_option("--out,-o", po.out, "output file")->required();
  pack->add_option("--dtype", po.dtype, "storage of learnable weights: fp32, fp16 or int8 (per-output-channel scale)")
      ->check(CLI::IsMember({"fp32", "f32", "fp16", "f16", "int8", "i8"}));
  pack->add_option("--zstd", po.zstd, "compress the payload with zstd at this level (1..19)")->expected(0, 1)
      ->default_str("3");
  pack->add_flag("--fold-bn", po.fold_bn, "inference package: fold BN into the preceding conv");
  pack->add_flag("--materialize", po.materialize, "store seeded weights as tensors too (to see what seeds save)");
  pack->add_flag("--json", po.json, "emit JSON");
  pack->add_option("--input-size", po.meta_size, "record the network input size, S or HxW (for `reframe predict`)");
  pack->add_option("--mean", po.meta_mean, "record the input normalisation mean, R,G,B on the 0..1 pixel scale");
  pack->add_option("--std", po.meta_std, "record the input normalisation std, R,G,B");
  pack->add_option("--classes", po.meta_classes, "record the class names, a,b,c or @FILE (one a line)");

  rf::InspectOptions io;
  CLI::App* inspect = app.add_subcommand("inspect", "Verify a package and print its header, tensors and byte breakdown");
  inspect->add_option("package", io.path, "package file")->required();
  inspect->add_flag("--json", io.json, "emit JSON (schema reframe.package/1)");
  inspect->add_flag("--no-tensors", io.no_tensors, "omit the tensor list");

  rf::RunOptions ro;
  CLI::App* run = app.add_subcommand("run", "Device side: read, verify, regenerate seeded weights, run inference, time it");
  run->add_option("package", ro.path, "package file (or a delta, with --base)")->required();
  run->add_option("--base", ro.base, "base package when PACKAGE is a delta");
  run->add_option("--input", ro.input, "raw float32 NCHW images (3 x size x size each), already normalised exactly "
                                      "as in training ((pixel/255 - mean) / std; see `reframe inspect`), fed to "
                                      "the network as they are; default: synthetic N(0,1). For image files use "
                                      "`reframe predict`");
  run->add_option("--size", ro.size, "input height = width (default 32, or 224 for the large stem)")
      ->check(CLI::Range(8, 4096));
  run->add_option("--batch", ro.batch, "images per forward pass (the timed batch; --input is streamed in batches of "
                                      "this size)")->check(CLI::Range(1, 65536));
  run->add_option("--reps", ro.reps, "timed repetitions (the median is reported)")->check(CLI::Range(1, 100000));
  run->add_option("--warmup", ro.warmup, "untimed repetitions first")->check(CLI::Range(0, 1000));
  run->add_option("--seed", ro.seed, "seed of the synthetic input")->check(seed_value());
  run->add_option("--reference", ro.reference, "also run this package and report the logit difference");
  run->add_flag("--json", ro.json, "emit JSON (schema reframe.run/1)");

  rf::PredictOptions pro;
  CLI::App* predict = app.add_subcommand(
      "predict", "Classes and probabilities for JPEG/PNG images (files or folders); boxes (detection) or label PNGs "
                  "(segmentation) from dense packages");
  predict->add_option("package", pro.package, "model package (.rfpk)")->required();
  predict->add_option("images", pro.images, "JPEG/PNG files, or folders (searched recursively)")->required();
  predict->add_option("--top,-k", pro.top, "classes printed per image")->check(CLI::Range(1, 100000));
  predict->add_option("--batch", pro.batch, "images decoded and run at a time")->check(CLI::Range(1, 65536));
  predict->add_flag("--json", pro.json, "emit JSON (schema reframe.predict/1): top-k, all logits and probabilities");
  predict->add_flag("--resize", pro.resize, "scale images of another size to the network input (bilinear, aspect "
                                            "ratio not kept); default: such an image is an error");
  predict->add_option("--size", pro.size, "network input size S or HxW (needed for version-1 packages)");
  predict->add_option("--mean", pro.mean, "normalisation mean R,G,B on the 0..1 pixel scale (version-1 packages)");
  predict->add_option("--std", pro.std, "normalisation std R,G,B (version-1 packages)");
  predict->add_option("--classes", pro.classes, "class names a,b,c or @FILE, one a line (version-1 packages)");
  predict->add_option("--score", pro.score, "detection packages: smallest box score shown")->check(CLI::Range(0.0, 1.0));
  predict->add_option("--out-dir", pro.out_dir, "segmentation packages: folder for the label PNGs (one per image)");

  rf::ApplyOptions ao;
  CLI::App* apply = app.add_subcommand("apply", "Rebuild a full package from a base and a delta (verified by hash)");
  apply->add_option("base", ao.base, "base package")->required();
  apply->add_option("delta", ao.delta, "delta package")->required();
  apply->add_option("--out,-o", ao.out, "output file")->required();
  apply->add_option("--zstd", ao.zstd, "compress the output payload at this level")->expected(0, 1)->default_str("3");


  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  rf::BenchClassifyOptions bco;
  bco.command_line = command_line;
  CLI::App* bench = app.add_subcommand("bench", "Run a benchmark suite end to end");
  bench->require_subcommand(1);
  CLI::App* classify = bench->add_subcommand("classify", "ResNet-18 vs NL-ResNet-18: train, pack, regenerate, evaluate");
  classify->add_option("--data", bco.data, "CIFAR-10 binary dir, image-folder root or .tar.zst archive (default: synthetic)");
  classify->add_option("--models,-m", bco.models, "model configs (default: resnet18, nl-resnet18 dw/512/768)");
  classify->add_option("--seeds", bco.seeds, "runs per model (mean ± std)")->check(CLI::Range(1, 100));
  classify->add_option("--seed", bco.seed, "base seed (data split, order, augmentation, init, NL seeds)")
      ->check(seed_value());
  classify->add_option("--epochs", bco.epochs, "epochs per run")->check(CLI::Range(1, 10000));
  classify->add_option("--batch", bco.batch, "training batch size")->check(CLI::Range(2, 65536));
  classify->add_option("--lr", bco.lr, "peak learning rate (cosine schedule), finite in (0, 10]")
      ->check(finite_in(0, 10, true));
  classify->add_option("--warmup", bco.warmup, "linear warm-up epochs (0..--epochs)")->check(CLI::Range(0, 10000));
  classify->add_option("--label-smoothing", bco.label_smoothing, "label smoothing in [0, 1)")
      ->check(finite_in(0, 1, false, true));
  classify->add_option("--bn-recalibrate", bco.bn_recalibrate,
                       "after training, recompute BN statistics from this many training images (0: off)")
      ->check(CLI::Range(int64_t(0), int64_t(100000000)));
  classify->add_flag("--no-augment", bco.no_augment, "no random crop / flip");
  classify->add_option("--val", bco.val, "validation images held out of the training set (default -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  classify->add_option("--synthetic-train", bco.synthetic_train, "synthetic training images")->check(CLI::Range(10, 10000000));
  classify->add_option("--synthetic-test", bco.synthetic_test, "synthetic test images")->check(CLI::Range(10, 10000000));
  classify->add_option("--image-size", bco.image_size, "synthetic image size")->check(CLI::Range(4, 512));
  classify->add_option("--throughput-batches", bco.throughput_batches, "batch sizes for throughput (1..1024)")
      ->check(CLI::Range(1, 1024));
  classify->add_option("--latency-reps", bco.latency_reps, "batch-1 latency repetitions (median)")->check(CLI::Range(1, 100000));
  classify->add_option("--out,-o", bco.out, "run directory (default results/runs/<UTC time>)");
  classify->add_flag("--overwrite", bco.overwrite, "--out may hold a previous run: remove its JSON, packages and pictures first");

  // bench detect / bench segment share one option set (suites/dense.h), bound once per subcommand.
  rf::DenseOptions dense_opts[2];
  CLI::App* dense_apps[2];
  const char* dense_tasks[2] = {"detect", "segment"};
  for (int t = 0; t < 2; ++t) {
    rf::DenseOptions& d = dense_opts[t];
    d.task = dense_tasks[t];
    d.command_line = command_line;
    CLI::App* a = bench->add_subcommand(
        d.task, t == 0 ? "Detection (centre-point head): train, pack, regenerate, evaluate mAP; pictures"
                       : "Segmentation (stride-8 merge + 1x1 classifier): train, pack, regenerate, evaluate mIoU; pictures");
    dense_apps[t] = a;
    a->add_option("--data", d.data, t == 0 ? "Pascal VOC root (e.g. BCCD) or its .tar.zst (default: synthetic scenes)"
                                           : "CamVid root or its .tar.zst (default: synthetic scenes)");
    a->add_option("--models,-m", d.models, "backbone configs (default: resnet18, nl-resnet18:cnl=dw)");
    a->add_option("--seeds", d.seeds, "runs per model (mean ± std)")->check(CLI::Range(1, 100));
    a->add_option("--seed", d.base_seed, "base seed (data, order, augmentation, init, NL seeds)")->check(seed_value());
    a->add_option("--epochs", d.train.epochs, "epochs per run")->check(CLI::Range(1, 10000));
    a->add_option("--batch", d.train.batch, "training batch size")->check(CLI::Range(2, 4096));
    a->add_option("--lr", d.train.lr, "peak learning rate (warm-up 1 epoch, then cosine), finite in (0, 10]")
        ->check(finite_in(0, 10, true));
    a->add_option("--warmup", d.train.warmup_epochs, "linear warm-up epochs")->check(CLI::Range(0, 1000));
    a->add_flag("--no-augment", [&d](int64_t) { d.train.augment = false; }, "no random scale / crop / flip");
    a->add_option("--bn-recalibrate", d.train.bn_recalibrate,
                  "after training, recompute BN statistics from this many training images (0: off)")
        ->check(CLI::Range(int64_t(0), int64_t(100000000)));
    a->add_option("--input-h", d.input_h, "network input height (multiple of 32)")->check(CLI::Range(32, 4096));
    a->add_option("--input-w", d.input_w, "network input width (multiple of 32)")->check(CLI::Range(32, 4096));
    a->add_option("--neck", d.neck, "channels of the stride-8 merge")->check(CLI::Range(8, 1024));
    a->add_flag("--head-nl", d.head_nl, "NL modules for the 3x3 convs of the merge and head (NL backbones)");
    a->add_option("--synthetic-train", d.synthetic_train, "synthetic training scenes")->check(CLI::Range(2, 1000000));
    a->add_option("--synthetic-val", d.synthetic_val, "synthetic validation scenes")->check(CLI::Range(1, 1000000));
    a->add_option("--synthetic-test", d.synthetic_test, "synthetic test scenes")->check(CLI::Range(1, 1000000));
    a->add_option("--synthetic-size", d.synthetic_size, "synthetic scene size")->check(CLI::Range(32, 4096));
    a->add_option("--pictures", d.pictures, "test images drawn (predictions side by side)")->check(CLI::Range(0, 1000));
    a->add_option("--throughput-batches", d.throughput_batches, "batch sizes for throughput (1..256)")
        ->check(CLI::Range(1, 256));
    a->add_option("--latency-reps", d.latency_reps, "batch-1 latency repetitions (median)")->check(CLI::Range(1, 100000));
    a->add_option("--out,-o", d.out_dir, "run directory (default results/runs/<UTC time>)");
    a->add_flag("--overwrite", d.overwrite, "--out may hold a previous run: remove its JSON, packages and pictures first");
  }

  rf::TrainCmdOptions tco;
  CLI::App* train = app.add_subcommand("train", "Train one model (cloud side), checkpoint every epoch, optionally pack it");
  train->add_option("--model,-m", tco.model, "model config");
  train->add_option("--data", tco.data, "dataset path (default: synthetic)");
  train->add_option("--epochs", tco.epochs, "epochs")->check(CLI::Range(1, 10000));
  train->add_option("--batch", tco.batch, "batch size")->check(CLI::Range(2, 65536));
  train->add_option("--lr", tco.lr, "peak learning rate (cosine schedule), finite in (0, 10]")
      ->check(finite_in(0, 10, true));
  train->add_option("--warmup", tco.warmup, "linear warm-up epochs (0..--epochs)")->check(CLI::Range(0, 10000));
  train->add_option("--label-smoothing", tco.label_smoothing, "label smoothing in [0, 1)")
      ->check(finite_in(0, 1, false, true));
  train->add_option("--bn-recalibrate", tco.bn_recalibrate,
                    "after training, recompute BN statistics from this many training images (0: off)")
      ->check(CLI::Range(int64_t(0), int64_t(100000000)));
  train->add_flag("--no-augment", tco.no_augment, "no random crop / flip");
  train->add_option("--seed", tco.seed, "seed of the split, order and augmentation")->check(seed_value());
  train->add_option("--val", tco.val, "validation images held out (default -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  train->add_option("--synthetic-train", tco.synthetic_train, "synthetic training images")
      ->check(CLI::Range(int64_t(10), int64_t(10000000)));
  train->add_option("--image-size", tco.image_size, "synthetic image size (4..512)")->check(CLI::Range(4, 512));
  train->add_option("--checkpoint", tco.checkpoint, "checkpoint file, written atomically every epoch");
  train->add_flag("--resume", tco.resume, "continue from --checkpoint if it exists (its recorded settings must match)");
  train->add_flag("--resume-force", tco.resume_force, "with --resume: continue even if the settings differ");
  train->add_flag("--overwrite", tco.overwrite, "replace an existing --checkpoint instead of refusing to start");
  train->add_option("--out,-o", tco.out, "write the trained model's package here");
  train->add_option("--dtype", tco.dtype, "package storage: f32, f16, int8")
      ->check(CLI::IsMember({"fp32", "f32", "fp16", "f16", "int8", "i8"}));

  rf::EvalCmdOptions eco;
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a package on a dataset split (device side)");
  eval->add_option("package", eco.package, "model package (.rfpk)")->required();
  eval->add_option("--data", eco.data, "dataset path (default: synthetic)");
  eval->add_option("--split", eco.split, "test or val")->check(CLI::IsMember({"test", "val"}));
  eval->add_option("--val", eco.val, "size of the held-out validation split (as in training; -1: 10 %)")
      ->check(CLI::Range(int64_t(-1), int64_t(100000000)));
  eval->add_option("--seed", eco.seed, "seed of the split (as in training)")->check(seed_value());
  eval->add_option("--image-size", eco.image_size, "synthetic image size (4..512)")->check(CLI::Range(4, 512));

  rf::GateCmdOptions gco;
  CLI::App* gate = app.add_subcommand(
      "gate", "Compare a run with a baseline: exact counts, seed-noise margins on accuracy, same-run timing ratios; "
              "exit status = number of regressions");
  gate->add_option("--baseline,-b", gco.baseline, "baseline (results/baselines/<name>.json, or raw results, which record no machine: "
                   "their timing ratios need --force-ratios)");
  gate->add_option("--current,-c", gco.current, "this run: results folders or files (suite JSON, Google Benchmark JSON)");
  gate->add_option("--confirm", gco.confirm,
                   "a second measurement of the timings: a ratio regresses only if it regresses in both runs");
  gate->add_option("--write-baseline", gco.write_baseline, "write the current figures as a baseline file and exit 0");
  gate->add_option("--tolerance", gco.tolerance, "exact figures: allowed relative difference")->check(CLI::Range(0.0, 1.0));
  gate->add_option("--z", gco.z, "accuracy and ratios: allowed drop in standard deviations of the difference")
      ->check(CLI::Range(0.0, 100.0));
  gate->add_option("--metric-floor", gco.metric_floor, "accuracy: smallest drop that can fail (absolute, 0..1)")
      ->check(CLI::Range(0.0, 1.0));
  gate->add_option("--ratio-floor", gco.ratio_floor, "timing ratios: smallest relative drop that can fail")
      ->check(CLI::Range(0.0, 1.0));
  gate->add_option("--markdown", gco.markdown_out, "also write the Markdown table to this file");
  gate->add_flag("--all", gco.all, "list every figure, not only those that changed");
  gate->add_flag("--force-ratios", gco.force_ratios,
                 "compare timing ratios even with a baseline of another machine class (or one that records none)");
  gate->add_flag("--machine-class", gco.machine_class,
                 "print this machine's class (SIMD level, threads, CPU model: baseline file names) and exit");

  rf::ReportCmdOptions rco;
  CLI::App* report = app.add_subcommand("report", "Results (suite JSON, models --json --layers, Google Benchmark JSON) "
                                                  "into CSV, PNG/SVG plots and a Markdown/HTML summary");
  report->add_option("inputs", rco.inputs, "results folders or files")->required();
  report->add_option("--out,-o", rco.out, "output folder (default: <first input folder>/report)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    rf::set_num_threads(threads);
    rf::data::set_max_image_pixels(max_image_pixels);
    if (models->parsed()) return rf::cmd_models(mo);
    if (classify->parsed()) return rf::cmd_bench_classify(bco);
    for (int t = 0; t < 2; ++t)
      if (dense_apps[t]->parsed()) return rf::cmd_bench_dense(dense_opts[t]);
    if (train->parsed()) return rf::cmd_train(tco);
    if (eval->parsed()) return rf::cmd_eval(eco);
    if (pack->parsed()) return rf::cmd_pack(po);
    if (inspect->parsed()) return rf::cmd_inspect(io);
    if (run->parsed()) {
      // The synthetic input batch is allocated at once: refuse sizes no machine holds before reading anything.
      const double side = ro.size > 0 ? ro.size : 224, bytes = double(ro.batch) * 3 * side * side * 4;
      if (bytes > double(int64_t(4) << 30))
        RF_FAIL("run: --batch {} at --size {}: a {:.1f} GiB input batch (expected at most 4 GiB; lower either)",
                ro.batch, int(side), bytes / double(int64_t(1) << 30));
      return rf::cmd_run(ro);
    }
    if (predict->parsed()) return rf::cmd_predict(pro);
    if (apply->parsed()) return rf::cmd_apply(ao);
    if (gate->parsed()) return rf::cmd_gate(gco);
    if (report->parsed()) return rf::cmd_report(rco);
  } catch (const rf::Error& e) {
    // Messages quote file names, configs and class names: control characters are printed escaped.
    std::fprintf(stderr, "reframe: error: %s\n", rf::printable_lines(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "reframe: error: out of memory (std::bad_alloc): an option or input asked for more memory "
                         "than this machine has; lower the sizes (--batch, --image-size, --throughput-batches, the "
                         "config's widths)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reframe: error: %s\n", rf::printable_lines(e.what()).c_str());
    return 1;
  }
  return 0;
}

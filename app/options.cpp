// Option groups and validators shared by the `reframe` commands (see options.h).
#include "app/options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "host/core/check.h"
#include "host/core/printable.h"
#include "training/provenance.h"

namespace rf {

CLI::Validator finite_in(double lo, double hi, bool lo_open, bool hi_open) {
  const std::string desc = fmt::format("{}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v) || v < lo || v > hi ||
            (lo_open && v <= lo) || (hi_open && v >= hi))
          return fmt::format("{} is not a finite number in {}", printable(s), desc);
        return std::string();
      },
      "FINITE in " + desc);
}

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
                                printable(s));
      },
      "SEED 0..2^64-1");
}

CLI::Validator storage_dtype() { return CLI::IsMember({"fp32", "f32", "fp16", "f16", "int8", "i8"}); }

TrainOptionTexts suite_train_texts() {
  TrainOptionTexts t;
  t.epochs = "epochs per run";
  t.batch = "training batch size";
  return t;
}

void add_train_options(CLI::App* app, TrainOptions& o, const TrainOptionTexts& texts) {
  app->add_option("--epochs", o.epochs, texts.epochs)->check(CLI::Range(1, 10000));
  app->add_option("--batch", o.batch, texts.batch)->check(CLI::Range(int64_t(2), texts.batch_max));
  app->add_option("--lr", o.lr, texts.lr)->check(finite_in(0, 10, true));
  app->add_option("--warmup", o.warmup_epochs, texts.warmup)->check(CLI::Range(0, texts.warmup_max));
  if (texts.label_smoothing)
    app->add_option("--label-smoothing", o.label_smoothing, "label smoothing in [0, 1)")
        ->check(finite_in(0, 1, false, true));
  app->add_option("--bn-recalibrate", o.bn_recalibrate,
                  "after training, recompute BN statistics from this many training images (0: off)")
      ->check(CLI::Range(int64_t(0), int64_t(100000000)));
  // A flag callback, not a bool: `--no-augment=false` keeps augmentation, as a bound bool flag would.
  app->add_flag_callback("--no-augment", [&o] { o.augment = false; }, texts.no_augment);
  app->add_flag("--sync-bn", o.sync_bn, "under mpirun: BN statistics over the global batch (all ranks), not per rank");
  app->add_option("--stop-after-epochs", o.stop_after_epochs,
                  "stop after this many epochs of this call, checkpoint written (a planned kill; --resume continues)")
      ->check(CLI::Range(1, 10000));
}

void add_suite_checkpoint_options(CLI::App* app, TrainOptions& o) {
  app->add_option("--checkpoint", o.checkpoint, "folder for one checkpoint per run (model, seed), written atomically "
                  "every epoch");
  app->add_flag("--resume", o.resume, "continue each run from its checkpoint in --checkpoint when there is one");
}

void check_suite_checkpoint_options(const TrainOptions& o) {
  RF_CHECK(!o.resume || !o.checkpoint.empty(), "--resume needs --checkpoint DIR (the folder of the runs' checkpoints)");
  RF_CHECK(o.checkpoint.empty() || !std::filesystem::exists(o.checkpoint) || std::filesystem::is_directory(o.checkpoint),
           "--checkpoint {}: is a file; a suite keeps one checkpoint per run in a folder (expected a folder or a new "
           "path)", printable(o.checkpoint));
}

void add_run_dir_options(CLI::App* app, std::string& out, bool& overwrite) {
  app->add_option("--out,-o", out, "run directory (default results/runs/<UTC time>)");
  app->add_flag("--overwrite", overwrite, "--out may hold a previous run: remove its JSON, packages and pictures first (and start --checkpoint's runs over)");
}

void add_device_option(CLI::App* app, Command& c, bool gpu_path) {
  c.device = std::make_shared<std::string>("cpu");
  c.gpu_path = gpu_path;
  app->add_option("--device", *c.device, gpu_path ? "where the models run: cpu, cuda, cuda:N or auto (auto: the GPU "
                  "when one is visible)" : "where the models run: cpu (cuda and cuda:N are refused: this command "
                  "runs on the CPU), or auto (the CPU)");
}

void add_data_option(CLI::App* app, std::string& data, const char* help) { app->add_option("--data", data, help); }

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

void check_synthetic_bytes(int64_t images, int size, const char* count_option) {
  const double bytes = double(images) * 3.0 * double(size) * double(size);
  RF_CHECK(bytes <= double(int64_t(8) << 30), "{} {} at size {}: {:.1f} GiB of images (expected at most 8 GiB; "
           "lower either)", count_option, images, size, bytes / double(int64_t(1) << 30));
}

}  // namespace rf

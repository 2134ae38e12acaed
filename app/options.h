// Option groups and validators that several `reframe` commands share, declared once: the training options
// (train, bench classify), the run folder (bench classify|detect|segment), number and seed validators, and the
// checks those commands make on the options before any work. Covered by tests/app/cli_options.sh.
#pragma once
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "training/trainer.h"

namespace rf {

// A finite number in [lo, hi] (open at an end when asked). CLI::Range alone lets "nan" through (every comparison
// with NaN is false) and CLI11 parses "nan" and "inf" as floats.
CLI::Validator finite_in(double lo, double hi, bool lo_open = false, bool hi_open = false);

// Seeds: unsigned 64-bit in decimal digits, 0..18446744073709551615 (README: model configs). CLI11 would take
// "-1" as 2^64-1, "0x10" as hex and an overflowing value as 2^64-1 without a word.
CLI::Validator seed_value();

// The package storage dtypes `--dtype` accepts (pack, train): parse_storage_dtype's names.
CLI::Validator storage_dtype();

// What differs between the commands that take the training options: help texts and two upper bounds. The
// defaults are `train`'s; suite_train_texts() is `bench classify`'s.
struct TrainOptionTexts {
  const char* epochs = "epochs";
  const char* batch = "batch size";
  int64_t batch_max = 65536;
  const char* lr = "peak learning rate (cosine schedule), finite in (0, 10]";
  const char* warmup = "linear warm-up epochs (0..--epochs)";
  int warmup_max = 10000;
  const char* no_augment = "no random crop / flip";
  bool label_smoothing = true;  // offer --label-smoothing
};
TrainOptionTexts suite_train_texts();

// --epochs, --batch, --lr, --warmup, [--label-smoothing,] --bn-recalibrate, --no-augment, bound to `o` (whose
// values are the defaults). validate_train_options re-checks them at run time.
void add_train_options(CLI::App* app, TrainOptions& o, const TrainOptionTexts& texts = TrainOptionTexts());

// A suite's checkpoints: --checkpoint DIR (one file per run, <DIR>/<run>-s<seed>.ckpt.rfpk, suites/runs.h) and
// --resume (each run continues from its file when there is one).
void add_suite_checkpoint_options(CLI::App* app, TrainOptions& o);
// Before any work: --resume needs --checkpoint, which must not be an existing file.
void check_suite_checkpoint_options(const TrainOptions& o);

// A suite's run folder: --out,-o and --overwrite (checked by prepare_run_dir at run time).
void add_run_dir_options(CLI::App* app, std::string& out, bool& overwrite);

// --device cpu|cuda|cuda:N|auto (default cpu) on command c: main calls select_device (host/core/device.h) before
// the command runs, so a device that cannot be used is refused, with the reason, before any work, and sets
// run_device() for the command. gpu_path: the command moves its models there (else cuda is refused, auto is cpu).
void add_device_option(CLI::App* app, Command& c, bool gpu_path = false);

// --data with `help` (train's and eval's by default).
void add_data_option(CLI::App* app, std::string& data, const char* help = "dataset path (default: synthetic)");

// results/runs/<UTC time>, with -2, -3... when a run of the same second has it: a suite's default --out.
std::string default_run_dir();

// Synthetic sets are generated in memory (3 bytes a pixel): refuses sizes no machine holds, before generating.
void check_synthetic_bytes(int64_t images, int size, const char* count_option);

}  // namespace rf

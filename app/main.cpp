// reframe: the command-line entry point: the version, the global options, every command (one file each,
// app/cmd_<name>.cpp, registered below in the order --help lists them; `reframe-device`, built with
// RF_DEVICE_ONLY, registers the device commands only) and the one error handler. Every error
// is printed as one line naming what was wrong; exit 1. Covered by tests/app/cli_options.sh.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>
#include <string>

#include "app/commands.h"
#include "datasets/image_folder.h"
#include "host/core/check.h"
#include "host/core/device.h"
#include "host/core/parallel.h"
#include "host/core/printable.h"
#include "training/provenance.h"

int main(int argc, char** argv) {
#ifdef RF_DEVICE_ONLY
  CLI::App app{"reframe-device: the device side of reframe (inspect, run, predict, apply a model package)"};
#else
  CLI::App app{"reframe: benchmarks for ReFrame's seeded (non-learnable) ResNets against ResNet-18"};
#endif
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

  std::string command_line;  // recorded in the suites' results
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  rf::Commands commands;
#ifndef RF_DEVICE_ONLY
  rf::add_models_command(app, commands);
  rf::add_pack_command(app, commands);
#endif
  rf::add_inspect_command(app, commands);
  rf::add_run_command(app, commands);
  rf::add_predict_command(app, commands);
  rf::add_apply_command(app, commands);
#ifndef RF_DEVICE_ONLY  // reframe-device (CMakeLists.txt): the device commands above only
  rf::add_export_command(app, commands);
  rf::add_bench_command(app, commands, command_line);
  rf::add_train_command(app, commands);
  rf::add_eval_command(app, commands);
  rf::add_gate_command(app, commands);
  rf::add_report_command(app, commands);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    rf::set_num_threads(threads);
    rf::data::set_max_image_pixels(max_image_pixels);
    for (const rf::Command& c : commands)
      if (c.app->parsed()) {
        if (c.device) rf::select_device(*c.device, "--device");
        return c.run();
      }
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

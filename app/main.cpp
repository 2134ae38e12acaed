// reframe: the command-line entry point: the version, the global options, every command (one file each,
// app/cmd_<name>.cpp, registered below in the order --help lists them; `reframe-device`, built with
// RF_DEVICE_ONLY, registers the device commands only) and the one error handler. Every error
// is printed as one line naming what was wrong; exit 1. Covered by tests/app/cli_options.sh.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>
#include <string>

#include "app/commands.h"
#include "datasets/image_folder.h"
#include "host/core/check.h"
#include "host/core/comm.h"
#include "host/core/device.h"
#include "host/core/parallel.h"
#include "host/core/printable.h"
#include "training/provenance.h"

namespace {
// Under mpirun only rank 0 speaks: the other ranks' stdout and stderr go to /dev/null, and their errors to the
// stderr they were started with (kept here), so that an error on any rank is still seen.
int g_error_fd = 2;
void quiet_other_ranks() {
  if (rf::comm::is_world_root()) return;
  g_error_fd = dup(2);
  const int null_fd = open("/dev/null", O_WRONLY);
  if (g_error_fd < 0 || null_fd < 0) return;
  std::fflush(stdout), std::fflush(stderr);
  dup2(null_fd, 1), dup2(null_fd, 2);
  close(null_fd);
}
// One error line; on a data-parallel run every rank is ended (the others would wait in a collective forever).
int fail(const std::string& message) {
  std::string line = "reframe: error: " + message + "\n";
  // World-wide (not the caller's rank group: the other groups would wait at the results' gather).
  const bool ranks = rf::comm::world_size() > 1;
  if (ranks) line = "reframe: rank " + std::to_string(rf::comm::world_rank()) + ": error: " + message + "\n";
  if (write(g_error_fd, line.data(), line.size()) < 0) {}
  if (ranks) rf::comm::abort_all(1);
  rf::comm::finalize();
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  rf::comm::init(&argc, &argv);  // MPI only under mpirun (host/core/comm.h)
  quiet_other_ranks();
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
  rf::add_merge_command(app, commands);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc != 0 && rf::comm::world_size() > 1) rf::comm::abort_all(rc);
    rf::comm::finalize();
    return rc;
  }
  try {
    rf::set_num_threads(threads);
    rf::data::set_max_image_pixels(max_image_pixels);
    for (const rf::Command& c : commands)
      if (c.app->parsed()) {
        if (c.device) rf::set_run_device(rf::select_device(*c.device, "--device", c.gpu_path));
        const int rc = c.run();
        rf::comm::finalize();
        return rc;
      }
  } catch (const rf::Error& e) {
    // Messages quote file names, configs and class names: control characters are printed escaped.
    return fail(rf::printable_lines(e.what()));
  } catch (const std::bad_alloc&) {
    return fail("out of memory (std::bad_alloc): an option or input asked for more memory than this machine has; "
                "lower the sizes (--batch, --image-size, --throughput-batches, the config's widths)");
  } catch (const std::exception& e) {
    return fail(rf::printable_lines(e.what()));
  }
  rf::comm::finalize();
  return 0;
}

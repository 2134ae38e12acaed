// reframe: the command-line entry point. Every error is printed as one line naming what was wrong; exit 1.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "host/cli/commands.h"
#include "host/core/check.h"
#include "host/core/parallel.h"

int main(int argc, char** argv) {
  CLI::App app{"reframe: benchmarks for ReFrame's seeded (non-learnable) ResNets against ResNet-18"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: OMP_NUM_THREADS or all cores)");

  rf::ModelsOptions mo;
  CLI::App* models = app.add_subcommand("models", "Parameter, seed, state, MAC and pooling accounting of the models");
  models->add_option("--model,-m", mo.models, "model configs, e.g. nl-resnet18:cnl=dw,gpw=4 (default: all of MODELS.md)");
  models->add_option("--input", mo.input, "input height and width")->check(CLI::Range(1, 4096));
  models->add_option("--classes", mo.classes, "number of classes")->check(CLI::Range(1, 100000));
  models->add_option("--batch", mo.batch, "batch size")->check(CLI::Range(1, 65536));
  models->add_flag("--json", mo.json, "emit JSON");
  models->add_flag("--layers", mo.layers, "per-layer breakdown");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    rf::set_num_threads(threads);
    if (models->parsed()) return rf::cmd_models(mo);
  } catch (const rf::Error& e) {
    std::fprintf(stderr, "reframe: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reframe: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

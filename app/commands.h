// The `reframe` commands: each app/cmd_<name>.cpp adds its subcommand to the CLI, binds the options (the
// library's own option structs where there is one: TrainOptions, ClassifyOptions, DenseOptions, PackOptions,
// gate::Options) and hands main a Command that runs it. main.cpp registers them in the order `reframe --help`
// lists them and runs the one parsed. Covered by tests/app/cli_options.sh, tests/package/cli_package.sh,
// tests/gate/cli_gate.sh.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace rf {

// A (sub)command and what it does with the options bound when it was added. run() is called only when
// app->parsed(), after the global options took effect; it throws rf::Error (main prints it) or returns the exit
// status.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
  std::shared_ptr<std::string> device;  // --device (add_device_option): main selects it before run()
  bool gpu_path = false;                 // the command runs its models on the GPU when --device says so
};
using Commands = std::vector<Command>;

// Adds subcommand `name` to `parent` with a fresh Options (its defaults are the options' defaults) and registers
// run(options) as its action. Returns the subcommand and the options for the caller to bind; both live as long
// as `out`.
template <class Options, class Run>
std::pair<CLI::App*, Options*> add_command(CLI::App& parent, Commands& out, const std::string& name,
                                           const std::string& about, Run run) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = parent.add_subcommand(name, about);
  out.push_back({sub, [o, run] { return run(*o); }, nullptr});
  return {sub, o.get()};
}

void add_models_command(CLI::App& app, Commands& out);   // app/cmd_models.cpp
void add_pack_command(CLI::App& app, Commands& out);     // app/cmd_pack.cpp
void add_inspect_command(CLI::App& app, Commands& out);  // app/cmd_inspect.cpp
void add_run_command(CLI::App& app, Commands& out);      // app/cmd_run.cpp
void add_predict_command(CLI::App& app, Commands& out);  // app/cmd_predict.cpp
void add_apply_command(CLI::App& app, Commands& out);    // app/cmd_apply.cpp
void add_export_command(CLI::App& app, Commands& out);   // app/cmd_export.cpp
// `bench classify|detect|segment` (app/cmd_bench.cpp); command_line is recorded in the results.
void add_bench_command(CLI::App& app, Commands& out, const std::string& command_line);
void add_train_command(CLI::App& app, Commands& out);    // app/cmd_train.cpp
void add_eval_command(CLI::App& app, Commands& out);     // app/cmd_eval.cpp
void add_gate_command(CLI::App& app, Commands& out);     // app/cmd_gate.cpp
void add_report_command(CLI::App& app, Commands& out);   // app/cmd_report.cpp
void add_merge_command(CLI::App& app, Commands& out);    // app/cmd_merge.cpp

}  // namespace rf

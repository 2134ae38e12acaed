// `reframe gate`: a run compared with a committed baseline; exit status = number of regressions. Timing ratios
// only against a baseline of this machine class (gate/gate.h); --machine-class prints the class.
// Covered by tests/gate/cli_gate.sh and tests/app/cli_options.sh.
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "gate/gate.h"
#include "host/core/check.h"
#include "training/outputs.h"
#include "training/provenance.h"

namespace rf {

namespace {

struct GateCmdOptions {
  std::string baseline, write_baseline, markdown_out;
  std::vector<std::string> current, confirm;
  gate::Options compare;       // --tolerance, --z, --metric-floor, --ratio-floor
  bool all = false;
  bool force_ratios = false;   // compare timing ratios with a baseline of another (or unknown) machine class
  bool machine_class = false;  // print this machine's class (for baseline file names) and exit
};

int cmd_gate(const GateCmdOptions& o) {
  // Warnings go out as they arise, before any error that may follow them.
  gate::Warn warn = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };
  gate::Machine here = gate::detect_machine();
  // Output paths first: a bad one must not cost the comparison.
  if (!o.write_baseline.empty()) check_output_file(o.write_baseline, "--write-baseline");
  if (!o.markdown_out.empty()) check_output_file(o.markdown_out, "--markdown");
  if (o.machine_class) {
    std::printf("%s\n", gate::machine_class(here).c_str());
    std::fprintf(stderr, "gate: this machine: %s\n", gate::describe(here).c_str());
    return 0;
  }
  RF_CHECK(!o.current.empty(), "gate: --current needs at least one results file or folder");
  RF_CHECK(!o.write_baseline.empty() || !o.baseline.empty(),
           "gate: give --baseline FILE (or --write-baseline FILE to create one)");
  std::vector<gate::Figure> current = gate::load_figures(o.current, warn);
  RF_CHECK(!current.empty(), "gate: no figures found in the --current inputs (expected classify.json, detect.json, "
                             "segment.json or Google Benchmark JSON)");
  if (!o.write_baseline.empty()) {
    write_text_atomic(o.write_baseline, gate::to_json(current, &here).dump(1) + "\n");
    std::printf("gate: wrote %zu figures measured on %s to %s\n", current.size(), gate::describe(here).c_str(),
                o.write_baseline.c_str());
    return 0;
  }
  gate::Machine measured_on;
  std::vector<gate::Figure> baseline = gate::load_figures({o.baseline}, warn, &measured_on);
  RF_CHECK(!baseline.empty(), "gate: {}: the baseline yields no figure; expected a reframe.gate/1 file with figures",
           o.baseline);
  gate::Options go = o.compare;
  // Timing ratios only against a baseline of this machine class (gate/gate.h).
  std::vector<std::string> diffs = gate::class_differences(measured_on, here);
  std::string why;
  for (const std::string& d : diffs) why += (why.empty() ? "" : "; ") + d;
  if (!diffs.empty() && o.force_ratios) {
    std::fprintf(stderr, "warning: --force-ratios: comparing timing ratios with %s although it is not of this "
                 "machine class (%s)\n", o.baseline.c_str(), why.c_str());
  } else if (!diffs.empty()) {
    go.compare_ratios = false;
    go.ratios_skipped_because = why;
    std::fprintf(stderr,
                 "gate: timing ratios NOT compared with %s, not a baseline of this machine class: %s. Exact counts "
                 "and accuracy are still gated. This machine: %s; the baseline's: %s. Keep one baseline per machine "
                 "class (README, 'Reports and the CI gate') or pass --force-ratios.\n",
                 o.baseline.c_str(), why.c_str(), gate::describe(here).c_str(), gate::describe(measured_on).c_str());
  }
  std::vector<gate::Figure> confirm;
  if (!o.confirm.empty()) confirm = gate::load_figures(o.confirm, warn);
  std::vector<gate::Row> rows = gate::compare(baseline, current, go, o.confirm.empty() ? nullptr : &confirm);
  std::string md = gate::markdown(rows, o.all);
  std::fputs(md.c_str(), stdout);
  if (!o.markdown_out.empty()) write_text_atomic(o.markdown_out, md);
  std::fflush(stdout);  // the table first, then what stderr says about it
  // A figure of the baseline that this run lacks is an error: named here, and each counts as a regression.
  std::string missing;
  int n_missing = 0;
  for (const gate::Row& r : rows)
    if (r.status == gate::Status::missing) missing += (n_missing++ ? ", " : "") + r.name;
  if (n_missing)
    std::fprintf(stderr, "error: %d figure%s of the baseline %s %s missing from this run (each counts as a "
                 "regression): %s\n", n_missing, n_missing == 1 ? "" : "s", o.baseline.c_str(),
                 n_missing == 1 ? "is" : "are", missing.c_str());
  int bad = gate::count_regressions(rows);
  // Comparing nothing is never a pass (every baseline figure a skipped ratio, say).
  RF_CHECK(bad > 0 || gate::count_compared(rows) > 0,
           "gate: nothing compared: none of the {} figures of {} could be compared with this run ({}); use a baseline "
           "of this machine class or --force-ratios", baseline.size(), o.baseline,
           why.empty() ? std::string("no figure in common") : "timing ratios skipped: " + why);
  return bad > 100 ? 100 : bad;
}

}  // namespace

void add_gate_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<GateCmdOptions>(
      app, out, "gate",
      "Compare a run with a baseline: exact counts, seed-noise margins on accuracy, same-run timing ratios; "
      "exit status = number of regressions",
      cmd_gate);
  c->add_option("--baseline,-b", o->baseline, "baseline (results/baselines/<name>.json, or raw results, which record "
                "no machine: their timing ratios need --force-ratios)");
  c->add_option("--current,-c", o->current, "this run: results folders or files (suite JSON, Google Benchmark JSON)");
  c->add_option("--confirm", o->confirm,
                "a second measurement of the timings: a ratio regresses only if it regresses in both runs");
  c->add_option("--write-baseline", o->write_baseline, "write the current figures as a baseline file and exit 0");
  c->add_option("--tolerance", o->compare.tolerance, "exact figures: allowed relative difference")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--z", o->compare.z, "accuracy and ratios: allowed drop in standard deviations of the difference")
      ->check(CLI::Range(0.0, 100.0));
  c->add_option("--metric-floor", o->compare.metric_floor, "accuracy: smallest drop that can fail (absolute, 0..1)")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--ratio-floor", o->compare.ratio_floor, "timing ratios: smallest relative drop that can fail")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--markdown", o->markdown_out, "also write the Markdown table to this file");
  c->add_flag("--all", o->all, "list every figure, not only those that changed");
  c->add_flag("--force-ratios", o->force_ratios,
              "compare timing ratios even with a baseline of another machine class (or one that records none)");
  c->add_flag("--machine-class", o->machine_class,
              "print this machine's class (SIMD level, threads, CPU model: baseline file names) and exit");
}

}  // namespace rf

// `reframe gate` (compare a run with a committed baseline; exit status = number of regressions; timing ratios
// only against a baseline of this machine class, gate/gate.h; --machine-class prints the class) and
// `reframe report` (suite results and benchmark JSON into CSV, plots and a summary, via scripts/report.py).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "app/commands.h"
#include "host/core/check.h"
#include "training/outputs.h"
#include "training/provenance.h"
#include "gate/gate.h"

extern char** environ;

namespace rf {

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
  gate::Options go;
  go.tolerance = o.tolerance, go.z = o.z, go.metric_floor = o.metric_floor, go.ratio_floor = o.ratio_floor;
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

namespace {

namespace fs = std::filesystem;

int spawn_wait(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The interpreter that has matplotlib: $RF_PYTHON, then Debian's (where scripts/setup.sh installs
// python3-matplotlib), then whatever python3 is first on PATH.
std::string find_python() {
  std::vector<std::string> cands;
  if (const char* p = std::getenv("RF_PYTHON")) cands.push_back(p);
  cands.push_back("/usr/bin/python3");
  cands.push_back("python3");
  for (const std::string& c : cands)
    if (spawn_wait({c, "-c", "import matplotlib, numpy"}, true) == 0) return c;
  for (const std::string& c : cands)
    if (spawn_wait({c, "-c", "pass"}, true) == 0) return c;  // CSV and summary still work, plots are skipped
  RF_FAIL("report: no Python 3 interpreter found (tried $RF_PYTHON, /usr/bin/python3, python3); install python3 and python3-matplotlib (scripts/setup.sh)");
}

std::string find_report_script() {
  if (const char* p = std::getenv("RF_REPORT_SCRIPT")) return p;
  for (const std::string& c : {std::string(RF_SOURCE_DIR) + "/scripts/report.py", std::string("scripts/report.py")})
    if (fs::exists(c)) return c;
  RF_FAIL("{}", "report: scripts/report.py not found (looked in " RF_SOURCE_DIR "/scripts and ./scripts; "
          "set RF_REPORT_SCRIPT)");
}

}  // namespace

int cmd_report(const ReportCmdOptions& o) {
  RF_CHECK(!o.inputs.empty(), "report: give at least one results file or folder");
  for (const std::string& p : o.inputs) RF_CHECK(fs::exists(p), "report: {}: no such file or folder", p);
  std::string out = o.out;
  if (out.empty()) {
    fs::path first(o.inputs[0]);
    out = (fs::is_directory(first) ? first : first.parent_path()).string();
    out = (out.empty() ? std::string(".") : out) + "/report";
  }
  check_output_dir(out, "--out");
  std::vector<std::string> argv = {find_python(), find_report_script(), "--out", out};
  argv.insert(argv.end(), o.inputs.begin(), o.inputs.end());
  int rc = spawn_wait(argv, false);
  RF_CHECK(rc >= 0, "report: could not start {}", argv[0]);
  return rc;
}

}  // namespace rf

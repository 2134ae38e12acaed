// `reframe report`: suite results, `models --json --layers` and Google Benchmark JSON into CSV, plots and a
// Markdown/HTML summary, by running scripts/report.py with the Python that has matplotlib.
// No test runs the command itself; tests/report/test_report.sh (CTest report_script) checks the script.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "host/core/check.h"
#include "training/outputs.h"

extern char** environ;

namespace rf {

namespace {

namespace fs = std::filesystem;

struct ReportCmdOptions {
  std::vector<std::string> inputs;
  std::string out;  // default: <first input's folder>/report
};

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

}  // namespace

void add_report_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<ReportCmdOptions>(app, out, "report",
                                              "Results (suite JSON, models --json --layers, Google Benchmark JSON) "
                                              "into CSV, PNG/SVG plots and a Markdown/HTML summary",
                                              cmd_report);
  c->add_option("inputs", o->inputs, "results folders or files")->required();
  c->add_option("--out,-o", o->out, "output folder (default: <first input folder>/report)");
}

}  // namespace rf

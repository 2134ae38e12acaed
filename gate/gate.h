// reframe gate: compares the figures of a run with a committed baseline and counts the regressions.
//
// Three kinds of figure, three rules (the noise model; all thresholds are options with these defaults):
//  - exact:    deterministic counts (learnable params, seeded weights, BN state, MACs, pooling reads,
//              package bytes). Must equal the baseline; any difference, up or down, is a regression until
//              the baseline is regenerated on purpose (`--tolerance` allows a relative slack).
//  - metric:   accuracy-like figures in [0, 1], higher is better (test accuracy per package dtype, mAP,
//              mIoU, pixel accuracy), each the mean over n seeds. The noise of one run is
//              sigma = max(std over the seeds, sqrt(p (1 - p) / n_test)) (the second term is the sampling
//              noise of a finite test set, which is what one seed has). The difference of two means has
//              standard deviation sigma_d = sqrt(sigma_b^2 / n_b + sigma_c^2 / n_c); a drop larger than
//              max(z * sigma_d, floor) is a regression (z = 3, floor = 0.005). Gains are reported, never failed.
//  - ratio:    timings as ratios measured in the same process by the benchmark binaries (NL model over
//              ResNet-18 images/s at one batch; a fast path over its reference; regenerating over materialised weights), higher is
//              better. Each repetition gives one ratio; the run's figure is their median and its spread the
//              robust relative deviation s = 1.4826 * MAD / median. A drop larger than
//              max(z * sqrt(s_b^2 / n_b + s_c^2 / n_c), floor) relative to the baseline is a regression
//              (z = 3, floor = 0.4: on these shared VMs the same ratio drifted by up to 36 % between two
//              runs minutes apart, far beyond the 1-5 % spread inside a run; a 2x slowdown (-50 %) is always
//              caught). A timing ratio that regresses can be measured again (`--confirm RUN...`, which
//              scripts/ci-gate.sh does when the first gate fails): it stays a regression only if the second
//              measurement regresses too. A real slowdown shows in both; a neighbour's burst on a shared
//              machine rarely hits the same ratio twice.
//
// Figures come from the files of a run: suite results (classify.json, detect.json, segment.json) and Google
// Benchmark JSON (run with --benchmark_repetitions=R and --benchmark_enable_random_interleaving=true so
// that the twins of a ratio alternate). A baseline is the extracted figures plus the machine they were
// measured on (schema reframe.gate/1), written by `reframe gate --write-baseline FILE --current RUN...`.
//
// Nothing compared is never a pass: an input that is not one of those schemas, a malformed field (wrong
// type, non-finite or out-of-range number), a baseline or input file that yields no figure, and a baseline
// figure the run lacks are errors that name the file (the missing figures are named and each counts as a
// regression). Inside a folder, a .json file of another kind is skipped with a warning printed at once.
//
// Machine class: timing ratios depend on the CPU, the SIMD level the kernels were compiled for, the thread
// count and the build, so the baseline records the machine (struct Machine) and the ratios are compared only
// when the baseline's class equals this machine's: same CPU model, SIMD level (rf::simd_level()), threads,
// build type, RF_NATIVE and compiler family + major version. Otherwise (or when the baseline records no
// machine) the ratio rows are `skipped` with the reason, counts and accuracy are still gated, and
// `--force-ratios` compares them anyway. The machine is the one `reframe gate` runs on: run the gate where
// the benchmarks ran, with the same OMP_NUM_THREADS and build (scripts/ci-gate.sh does).
// Checked by tests/gate/test_gate.cpp (extraction, unchanged run passes, injected regressions fail with
// the right row named, every bad input class, machine classes), tests/gate/cli_gate.sh, fuzz/fuzz_gate_json.cpp
// and the CI gate (scripts/ci-gate.sh).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rf::gate {

enum class Kind { exact, metric, ratio };
const char* kind_name(Kind k);

struct Figure {
  std::string name;  // "classify/nl-resnet18-dw/package_bytes/f32", "ratio/BM_forward/nl-resnet18-dw/N=8/32x32"
  Kind kind = Kind::exact;
  double value = 0;             // exact: the count; metric: the mean; ratio: the median
  double spread = 0;            // metric: std over seeds; ratio: robust relative deviation of the repetitions
  int64_t n = 1;                // seeds (metric) or repetitions (ratio)
  int64_t n_test = 0;           // metric: test-set size (binomial noise floor); 0 if unknown
  std::vector<double> values;   // metric: per seed; ratio: per repetition
  std::string source;           // file it came from
};

// The machine a baseline was measured on (see "Machine class" above). An empty simd means unknown (a
// baseline written before machines were recorded).
struct Machine {
  std::string cpu;         // /proc/cpuinfo model name ("unknown" where there is none)
  std::string simd;        // rf::simd_level(): avx512, avx2, neon, portable
  int64_t threads = 0;     // OpenMP threads the kernels use (OMP_NUM_THREADS)
  std::string build_type;  // CMAKE_BUILD_TYPE (Release, Debug, ...), "+asan" appended in sanitised builds
  bool native = false;     // RF_NATIVE (-march=native)
  std::string compiler;    // "gcc 12.2.0", "clang 16.0.6"
  bool known() const { return !simd.empty(); }
};
// Short name of the class for file names: "avx512-2t-intel-xeon-platinum-8375c" (SIMD, threads, CPU model
// in lower case without (R)/(TM)/"CPU"/the clock); build options are not in it (CI builds one way).
std::string machine_class(const Machine& m);
std::string describe(const Machine& m);  // one line for messages
// What makes the timing ratios of `current` incomparable with those of `baseline`, one phrase per field,
// e.g. "SIMD level: avx2 here, avx512 in the baseline"; empty when both are of the same class. An unknown
// baseline machine gives one phrase saying so.
std::vector<std::string> class_differences(const Machine& baseline, const Machine& current);
nlohmann::json machine_to_json(const Machine& m);
// Throws rf::Error naming `where` and the field on a wrong type or value.
Machine machine_from_json(const nlohmann::json& j, const std::string& where);
// The machine this process runs on (gate/gate_machine.cpp, apart so that the reader links alone).
Machine detect_machine();

struct Options {
  double tolerance = 0;        // exact: allowed relative difference
  double z = 3;                // metric and ratio: standard deviations of the difference allowed
  double metric_floor = 0.005;  // metric: smallest drop that can fail (absolute)
  double ratio_floor = 0.4;   // ratio: smallest relative drop that can fail
  bool compare_ratios = true;  // false: ratio rows are `skipped` (another machine class), with this reason
  std::string ratios_skipped_because;
};

enum class Status { ok, improved, changed, regressed, missing, added, skipped };
const char* status_name(Status s);

struct Row {
  std::string name;
  Kind kind = Kind::exact;
  Status status = Status::ok;
  double baseline = 0, current = 0;
  double allowed = 0;   // the largest drop that passes (absolute for exact/metric, relative for ratio)
  bool remeasured = false;  // ratio: regressed, then compared again with the confirming run (current = that one)
  std::string note;
};

// Called with each warning as it arises (the CLI prints it to stderr at once).
using Warn = std::function<void(const std::string&)>;

// Figures of one parsed input (suite results, Google Benchmark JSON or a reframe.gate/1 baseline). Throws
// rf::Error naming `source` and the field when the JSON is not one of those kinds, lacks what its schema
// promises, holds a wrong type or a non-finite/out-of-range number, or yields no figure at all; the one
// exception is Google Benchmark JSON without twins to divide, which gives no figure and a warning. `warn`
// (may be empty) also hears of benchmarks that reported an error (no timing from them).
std::vector<Figure> extract(const nlohmann::json& j, const std::string& source, const Warn& warn = {});
// Reads each path (a file, or a folder: its *.json files, sorted; a folder file of another kind is skipped
// with a warning) and extracts. Throws when a file is not valid JSON, a named file is not a known kind, a
// folder or the inputs as a whole yield nothing, or two inputs give the same figure. `machine` (may be null) receives the machine
// recorded in a reframe.gate/1 file (left unknown when none records one).
std::vector<Figure> load_figures(const std::vector<std::string>& paths, const Warn& warn, Machine* machine = nullptr);

// A baseline file: the figures and, when known, the machine.
nlohmann::json to_json(const std::vector<Figure>& figs, const Machine* machine = nullptr);
std::vector<Figure> from_json(const nlohmann::json& j, const std::string& source);

// confirm (may be null): a second measurement of the run's timing ratios. A ratio that regresses in
// `current` is compared again with its figure in `confirm`; if that one passes, the row is ok, its note
// saying so (a figure absent from `confirm` keeps its first verdict). Other kinds ignore `confirm`.
std::vector<Row> compare(const std::vector<Figure>& baseline, const std::vector<Figure>& current, const Options& o,
                         const std::vector<Figure>* confirm = nullptr);
int count_regressions(const std::vector<Row>& rows);  // regressed + changed (exact) + missing
int count_compared(const std::vector<Row>& rows);     // rows with a verdict: not missing, added or skipped
// Markdown: a summary line and a table of every row that is not ok (all rows with all = true).
std::string markdown(const std::vector<Row>& rows, bool all);

}  // namespace rf::gate

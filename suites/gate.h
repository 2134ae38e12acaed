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
// that the twins of a ratio alternate). A baseline is the extracted figures (schema reframe.gate/1), written
// by `reframe gate --write-baseline FILE --current RUN...`.
// Checked by tests/train/test_gate.cpp (extraction, unchanged run passes, injected regressions fail with
// the right row named) and the CI gate (scripts/ci-gate.sh).
#pragma once
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

struct Options {
  double tolerance = 0;        // exact: allowed relative difference
  double z = 3;                // metric and ratio: standard deviations of the difference allowed
  double metric_floor = 0.005;  // metric: smallest drop that can fail (absolute)
  double ratio_floor = 0.4;   // ratio: smallest relative drop that can fail
};

enum class Status { ok, improved, changed, regressed, missing, added };
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

// Figures of one input file (suite results or Google Benchmark JSON); throws rf::Error naming the file and
// the field when the JSON lacks what its schema promises. Unknown JSON kinds give no figures and a warning.
std::vector<Figure> extract(const nlohmann::json& j, const std::string& source, std::vector<std::string>* warnings);
// Reads each path (a file, or a folder: its *.json files, sorted) and extracts. A baseline file
// (schema reframe.gate/1) gives its stored figures.
std::vector<Figure> load_figures(const std::vector<std::string>& paths, std::vector<std::string>* warnings);

nlohmann::json to_json(const std::vector<Figure>& figs);
std::vector<Figure> from_json(const nlohmann::json& j, const std::string& source);

// confirm (may be null): a second measurement of the run's timing ratios. A ratio that regresses in
// `current` is compared again with its figure in `confirm`; if that one passes, the row is ok, its note
// saying so (a figure absent from `confirm` keeps its first verdict). Other kinds ignore `confirm`.
std::vector<Row> compare(const std::vector<Figure>& baseline, const std::vector<Figure>& current, const Options& o,
                         const std::vector<Figure>* confirm = nullptr);
int count_regressions(const std::vector<Row>& rows);  // regressed + changed (exact) + missing
// Markdown: a summary line and a table of every row that is not ok (all rows with all = true).
std::string markdown(const std::vector<Row>& rows, bool all);

}  // namespace rf::gate

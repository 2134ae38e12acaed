// The `reframe` subcommands' options and entry points (one file per command in app/).
#pragma once
#include <string>
#include <vector>

namespace rf {

struct ModelsOptions {
  std::vector<std::string> models;  // empty: MODELS.md's table
  int input = 32, classes = 10, batch = 1;
  bool json = false, layers = false;
};
int cmd_models(const ModelsOptions& o);

// Packages (app/package_cmd.cpp).
struct PackCmdOptions {
  std::string model;          // config text: pack the freshly initialised model
  std::string from;           // or a package (a checkpoint) to repack
  std::string base;           // write a delta against this package
  std::string out;
  std::string dtype = "fp32";  // fp32 | fp16 | int8
  int zstd = 0;                // 0: off, else the zstd level
  bool fold_bn = false, materialize = false, json = false;
  // Inference metadata to record (docs/PACKAGE.md, version 2); "" keeps what --from's package has.
  std::string meta_size, meta_mean, meta_std, meta_classes;
};
int cmd_pack(const PackCmdOptions& o);

struct InspectOptions {
  std::string path;
  bool json = false, no_tensors = false;
};
int cmd_inspect(const InspectOptions& o);

struct RunOptions {
  std::string path, base, input, reference;
  int batch = 1, reps = 20, warmup = 2, size = 0;  // size 0: 32 for the cifar stem, 224 for the large one
  uint64_t seed = 7;
  bool json = false;
};
int cmd_run(const RunOptions& o);

// `reframe predict` (app/predict_cmd.cpp).
struct PredictOptions {
  std::string package;
  std::vector<std::string> images;       // files or folders
  int top = 5;
  int64_t batch = 64;
  bool json = false, resize = false;
  std::string size, mean, std, classes;  // override / supply the package's inference metadata
  float score = 0.3f;                    // detection: boxes below this score are not printed
  std::string out_dir = "predictions";   // segmentation: where the label PNGs go
};
int cmd_predict(const PredictOptions& o);

struct ApplyOptions {
  std::string base, delta, out;
  int zstd = 0;
};
int cmd_apply(const ApplyOptions& o);

struct BenchClassifyOptions {
  std::vector<std::string> models;  // empty: resnet18 and nl-resnet18 dw/512/768
  int seeds = 1, epochs = 3, warmup = 0, image_size = 32, latency_reps = 20;
  uint64_t seed = 0;
  std::string data, out, command_line;
  int64_t synthetic_train = 4000, synthetic_test = 1000, val = -1, batch = 128, bn_recalibrate = 4096;
  float lr = 0.1f, label_smoothing = 0.f;
  bool no_augment = false, overwrite = false;
  std::vector<int> throughput_batches = {64, 256};
};
int cmd_bench_classify(const BenchClassifyOptions& o);

struct TrainCmdOptions {
  std::string model = "nl-resnet18:cnl=dw", data, checkpoint, out, dtype = "f32";
  int epochs = 10, warmup = 0, image_size = 32;
  int64_t batch = 128, val = -1, synthetic_train = 4000, bn_recalibrate = 4096;
  float lr = 0.1f, label_smoothing = 0.f;
  uint64_t seed = 0;
  bool resume = false, no_augment = false;
  bool resume_force = false;  // --resume even when the checkpoint's recorded settings differ
  bool overwrite = false;     // replace an existing --checkpoint instead of refusing
};
int cmd_train(const TrainCmdOptions& o);

struct EvalCmdOptions {
  std::string package, data, split = "test";
  int64_t val = -1, synthetic_train = 4000, synthetic_test = 1000;
  int image_size = 32;
  uint64_t seed = 0;
};
int cmd_eval(const EvalCmdOptions& o);

}  // namespace rf

namespace rf {

struct GateCmdOptions {
  std::string baseline, write_baseline, markdown_out;
  std::vector<std::string> current, confirm;
  double tolerance = 0, z = 3, metric_floor = 0.005, ratio_floor = 0.4;
  bool all = false;
  bool force_ratios = false;   // compare timing ratios with a baseline of another (or unknown) machine class
  bool machine_class = false;  // print this machine's class (for baseline file names) and exit
};
int cmd_gate(const GateCmdOptions& o);

struct ReportCmdOptions {
  std::vector<std::string> inputs;
  std::string out;  // default: <first input's folder>/report
};
int cmd_report(const ReportCmdOptions& o);

struct DenseOptions;  // suites/dense.h
int cmd_bench_dense(DenseOptions o);

}  // namespace rf

// `reframe predict PKG IMAGE...`: classes and probabilities out of a package, for JPEG/PNG files or folders.
// Images are decoded and run in batches of --batch, so a folder of any size never becomes one giant tensor; the
// output streams (one line, or one JSON array element, per image). What the network needs besides weights
// (input size, normalisation, class names) comes from the package's metadata (format version 2,
// docs/PACKAGE.md); a version-1 package must be given --size/--mean/--std/--classes, and the error says which.
// Images of another size than the network input are refused unless --resize is given (a silent resize would
// change what the model sees without the user knowing; docs/PACKAGE.md, "Inference metadata").
// Checked by tests/package/test_predict.cpp and tests/package/cli_package.sh.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/cli/commands.h"
#include "host/cli/predict.h"
#include "host/package/model_package.h"

namespace rf {

namespace {

std::string floats_str(const std::vector<float>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:g}", i ? "," : "", v[i]);
  return s;
}

}  // namespace

int cmd_predict(const PredictOptions& o) {
  RF_CHECK(o.batch >= 1, "predict: --batch {} (expected >= 1)", o.batch);
  RF_CHECK(o.top >= 1, "predict: --top {} (expected >= 1)", o.top);
  Package p = read_package(o.package);
  if (p.has(kPkgDelta))
    RF_FAIL("{}: is a delta (update) package; rebuild it first with `reframe apply BASE DELTA -o NEW`", o.package);
  ModelConfig cfg;
  try {
    cfg = ModelConfig::parse(p.config);
  } catch (const Error& e) {
    RF_FAIL("{}: payload field 'config': {}", o.package, e.what());
  }
  if (cfg.task != "classify")
    RF_FAIL("{}: a {} package ({}); predict handles classification packages only (detection boxes and "
            "segmentation label maps are not implemented yet: use `reframe bench {}` pictures)",
            o.package, cfg.task, cfg.name(), cfg.task);

  // Inference metadata: the package's, overridden by the options; say when an option replaces a recorded value.
  PackageMeta meta = p.meta;
  const PackageMeta recorded = p.meta;
  apply_meta_options(meta, o.size, o.mean, o.std, o.classes, "predict");
  auto note = [&](bool changed, const char* what) {
    if (changed) fmt::print(stderr, "predict: {} from the command line replaces the package's\n", what);
  };
  note(!o.size.empty() && recorded.input_h && (meta.input_h != recorded.input_h || meta.input_w != recorded.input_w),
       "--size");
  note(!o.mean.empty() && !recorded.mean.empty() && meta.mean != recorded.mean, "--mean");
  note(!o.std.empty() && !recorded.std.empty() && meta.std != recorded.std, "--std");
  note(!o.classes.empty() && !recorded.classes.empty() && meta.classes != recorded.classes, "--classes");
  std::vector<std::string> missing;
  if (meta.input_h == 0) missing.push_back("--size H[xW] (the network input size)");
  if (meta.mean.empty()) missing.push_back("--mean R,G,B");
  if (meta.std.empty()) missing.push_back("--std R,G,B");
  if (meta.classes.empty()) missing.push_back("--classes NAME,NAME,... or @FILE");
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    RF_FAIL("{}: package format version {} records no {} (inference metadata arrived with version 2); give {}. "
            "The trainer normalises with the CIFAR-10 statistics --mean 0.4914,0.4822,0.4465 --std "
            "0.2023,0.1994,0.2010", o.package, p.version,
            recorded.input_h == 0 && recorded.mean.empty() && recorded.classes.empty() ? "inference metadata"
                                                                                        : "complete metadata",
            list);
  }
  if (meta.mean.size() != 3)
    RF_FAIL("{}: metadata has {} normalisation channels, expected 3 (RGB)", o.package, meta.mean.size());
  if (int64_t(meta.classes.size()) > cfg.classes)
    RF_FAIL("predict: --classes gives {} names, the model has {} outputs", meta.classes.size(), cfg.classes);

  std::unique_ptr<Model> m = load_model(p, o.package);
  const std::vector<std::string> files = collect_image_files(o.images);
  PredictInput in;
  in.H = meta.input_h, in.W = meta.input_w, in.mean = meta.mean, in.std = meta.std, in.resize = o.resize;
  const int64_t K = cfg.classes, top = std::min<int64_t>(o.top, K);
  auto class_name = [&](int64_t k) {
    return k < int64_t(meta.classes.size()) ? meta.classes[size_t(k)] : fmt::format("#{}", k);
  };

  if (o.json) {
    nlohmann::json head = {{"schema", "reframe.predict/1"},
                           {"package", o.package},
                           {"model", cfg.name()},
                           {"config", p.config},
                           {"input", {{"height", in.H}, {"width", in.W}, {"mean", in.mean}, {"std", in.std},
                                      {"resize", o.resize}}},
                           {"classes", meta.classes},
                           {"top", top},
                           {"image_count", files.size()}};
    std::string h = head.dump();
    h.pop_back();  // the closing brace: the images array streams after it
    fmt::print("{},\"images\":[\n", h);
  } else {
    fmt::print("{}: {} ({} classes), input {}x{}, mean {} std {}{}; {} images\n", o.package, cfg.name(), K, in.H,
               in.W, floats_str(in.mean), floats_str(in.std), o.resize ? ", resized" : "", files.size());
  }
  for (size_t b0 = 0; b0 < files.size(); b0 += size_t(o.batch)) {
    const std::vector<std::string> chunk(files.begin() + long(b0),
                                         files.begin() + long(std::min(files.size(), b0 + size_t(o.batch))));
    Tensor logits = m->forward(load_image_batch(chunk, in), false);
    RF_CHECK(logits.ndim() == 2 && logits.size(1) == K, "predict: logits {} (expected (N, {}))", logits.shape().str(),
             K);
    for (size_t i = 0; i < chunk.size(); ++i) {
      const float* l = logits.f32() + int64_t(i) * K;
      const std::vector<double> prob = softmax(l, K);
      std::vector<int64_t> order(static_cast<size_t>(K));
      std::iota(order.begin(), order.end(), 0);
      // Highest probability first; ties by the lower index (as argmax).
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return l[a] > l[c]; });
      if (o.json) {
        nlohmann::json tj = nlohmann::json::array();
        for (int64_t r = 0; r < top; ++r)
          tj.push_back({{"index", order[size_t(r)]}, {"class", class_name(order[size_t(r)])},
                        {"probability", prob[size_t(order[size_t(r)])]}});
        nlohmann::json j = {{"file", chunk[i]},
                            {"top", tj},
                            {"logits", std::vector<float>(l, l + K)},
                            {"probabilities", prob}};
        fmt::print("{}{}\n", j.dump(), b0 + i + 1 < files.size() ? "," : "");
      } else {
        std::string line = chunk[i] + ":";
        for (int64_t r = 0; r < top; ++r)
          line += fmt::format("{} {} {:.4f}", r ? "," : "", class_name(order[size_t(r)]),
                              prob[size_t(order[size_t(r)])]);
        fmt::print("{}\n", line);
      }
    }
    std::fflush(stdout);
  }
  if (o.json) fmt::print("]}}\n");
  return 0;
}

}  // namespace rf

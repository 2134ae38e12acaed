// `reframe predict PKG IMAGE...`: classes and probabilities out of a package, for JPEG/PNG files or folders.
// Images are decoded and run in batches of --batch, so a folder of any size never becomes one giant tensor; the
// output streams (one line, or one JSON array element, per image). What the network needs besides weights
// (input size, normalisation, class names) comes from the package's metadata (format version 2,
// docs/PACKAGE.md); a version-1 package must be given --size/--mean/--std/--classes, and the error says which.
// Classification: images of another size than the network input are refused unless --resize is given (a silent
// resize would change what the model sees without the user knowing; docs/PACKAGE.md, "Inference from a
// package"). Detection / segmentation packages resize every image to the input size, as their training and
// evaluation do, and map the result back: boxes (JSON or text) in the original image's pixels, one 8-bit label
// PNG per image at its original size.
// Checked by tests/package/test_predict.cpp and tests/package/cli_package.sh.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <numeric>
#include <set>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "host/core/device.h"
#include "app/options.h"
#include "app/predict.h"
#include "datasets/image_folder.h"
#include "host/eval/decode.h"
#include "host/eval/det_metrics.h"
#include "host/models/layers.h"
#include "host/package/model_package.h"

namespace rf {

namespace {

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

std::string floats_str(const std::vector<float>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:g}", i ? "," : "", v[i]);
  return s;
}

std::string label_png_path(const std::string& dir, const std::string& file, std::set<std::string>& used) {
  const std::string stem = std::filesystem::path(file).stem().string();
  std::string name = stem + ".labels.png";
  for (int k = 2; used.count(name); ++k) name = fmt::format("{}-{}.labels.png", stem, k);
  used.insert(name);
  return (std::filesystem::path(dir) / name).string();
}

// Detection: boxes in the original image's pixels (the network sees the image resized to its input size; boxes
// are scaled back as the suite's evaluation does). Segmentation: a label PNG per image (8-bit, value = class
// index), at the original size (nearest from the network-size argmax).
int predict_dense(const PredictOptions& o, const Package& p, const ModelConfig& cfg, Model& m,
                  const PackageMeta& meta, const std::vector<std::string>& files, const PredictInput& in) {
  const bool detect = cfg.task == "detect";
  const int K = cfg.classes;
  RF_CHECK(detect || K <= 255, "{}: {} classes do not fit an 8-bit label PNG", o.package, K);
  auto class_name = [&](int64_t k) {
    return k < int64_t(meta.classes.size()) ? meta.classes[size_t(k)] : fmt::format("#{}", k);
  };
  if (!detect) std::filesystem::create_directories(o.out_dir);
  std::set<std::string> used;
  if (o.json) {
    nlohmann::json head = {{"schema", "reframe.predict/1"}, {"package", o.package}, {"model", cfg.name()},
                           {"task", cfg.task}, {"config", p.config},
                           {"input", {{"height", in.H}, {"width", in.W}, {"mean", json_floats(in.mean)}, {"std", json_floats(in.std)},
                                      {"resize", true}}},
                           {"classes", meta.classes}, {"image_count", files.size()}};
    if (detect) head["score_threshold"] = o.score;
    std::string h = head.dump();
    h.pop_back();
    fmt::print("{},\"images\":[\n", h);
  } else {
    fmt::print("{}: {} {} ({} classes), input {}x{} (every image resized to it), mean {} std {}; {} image(s)\n",
               o.package, cfg.name(), cfg.task, K, in.H, in.W, floats_str(in.mean), floats_str(in.std),
               files.size());
  }
  for (size_t b0 = 0; b0 < files.size(); b0 += size_t(o.batch)) {
    const std::vector<std::string> chunk(files.begin() + long(b0),
                                         files.begin() + long(std::min(files.size(), b0 + size_t(o.batch))));
    std::vector<std::pair<int, int>> sizes;
    Tensor x = load_image_batch(chunk, in, &sizes);
    Tensor out = m.forward(x.to(m.device()), false).to(Device::cpu);
    std::vector<nlohmann::json> per(chunk.size());
    if (detect) {
      std::vector<std::vector<eval::Detection>> boxes(chunk.size());
      for (const eval::Detection& d : eval::det_decode(out, K, o.score, 0)) boxes[size_t(d.image)].push_back(d);
      for (size_t i = 0; i < chunk.size(); ++i) {
        const float sy = float(sizes[i].first) / float(in.H), sx = float(sizes[i].second) / float(in.W);
        nlohmann::json bj = nlohmann::json::array();
        std::string line = fmt::format("{} ({}x{}): {} boxes", chunk[i], sizes[i].first, sizes[i].second,
                                       boxes[i].size());
        for (const eval::Detection& d : boxes[i]) {
          const float x0 = d.box.x0 * sx, y0 = d.box.y0 * sy, x1 = d.box.x1 * sx, y1 = d.box.y1 * sy;
          bj.push_back({{"class", class_name(d.cls)}, {"index", d.cls}, {"score", d.score},
                        {"x0", x0}, {"y0", y0}, {"x1", x1}, {"y1", y1}});
          line += fmt::format("\n  {} {:.3f} [{:.1f}, {:.1f}, {:.1f}, {:.1f}]", class_name(d.cls), d.score, x0, y0,
                              x1, y1);
        }
        per[i] = {{"file", chunk[i]}, {"height", sizes[i].first}, {"width", sizes[i].second}, {"boxes", bj}};
        if (!o.json) fmt::print("{}\n", line);
      }
    } else {
      const std::vector<int32_t> pred = eval::seg_argmax(out);
      const int64_t Hn = out.size(2), Wn = out.size(3);
      for (size_t i = 0; i < chunk.size(); ++i) {
        const int H = sizes[i].first, W = sizes[i].second;
        std::vector<uint8_t> lab(size_t(H) * size_t(W));
        std::vector<int64_t> count(size_t(K), 0);
        for (int y = 0; y < H; ++y) {
          const int64_t sy = std::min<int64_t>(Hn - 1, int64_t((double(y) + 0.5) * double(Hn) / double(H)));
          for (int xx = 0; xx < W; ++xx) {
            const int64_t sx = std::min<int64_t>(Wn - 1, int64_t((double(xx) + 0.5) * double(Wn) / double(W)));
            const int32_t c = pred[size_t(int64_t(i) * Hn * Wn + sy * Wn + sx)];
            lab[size_t(y) * size_t(W) + size_t(xx)] = uint8_t(c);
            ++count[size_t(c)];
          }
        }
        const std::string png = label_png_path(o.out_dir, chunk[i], used);
        data::write_png_file(png, lab.data(), H, W, 1);
        nlohmann::json shares = nlohmann::json::object();
        std::string line = fmt::format("{} ({}x{}) -> {}:", chunk[i], H, W, png);
        for (int k = 0; k < K; ++k)
          if (count[size_t(k)]) {
            const double share = double(count[size_t(k)]) / double(H * W);
            shares[class_name(k)] = share;
            line += fmt::format(" {} {:.1f}%", class_name(k), 100 * share);
          }
        per[i] = {{"file", chunk[i]}, {"height", H}, {"width", W}, {"label_png", png}, {"class_shares", shares}};
        if (!o.json) fmt::print("{}\n", line);
      }
    }
    if (o.json)
      for (size_t i = 0; i < chunk.size(); ++i)
        fmt::print("{}{}\n", per[i].dump(), b0 + i + 1 < files.size() ? "," : "");
    std::fflush(stdout);
  }
  if (o.json) fmt::print("]}}\n");
  return 0;
}

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
  RF_CHECK(cfg.task == "classify" || cfg.task == "detect" || cfg.task == "segment",
           "{}: config task '{}' (expected classify, detect or segment)", o.package, cfg.task);

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
  m->to(run_device());
  FrozenWeights frozen;  // inference: the convs keep their weights in the fast path's layout
  const std::vector<std::string> files = collect_image_files(o.images);
  PredictInput in;
  in.H = meta.input_h, in.W = meta.input_w, in.mean = meta.mean, in.std = meta.std, in.resize = o.resize;
  if (cfg.task != "classify") {
    in.resize = true;  // dense models always see their images resized to the input size (as in training / eval)
    return predict_dense(o, p, cfg, *m, meta, files, in);
  }
  const int64_t K = cfg.classes, top = std::min<int64_t>(o.top, K);
  auto class_name = [&](int64_t k) {
    return k < int64_t(meta.classes.size()) ? meta.classes[size_t(k)] : fmt::format("#{}", k);
  };

  if (o.json) {
    nlohmann::json head = {{"schema", "reframe.predict/1"},
                           {"package", o.package},
                           {"model", cfg.name()},
                           {"config", p.config},
                           {"input", {{"height", in.H}, {"width", in.W}, {"mean", json_floats(in.mean)}, {"std", json_floats(in.std)},
                                      {"resize", o.resize}}},
                           {"classes", meta.classes},
                           {"top", top},
                           {"image_count", files.size()}};
    std::string h = head.dump();
    h.pop_back();  // the closing brace: the images array streams after it
    fmt::print("{},\"images\":[\n", h);
  } else {
    fmt::print("{}: {} ({} classes), input {}x{}, mean {} std {}{}; {} image(s)\n", o.package, cfg.name(), K, in.H,
               in.W, floats_str(in.mean), floats_str(in.std), o.resize ? ", resized" : "", files.size());
  }
  for (size_t b0 = 0; b0 < files.size(); b0 += size_t(o.batch)) {
    const std::vector<std::string> chunk(files.begin() + long(b0),
                                         files.begin() + long(std::min(files.size(), b0 + size_t(o.batch))));
    Tensor logits = m->forward(load_image_batch(chunk, in).to(m->device()), false).to(Device::cpu);
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

}  // namespace

void add_predict_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<PredictOptions>(
      app, out, "predict",
      "Classes and probabilities for JPEG/PNG images (files or folders); boxes (detection) or label PNGs "
      "(segmentation) from dense packages",
      cmd_predict);
  add_device_option(c, out.back(), true);
  c->add_option("package", o->package, "model package (.rfpk)")->required();
  c->add_option("images", o->images, "JPEG/PNG files, or folders (searched recursively)")->required();
  c->add_option("--top,-k", o->top, "classes printed per image")->check(CLI::Range(1, 100000));
  c->add_option("--batch", o->batch, "images decoded and run at a time")->check(CLI::Range(1, 65536));
  c->add_flag("--json", o->json, "emit JSON (schema reframe.predict/1): top-k, all logits and probabilities");
  c->add_flag("--resize", o->resize, "scale images of another size to the network input (bilinear, aspect "
                                     "ratio not kept); default: such an image is an error");
  c->add_option("--size", o->size, "network input size S or HxW (needed for version-1 packages)");
  c->add_option("--mean", o->mean, "normalisation mean R,G,B on the 0..1 pixel scale (version-1 packages)");
  c->add_option("--std", o->std, "normalisation std R,G,B (version-1 packages)");
  c->add_option("--classes", o->classes, "class names a,b,c or @FILE, one a line (version-1 packages)");
  c->add_option("--score", o->score, "detection packages: smallest box score shown")->check(CLI::Range(0.0, 1.0));
  c->add_option("--out-dir", o->out_dir, "segmentation packages: folder for the label PNGs (one per image)");
}

}  // namespace rf

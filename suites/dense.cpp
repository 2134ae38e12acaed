// Detection and segmentation suites (see dense.h): the data of a run, the models x seeds x precisions loop, the
// JSON, the pictures and the table. Every figure is measured here, in this process.
#include "suites/dense.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "datasets/camvid.h"
#include "cuda/runtime.h"
#include "host/core/comm.h"
#include "datasets/overlay.h"
#include "datasets/source.h"
#include "datasets/synthetic_dense.h"
#include "datasets/voc.h"
#include "host/core/printable.h"
#include "host/eval/decode.h"
#include "host/eval/det_metrics.h"
#include "host/package/model_package.h"
#include "suites/measure.h"
#include "suites/runs.h"
#include "training/dense_objective.h"
#include "training/outputs.h"
#include "training/provenance.h"
#include "training/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rf {

namespace {

using Clock = SuiteClock;
double since(Clock::time_point t0) { return seconds_since(t0); }

using Split = DenseSplit;
using Data = DenseData;

Data load_data(const DenseOptions& o, bool detect) {
  Data d;
  d.detect = detect;
  if (o.data.empty()) {
    const int64_t a = o.synthetic_train, b = a + o.synthetic_val;
    const int S = o.synthetic_size;
    if (detect) {
      d.train.det = data::make_synthetic_det(o.synthetic_train, o.base_seed, 0, S, S);
      d.val.det = data::make_synthetic_det(o.synthetic_val, o.base_seed, a, S, S);
      d.test.det = data::make_synthetic_det(o.synthetic_test, o.base_seed, b, S, S);
      d.classes = data::synthetic_det_class_names();
    } else {
      d.train.seg = data::make_synthetic_seg(o.synthetic_train, o.base_seed, 0, S, S);
      d.val.seg = data::make_synthetic_seg(o.synthetic_val, o.base_seed, a, S, S);
      d.test.seg = data::make_synthetic_seg(o.synthetic_test, o.base_seed, b, S, S);
      d.classes = data::synthetic_seg_class_names();
      d.void_label = d.train.seg.void_label;
    }
    d.source = fmt::format("synthetic {}(seed={}, train={}, val={}, test={}, {}x{})", detect ? "detection " : "segmentation ",
                           o.base_seed, o.synthetic_train, o.synthetic_val, o.synthetic_test, S, S);
    d.in_h = o.input_h ? o.input_h : 128, d.in_w = o.input_w ? o.input_w : 128;
  } else {
    const std::string root =
        detect ? data::resolve_dataset_root(o.data, data::looks_like_voc, "Pascal VOC",
                                            "JPEGImages/, Annotations/ and ImageSets/Main/<split>.txt")
               : data::resolve_dataset_root(o.data, data::looks_like_camvid, "CamVid",
                                            "train.txt / val.txt / test.txt pairs");
    if (detect) {
      d.train.det = data::load_voc(root, "train");
      d.classes = d.train.det.classes;
      d.val.det = data::load_voc(root, "val", d.classes);
      d.test.det = data::load_voc(root, "test", d.classes);
      d.in_h = o.input_h ? o.input_h : 256, d.in_w = o.input_w ? o.input_w : 320;
    } else {
      d.train.seg = data::load_camvid(root, "train");
      d.val.seg = data::load_camvid(root, "val");
      d.test.seg = data::load_camvid(root, "test");
      d.classes = d.train.seg.classes;
      d.void_label = d.train.seg.void_label;
      d.in_h = o.input_h ? o.input_h : 256, d.in_w = o.input_w ? o.input_w : 352;
    }
    d.source = fmt::format("{} ({})", printable(o.data), detect ? "Pascal VOC" : "CamVid");
  }
  RF_CHECK(d.in_h % 32 == 0 && d.in_w % 32 == 0 && d.in_h >= 32 && d.in_w >= 32,
           "{}: --input {}x{}: height and width must be multiples of 32", detect ? "detect" : "segment", d.in_h, d.in_w);
  RF_CHECK(d.train.size(detect) > 0 && d.test.size(detect) > 0, "{}: empty train or test split", d.source);
  if (detect) {
    // mAP over a split without (non-difficult) objects has no ground truth to measure: refuse before training
    // rather than report a number (it would read as 0.0 = the detector found nothing).
    for (const auto& [name, split] : {std::pair<const char*, const Split*>{"train", &d.train}, {"val", &d.val},
                                      {"test", &d.test}}) {
      int64_t objects = 0;
      for (const auto& bl : split->det.boxes)
        for (const data::BoxAnn& b : bl) objects += b.difficult ? 0 : 1;
      RF_CHECK(objects > 0,
               "{}: the {} split ({} images) has no objects that are not marked difficult: mAP would have no ground "
               "truth; give a split with annotated objects",
               d.source, name, split->size(true));
    }
  } else {
    // Likewise mIoU over a split whose label maps are all void.
    for (const auto& [name, split] : {std::pair<const char*, const Split*>{"train", &d.train}, {"val", &d.val},
                                      {"test", &d.test}}) {
      int64_t labelled = 0;
      for (const auto& L : split->seg.labels)
        for (uint8_t v : L) labelled += v != d.void_label ? 1 : 0;
      RF_CHECK(labelled > 0,
               "{}: every label in the {} split ({} images) is void ({}): mIoU would have no ground truth; give a "
               "split with labelled pixels",
               d.source, name, split->size(false), d.void_label);
    }
  }
  return d;
}

// Pictures: for the first few test images, the ground truth and each model's prediction side by side.
void write_pictures(const DenseOptions& o, const Data& d, bool detect,
                    const std::vector<std::pair<std::string, Model*>>& models, const std::vector<double>& scores,
                    json& out) {
  fs::create_directories(o.out_dir + "/pictures");
  data::DenseAugment a = dense_eval_augment(d);
  const int64_t n = std::min<int64_t>(o.pictures, d.test.size(detect));
  const int K = int(d.classes.size());
  const int up = std::max(1, 256 / std::max(d.in_h, d.in_w) + (d.in_h < 128 ? 1 : 0));
  for (int64_t i = 0; i < n; ++i) {
    data::DenseBatch b = make_dense_batch(d.test, detect, {i}, a, 0, 0);
    // The network's input image (denormalised), upscaled for small inputs so the labels stay readable.
    data::Image img;
    img.H = int(b.H), img.W = int(b.W), img.C = 3;
    img.hwc.resize(size_t(img.H) * img.W * 3);
    for (int c = 0; c < 3; ++c)
      for (int64_t p = 0; p < b.H * b.W; ++p) {
        float v = (b.x[size_t(c * b.H * b.W + p)] * a.std[size_t(c)] + a.mean[size_t(c)]) * 255.f;
        img.hwc[size_t(p * 3 + c)] = uint8_t(std::clamp(std::lround(v), 0l, 255l));
      }
    std::vector<data::Image> panels;
    std::vector<std::string> titles;
    auto scale_boxes = [&](std::vector<data::DrawnBox> v) {
      for (auto& x : v) x.x0 *= float(up), x.y0 *= float(up), x.x1 *= float(up), x.y1 *= float(up);
      return v;
    };
    std::vector<data::DrawnBox> gt;
    if (detect)
      for (const data::BoxAnn& g : b.boxes[0]) gt.push_back({g.x0, g.y0, g.x1, g.y1, g.cls, -1.f});
    data::Image big = data::upscale_nearest(img, up);
    auto labels_up = [&](const std::vector<uint8_t>& lab) {
      std::vector<uint8_t> o2(size_t(big.H) * big.W);
      for (int y = 0; y < big.H; ++y)
        for (int x = 0; x < big.W; ++x) o2[size_t(y) * big.W + x] = lab[size_t(y / up) * img.W + x / up];
      return o2;
    };
    if (detect) {  // ground truth drawn solid with its class name (score -1: no score printed)
      panels.push_back(data::draw_detections(big, scale_boxes(gt), {}, d.classes));
    } else {
      std::vector<uint8_t> l = labels_up(b.labels);
      panels.push_back(data::overlay_mask(big, l.data(), d.void_label));
    }
    titles.push_back("ground truth");
    for (size_t m = 0; m < models.size(); ++m) {
      Tensor y = models[m].second->forward(dense_batch_tensor(b), false);
      if (detect) {
        std::vector<data::DrawnBox> pred;
        for (const eval::Detection& det : eval::det_decode(y, K, 0.3f, 0))
          pred.push_back({det.box.x0, det.box.y0, det.box.x1, det.box.y1, det.cls, det.score});
        panels.push_back(data::draw_detections(big, scale_boxes(pred), {}, d.classes));
      } else {
        std::vector<int32_t> pred = eval::seg_argmax(y);
        std::vector<uint8_t> p8(pred.begin(), pred.end());
        std::vector<uint8_t> l = labels_up(p8);
        panels.push_back(data::overlay_mask(big, l.data(), d.void_label));
      }
      titles.push_back(fmt::format("{}  {} {:.3f}", models[m].first, detect ? "mAP@0.5" : "mIoU", scores[m]));
    }
    data::Image all = data::compose_panels(panels, titles, d.classes);
    std::string id = detect ? d.test.det.ids[size_t(i)] : d.test.seg.ids[size_t(i)];
    for (char& c : id)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
    std::string path = fmt::format("{}/pictures/{}-{:02d}-{}.png", o.out_dir, o.task, i, id);
    data::write_png_file(path, all.hwc.data(), all.H, all.W, 3);
    out.push_back(path);
  }
}

}  // namespace

json run_dense(const DenseOptions& o) {
  const bool detect = o.task == "detect";
  RF_CHECK(detect || o.task == "segment", "dense suite: task '{}' (expected detect or segment)", o.task);
  RF_CHECK(o.seeds >= 1 && !o.models.empty(), "{}: need at least one model and one seed", o.task);
  // Everything that can be refused is refused before the first epoch (issue 18: options checked after the work).
  for (const std::string& text : o.models) (void)ModelConfig::parse(text);
  validate_train_options(o.train);
  RF_CHECK(o.latency_reps >= 1 && o.latency_reps <= 100000, "{}: --latency-reps {} (expected 1..100000)", o.task,
           o.latency_reps);
  for (int B : o.throughput_batches)
    RF_CHECK(B >= 1 && B <= 256, "{}: --throughput-batches {} (expected 1..256)", o.task, B);
  RF_CHECK(!o.out_dir.empty(), "{}: --out is empty (expected a folder)", o.task);
  if (comm::is_root()) fs::create_directories(o.out_dir + "/packages");
  auto t_start = Clock::now();
  Data d = load_data(o, detect);
  const int K = int(d.classes.size());
  std::fprintf(stderr, "%s: %s: %lld train / %lld val / %lld test images, input %dx%d, %d classes\n", o.task.c_str(),
               d.source.c_str(), (long long)d.train.size(detect), (long long)d.val.size(detect),
               (long long)d.test.size(detect), d.in_h, d.in_w, K);

  json models = json::array();
  std::vector<std::unique_ptr<Model>> device_models;
  std::vector<std::pair<std::string, Model*>> picture_models;
  std::vector<double> picture_scores;
  const char* main_key = detect ? "map50" : "miou";
  const char* second_key = detect ? "map_coco" : "pixel_acc";
  DenseLossOptions loss_options;
  loss_options.size_weight = o.size_weight, loss_options.offset_weight = o.offset_weight;
  loss_options.score_threshold = o.score_threshold;
  // What inference needs: the network input size, the normalisation of the plain resize and the class names.
  PackageMeta meta;
  {
    const data::DenseAugment ea = dense_eval_augment(d);
    meta.input_h = ea.out_h, meta.input_w = ea.out_w;
    meta.mean.assign(ea.mean.begin(), ea.mean.end());
    meta.std.assign(ea.std.begin(), ea.std.end());
    meta.classes = d.classes;
  }
  std::vector<int> row_models;  // the model index of each row (a shard holds the models it has runs of)
  for (size_t mi = 0; mi < o.models.size(); ++mi) {
    if (!shard_has_model(o.shard, int(mi), o.seeds)) continue;
    ModelConfig base = ModelConfig::parse(o.models[mi]);
    base.classes = K, base.stem = "large", base.task = o.task, base.neck = o.neck;
    base.head_nl = o.head_nl && base.is_nl();
    base.validate();
    Model probe(base);
    ModelTotals tot = probe.totals(Shape{1, 3, d.in_h, d.in_w});
    ModelRuns mr;
    std::vector<double> main_v, second_v, main_i8;
    for (int s = 0; s < o.seeds; ++s) {
      if (!o.shard.owns(int64_t(mi) * o.seeds + s)) continue;
      const ModelConfig cfg = run_config(base, o.base_seed, s);
      Model model(cfg);
      TrainOptions to = run_train_options(o.train, o.base_seed, s, o.task + "-" + cfg.name());
      if (to.data_source.empty()) to.data_source = d.source;
      mr.device_model.reset();  // the previous seed's: not part of this run's peak (and not needed again)
      host_reset_peak();
      std::fprintf(stderr, "%s: %s seed %d/%d: training %d epochs\n", o.task.c_str(), cfg.name().c_str(), s + 1,
                   o.seeds, to.epochs);
      DenseObjective task(d, to, loss_options);
      if (o.train_device == Device::cuda) {
        model.to(Device::cuda);
        gpu_reset_peak();
      }
      const TrainResult tr = train_task(model, task, to);
      const int64_t run_peak = int64_t(host_memory_stats().peak_live_bytes);  // this run's training
      const int64_t gpu_peak = o.train_device == Device::cuda ? gpu_memory_stats().peak_bytes : 0;
      model.to(Device::cpu);  // packed and evaluated as the device side does
      if (!comm::is_root()) continue;  // data parallel (mpirun): rank 0 alone packs, evaluates and writes
      mr.train_peak = std::max<int64_t>(mr.train_peak, run_peak);
      model.clear_cache();
      PackedRun packed = pack_and_evaluate(
          model, meta, fmt::format("{}/packages/{}-{}-s{}", o.out_dir, o.task, cfg.name(), s),
          [&](Model& dev, const std::string& dt) {
            DenseMetrics tm = evaluate_dense(dev, d.test, d, o.score_threshold);
            json e{{main_key, tm.main}, {second_key, tm.second}};
            if (dt == "f32") {  // per class (null: a class without ground truth), averaged over seeds per row
              json pc = json::array();
              for (double v : tm.per_class) pc.push_back(std::isfinite(v) ? json(v) : json(nullptr));
              e["per_class"] = pc;
            }
            return e;
          });
      const json pk = packed.packages;
      main_v.push_back(pk["f32"][main_key].get<double>());
      second_v.push_back(pk["f32"][second_key].get<double>());
      main_i8.push_back(pk["i8"][main_key].get<double>());
      mr.add(packed);
      json epochs = json::array();
      for (size_t i = 0; i < tr.epochs.size(); ++i) {
        const EpochLog& l = tr.epochs[i];
        // The last epoch's figure is the packed model's: after BN recalibration when it ran (both kept).
        const bool recal = i + 1 == tr.epochs.size() && tr.bn_recalibrated > 0;
        json e = {{"epoch", l.epoch}, {"lr", l.lr}, {"train_loss", l.train_loss}, {"seconds", l.seconds},
                  {"images_per_s", l.images_per_s},
                  {std::string("val_") + main_key, recal ? tr.final_val.acc : l.val_acc}};
        if (recal) {
          e["bn_recalibration_images"] = tr.bn_recalibrated;
          e[std::string("val_") + main_key + "_before_bn_recalibration"] = l.val_acc;
        }
        epochs.push_back(e);
      }
      mr.runs.push_back({{"seed", s}, {"config", cfg.str()}, {"epochs", epochs}, {"packages", pk},
                      {"test_evaluations_per_package", 1}, {"train_peak_tensor_bytes", run_peak},
                      {"train_device", device_name(o.train_device)}, {"train_gpu_peak_bytes", gpu_peak}});
      std::fprintf(stderr, "%s: %s seed %d: test %s %s (fp32 package), %s %s, int8 %s %s\n", o.task.c_str(),
                   cfg.name().c_str(), s + 1, main_key, eval::format_metric(main_v.back()).c_str(), second_key,
                   eval::format_metric(second_v.back()).c_str(), main_key, eval::format_metric(main_i8.back()).c_str());
    }
    if (!comm::is_root()) continue;
    json m = model_row(base, tot, mr, d.in_h, d.in_w, {o.latency_reps, o.throughput_reps, o.throughput_batches});
    m["input"] = {3, d.in_h, d.in_w};
    summarize_dense_row(m, o.task, d.classes);
    models.push_back(m);
    row_models.push_back(int(mi));
    picture_scores.push_back(main_v.back());
    device_models.push_back(std::move(mr.device_model));
    picture_models.push_back({base.name(), device_models.back().get()});
  }
  if (!comm::is_root()) return json();
  json pictures = json::array();
  if (o.pictures > 0) write_pictures(o, d, detect, picture_models, picture_scores, pictures);

  const Split& tr = d.train;
  const TrainOptions& t = o.train;
  json out = {
      {"schema", fmt::format("reframe.{}/1", o.task)},
      {"provenance", provenance_json(o.command_line)},
      {"dataset",
       {{"source", d.source},
        {"train", d.train.size(detect)},
        {"val", d.val.size(detect)},
        {"test", d.test.size(detect)},
        {"input", {3, d.in_h, d.in_w}},
        {"classes", d.classes},
        {"train_hash", detect ? tr.det.hash_hex() : tr.seg.hash_hex()},
        {"val_hash", detect ? d.val.det.hash_hex() : d.val.seg.hash_hex()},
        {"test_hash", detect ? d.test.det.hash_hex() : d.test.seg.hash_hex()},
        {"warnings", detect ? tr.det.warnings.size() + d.val.det.warnings.size() + d.test.det.warnings.size()
                            : tr.seg.warnings.size() + d.val.seg.warnings.size() + d.test.seg.warnings.size()}}},
      {"budget",
       {{"epochs", t.epochs}, {"batch", t.batch}, {"optimizer", "sgd"}, {"lr", t.lr}, {"momentum", t.momentum},
        {"weight_decay", t.weight_decay}, {"schedule", "cosine"}, {"warmup_epochs", t.warmup_epochs},
        {"clip_norm", t.clip_norm}, {"augment", t.augment}, {"bn_recalibrate", t.bn_recalibrate}, {"seeds", o.seeds},
        {"base_seed", o.base_seed},
        {"neck", o.neck}, {"head_nl", o.head_nl},
        {"loss", detect ? fmt::format("focal + {} L1(size) + {} L1(offset)", o.size_weight, o.offset_weight)
                        : std::string("pixel cross-entropy, void ignored")},
        {"metric", detect ? "VOC mAP@0.5 (all-point) and COCO mAP@[.5:.95] (101-point) in original image pixels; "
                            "test split touched once per package"
                          : "mIoU over the real classes (void ignored) and pixel accuracy at the network input size "
                            "(labels resized nearest); test split touched once per package"}}},
      {"models", models},
      {"pictures", pictures},
      {"wall_seconds", since(t_start)},
      {"max_rss_bytes", max_rss_bytes()}};
  if (!o.shard.whole()) out["shard"] = shard_json(o.shard, o.models, o.seeds, row_models);
  // Invalid UTF-8 in names repaired, never a throw.
  if (o.write_results) write_json_atomic(o.out_dir + "/" + o.task + ".json", out);
  return out;
}

void summarize_dense_row(json& m, const std::string& task, const std::vector<std::string>& classes) {
  const bool detect = task == "detect";
  const std::string main_key = detect ? "map50" : "miou", second_key = detect ? "map_coco" : "pixel_acc";
  std::vector<double> main_v, second_v, main_f16, main_i8, val_v;
  std::vector<std::vector<double>> per_class(classes.size());
  for (const json& run : m["runs"]) {
    const json& pk = run["packages"];
    main_v.push_back(pk["f32"][main_key].get<double>());
    second_v.push_back(pk["f32"][second_key].get<double>());
    main_f16.push_back(pk["f16"][main_key].get<double>());
    main_i8.push_back(pk["i8"][main_key].get<double>());
    val_v.push_back(run["epochs"].empty() ? 0.0 : run["epochs"].back()["val_" + main_key].get<double>());
    const json& pc = pk["f32"]["per_class"];
    for (size_t k = 0; k < classes.size() && k < pc.size(); ++k)
      if (!pc[k].is_null()) per_class[k].push_back(pc[k].get<double>());
  }
  json pcl = json::array();
  for (size_t k = 0; k < classes.size(); ++k)
    pcl.push_back({{"class", classes[k]},
                   {"value", per_class[k].empty() ? json(nullptr) : mean_std_json(per_class[k])["mean"]}});
  m["val_" + main_key] = mean_std_json(val_v);
  m[main_key] = mean_std_json(main_v);
  m[second_key] = mean_std_json(second_v);
  m[main_key + "_fp16"] = mean_std_json(main_f16);
  m[main_key + "_int8"] = mean_std_json(main_i8);
  m[detect ? "ap50_per_class" : "iou_per_class"] = pcl;
}

std::string dense_table(const json& r) {
  const bool detect = r["schema"] == "reframe.detect/1";
  const char* mk = detect ? "map50" : "miou";
  const char* sk = detect ? "map_coco" : "pixel_acc";
  std::string s = fmt::format("{:<16} {:>10} {:>14} {:>11} {:>10} {:>7} {:>9} {:>10} {:>14} {:>14} {:>9}\n", "model",
                              "learnable", "MACs", "pkg fp32", "pkg int8", "% R18", "lat b1", "regen ms",
                              detect ? "mAP@0.5" : "mIoU", detect ? "mAP@.5:.95" : "pixel acc",
                              detect ? "int8 mAP" : "int8 mIoU");
  double base_bytes = 0, base_macs = 0;
  for (const auto& m : r["models"])
    if (m["model"] == "resnet18") base_bytes = m["package_bytes"]["f32"].get<double>(), base_macs = m["macs"].get<double>();
  // NaN is written as null: a metric without ground truth.
  auto pm = [](const json& j) {
    return j.is_object() && j["mean"].is_number() && j["std"].is_number() ? pct_mean_std_cell(j)
                                                                           : std::string("no ground truth");
  };
  auto pct = [](const json& j) {
    return j.is_number() ? fmt::format("{:.2f}%", 100 * j.get<double>()) : std::string("no ground truth");
  };
  for (const auto& m : r["models"]) {
    double fp32 = m["package_bytes"]["f32"].get<double>();
    const json& rg = m.contains("regen_seconds_median") ? m["regen_seconds_median"] : json();
    s += fmt::format("{:<16} {:>10} {:>14} {:>11} {:>10} {:>7} {:>7.2f}ms {:>10} {:>14} {:>14} {:>9}\n",
                     m["model"].get<std::string>(), m["learnable_params"].get<int64_t>(), m["macs"].get<int64_t>(),
                     int64_t(fp32), m["package_bytes"]["i8"].get<int64_t>(), pct_of_r18_cell(fp32, base_bytes),
                     m["latency_batch1_ms"].get<double>(),
                     rg.is_object() ? fmt::format("{:.3f}", 1e3 * rg["mean"].get<double>()) : "—", pm(m[mk]),
                     pm(m[sk]), pct(m[std::string(mk) + "_int8"]["mean"]));
  }
  s += fmt::format("\n% R18:    fp32 package bytes as a share of resnet18's in this run{}\n"
                   "regen ms: regenerating the seeded weights of the loaded fp32 package, median of {} warm calls\n",
                   base_bytes > 0 ? "" : " (no resnet18 in this run: shown as —)", kRegenReps);
  if (base_bytes > 0) {
    s += "\nAgainst resnet18 in this run:";
    for (const auto& m : r["models"]) {
      if (m["model"] == "resnet18") continue;
      s += fmt::format("\n  {:<16} bytes {:.1f}%, MACs {:.1f}%", m["model"].get<std::string>(),
                       100 * m["package_bytes"]["f32"].get<double>() / base_bytes,
                       100 * m["macs"].get<double>() / base_macs);
    }
    s += "\n";
  }
  const auto& b = r["budget"];
  s += fmt::format("\nbudget: {} epochs, batch {}, SGD lr {} cosine, {}; {} seed(s); input {}x{}\n", b["epochs"].get<int>(),
                   b["batch"].get<int64_t>(), b["lr"].get<double>(), b["loss"].get<std::string>(), b["seeds"].get<int>(),
                   r["dataset"]["input"][1].get<int>(), r["dataset"]["input"][2].get<int>());
  return s;
}

}  // namespace rf

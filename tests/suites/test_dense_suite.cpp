// The detection/segmentation suite's pieces: targets and losses (host/models/dense_head.h) glued to the trunk's
// output layout (gradients against finite differences), a few SGD steps on one batch drive both tasks' losses
// down for both backbones, dense packages round-trip (fp32 bit-identical, int8 close), and a tiny end-to-end run
// of each suite writes its JSON (which the gate reads), packages and pictures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "datasets/synthetic_dense.h"
#include "host/package/model_package.h"
#include "suites/dense.h"
#include "gate/gate.h"
#include "testing.h"

using namespace rf;
namespace fs = std::filesystem;

namespace {

using rf::testing::random_tensor;

std::string temp_dir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / ("rf_dense_" + name + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// One epoch of task on the data at data_root (64x64 inputs, batch 2, neck 16, no pictures), writing to a fresh
// temp folder named out.
DenseOptions one_epoch_run(const std::string& task, const std::string& data_root, const std::string& out) {
  DenseOptions o;
  o.task = task;
  o.data = data_root;
  o.input_h = o.input_w = 64;
  o.train.epochs = 1, o.train.batch = 2, o.neck = 16, o.pictures = 0;
  o.out_dir = temp_dir(out);
  return o;
}

// The message of the rf::Error run_dense(o) throws; empty when it does not throw.
std::string error_of_run(const DenseOptions& o) {
  try {
    run_dense(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DenseSuite, TargetsPutOnePeakPerObject) {
  // One 32x16 box centred at (52, 20) in a 128x128 input: stride-8 cell (6, 2), offset (0.5, 0.5), size (4, 2).
  std::vector<std::vector<data::BoxAnn>> boxes = {{{36, 12, 68, 28, 1, false}}, {}};
  DetTargets t = make_det_targets(boxes, 3, 8, 16, 16);
  EXPECT_EQ(t.heat.shape(), Shape({2, 3, 16, 16}));
  const int64_t cells = 256, cell = 2 * 16 + 6;
  EXPECT_FLOAT_EQ(t.heat.f32()[1 * cells + cell], 1.f);
  EXPECT_FLOAT_EQ(t.mask.f32()[cell], 1.f);
  EXPECT_FLOAT_EQ(t.size.f32()[cell], 4.f);
  EXPECT_FLOAT_EQ(t.size.f32()[cells + cell], 2.f);
  EXPECT_FLOAT_EQ(t.offset.f32()[cell], 0.5f);
  EXPECT_FLOAT_EQ(t.offset.f32()[cells + cell], 0.5f);
  double mask_sum = 0, heat2 = 0;
  for (int64_t i = 0; i < t.mask.numel(); ++i) mask_sum += t.mask.f32()[i];
  for (int64_t i = 3 * cells; i < 6 * cells; ++i) heat2 += t.heat.f32()[i];
  EXPECT_EQ(mask_sum, 1.0);
  EXPECT_EQ(heat2, 0.0) << "the second image has no objects";
}

TEST(DenseSuite, DetectionLossGradientMatchesFiniteDifferences) {
  std::vector<std::vector<data::BoxAnn>> boxes = {{{10, 10, 40, 30, 0, false}, {60, 40, 100, 90, 2, false}},
                                                  {{5, 50, 60, 120, 1, false}}};
  DetTargets t = make_det_targets(boxes, 3, 8, 16, 16);
  Tensor out = random_tensor(Shape{2, 7, 16, 16}, 1, 2.f), dout;
  const float ws = 0.1f, wo = 1.f;
  DetLoss l = det_loss(out, t, ws, wo, dout);
  EXPECT_NEAR(l.total, l.heat + ws * l.size + wo * l.offset, 1e-9);
  EXPECT_GT(l.heat, 0);
  EXPECT_GT(l.size, 0);
  // Central differences on a few cells of each of the three parts (heat, size, offset channels).
  for (int64_t idx : {int64_t(0 * 256 + 37), int64_t(2 * 256 + 200), int64_t(3 * 256 + 1 * 16 + 1),
                      int64_t(4 * 256 + 11 * 16 + 10), int64_t(5 * 256 + 1 * 16 + 1), int64_t(7 * 256 + 6 * 16 + 4)}) {
    SCOPED_TRACE(idx);
    Tensor p = out.clone(), m = out.clone(), d;
    const float h = 1e-3f;
    p.f32()[idx] += h, m.f32()[idx] -= h;
    double num = (det_loss(p, t, ws, wo, d).total - det_loss(m, t, ws, wo, d).total) / (2 * h);
    EXPECT_NEAR(num, dout.f32()[idx], 2e-3 * (1 + std::fabs(num)));
  }
}

TEST(DenseSuite, SegmentationLossAndArgmax) {
  Tensor out = random_tensor(Shape{2, 4, 8, 8}, 2, 3.f), dout;
  std::vector<uint8_t> labels(2 * 64);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = uint8_t(i % 7 == 0 ? 255 : i % 4);
  double l = seg_loss(out, labels.data(), 255, dout);
  EXPECT_GT(l, 0);
  std::vector<int32_t> pred = eval::seg_argmax(out);
  ASSERT_EQ(pred.size(), labels.size());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t p = 0; p < 64; ++p) {
      int best = 0;
      for (int c = 1; c < 4; ++c)
        if (out.f32()[(n * 4 + c) * 64 + p] > out.f32()[(n * 4 + best) * 64 + p]) best = c;
      EXPECT_EQ(pred[size_t(n * 64 + p)], best);
    }
  labels[3] = 9;  // not a class, not void
  EXPECT_THROW(seg_loss(out, labels.data(), 255, dout), rf::Error);
}

TEST(DenseSuite, OverfitOneBatchBothTasksBothBackbones) {
  for (const char* task : {"detect", "segment"}) {
    for (const char* arch : {"resnet18", "nl-resnet18:cnl=dw"}) {
      SCOPED_TRACE(fmt::format("{} {}", task, arch));
      ModelConfig cfg = ModelConfig::parse(arch);
      cfg.task = task, cfg.stem = "large", cfg.neck = 32;
      const bool detect = cfg.task == "detect";
      cfg.classes = detect ? 3 : 4;
      Model m(cfg);
      data::DetDataset det = data::make_synthetic_det(4, 3, 0, 64, 64);
      data::SegDataset seg = data::make_synthetic_seg(4, 3, 0, 64, 64);
      data::DenseAugment a;
      a.out_h = a.out_w = 64, a.enabled = false;
      data::DenseBatch b = detect ? data::make_det_batch(det, {0, 1, 2, 3}, a, 0, 0)
                                  : data::make_seg_batch(seg, {0, 1, 2, 3}, a, 0, 0);
      Tensor x = Tensor::borrow(b.x.data(), Shape{b.N, 3, b.H, b.W});
      SGD opt(m.params(), 0.9f, 0.f);
      double first = 0, last = 0;
      for (int step = 0; step < 20; ++step) {
        Tensor out = m.forward(x, true), dout;
        double loss = detect ? det_loss(out, make_det_targets(b.boxes, 3, 8, 8, 8), 0.1f, 1.f, dout).total
                             : seg_loss(out, b.labels.data(), seg.void_label, dout);
        m.backward(dout);
        opt.step(0.05f, 5.f);
        if (step == 0) first = loss;
        last = loss;
      }
      EXPECT_LT(last, 0.6 * first) << "loss " << first << " -> " << last;
    }
  }
}

TEST(DenseSuite, PackagesRoundTrip) {
  for (const char* text : {"nl-resnet18:cnl=dw,classes=3,stem=large,task=detect,neck=16,head_nl=on",
                           "resnet18:classes=4,stem=large,task=segment,neck=16"}) {
    SCOPED_TRACE(text);
    Model m(ModelConfig::parse(text));
    Tensor x = random_tensor(Shape{1, 3, 64, 64}, 5);
    Tensor ref = m.forward(x, false).clone();
    for (const char* dt : {"f32", "i8"}) {
      PackOptions po;
      po.dtype = parse_storage_dtype(dt);
      Package p = pack_model(m, po);
      std::vector<uint8_t> bytes = serialize_package(p);
      std::unique_ptr<Model> back = load_model(parse_package(bytes.data(), bytes.size(), "mem"), "mem");
      EXPECT_EQ(back->config(), m.config());
      Tensor y = back->forward(x, false);
      double maxdiff = 0, maxref = 0;
      for (int64_t i = 0; i < y.numel(); ++i)
        maxdiff = std::max(maxdiff, double(std::fabs(y.f32()[i] - ref.f32()[i]))),
        maxref = std::max(maxref, double(std::fabs(ref.f32()[i])));
      if (std::string(dt) == "f32")
        EXPECT_EQ(maxdiff, 0.0) << "fp32 packages are bit-identical";
      else
        EXPECT_LT(maxdiff, 0.1 * maxref + 1e-3);
    }
  }
}

TEST(DenseSuite, TinyEndToEndRunOfBothSuites) {
  for (const char* task : {"detect", "segment"}) {
    SCOPED_TRACE(task);
    DenseOptions o;
    o.task = task;
    o.synthetic_train = 8, o.synthetic_val = 4, o.synthetic_test = 4, o.synthetic_size = 64;
    o.input_h = o.input_w = 64;
    o.train.epochs = 1, o.train.batch = 4, o.neck = 16, o.pictures = 1, o.latency_reps = 1, o.throughput_reps = 1;
    o.throughput_batches = {2};
    o.out_dir = temp_dir(task);
    nlohmann::json r = run_dense(o);
    const std::string file = o.out_dir + "/" + task + ".json";
    ASSERT_TRUE(fs::exists(file));
    EXPECT_EQ(r["schema"], fmt::format("reframe.{}/1", task));
    ASSERT_EQ(r["models"].size(), 2u);
    const char* key = std::string(task) == "detect" ? "map50" : "miou";
    for (const auto& m : r["models"]) {
      double v = m[key]["mean"].get<double>();
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      for (const char* dt : {"f32", "f16", "i8"}) EXPECT_TRUE(fs::exists(m["runs"][0]["packages"][dt]["path"].get<std::string>()));
      // BN recalibrated after the last epoch on the 8 training images (two batches of 4), logged with it.
      EXPECT_EQ(m["runs"][0]["epochs"].back()["bn_recalibration_images"].get<int64_t>(), 8);
    }
    EXPECT_LT(r["models"][1]["package_bytes"]["f32"].get<double>(), 0.2 * r["models"][0]["package_bytes"]["f32"].get<double>());
    ASSERT_EQ(r["pictures"].size(), 1u);
    EXPECT_TRUE(fs::exists(r["pictures"][0].get<std::string>()));
    EXPECT_FALSE(dense_table(r).empty());
    // The gate reads the suite's figures.
    std::ifstream in(file);
    auto figs = gate::extract(nlohmann::json::parse(in), file, nullptr);
    bool found = false;
    for (const auto& f : figs) found |= f.name == fmt::format("{}/nl-resnet18-dw/{}", task, key) && f.kind == gate::Kind::metric;
    EXPECT_TRUE(found);
    fs::remove_all(o.out_dir);
  }
}

// issue 18: a detection split without objects has no ground truth: refused before training, never mAP 0.0.
TEST(DenseSuite, DetectionSplitWithoutObjectsIsRefusedBeforeTraining) {
  const std::string root = temp_dir("voc_no_gt");
  fs::create_directories(root + "/JPEGImages");
  fs::create_directories(root + "/Annotations");
  fs::create_directories(root + "/ImageSets/Main");
  std::vector<uint8_t> px(64 * 64 * 3, 100);
  auto put = [&](const std::string& id, bool object) {
    data::write_jpeg_file(root + "/JPEGImages/" + id + ".jpg", px.data(), 64, 64, 3, 90);
    std::ofstream(root + "/Annotations/" + id + ".xml")
        << "<annotation><size><width>64</width><height>64</height></size>"
        << (object ? "<object><name>cell</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax>"
                     "</bndbox></object>"
                   : "")
        << "</annotation>\n";
  };
  for (const char* id : {"t0", "t1", "v0"}) put(id, true);
  for (const char* id : {"x0", "x1"}) put(id, false);
  std::ofstream(root + "/ImageSets/Main/train.txt") << "t0\nt1\n";
  std::ofstream(root + "/ImageSets/Main/val.txt") << "v0\n";
  std::ofstream(root + "/ImageSets/Main/test.txt") << "x0\nx1\n";
  const DenseOptions o = one_epoch_run("detect", root, "voc_no_gt_out");
  const std::string msg = error_of_run(o);
  EXPECT_NE(msg.find("the test split (2 images) has no objects that are not marked difficult: mAP would have no "
                     "ground truth"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(fs::exists(o.out_dir + "/packages/detect-resnet18-s0-f32.rfpk"));  // nothing was trained
  fs::remove_all(root);
  fs::remove_all(o.out_dir);
}

TEST(DenseSuite, TableSaysNoGroundTruthForANullMetric) {
  nlohmann::json nan_ms = {{"mean", std::nan("")}, {"std", 0.0}};
  nlohmann::json m = {{"model", "resnet18"},  {"learnable_params", 1}, {"macs", 2},
                      {"package_bytes", {{"f32", 100}, {"i8", 30}}}, {"latency_batch1_ms", 1.0},
                      {"map50", nan_ms},      {"map_coco", nan_ms},    {"map50_int8", nan_ms}};
  nlohmann::json r = {{"schema", "reframe.detect/1"},
                      {"models", {m}},
                      {"budget", {{"epochs", 1}, {"batch", 2}, {"lr", 0.1}, {"loss", "focal"}, {"seeds", 1}}},
                      {"dataset", {{"input", {3, 64, 64}}}}};
  // Through text, as a reader of the JSON file gets it: NaN is written as null.
  const nlohmann::json back = nlohmann::json::parse(r.dump());
  EXPECT_TRUE(back["models"][0]["map50"]["mean"].is_null());
  const std::string t = dense_table(back);
  EXPECT_NE(t.find("no ground truth"), std::string::npos) << t;
  EXPECT_EQ(t.find("nan"), std::string::npos) << t;
}

TEST(DenseSuite, SegmentationSplitAllVoidIsRefusedBeforeTraining) {
  const std::string root = temp_dir("camvid_all_void");
  fs::create_directories(root + "/img");
  std::vector<uint8_t> px(64 * 64 * 3, 100), lab(64 * 64, 3), vd(64 * 64, 11);
  std::string list_train, list_val, list_test;
  for (int i = 0; i < 4; ++i) {
    const std::string id = std::to_string(i);
    data::write_png_file(root + "/img/" + id + ".png", px.data(), 64, 64, 3);
    data::write_png_file(root + "/img/" + id + "_l.png", i == 3 ? vd.data() : lab.data(), 64, 64, 1);
    std::string& l = i < 2 ? list_train : i == 2 ? list_val : list_test;
    l += "img/" + id + ".png img/" + id + "_l.png\n";
  }
  std::ofstream(root + "/train.txt") << list_train;
  std::ofstream(root + "/val.txt") << list_val;
  std::ofstream(root + "/test.txt") << list_test;
  fs::create_directories(root + "/train");
  const DenseOptions o = one_epoch_run("segment", root, "camvid_all_void_out");
  const std::string msg = error_of_run(o);
  EXPECT_NE(msg.find("every label in the test split (1 images) is void (11): mIoU would have no ground truth"),
            std::string::npos)
      << msg;
  fs::remove_all(root);
  fs::remove_all(o.out_dir);
}

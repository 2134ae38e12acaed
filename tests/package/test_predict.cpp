// `reframe predict`'s core against the engine: a small model trained on synthetic images, packed with its
// inference metadata, read back as a device would; the test images written as PNG (lossless) and read by predict
// must give the bits the trainer's eval loader gives, hence the same logits and argmax, and the accuracy that
// evaluate() (what `reframe eval` prints) reports. Plus the refusal of a wrong-size image, --resize, folders.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "datasets/image_codec.h"
#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "app/predict.h"
#include "host/package/model_package.h"
#include "training/trainer.h"
#include "suites/classify.h"
#include "testing.h"

namespace rf {
namespace {

namespace fs = std::filesystem;

using rf::testing::temp_dir;

// Image i of a dataset as a PNG file (CHW -> HWC).
void write_png(const data::Dataset& d, int64_t i, const std::string& path) {
  std::vector<uint8_t> hwc(size_t(d.image_size()));
  const uint8_t* chw = d.image(i);
  for (int64_t p = 0; p < d.H * d.W; ++p)
    for (int64_t c = 0; c < d.C; ++c) hwc[size_t(p * d.C + c)] = chw[c * d.H * d.W + p];
  data::write_png_file(path, hwc.data(), int(d.H), int(d.W), int(d.C));
}

using rf::testing::expect_error;

int64_t argmax(const float* l, int64_t K) { return std::max_element(l, l + K) - l; }

TEST(Predict, ArgmaxEqualsEngineForwardAndEvalAccuracy) {
  const std::string dir = temp_dir("predict");
  data::Dataset train = data::make_synthetic(48, 1, 0, 32, 32);
  data::Dataset test = data::make_synthetic(24, 1, 48, 32, 32);
  ModelConfig cfg = ModelConfig::parse("nl-resnet18:cnl=dw");
  cfg.classes = train.num_classes();
  Model model(cfg);
  TrainOptions to;
  to.epochs = 1, to.batch = 16, to.lr = 0.05f, to.progress = false, to.bn_recalibrate = 32;
  train_model(model, train, data::Dataset{}, to);

  // Cloud side: pack with the metadata; device side: read back.
  Package p = pack_model(model, PackOptions{});
  p.meta = inference_meta(train);
  write_package(dir + "/m.rfpk", p);
  Package back = read_package(dir + "/m.rfpk");
  ASSERT_EQ(back.version, 2);
  ASSERT_EQ(back.meta.classes, train.classes);
  std::unique_ptr<Model> dev = load_model(back, "m.rfpk");

  fs::create_directories(dir + "/img/sub");
  for (int64_t i = 0; i < test.size(); ++i)  // some in a sub-folder: folders are searched recursively
    write_png(test, i, fmt::format("{}/img/{}{:03d}.png", dir, i % 3 == 0 ? "sub/x" : "", i));
  std::vector<std::string> files = collect_image_files({dir + "/img"});
  ASSERT_EQ(files.size(), size_t(test.size()));
  // Sorted by path: "img/000.png" < ... < "img/sub/x000.png"; map each file back to its dataset index.
  std::vector<int64_t> index;
  for (const std::string& f : files) index.push_back(std::stoll(fs::path(f).stem().string().substr(
      fs::path(f).stem().string()[0] == 'x' ? 1 : 0)));

  PredictInput in;
  in.H = back.meta.input_h, in.W = back.meta.input_w, in.mean = back.meta.mean, in.std = back.meta.std;
  const int64_t K = cfg.classes;
  // Predict in batches of 5 (as the command does with --batch 5).
  std::vector<float> pred_logits;
  std::vector<float> pred_x;
  for (size_t b = 0; b < files.size(); b += 5) {
    std::vector<std::string> chunk(files.begin() + long(b), files.begin() + long(std::min(files.size(), b + 5)));
    Tensor x = load_image_batch(chunk, in);
    pred_x.insert(pred_x.end(), x.f32(), x.f32() + x.numel());
    Tensor l = dev->forward(x, false);
    pred_logits.insert(pred_logits.end(), l.f32(), l.f32() + l.numel());
  }

  // The engine: the trainer's eval loader on the dataset itself, one batch.
  data::LoaderOptions lo = data::LoaderOptions::eval();
  lo.batch_size = test.size();
  data::Batch eb = data::make_batch(test, lo, 0, 0);
  Tensor ref = dev->forward(eb.x, false);
  const int64_t per = 3 * 32 * 32;
  int64_t correct = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const int64_t n = index[i];
    // Same input bits as eval's loader...
    EXPECT_EQ(0, std::memcmp(pred_x.data() + int64_t(i) * per, eb.x.f32() + n * per, size_t(per) * 4)) << files[i];
    // ...so the same argmax (logits may differ in the last bits with another batch composition).
    const float* pl = pred_logits.data() + int64_t(i) * K;
    const float* rl = ref.f32() + n * K;
    EXPECT_EQ(argmax(pl, K), argmax(rl, K)) << files[i];
    for (int64_t k = 0; k < K; ++k) EXPECT_NEAR(pl[k], rl[k], 1e-4f * (1.f + std::fabs(rl[k]))) << files[i];
    correct += argmax(pl, K) == test.labels[size_t(n)];
  }
  EvalResult er = evaluate(*dev, test);
  EXPECT_DOUBLE_EQ(double(correct) / double(test.size()), er.acc);
  std::vector<double> pr = softmax(pred_logits.data(), K);
  double s = 0;
  for (double v : pr) s += v;
  EXPECT_NEAR(s, 1.0, 1e-12);
  EXPECT_EQ(std::max_element(pr.begin(), pr.end()) - pr.begin(), argmax(pred_logits.data(), K));
  fs::remove_all(dir);
}

TEST(Predict, WrongSizeRefusedUnlessResize) {
  const std::string dir = temp_dir("predict_size");
  std::vector<uint8_t> img(40 * 48 * 3, 128);
  data::write_png_file(dir + "/big.png", img.data(), 40, 48, 3);
  PredictInput in;
  in.H = in.W = 32, in.mean = {0.5f, 0.5f, 0.5f}, in.std = {0.25f, 0.25f, 0.25f};
  expect_error([&] { load_image_batch({dir + "/big.png"}, in); },
               {"big.png", "40x48", "network input is 32x32", "--resize"});
  in.resize = true;
  Tensor x = load_image_batch({dir + "/big.png"}, in);
  EXPECT_EQ(x.shape(), (Shape{1, 3, 32, 32}));
  EXPECT_FLOAT_EQ(x.f32()[0], (128.f / 255.f - 0.5f) / 0.25f);  // a uniform image stays uniform
  std::ofstream(dir + "/bad.jpg") << "not an image";
  expect_error([&] { load_image_batch({dir + "/bad.jpg"}, in); }, {"bad.jpg", "neither a JPEG"});
  fs::create_directories(dir + "/empty");
  std::ofstream(dir + "/empty/notes.txt") << "x";
  expect_error([&] { collect_image_files({dir + "/empty"}); }, {"empty", "no *.jpg"});
  expect_error([&] { collect_image_files({dir + "/missing.png"}); }, {"missing.png", "no such file"});
  fs::remove_all(dir);
}

TEST(Predict, MetaOptions) {
  PackageMeta m;
  apply_meta_options(m, "24x32", "0.1,0.2,0.3", "1,2,3", "a,b,c", "predict");
  EXPECT_EQ(m.input_h, 24);
  EXPECT_EQ(m.input_w, 32);
  EXPECT_EQ(m.mean, (std::vector<float>{0.1f, 0.2f, 0.3f}));
  EXPECT_EQ(m.classes, (std::vector<std::string>{"a", "b", "c"}));
  apply_meta_options(m, "16", "", "", "", "predict");
  EXPECT_EQ(m.input_h, 16);
  EXPECT_EQ(m.input_w, 16);
  expect_error([&] { apply_meta_options(m, "0", "", "", "", "predict"); }, {"predict: --size '0'"});
  expect_error([&] { apply_meta_options(m, "", "0.1,x,0.3", "", "", "predict"); }, {"--mean", "'x'"});
  expect_error([&] { apply_meta_options(m, "", "0.1,0.2", "", "", "predict"); }, {"--mean", "2 values"});
  expect_error([&] { apply_meta_options(m, "", "", "1,0,1", "", "predict"); }, {"--std", "> 0"});
  expect_error([&] { apply_meta_options(m, "", "", "", "a,,b", "predict"); }, {"--classes", "name 1"});
}

}  // namespace
}  // namespace rf

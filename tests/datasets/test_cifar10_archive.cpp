// CTest label `data`: the shared CIFAR-10 archive (../shared/datasets/cifar10-jpg.tar.zst from the source
// root), unpacked into the build folder's cache and loaded in full; skipped with a message when absent.
// Prints the unpack, decode and hash times. Cold (first) run: unpack ~2 s + decode ~1.4 s on 2 cores.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <omp.h>

#include <filesystem>

#include "datasets/source.h"
#include "datasets/cifar_binary.h"
#include "datasets/loader.h"

using namespace rf::data;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST(Cifar10Archive, UnpacksAndLoadsAll60000) {
  // RF_CIFAR10_ARCHIVE overrides the path (e.g. to check the skip: RF_CIFAR10_ARCHIVE=/none ctest -L data).
  const char* env = std::getenv("RF_CIFAR10_ARCHIVE");
  const std::string archive = env && *env ? env : std::string(RF_SHARED_DATASETS_DIR) + "/cifar10-jpg.tar.zst";
  if (!std::filesystem::exists(archive)) GTEST_SKIP() << "no archive at " << archive;
  auto t0 = std::chrono::steady_clock::now();
  const std::string dir = prepare_archive(archive, RF_TEST_CACHE_DIR);
  const double t_unpack = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  LoadOptions o;
  o.cache_dir = RF_TEST_CACHE_DIR;
  const ClassificationData cd = load_classification(archive, o);
  const double t_load = seconds_since(t0);

  EXPECT_EQ(cd.layout, Layout::image_folder);
  EXPECT_EQ(cd.train.N, 50000);
  EXPECT_EQ(cd.test.N, 10000);
  EXPECT_EQ(cd.train.H, 32);
  EXPECT_EQ(cd.train.W, 32);
  EXPECT_EQ(cd.train.classes, cifar10_class_names());
  EXPECT_EQ(cd.test.classes, cifar10_class_names());
  for (int64_t c : cd.train.class_counts()) EXPECT_EQ(c, 5000);
  for (int64_t c : cd.test.class_counts()) EXPECT_EQ(c, 1000);

  t0 = std::chrono::steady_clock::now();
  const std::string htrain = cd.train.hash_hex(), htest = cd.test.hash_hex();
  const double t_hash = seconds_since(t0);

  // Mean per channel of the train set, against the normalisation constants (JPEG re-encoding moves them
  // by a little).
  double mean[3] = {0, 0, 0};
  const int64_t P = 32 * 32;
  for (int64_t i = 0; i < cd.train.N; ++i)
    for (int c = 0; c < 3; ++c)
      for (int64_t p = 0; p < P; ++p) mean[c] += cd.train.image(i)[c * P + p];
  const Normalize norm;
  for (int c = 0; c < 3; ++c) {
    mean[c] /= double(cd.train.N * P) * 255.0;
    EXPECT_NEAR(mean[c], norm.mean[size_t(c)], 0.01) << "channel " << c;
  }

  t0 = std::chrono::steady_clock::now();
  const TrainVal tv = holdout_split(cd.train, 5000, 0);
  const double t_split = seconds_since(t0);
  EXPECT_EQ(tv.train.N, 45000);
  for (int64_t c : tv.val.class_counts()) EXPECT_EQ(c, 500);

  // One augmented epoch through the loader.
  t0 = std::chrono::steady_clock::now();
  LoaderOptions lo = LoaderOptions::train(1);
  BatchLoader loader(tv.train, lo);
  loader.start_epoch(0);
  int64_t seen = 0;
  for (Batch b; loader.next(b);) seen += b.size();
  const double t_epoch = seconds_since(t0);
  EXPECT_EQ(seen, 45000);

  std::printf("cifar10-jpg: unpack %.2f s (cached when ~0), decode 60,000 JPEGs %.2f s (%d threads), hash %.2f s, "
              "split %.2f s, one loader epoch (45,000 augmented) %.2f s\n",
              t_unpack, t_load, omp_get_max_threads(), t_hash, t_split, t_epoch);
  std::printf("cifar10-jpg: train %s, test %s, mean RGB %.4f %.4f %.4f, folder %s\n", htrain.c_str(),
              htest.c_str(), mean[0], mean[1], mean[2], dir.c_str());
  RecordProperty("decode_seconds", std::to_string(t_load));
  RecordProperty("train_hash", htrain);
}

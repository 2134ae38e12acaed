// Archive cache (unpack once, marker, stale marker, broken archive) and layout detection + loading.
#include <gtest/gtest.h>

#include <cstdlib>

#include "datasets/source.h"
#include "datasets/cifar_binary.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {
// src/mini/{train,test}/{cat,dog}/k.png, 4x4 images; archive = t/mini.tar.zst holding mini/...
std::string make_archive(const TempDir& t) {
  for (const char* split : {"train", "test"})
    for (const char* cls : {"dog", "cat"}) {
      const std::string dir = t / (std::string("src/mini/") + split + "/" + cls);
      std::filesystem::create_directories(dir);
      for (int k = 0; k < 3; ++k) {
        std::vector<uint8_t> img(48, uint8_t(k * 40 + (cls[0] == 'd' ? 7 : 0) + (split[1] == 'e' ? 100 : 0)));
        write_png_file(dir + "/" + std::to_string(k) + ".png", img.data(), 4, 4, 3);
      }
    }
  const std::string archive = t / "mini.tar.zst";
  const std::string cmd = "tar -C '" + (t / "src") + "' -cf - mini | zstd -q -o '" + archive + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return archive;
}
}  // namespace

TEST(Cache, UnpacksOnceAndReusesTheFolder) {
  TempDir t;
  const std::string archive = make_archive(t);
  const std::string cache = t / "cache";
  const std::string dir = prepare_archive(archive, cache);
  EXPECT_EQ(dir, (std::filesystem::path(cache) / "mini").string());
  EXPECT_TRUE(std::filesystem::exists(dir + "/.rf-unpacked"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/mini/train/cat/0.png"));
  // Second call reuses: a file we add survives.
  write_bytes(dir + "/sentinel", {1});
  EXPECT_EQ(prepare_archive(archive, cache), dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sentinel"));
  // No temp folder left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache)) entries += 1 + 0 * int(e.path().empty());
  EXPECT_EQ(entries, 1);
  // A changed archive (new mtime) makes the marker stale: unpacked again.
  std::filesystem::last_write_time(archive, std::filesystem::last_write_time(archive) + std::chrono::hours(1));
  EXPECT_EQ(prepare_archive(archive, cache), dir);
  EXPECT_FALSE(std::filesystem::exists(dir + "/sentinel"));
  // A folder without a marker (a killed unpack from an older version) is redone too.
  std::filesystem::remove(dir + "/.rf-unpacked");
  write_bytes(dir + "/sentinel", {1});
  prepare_archive(archive, cache);
  EXPECT_FALSE(std::filesystem::exists(dir + "/sentinel"));
}

TEST(Cache, BrokenArchiveIsAnErrorAndLeavesNothing) {
  TempDir t;
  std::vector<uint8_t> junk(1000);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = uint8_t(i * 13);
  write_bytes(t / "junk.tar.zst", junk);
  const std::string cache = t / "cache";
  const std::string msg = error_of([&] { prepare_archive(t / "junk.tar.zst", cache); });
  EXPECT_TRUE(contains(msg, "junk.tar.zst: unpacking failed")) << msg;
  EXPECT_FALSE(std::filesystem::exists(cache + "/junk"));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache)) entries += 1 + 0 * int(e.path().empty());
  EXPECT_EQ(entries, 0);
  EXPECT_TRUE(contains(error_of([&] { prepare_archive(t / "absent.tar.zst", cache); }), "no such file"));
  write_bytes(t / "x.zip", {1, 2});
  EXPECT_TRUE(contains(error_of([&] { prepare_archive(t / "x.zip", cache); }), "ending in .tar.zst"));
}

TEST(Cache, DetectsLayoutsAndLoads) {
  TempDir t;
  const std::string archive = make_archive(t);
  std::string where;
  EXPECT_EQ(detect_layout(archive), Layout::archive);
  EXPECT_EQ(detect_layout(t / "src", &where), Layout::image_folder);  // looks into the single sub-folder
  EXPECT_EQ(where, t / "src/mini");
  EXPECT_EQ(detect_layout(t / "src/mini/train"), Layout::unknown);

  LoadOptions o;
  o.cache_dir = t / "cache";
  const ClassificationData cd = load_classification(archive, o);
  EXPECT_EQ(cd.layout, Layout::image_folder);
  EXPECT_EQ(cd.train.N, 6);
  EXPECT_EQ(cd.test.N, 6);
  EXPECT_EQ(cd.train.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(cd.test.image(3)[0], 7 + 100);  // dog/0.png of test
  EXPECT_EQ(cd.train.content_hash(), load_classification(t / "src", o).train.content_hash());

  // CIFAR binary folder.
  const std::string bin = t / "bin/cifar-10-batches-bin";
  std::vector<uint8_t> rec(3073, 5);
  rec[0] = 3;
  for (int f = 1; f <= 5; ++f) write_bytes(bin + "/data_batch_" + std::to_string(f) + ".bin", rec);
  write_bytes(bin + "/test_batch.bin", rec);
  EXPECT_EQ(detect_layout(t / "bin"), Layout::cifar_binary);
  const ClassificationData cb = load_classification(t / "bin", o);
  EXPECT_EQ(cb.layout, Layout::cifar_binary);
  EXPECT_EQ(cb.train.N, 5);
  EXPECT_EQ(cb.test.labels[0], 3);

  // Class folders that differ between splits.
  std::filesystem::rename(t / "src/mini/test/dog", t / "src/mini/test/dgo");  // a typo in one split
  std::string msg = error_of([&] { load_classification(t / "src", o); });
  EXPECT_TRUE(contains(msg, "different class folders")) << msg;
  EXPECT_TRUE(contains(msg, "only in train: [dog]; only in test: [dgo]")) << msg;
  std::filesystem::remove_all(t / "src/mini/test/dgo");  // one class left in test
  msg = error_of([&] { load_classification(t / "src", o); });
  EXPECT_TRUE(contains(msg, "has one class folder (cat); classification needs at least 2 classes")) << msg;
  msg = error_of([&] { load_classification(t / "src/mini/train", o); });
  EXPECT_TRUE(contains(msg, "layout not recognised")) << msg;
  msg = error_of([&] { load_classification(t / "nothing", o); });
  EXPECT_TRUE(contains(msg, "no such file or folder")) << msg;
}

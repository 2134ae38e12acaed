// CamVid loader: small trees written by each test (exact label maps, void, class names, every error case),
// and the shared CamVid archive when present (test split counts and sizes, a train label histogram).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <png.h>

#include "datasets/source.h"
#include "datasets/camvid.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {

// An RGB image and a label map with value (x + 2y) % 12 at (x, y), so 11 (void) appears too.
void write_pair(const std::string& root, const std::string& stem, int W, int H, int LW = -1, int LH = -1,
                int bad_value = -1) {
  std::filesystem::create_directories(root + "/img");
  std::filesystem::create_directories(root + "/lab");
  std::vector<uint8_t> px(size_t(W) * size_t(H) * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(17 * i);
  write_png_file(root + "/img/" + stem + ".png", px.data(), H, W, 3);
  if (LW < 0) LW = W;
  if (LH < 0) LH = H;
  std::vector<uint8_t> lab(size_t(LW) * size_t(LH));
  for (int y = 0; y < LH; ++y)
    for (int x = 0; x < LW; ++x) lab[size_t(y) * size_t(LW) + size_t(x)] = uint8_t((x + 2 * y) % 12);
  if (bad_value >= 0) lab[size_t(2) * size_t(LW) + 3] = uint8_t(bad_value);  // pixel (x=3, y=2)
  write_png_file(root + "/lab/" + stem + ".png", lab.data(), LH, LW, 1);
}

// The message of the rf::Error load_camvid(root, split) throws once root/<split>.txt holds list.
std::string list_error(const std::string& root, const std::string& split, const std::string& list) {
  write_text(root + "/" + split + ".txt", list);
  return error_of([&] { load_camvid(root, split); });
}

// Each case: the split, its list, and what the error of loading it must say.
struct BadList {
  std::string split, list, needle;
};
void expect_list_errors(const std::string& root, const std::vector<BadList>& bad) {
  for (const BadList& b : bad) {
    const std::string m = list_error(root, b.split, b.list);
    EXPECT_TRUE(contains(m, b.needle)) << m;
  }
}

}  // namespace

TEST(CamVid, LoadsPairsExactly) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7);
  write_pair(root, "b", 5, 4);
  write_text(root + "/s.txt", "img/a.png lab/a.png\n\nimg/b.png   lab/b.png\n");
  const SegDataset d = load_camvid(root, "s");
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.classes, camvid_class_names());
  EXPECT_EQ(d.classes.size(), 11u);
  EXPECT_EQ(d.classes[3], "Road");
  EXPECT_EQ(d.void_label, 11);
  EXPECT_EQ(d.ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.images[0].W, 9);
  EXPECT_EQ(d.images[0].H, 7);
  EXPECT_EQ(d.images[1].W, 5);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 9; ++x) ASSERT_EQ(d.labels[0][size_t(y * 9 + x)], (x + 2 * y) % 12);
  EXPECT_EQ(d.images[0].hwc[10], uint8_t(170));  // PNG: exact
  EXPECT_NO_THROW(d.validate());
  const auto h = d.label_histogram();
  EXPECT_GT(h[11], 0);
  EXPECT_EQ(h[12], 0);
  EXPECT_EQ(load_camvid(root, "s").content_hash(), d.content_hash());
  // Other class counts: generic names; 11 is then a class and void must be above it.
  const SegDataset e = load_camvid(root, "s", 12, 255);
  EXPECT_EQ(e.classes.size(), 12u);
  EXPECT_EQ(e.classes[11], "class11");
  EXPECT_NE(e.content_hash(), d.content_hash());  // void label is hashed
}

TEST(CamVid, SizeMismatchNamesBoth) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7, 9, 6);
  const std::string m = list_error(root, "s", "img/a.png lab/a.png\n");
  EXPECT_TRUE(contains(m, "img/a.png is 7x9"));
  EXPECT_TRUE(contains(m, "lab/a.png is 6x9"));
}

TEST(CamVid, LabelOutOfRangeNamesValueAndPixel) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7, -1, -1, 12);
  const std::string m = list_error(root, "s", "img/a.png lab/a.png\n");
  EXPECT_TRUE(contains(m, "lab/a.png"));
  EXPECT_TRUE(contains(m, "value 12 at pixel (x=3, y=2)"));
  // With 13 classes and void 255, 12 is a class.
  EXPECT_NO_THROW(load_camvid(root, "s", 13, 255));
  // 255 is void with 12 classes / void 255, and an error with 11 classes / void 11.
  write_pair(root, "b", 9, 7, -1, -1, 255);
  write_text(root + "/t.txt", "img/b.png lab/b.png\n");
  EXPECT_NO_THROW(load_camvid(root, "t", 12, 255));
  EXPECT_TRUE(contains(error_of([&] { load_camvid(root, "t"); }), "value 255"));
}

TEST(CamVid, BadListLinesAndMissingFiles) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7);
  std::string m = list_error(root, "s", "img/a.png lab/a.png\nimg/a.png\n");
  EXPECT_TRUE(contains(m, "s.txt line 2"));
  EXPECT_TRUE(contains(m, "1 field(s)"));
  write_text(root + "/s3.txt", "img/a.png lab/a.png extra\n");
  EXPECT_TRUE(contains(error_of([&] { load_camvid(root, "s3"); }), "s3.txt line 1"));
  m = list_error(root, "m", "img/a.png lab/a.png\nimg/zz.png lab/zz.png\n");
  EXPECT_TRUE(contains(m, "missing image file"));
  EXPECT_TRUE(contains(m, "zz.png"));
  EXPECT_TRUE(contains(m, "m.txt line 2"));
  EXPECT_TRUE(contains(error_of([&] { load_camvid(root, "nosplit"); }), "nosplit.txt"));
  // A colour label map is refused; a JPEG label map is not a PNG.
  std::vector<uint8_t> rgb(9 * 7 * 3, 1);
  rgb[5] = 2;
  write_png_file(root + "/lab/c.png", rgb.data(), 7, 9, 3);
  write_text(root + "/c.txt", "img/a.png lab/c.png\n");
  EXPECT_TRUE(contains(error_of([&] { load_camvid(root, "c"); }), "channels differ at pixel (x=1, y=0)"));
  std::vector<uint8_t> g(9 * 7, 1);
  write_jpeg_file(root + "/lab/d.jpg", g.data(), 7, 9, 1, 95);
  write_text(root + "/d.txt", "img/a.png lab/d.jpg\n");
  EXPECT_TRUE(contains(error_of([&] { load_camvid(root, "d"); }), "not a PNG"));
  // Equal channels are fine.
  std::vector<uint8_t> grey3(9 * 7 * 3, 4);
  write_png_file(root + "/lab/e.png", grey3.data(), 7, 9, 3);
  write_text(root + "/e.txt", "img/a.png lab/e.png\n");
  EXPECT_EQ(load_camvid(root, "e").labels[0][20], 4);
}

TEST(CamVid, RealArchive) {
  const std::string archive = std::string(RF_SHARED_DATASETS_DIR) + "/camvid-jpg90.tar.zst";
  if (!std::filesystem::exists(archive)) GTEST_SKIP() << "no CamVid archive at " << archive;
  const std::string root = prepare_archive(archive, RF_TEST_CACHE_DIR) + "/CamVid";
  ASSERT_TRUE(looks_like_camvid(root)) << root;
  auto t0 = std::chrono::steady_clock::now();
  const SegDataset test = load_camvid(root, "test");
  const double t_test = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(test.size(), 233);
  for (size_t i = 0; i < test.images.size(); ++i) {
    ASSERT_EQ(test.images[i].W, 480) << test.ids[i];
    ASSERT_EQ(test.images[i].H, 360) << test.ids[i];
    ASSERT_EQ(test.labels[i].size(), 480u * 360u);
  }
  t0 = std::chrono::steady_clock::now();
  const SegDataset train = load_camvid(root, "train");
  const double t_train = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(train.size(), 367);
  const auto h = train.label_histogram();
  int64_t total = 0, in_range = 0;
  for (int v = 0; v < 256; ++v) total += h[size_t(v)];
  for (int v = 0; v <= 11; ++v) in_range += h[size_t(v)];
  EXPECT_EQ(in_range, total);
  EXPECT_EQ(total, 367 * 480 * 360);
  for (int c = 0; c < 11; ++c) EXPECT_GT(h[size_t(c)], 0) << train.classes[size_t(c)];
  // Road and sky are the big classes of street scenes; every class is rarer than a half.
  EXPECT_GT(h[3], total / 10);
  EXPECT_GT(h[0], total / 20);
  for (int c = 0; c <= 11; ++c) EXPECT_LT(h[size_t(c)], total / 2);
  std::printf("CamVid: test split (233 pairs) loaded in %.2f s, train (367) in %.2f s; void %.1f %%\n", t_test,
              t_train, 100.0 * double(h[11]) / double(total));
  EXPECT_LT(t_test, 30.0);
}

// ---- issue 18: list escapes, duplicates, label formats, pixel limit --------------------------------------
TEST(CamVid, ListPathsMustStayInsideTheRoot) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7);
  expect_list_errors(root, {
      {"abs", "/etc/passwd lab/a.png\n",
       "abs.txt line 1: image path '/etc/passwd' is an absolute path"},
      {"up", "img/a.png\tlab/a.png\nimg/a.png ../../outside/l.png\n",
       "up.txt line 2: label path '../../outside/l.png' leaves the dataset root"},
      {"up2", "img/../../a.png lab/a.png\n",
       "up2.txt line 1: image path 'img/../../a.png' leaves the dataset root"},
  });
  // Inside after normalisation is fine.
  write_text(root + "/ok.txt", "img/../img/a.png ./lab/a.png\n");
  EXPECT_EQ(load_camvid(root, "ok").size(), 1);
}

TEST(CamVid, DuplicatePairsAreRefused) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 9, 7);
  write_pair(root, "b", 9, 7);
  expect_list_errors(root, {
      {"dup", "img/a.png lab/a.png\nimg/b.png lab/b.png\nimg/./a.png lab/a.png\n",
       "dup.txt line 3: image img/./a.png is listed twice (lines 1 and 3)"},
      {"same", "img/a.png img/./a.png\n",
       "same.txt line 1: the image and the label map are the same file img/a.png"},
      {"dupl", "img/a.png lab/a.png\nimg/b.png lab/a.png\n",
       "dupl.txt line 2: label map lab/a.png is listed twice"},
  });
}

TEST(CamVid, SixteenBitLabelMapIsRefusedNotStripped) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 4, 3);
  // The same labels (0..11) stored in 16 bits: the old reader kept the high byte (all 0, mIoU 1.0).
  std::vector<uint8_t> packed(3 * 8);  // big-endian 16-bit samples, 4 per row
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) packed[size_t(8 * y + 2 * x + 1)] = uint8_t((x + 2 * y) % 12);
  write_png_raw(root + "/lab/a16.png", 4, 3, 16, PNG_COLOR_TYPE_GRAY, packed);
  const std::string m = list_error(root, "s", "img/a.png lab/a16.png\n");
  EXPECT_TRUE(contains(m, "lab/a16.png: label map is 16-bit (grayscale); expected an 8-bit single-channel PNG")) << m;
}

TEST(CamVid, PaletteLabelMapReadsTheIndices) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 4, 3);
  std::vector<png_color> pal;
  for (int i = 0; i < 12; ++i) pal.push_back({uint8_t(128 + i), uint8_t(64 + 3 * i), uint8_t(250 - i)});
  std::vector<uint8_t> want;  // 8-bit indices, row by row
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) want.push_back(uint8_t((3 * x + y) % 12));
  write_png_raw(root + "/lab/p.png", 4, 3, 8, PNG_COLOR_TYPE_PALETTE, want, pal);
  write_text(root + "/s.txt", "img/a.png lab/p.png\n");
  const SegDataset d = load_camvid(root, "s");
  EXPECT_EQ(d.labels[0], want);
  // In memory, through the entry point the fuzz target uses.
  const auto bytes = rf::testing::read_bytes(root + "/lab/p.png");
  int H = 0, W = 0;
  EXPECT_EQ(read_camvid_label(bytes.data(), bytes.size(), "p.png", 11, 11, &H, &W), want);
  EXPECT_EQ(H, 3);
  EXPECT_EQ(W, 4);
  const std::string m = error_of([&] { read_camvid_label(bytes.data(), bytes.size(), "p.png", 5, 255, &H, &W); });
  EXPECT_TRUE(contains(m, "label map p.png has value")) << m;
  EXPECT_TRUE(contains(m, "expected 0..4 or void 255")) << m;
}

TEST(CamVid, ImageAboveThePixelLimitIsRefused) {
  TempDir tmp;
  const std::string root = tmp / "cv";
  write_pair(root, "a", 40, 30);
  write_text(root + "/s.txt", "img/a.png lab/a.png\n");
  set_max_image_pixels(1000);
  const std::string m = error_of([&] { load_camvid(root, "s"); });
  set_max_image_pixels(0);
  EXPECT_TRUE(contains(m, "img/a.png: the PNG header declares 40x30 (WxH) = 1,200 pixels, above the limit of 1,000"))
      << m;
  EXPECT_EQ(load_camvid(root, "s").size(), 1);
}

// Image folders and the JPEG/PNG codecs: exact PNG round trip, JPEG within a tolerance, colour conversions,
// corrupted files and layout errors with clear messages, thread invariance, resize.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "datasets/image_folder.h"
#include "ds_testing.h"

using namespace rf::data;
using rf::testing::contains;
using rf::testing::error_of;
using rf::testing::read_bytes;
using rf::testing::TempDir;
using rf::testing::write_bytes;

namespace {
std::vector<uint8_t> noise_hwc(int H, int W, int C, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<uint8_t> v(size_t(H * W * C));
  for (auto& e : v) e = uint8_t(g() & 0xFF);
  return v;
}
// Smooth RGB content (JPEG keeps it within a few levels).
std::vector<uint8_t> smooth_hwc(int H, int W, int shift) {
  std::vector<uint8_t> v(size_t(H * W * 3));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      v[size_t((y * W + x) * 3 + 0)] = uint8_t(40 + 5 * x + shift);
      v[size_t((y * W + x) * 3 + 1)] = uint8_t(60 + 4 * y);
      v[size_t((y * W + x) * 3 + 2)] = uint8_t(120 + 2 * (x - y));
    }
  return v;
}
uint8_t chw(const Dataset& d, int64_t i, int c, int y, int x) { return d.image(i)[(c * d.H + y) * d.W + x]; }

// root/train/{zebra,apple}: apple has 2 PNGs (noise), zebra has 1 JPEG (smooth) and 1 PNG.
void make_tree(const TempDir& t, int H = 6, int W = 5) {
  std::filesystem::create_directories(t / "root/train/zebra");
  std::filesystem::create_directories(t / "root/train/apple");
  auto a0 = noise_hwc(H, W, 3, 1), a1 = noise_hwc(H, W, 3, 2), z1 = noise_hwc(H, W, 3, 3);
  write_png_file(t / "root/train/apple/b.png", a1.data(), H, W, 3);
  write_png_file(t / "root/train/apple/a.png", a0.data(), H, W, 3);
  auto z0 = smooth_hwc(H, W, 0);
  write_jpeg_file(t / "root/train/zebra/0.jpg", z0.data(), H, W, 3, 95);
  write_png_file(t / "root/train/zebra/1.PNG", z1.data(), H, W, 3);
}
}  // namespace

TEST(ImageFolder, PngRoundTripIsExact) {
  TempDir t;
  const auto img = noise_hwc(7, 9, 3, 11);
  write_png_file(t / "x.png", img.data(), 7, 9, 3);
  const Image d = decode_png_file(t / "x.png");
  ASSERT_EQ(d.H, 7);
  ASSERT_EQ(d.W, 9);
  ASSERT_EQ(d.C, 3);
  EXPECT_EQ(d.hwc, img);
}

TEST(ImageFolder, JpegRoundTripWithinTolerance) {
  TempDir t;
  const auto img = smooth_hwc(16, 16, 3);
  write_jpeg_file(t / "x.jpg", img.data(), 16, 16, 3, 95);
  const Image d = decode_jpeg_file(t / "x.jpg");
  ASSERT_EQ(d.H, 16);
  ASSERT_EQ(d.W, 16);
  int worst = 0;
  double sum = 0;
  for (size_t i = 0; i < img.size(); ++i) {
    const int e = std::abs(int(d.hwc[i]) - int(img[i]));
    worst = std::max(worst, e);
    sum += e;
  }
  EXPECT_LE(worst, 12);
  EXPECT_LE(sum / double(img.size()), 3.0);
}

TEST(ImageFolder, GrayAndAlphaBecomeRgb) {
  TempDir t;
  const auto g = noise_hwc(4, 3, 1, 5), ga = noise_hwc(4, 3, 2, 6), rgba = noise_hwc(4, 3, 4, 7);
  write_png_file(t / "g.png", g.data(), 4, 3, 1);
  write_png_file(t / "ga.png", ga.data(), 4, 3, 2);
  write_png_file(t / "rgba.png", rgba.data(), 4, 3, 4);
  const Image dg = decode_png_file(t / "g.png"), dga = decode_png_file(t / "ga.png"),
              drgba = decode_png_file(t / "rgba.png");
  for (int p = 0; p < 12; ++p)
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(dg.hwc[size_t(p * 3 + c)], g[size_t(p)]);
      EXPECT_EQ(dga.hwc[size_t(p * 3 + c)], ga[size_t(p * 2)]);
      EXPECT_EQ(drgba.hwc[size_t(p * 3 + c)], rgba[size_t(p * 4 + c)]);
    }
  std::vector<uint8_t> gj(64, 0);
  for (int i = 0; i < 64; ++i) gj[size_t(i)] = uint8_t(100 + i);
  write_jpeg_file(t / "g.jpg", gj.data(), 8, 8, 1, 95);
  const Image dj = decode_jpeg_file(t / "g.jpg");
  ASSERT_EQ(dj.C, 3);
  for (int p = 0; p < 64; ++p) {
    EXPECT_EQ(dj.hwc[size_t(p * 3)], dj.hwc[size_t(p * 3 + 1)]);
    EXPECT_NEAR(dj.hwc[size_t(p * 3)], gj[size_t(p)], 6);
  }
}

TEST(ImageFolder, CorruptedJpegThrowsNamingTheFile) {
  TempDir t;
  const auto img = smooth_hwc(32, 32, 0);
  write_jpeg_file(t / "ok.jpg", img.data(), 32, 32, 3, 90);
  const auto bytes = read_bytes(t / "ok.jpg");
  // Truncated to half: libjpeg would fill grey and warn; we must refuse.
  write_bytes(t / "trunc.jpg", std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(bytes.size() / 2)));
  std::string msg = error_of([&] { decode_image_file(t / "trunc.jpg"); });
  EXPECT_TRUE(contains(msg, "trunc.jpg: bad JPEG")) << msg;
  // Garbage after the SOI marker.
  std::vector<uint8_t> garbage = {0xFF, 0xD8, 0xFF};
  for (int i = 0; i < 200; ++i) garbage.push_back(uint8_t(i * 37 + 11));
  write_bytes(t / "garbage.jpg", garbage);
  msg = error_of([&] { decode_image_file(t / "garbage.jpg"); });
  EXPECT_TRUE(contains(msg, "garbage.jpg: bad JPEG")) << msg;
  // Scan data overwritten in the middle.
  auto smashed = bytes;
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) smashed[i] = 0xFF;
  write_bytes(t / "smashed.jpg", smashed);
  msg = error_of([&] { decode_jpeg_file(t / "smashed.jpg"); });
  EXPECT_TRUE(contains(msg, "smashed.jpg")) << msg;
  // Not an image at all, and an empty file.
  write_bytes(t / "text.jpg", {'h', 'e', 'l', 'l', 'o'});
  msg = error_of([&] { decode_image_file(t / "text.jpg"); });
  EXPECT_TRUE(contains(msg, "text.jpg: neither a JPEG")) << msg;
  write_bytes(t / "empty.jpg", {});
  msg = error_of([&] { decode_jpeg_file(t / "empty.jpg"); });
  EXPECT_TRUE(contains(msg, "empty.jpg: not a JPEG file")) << msg;
}

TEST(ImageFolder, CorruptedPngThrowsNamingTheFile) {
  TempDir t;
  const auto img = noise_hwc(16, 16, 3, 9);
  write_png_file(t / "ok.png", img.data(), 16, 16, 3);
  const auto bytes = read_bytes(t / "ok.png");
  write_bytes(t / "trunc.png", std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(bytes.size() / 2)));
  std::string msg = error_of([&] { decode_png_file(t / "trunc.png"); });
  EXPECT_TRUE(contains(msg, "trunc.png: bad PNG")) << msg;
  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x5A;  // CRC or zlib error
  write_bytes(t / "flipped.png", flipped);
  msg = error_of([&] { decode_png_file(t / "flipped.png"); });
  EXPECT_TRUE(contains(msg, "flipped.png: bad PNG")) << msg;
}

TEST(ImageFolder, LoadsSortedClassesAndFiles) {
  TempDir t;
  make_tree(t);
  const std::string junk = "notes";
  write_bytes(t / "root/train/apple/readme.txt", std::vector<uint8_t>(junk.begin(), junk.end()));
  ImageFolderReport rep;
  const Dataset d = load_image_folder(t / "root", "train", {}, &rep);
  ASSERT_EQ(d.N, 4);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"apple", "zebra"}));
  EXPECT_EQ(d.labels, (std::vector<int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(d.H, 6);
  EXPECT_EQ(d.W, 5);
  EXPECT_EQ(rep.skipped_files, 1);
  // apple/a.png (noise seed 1) first, exactly, in CHW.
  const auto a0 = noise_hwc(6, 5, 3, 1);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) ASSERT_EQ(chw(d, 0, c, y, x), a0[size_t((y * 5 + x) * 3 + c)]);
  // zebra/0.jpg within JPEG tolerance.
  const auto z0 = smooth_hwc(6, 5, 0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) EXPECT_NEAR(chw(d, 2, c, y, x), z0[size_t((y * 5 + x) * 3 + c)], 14);
  // Thread count changes nothing.
  ImageFolderOptions one;
  one.threads = 1;
  ImageFolderOptions two;
  two.threads = 2;
  EXPECT_EQ(load_image_folder(t / "root", "train", one).content_hash(),
            load_image_folder(t / "root", "train", two).content_hash());
  // Strict mode refuses the text file.
  ImageFolderOptions strict;
  strict.skip_non_images = false;
  const std::string msg = error_of([&] { load_image_folder(t / "root", "train", strict); });
  EXPECT_TRUE(contains(msg, "readme.txt is not an image")) << msg;
}

TEST(ImageFolder, LayoutErrors) {
  TempDir t;
  make_tree(t);
  std::string msg = error_of([&] { load_image_folder(t / "root", "test"); });
  EXPECT_TRUE(contains(msg, "missing split folder")) << msg;
  EXPECT_TRUE(contains(msg, "root/test")) << msg;
  msg = error_of([&] { load_image_folder(t / "absent", "train"); });
  EXPECT_TRUE(contains(msg, "absent is not a directory")) << msg;
  std::filesystem::create_directories(t / "root/val");
  msg = error_of([&] { load_image_folder(t / "root", "val"); });
  EXPECT_TRUE(contains(msg, "has no class folders")) << msg;
  std::filesystem::create_directories(t / "root/train/empty");
  msg = error_of([&] { load_image_folder(t / "root", "train"); });
  EXPECT_TRUE(contains(msg, "class folder")) << msg;
  EXPECT_TRUE(contains(msg, "train/empty holds no .jpg/.jpeg/.png images")) << msg;
}

TEST(ImageFolder, BadImageInFolderNamesIt) {
  TempDir t;
  make_tree(t);
  write_bytes(t / "root/train/zebra/2.jpg", {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 1, 2, 3});
  const std::string msg = error_of([&] { load_image_folder(t / "root", "train"); });
  EXPECT_TRUE(contains(msg, "zebra/2.jpg: bad JPEG")) << msg;
}

TEST(ImageFolder, SizeMismatchAndResize) {
  TempDir t;
  make_tree(t);
  const auto big = noise_hwc(12, 10, 3, 4);
  write_png_file(t / "root/train/zebra/9.png", big.data(), 12, 10, 3);
  const std::string msg = error_of([&] { load_image_folder(t / "root", "train"); });
  EXPECT_TRUE(contains(msg, "9.png is 12x10 (HxW) but")) << msg;
  EXPECT_TRUE(contains(msg, "is 6x5; all images must share one size")) << msg;
  ImageFolderOptions o;
  o.resize_h = 6;
  o.resize_w = 5;
  const Dataset d = load_image_folder(t / "root", "train", o);
  EXPECT_EQ(d.N, 5);
  // Exact 2x downscale with align_corners=false samples at x+0.5 between two source pixels: their mean.
  const int x = 1, y = 2, c = 1;
  const int a = big[size_t(((2 * y) * 10 + 2 * x) * 3 + c)], b = big[size_t(((2 * y) * 10 + 2 * x + 1) * 3 + c)],
            e = big[size_t(((2 * y + 1) * 10 + 2 * x) * 3 + c)], f = big[size_t(((2 * y + 1) * 10 + 2 * x + 1) * 3 + c)];
  EXPECT_NEAR(chw(d, 4, c, y, x), (a + b + e + f) / 4.0, 1.0);
}

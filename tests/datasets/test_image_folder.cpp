// Image folders and the JPEG/PNG codecs: exact PNG round trip, JPEG within a tolerance, colour conversions,
// corrupted files and layout errors with clear messages, thread invariance, resize.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <png.h>
#include <zlib.h>

#include <cstdio>

#include "datasets/image_folder.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

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
  write_text(t / "root/train/apple/readme.txt", "notes");
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

// ---- issue 18: pixel limit, label maps, skipped files, one class ------------------------------------------
namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
// A valid small PNG whose IHDR is rewritten to declare W x H (CRC fixed), as a hostile file would.
std::vector<uint8_t> png_declaring(const TempDir& t, uint32_t W, uint32_t H) {
  const auto img = noise_hwc(4, 4, 3, 5);
  write_png_file(t / "small.png", img.data(), 4, 4, 3);
  auto b = read_bytes(t / "small.png");
  EXPECT_EQ(be32(b.data() + 12), 0x49484452u);  // "IHDR"
  put_be32(b.data() + 16, W);
  put_be32(b.data() + 20, H);
  put_be32(b.data() + 29, uint32_t(crc32(0, b.data() + 12, 17)));
  return b;
}
// A valid small JPEG whose SOF0 is rewritten to declare W x H.
std::vector<uint8_t> jpeg_declaring(const TempDir& t, uint16_t W, uint16_t H) {
  const auto img = smooth_hwc(16, 16, 0);
  write_jpeg_file(t / "small.jpg", img.data(), 16, 16, 3, 90);
  auto b = read_bytes(t / "small.jpg");
  for (size_t i = 2; i + 9 < b.size(); ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xC0) {
      b[i + 5] = uint8_t(H >> 8), b[i + 6] = uint8_t(H), b[i + 7] = uint8_t(W >> 8), b[i + 8] = uint8_t(W);
      return b;
    }
  ADD_FAILURE() << "no SOF0 marker";
  return b;
}
struct LimitGuard {
  ~LimitGuard() { set_max_image_pixels(0); }
};
}  // namespace

TEST(ImageLimit, PngHeaderAboveTheLimitIsRefusedBeforeDecoding) {
  TempDir t;
  write_bytes(t / "bomb.png", png_declaring(t, 20000, 20000));
  EXPECT_LT(read_bytes(t / "bomb.png").size(), 400u);
  std::string msg = error_of([&] { decode_png_file(t / "bomb.png"); });
  EXPECT_TRUE(contains(msg, "bomb.png: the PNG header declares 20000x20000 (WxH) = 400,000,000 pixels")) << msg;
  EXPECT_TRUE(contains(msg, "above the limit of 67,108,864 pixels")) << msg;
  EXPECT_TRUE(contains(msg, "--max-image-pixels")) << msg;
  // 65536 x 65536 (the 12.9 GB zero-fill of the issue), through every entry point.
  write_bytes(t / "huge.png", png_declaring(t, 65536, 65536));
  for (auto f : {+[](const std::string& p) { decode_image_file(p); }, +[](const std::string& p) { decode_png_file(p); },
                 +[](const std::string& p) { decode_label_png_file(p); }}) {
    msg = error_of([&] { f(t / "huge.png"); });
    EXPECT_TRUE(contains(msg, "huge.png: the PNG header declares 65536x65536")) << msg;
  }
  const auto hb = read_bytes(t / "huge.png");
  msg = error_of([&] { read_image_header_memory(hb.data(), hb.size(), "mem.png"); });
  EXPECT_TRUE(contains(msg, "mem.png: the PNG header declares 65536x65536")) << msg;
  // Zero width is refused too.
  write_bytes(t / "zero.png", png_declaring(t, 0, 5));
  msg = error_of([&] { decode_png_file(t / "zero.png"); });
  EXPECT_TRUE(contains(msg, "zero.png")) << msg;
}

TEST(ImageLimit, JpegHeaderAboveTheLimitIsRefused) {
  TempDir t;
  write_bytes(t / "bomb.jpg", jpeg_declaring(t, 65000, 65000));
  const std::string msg = error_of([&] { decode_image_file(t / "bomb.jpg"); });
  EXPECT_TRUE(contains(msg, "bomb.jpg: the JPEG header declares 65000x65000 (WxH) = 4,225,000,000 pixels")) << msg;
  const auto b = read_bytes(t / "small.jpg");
  const ImageHeader h = read_image_header_memory(b.data(), b.size(), "small.jpg");
  EXPECT_EQ(h.W, 16);
  EXPECT_EQ(h.H, 16);
  EXPECT_STREQ(h.format, "JPEG");
}

TEST(ImageLimit, TheOptionMovesTheLimit) {
  TempDir t;
  LimitGuard restore;
  const auto img = noise_hwc(100, 100, 3, 7);
  write_png_file(t / "a.png", img.data(), 100, 100, 3);
  write_jpeg_file(t / "a.jpg", img.data(), 100, 100, 3);
  set_max_image_pixels(9999);
  EXPECT_EQ(max_image_pixels(), 9999);
  std::string msg = error_of([&] { decode_png_file(t / "a.png"); });
  EXPECT_TRUE(contains(msg, "a.png: the PNG header declares 100x100 (WxH) = 10,000 pixels, above the limit of 9,999"))
      << msg;
  msg = error_of([&] { decode_jpeg_file(t / "a.jpg"); });
  EXPECT_TRUE(contains(msg, "a.jpg: the JPEG header declares 100x100")) << msg;
  set_max_image_pixels(10000);
  EXPECT_EQ(decode_png_file(t / "a.png").hwc, img);
  EXPECT_EQ(decode_jpeg_file(t / "a.jpg").W, 100);
  set_max_image_pixels(0);
  EXPECT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
}

TEST(ImageCorrupt, EveryTruncationIsAnErrorNamingTheFile) {
  TempDir t;
  const auto img = smooth_hwc(24, 24, 1);
  write_jpeg_file(t / "ok.jpg", img.data(), 24, 24, 3);
  write_png_file(t / "ok.png", noise_hwc(24, 24, 3, 3).data(), 24, 24, 3);
  for (const char* name : {"ok.jpg", "ok.png"}) {
    const auto b = read_bytes(t / name);
    for (size_t cut = 0; cut < b.size(); cut += std::max<size_t>(1, b.size() / 97)) {
      const std::string what = std::string("cut-") + name;
      const std::string msg = error_of([&] { decode_image_memory(b.data(), cut, what); });
      EXPECT_TRUE(contains(msg, what + ": ")) << "cut at " << cut << ": " << msg;
    }
  }
}

TEST(LabelPng, SixteenBitIsRefusedNamingTheFile) {
  TempDir t;
  // Values 0..11 in 16 bits: stripping to the high byte would make every label 0.
  std::vector<uint8_t> px;
  for (int i = 0; i < 12; ++i) px.push_back(0), px.push_back(uint8_t(i));
  write_png_raw(t / "labels16.png", 4, 3, 16, PNG_COLOR_TYPE_GRAY, px);
  std::string msg = error_of([&] { decode_label_png_file(t / "labels16.png"); });
  EXPECT_TRUE(contains(msg, "labels16.png: label map is 16-bit (grayscale); expected an 8-bit single-channel PNG"))
      << msg;
  std::vector<uint8_t> rgb16(size_t(2 * 2 * 6), 0);
  write_png_raw(t / "rgb16.png", 2, 2, 16, PNG_COLOR_TYPE_RGB, rgb16);
  msg = error_of([&] { decode_label_png_file(t / "rgb16.png"); });
  EXPECT_TRUE(contains(msg, "rgb16.png: label map is 16-bit (RGB)")) << msg;
}

TEST(LabelPng, AlphaIsRefusedAndColouredRgbIsRefused) {
  TempDir t;
  write_png_raw(t / "ga.png", 2, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, std::vector<uint8_t>(8, 1));
  std::string msg = error_of([&] { decode_label_png_file(t / "ga.png"); });
  EXPECT_TRUE(contains(msg, "ga.png: label map is grayscale+alpha (has an alpha channel)")) << msg;
  write_png_raw(t / "rgba.png", 2, 2, 8, PNG_COLOR_TYPE_RGB_ALPHA, std::vector<uint8_t>(16, 1));
  msg = error_of([&] { decode_label_png_file(t / "rgba.png"); });
  EXPECT_TRUE(contains(msg, "rgba.png: label map is RGBA")) << msg;
  std::vector<uint8_t> rgb = {3, 3, 3, 5, 5, 5, 7, 7, 7, 1, 2, 1};
  write_png_raw(t / "rgb.png", 2, 2, 8, PNG_COLOR_TYPE_RGB, rgb);
  msg = error_of([&] { decode_label_png_file(t / "rgb.png"); });
  EXPECT_TRUE(contains(msg, "rgb.png: label map is an RGB PNG whose channels differ at pixel (x=1, y=1): 1, 2, 1"))
      << msg;
  rgb[10] = 1;  // now grey everywhere: read exactly, one channel
  write_png_raw(t / "grey_rgb.png", 2, 2, 8, PNG_COLOR_TYPE_RGB, rgb);
  const Image g = decode_label_png_file(t / "grey_rgb.png");
  EXPECT_EQ(g.C, 1);
  EXPECT_EQ(g.hwc, (std::vector<uint8_t>{3, 5, 7, 1}));
}

TEST(LabelPng, PaletteAndLowBitDepthReadTheStoredValuesExactly) {
  TempDir t;
  // 8-bit palette: indices 0..11 with colours that differ from the indices (expansion would show).
  std::vector<png_color> pal;
  for (int i = 0; i < 12; ++i) pal.push_back({uint8_t(200 - 10 * i), uint8_t(17 * i), uint8_t(255 - i)});
  std::vector<uint8_t> idx(4 * 3);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = uint8_t((i * 5) % 12);
  write_png_raw(t / "pal8.png", 4, 3, 8, PNG_COLOR_TYPE_PALETTE, idx, pal);
  Image l = decode_label_png_file(t / "pal8.png");
  EXPECT_EQ(l.C, 1);
  EXPECT_EQ(l.W, 4);
  EXPECT_EQ(l.H, 3);
  EXPECT_EQ(l.hwc, idx);
  // 4-bit palette and 4-bit grayscale: unpacked, not scaled (value 11 stays 11, not 187).
  std::vector<uint8_t> packed = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB};  // 2 rows of 6 samples, 3 bytes each
  write_png_raw(t / "pal4.png", 6, 2, 4, PNG_COLOR_TYPE_PALETTE, packed, pal);
  write_png_raw(t / "gray4.png", 6, 2, 4, PNG_COLOR_TYPE_GRAY, packed);
  const std::vector<uint8_t> want = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  EXPECT_EQ(decode_label_png_file(t / "pal4.png").hwc, want);
  EXPECT_EQ(decode_label_png_file(t / "gray4.png").hwc, want);
  // 8-bit grayscale: exact.
  std::vector<uint8_t> g8 = {0, 11, 255, 7};
  write_png_raw(t / "g8.png", 2, 2, 8, PNG_COLOR_TYPE_GRAY, g8);
  EXPECT_EQ(decode_label_png_file(t / "g8.png").hwc, g8);
}

TEST(ImageFolder, UnsupportedImageExtensionIsAnErrorOtherFilesAWarning) {
  TempDir t;
  make_tree(t);
  for (const char* ext : {"bmp", "webp", "GIF", "tiff"}) {
    const std::string f = t / (std::string("root/train/zebra/extra.") + ext);
    write_bytes(f, {1, 2, 3});
    const std::string msg = error_of([&] { load_image_folder(t / "root", "train"); });
    EXPECT_TRUE(contains(msg, std::string("zebra/extra.") + ext + " has an image extension this loader cannot decode"))
        << msg;
    EXPECT_TRUE(contains(msg, "accepted: .jpg, .jpeg or .png")) << msg;
    std::filesystem::remove(f);
  }
  write_bytes(t / "root/train/zebra/notes.txt", {'x'});
  write_bytes(t / "root/train/apple/.DS_Store", {'x'});
  std::filesystem::create_directories(t / "root/train/apple/nested");
  ImageFolderReport rep;
  const Dataset d = load_image_folder(t / "root", "train", {}, &rep);
  EXPECT_EQ(d.N, 4);
  EXPECT_EQ(rep.skipped_files, 3);
  EXPECT_TRUE(contains(rep.warning, "skipped 3 file(s)/folder(s)")) << rep.warning;
  EXPECT_TRUE(contains(rep.warning, "notes.txt")) << rep.warning;
  // An image directly in the split folder (no class) is an error.
  write_png_file(t / "root/train/loose.png", noise_hwc(6, 5, 3, 1).data(), 6, 5, 3);
  const std::string msg = error_of([&] { load_image_folder(t / "root", "train"); });
  EXPECT_TRUE(contains(msg, "loose.png lies directly in the split folder")) << msg;
}

TEST(ImageFolder, OneClassIsRefused) {
  TempDir t;
  make_tree(t);
  std::filesystem::remove_all(t / "root/train/zebra");
  const std::string msg = error_of([&] { load_image_folder(t / "root", "train"); });
  EXPECT_TRUE(contains(msg, "has one class folder (apple); classification needs at least 2 classes")) << msg;
  EXPECT_TRUE(contains(msg, "root/train")) << msg;
}

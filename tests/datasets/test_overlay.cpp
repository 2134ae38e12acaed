// Pictures of predictions (datasets/overlay.h): rectangle borders exactly, clipping against a brute-force
// reference on random and extreme boxes, text confined to its label and glyphs pairwise distinct, the mask
// blend formula, panel layout sizes, palette distinctness, and a full example written as PNG and read back.
// Set RF_DRAW_EXAMPLE=/some/path.png to keep a copy of the example picture for looking at.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "datasets/overlay.h"
#include "datasets/synthetic_dense.h"
#include "ds_testing.h"

using namespace rf::data;
using rf::testing::contains;
using rf::testing::error_of;

namespace {

const Rgb kRed{255, 0, 0}, kFill{50, 60, 70};

Image solid(int H, int W, Rgb c) {
  Image img;
  img.H = H;
  img.W = W;
  img.C = 3;
  img.hwc.resize(size_t(H) * size_t(W) * 3);
  for (size_t i = 0; i < img.hwc.size(); i += 3) {
    img.hwc[i] = c[0];
    img.hwc[i + 1] = c[1];
    img.hwc[i + 2] = c[2];
  }
  return img;
}

Image random_image(int H, int W, uint32_t seed) {
  Image img = solid(H, W, kFill);
  std::mt19937 rng(seed);
  for (auto& v : img.hwc) v = uint8_t(rng() & 255);
  return img;
}

Rgb px(const Image& img, int x, int y) {
  const size_t i = (size_t(y) * size_t(img.W) + size_t(x)) * 3;
  return {img.hwc[i], img.hwc[i + 1], img.hwc[i + 2]};
}

// The border rule of overlay.h written out per pixel: rounded (half away from zero), sorted corners, at least
// one pixel wide, `t` pixels inside the box. Only for finite coordinates of moderate size.
bool on_border(int x, int y, double x0, double y0, double x1, double y1, int t) {
  int64_t a = std::llround(std::min(x0, x1)), b = std::llround(std::max(x0, x1));
  int64_t c = std::llround(std::min(y0, y1)), d = std::llround(std::max(y0, y1));
  if (b <= a) b = a + 1;
  if (d <= c) d = c + 1;
  if (x < a || x >= b || y < c || y >= d) return false;
  return x < a + t || x >= b - t || y < c + t || y >= d - t;
}

std::string box_str(float x0, float y0, float x1, float y1, int t) {
  return fmt::format("draw_rect({}, {}, {}, {}, t={})", x0, y0, x1, y1, t);
}

// Every pixel: colour `c` where expected(x, y), the original pixel elsewhere.
::testing::AssertionResult matches(const Image& got, const Image& before, Rgb c,
                                   const std::function<bool(int, int)>& expected) {
  for (int y = 0; y < got.H; ++y)
    for (int x = 0; x < got.W; ++x) {
      const Rgb want = expected(x, y) ? c : px(before, x, y);
      if (px(got, x, y) != want)
        return ::testing::AssertionFailure()
               << "pixel (x=" << x << ", y=" << y << ") is " << int(px(got, x, y)[0]) << "," << int(px(got, x, y)[1])
               << "," << int(px(got, x, y)[2]) << ", expected " << int(want[0]) << "," << int(want[1]) << ","
               << int(want[2]);
    }
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(DrawRect, BorderPixelsExactly) {
  for (int t : {1, 2, 3}) {
    const float x0 = 2.6f, y0 = 3.4f, x1 = 12.2f, y1 = 14.5f;  // -> [3, 12) x [3, 15) (14.5 rounds up)
    SCOPED_TRACE(box_str(x0, y0, x1, y1, t));
    const Image before = random_image(17, 20, 1);
    Image img = before;
    draw_rect(img, x0, y0, x1, y1, kRed, t);
    EXPECT_TRUE(matches(img, before, kRed, [&](int x, int y) { return on_border(x, y, x0, y0, x1, y1, t); }));
    // Spot checks that do not depend on the reference rule.
    EXPECT_EQ(px(img, 3, 3), kRed);
    EXPECT_EQ(px(img, 11, 14), kRed);
    EXPECT_EQ(px(img, 3 + t - 1, 8), kRed);
    EXPECT_EQ(px(img, 3 + t, 8), px(before, 3 + t, 8));  // just inside
    EXPECT_EQ(px(img, 2, 8), px(before, 2, 8));          // just outside
    EXPECT_EQ(px(img, 12, 8), px(before, 12, 8));
    EXPECT_EQ(px(img, 7, 15), px(before, 7, 15));
  }
}

TEST(DrawRect, RandomBoxesClippedLikeTheReference) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> coord(-30.0f, 50.0f);
  const Image before = random_image(19, 23, 2);
  for (int it = 0; it < 400; ++it) {
    const float x0 = coord(rng), y0 = coord(rng), x1 = coord(rng), y1 = coord(rng);  // inverted half the time
    const int t = 1 + int(rng() % 4);
    SCOPED_TRACE(box_str(x0, y0, x1, y1, t));
    Image img = before;
    draw_rect(img, x0, y0, x1, y1, kRed, t);
    ASSERT_EQ(img.hwc.size(), before.hwc.size());
    ASSERT_TRUE(matches(img, before, kRed, [&](int x, int y) { return on_border(x, y, x0, y0, x1, y1, t); }));
  }
}

TEST(DrawRect, ExtremeCoordinates) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float big = 1e9f, fmax = std::numeric_limits<float>::max();
  const Image before = random_image(16, 18, 3);
  struct Case {
    float x0, y0, x1, y1;
    std::function<bool(int, int)> expected;
  };
  const std::vector<Case> cases = {
      // Enclosing the whole image: every border pixel lies outside.
      {-big, -big, big, big, [](int, int) { return false; }},
      {-inf, -inf, inf, inf, [](int, int) { return false; }},
      {-fmax, -fmax, fmax, fmax, [](int, int) { return false; }},
      // Vertical edges across the whole image, horizontal ones outside.
      {5, -big, 10, big, [](int x, int) { return x == 5 || x == 6 || x == 8 || x == 9; }},
      {5, -inf, 10, inf, [](int x, int) { return x == 5 || x == 6 || x == 8 || x == 9; }},
      // Top-left edges in view, the others far away.
      {-1, -1, big, inf, [](int x, int y) { return x == 0 || y == 0; }},
      // Entirely outside.
      {big, big, inf, inf, [](int, int) { return false; }},
      {-inf, 3, -big, 9, [](int, int) { return false; }},
      {-30, -30, -3, -3, [](int, int) { return false; }},
      // NaN anywhere: skipped.
      {nan, 2, 10, 10, [](int, int) { return false; }},
      {2, 2, 10, nan, [](int, int) { return false; }},
      // Sub-pixel: one pixel wide and high.
      {7.2f, 4.1f, 7.3f, 4.2f, [](int x, int y) { return x == 7 && y == 4; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(box_str(c.x0, c.y0, c.x1, c.y1, 2));
    Image img = before;
    draw_rect(img, c.x0, c.y0, c.x1, c.y1, kRed, 2);
    EXPECT_TRUE(matches(img, before, kRed, c.expected));
    Image dashed = before;
    draw_rect_dashed(dashed, c.x0, c.y0, c.x1, c.y1, kRed, 2, 3);  // a subset of the solid border
    EXPECT_TRUE(matches(dashed, before, kRed, [&](int x, int y) { return c.expected(x, y) && px(dashed, x, y) == kRed; }));
  }
}

TEST(DrawRect, DashedIsAStrictNonEmptySubset) {
  const Image before = solid(30, 30, kFill);
  Image solid_img = before, dashed = before;
  draw_rect(solid_img, 3, 4, 27, 25, kRed, 1);
  draw_rect_dashed(dashed, 3, 4, 27, 25, kRed, 1, 4);
  int n_solid = 0, n_dashed = 0;
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 30; ++x) {
      const bool s = px(solid_img, x, y) == kRed, d = px(dashed, x, y) == kRed;
      EXPECT_FALSE(d && !s) << x << "," << y;
      n_solid += s;
      n_dashed += d;
    }
  EXPECT_GT(n_dashed, n_solid / 3);
  EXPECT_LT(n_dashed, n_solid * 2 / 3);
  // Runs of 4 along the top edge: x = 3..6 on, 7..10 off, 11..14 on.
  EXPECT_EQ(px(dashed, 6, 4), kRed);
  EXPECT_EQ(px(dashed, 7, 4), kFill);
  EXPECT_EQ(px(dashed, 11, 4), kRed);
}

TEST(DrawRect, BadInput) {
  Image gray = solid(4, 4, kFill);
  gray.C = 1;
  gray.hwc.resize(16);
  EXPECT_TRUE(contains(error_of([&] { draw_rect(gray, 0, 0, 2, 2, kRed); }), "C = 1"));
  Image img = solid(4, 4, kFill);
  EXPECT_TRUE(contains(error_of([&] { draw_rect(img, 0, 0, 2, 2, kRed, 0); }), "thickness 0"));
  EXPECT_TRUE(contains(error_of([&] { draw_rect_dashed(img, 0, 0, 2, 2, kRed, 1, 0); }), "dash length 0"));
  img.hwc.pop_back();
  EXPECT_TRUE(contains(error_of([&] { draw_rect(img, 0, 0, 2, 2, kRed); }), "expected H*W*3"));
}

TEST(DrawText, WritesOnlyInsideItsLabel) {
  const Rgb sentinel{1, 2, 3}, fg{250, 250, 250}, bg{0, 0, 90};
  struct Case {
    int x, y, scale;
    std::string text;
  };
  const std::vector<Case> cases = {{3, 5, 1, "Ab 0.87%"},     {2, 1, 2, "mAP@0.5"},      {-7, -3, 1, "clipped_left"},
                                   {50, 35, 1, "off (right)"}, {-1000, 4, 1, "gone"},    {10, 1000000, 3, "below"},
                                   {2147483000, 0, 1, "far"},  {0, 0, 1, "xyz/:-_()"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("draw_text(x={}, y={}, scale={}, \"{}\")", c.x, c.y, c.scale, c.text));
    Image img = solid(40, 60, sentinel);
    draw_text(img, c.x, c.y, c.text, fg, bg, c.scale);
    const int64_t w = text_width(c.text, c.scale), h = text_height(c.scale);
    EXPECT_EQ(w, (6 * int64_t(c.text.size()) + 1) * c.scale);
    EXPECT_EQ(h, 10 * c.scale);
    int n_fg = 0, n_bg = 0, n_in = 0;
    for (int y = 0; y < img.H; ++y)
      for (int x = 0; x < img.W; ++x) {
        const bool inside = x >= c.x && x < int64_t(c.x) + w && y >= c.y && y < int64_t(c.y) + h;
        const Rgb p = px(img, x, y);
        if (inside) {
          ASSERT_TRUE(p == fg || p == bg) << x << "," << y;
          ++n_in;
          n_fg += p == fg;
          n_bg += p == bg;
        } else {
          ASSERT_EQ(p, sentinel) << x << "," << y;
        }
      }
    if (n_in > 40) {  // a visible piece of text has both ink and background
      EXPECT_GT(n_fg, 0);
      EXPECT_GT(n_bg, n_fg);
    }
    if (c.x == 3) {  // fully visible: the padding row and column are background
      EXPECT_EQ(px(img, 3, 5), bg);
      EXPECT_EQ(n_in, w * h);
    }
  }
}

TEST(DrawText, DifferentStringsGiveDifferentPixels) {
  auto render = [](const std::string& s) {
    Image img = solid(12, 40, kFill);
    draw_text(img, 0, 0, s, {255, 255, 255}, {0, 0, 0}, 1);
    return img.hwc;
  };
  EXPECT_EQ(render("abc"), render("abc"));
  EXPECT_NE(render("abc"), render("abd"));
  EXPECT_NE(render("0.81"), render("0.87"));
  EXPECT_NE(render("l1I"), render("1lI"));
  // The font: every defined glyph is drawn differently from every other and from the box of an undefined
  // character; all but the space have ink; undefined bytes are the box.
  std::map<std::array<uint8_t, kGlyphH>, char> seen;
  int defined = 0;
  for (int c = 0; c < 256; ++c) {
    if (!glyph_defined(char(c))) continue;
    ++defined;
    const auto rows = glyph_rows(char(c));
    auto [it, fresh] = seen.emplace(rows, char(c));
    EXPECT_TRUE(fresh) << "'" << char(c) << "' looks like '" << it->second << "'";
    int ink = 0;
    for (uint8_t r : rows) {
      EXPECT_EQ(r & ~0x1f, 0);
      ink += __builtin_popcount(r);
    }
    if (c != ' ') {
      EXPECT_GT(ink, 0) << "'" << char(c) << "'";
    }
  }
  EXPECT_GE(defined, 26 + 26 + 10 + 11);
  for (const char* s : {"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789", ".%:-_()/ @"})
    for (const char* p = s; *p; ++p) EXPECT_TRUE(glyph_defined(*p)) << "'" << *p << "'";
  EXPECT_FALSE(glyph_defined('\x01'));
  EXPECT_FALSE(glyph_defined('\xc3'));
  EXPECT_EQ(seen.count(glyph_rows('\x01')), 0u);
  EXPECT_EQ(glyph_rows('\x01'), glyph_rows('\x7f'));
  EXPECT_NE(render("\x01"), render(" "));
  Image img = solid(12, 40, kFill);
  EXPECT_TRUE(contains(error_of([&] { draw_text(img, 0, 0, "a", kRed, kFill, 0); }), "scale 0"));
}

TEST(ClassColor, DistinctFixedPalette) {
  for (int a = 0; a < 24; ++a)
    for (int b = a + 1; b < 24; ++b) {
      const Rgb p = class_color(a), q = class_color(b);
      const double d = std::sqrt(std::pow(p[0] - q[0], 2) + std::pow(p[1] - q[1], 2) + std::pow(p[2] - q[2], 2));
      EXPECT_GE(d, 40.0) << "classes " << a << " and " << b;
    }
  std::set<Rgb> many;
  for (int c = 0; c < 256; ++c) many.insert(class_color(c));
  EXPECT_GE(many.size(), 200u);  // beyond the palette, hue steps keep classes apart
  EXPECT_EQ(class_color(7), class_color(7));
  EXPECT_EQ(class_color(0), (Rgb{230, 25, 75}));  // pinned: the same colour in every picture ever written
  EXPECT_TRUE(contains(error_of([] { class_color(-1); }), "class -1"));
  EXPECT_EQ(text_color_on({255, 255, 255}), (Rgb{0, 0, 0}));
  EXPECT_EQ(text_color_on({0, 0, 128}), (Rgb{255, 255, 255}));
}

TEST(OverlayMask, VoidUnchangedClassesBlendedExactly) {
  const int H = 21, W = 26, V = 255;
  const Image img = random_image(H, W, 4);
  std::vector<uint8_t> labels(size_t(H) * W);
  std::mt19937 rng(5);
  // Blocks of 3x3 so that there are interiors, plus a void ring and isolated void pixels.
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const uint32_t h = uint32_t((y / 3) * 131 + (x / 3) * 71) * 2654435761u;
      uint8_t l = uint8_t((h >> 24) % 5);
      if (l == 4) l = 19;
      if (rng() % 13 == 0 || y == 0) l = V;
      labels[size_t(y) * W + size_t(x)] = l;
    }
  for (float alpha : {0.0f, 0.3f, 0.5f, 1.0f}) {
    SCOPED_TRACE(fmt::format("alpha={}", alpha));
    const Image out = overlay_mask(img, labels, V, alpha);
    ASSERT_EQ(out.H, H);
    ASSERT_EQ(out.W, W);
    const int a = int(std::lround(alpha * 256));
    int n_void = 0, n_edge = 0, n_blend = 0;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const int l = labels[size_t(y) * W + size_t(x)];
        const Rgb p = px(img, x, y), o = px(out, x, y);
        if (l == V) {
          ASSERT_EQ(o, p) << "void pixel " << x << "," << y;
          ++n_void;
          continue;
        }
        bool edge = false;
        const int dx[] = {-1, 1, 0, 0}, dy[] = {0, 0, -1, 1};
        for (int k = 0; k < 4; ++k) {
          const int xx = x + dx[k], yy = y + dy[k];
          if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
          const int q = labels[size_t(yy) * W + size_t(xx)];
          edge = edge || q == V || q < l;
        }
        const Rgb c = class_color(l);
        for (int k = 0; k < 3; ++k) {
          if (edge) {
            ASSERT_EQ(o[k], c[k] / 2) << "boundary pixel " << x << "," << y;
          } else {
            ASSERT_EQ(o[k], (a * c[k] + (256 - a) * p[k] + 128) >> 8) << "pixel " << x << "," << y;
            ASSERT_LE(std::abs(o[k] - (alpha * c[k] + (1 - alpha) * p[k])), 1.0) << "pixel " << x << "," << y;
          }
        }
        n_edge += edge;
        n_blend += !edge;
      }
    EXPECT_GT(n_void, 20);
    EXPECT_GT(n_edge, 20);
    EXPECT_GT(n_blend, 20);
  }
}

TEST(OverlayMask, BoundaryBetweenTwoClassesIsOnePixel) {
  const int H = 6, W = 10;
  const Image img = solid(H, W, kFill);
  std::vector<uint8_t> labels(size_t(H) * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) labels[size_t(y) * W + size_t(x)] = x < 4 ? 2 : 1;  // larger label on the left
  const Image out = overlay_mask(img, labels, 255, 0.5f);
  const Rgb d2{uint8_t(class_color(2)[0] / 2), uint8_t(class_color(2)[1] / 2), uint8_t(class_color(2)[2] / 2)};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      if (x == 3)
        EXPECT_EQ(px(out, x, y), d2);
      else
        EXPECT_NE(px(out, x, y), d2);
    }
}

TEST(OverlayMask, BadInput) {
  Image img = solid(4, 5, kFill);
  std::vector<uint8_t> labels(19, 0);
  EXPECT_TRUE(contains(error_of([&] { overlay_mask(img, labels, 255); }), "label map holds 19 bytes"));
  labels.push_back(0);
  EXPECT_TRUE(contains(error_of([&] { overlay_mask(img, labels, 255, 1.5f); }), "alpha 1.5"));
  EXPECT_TRUE(contains(error_of([&] { overlay_mask(img, labels, 255, std::nanf("")); }), "alpha"));
  EXPECT_TRUE(contains(error_of([&] { overlay_mask(img, nullptr, 255); }), "null"));
  img.C = 4;
  EXPECT_TRUE(contains(error_of([&] { overlay_mask(img, labels, 255); }), "C = 4"));
}

TEST(ComposePanels, LayoutSizes) {
  const Image a = random_image(100, 80, 6), b = random_image(50, 40, 7);  // b: exactly half the height
  const int g = kPanelGap;
  {
    const Image out = compose_panels({a, b}, {"a", "b"}, {});
    EXPECT_EQ(out.C, 3);
    EXPECT_EQ(out.W, g + 80 + g + 80 + g);
    EXPECT_EQ(out.H, g + 10 + g + 100 + g);
    const int py = g + 10 + g;
    for (int y = 0; y < 100; ++y)
      for (int x = 0; x < 80; ++x) {
        ASSERT_EQ(px(out, g + x, py + y), px(a, x, y));
        ASSERT_EQ(px(out, g + 80 + g + x, py + y), px(b, x / 2, y / 2));  // upscaled x2, nearest
      }
    EXPECT_EQ(px(out, 0, 0), (Rgb{255, 255, 255}));
  }
  {
    const std::vector<std::string> names = {"disc", "square", "triangle", "background"};
    const Image out = compose_panels({a, b}, {"resnet18  mAP@0.5 0.81", "nl-resnet18-dw"}, names);
    // The long title (22 chars = 133 px) widens the first cell; the panel is centred in it.
    const int w0 = text_width("resnet18  mAP@0.5 0.81");
    EXPECT_EQ(w0, 133);
    EXPECT_EQ(out.W, g + w0 + g + std::max(80, text_width("nl-resnet18-dw")) + g);
    const int legend = legend_height(names, out.W, 1);
    EXPECT_GT(legend, 0);
    EXPECT_EQ(out.H, g + 10 + g + 100 + g + legend);
    const int px0 = g + (w0 - 80) / 2;
    EXPECT_EQ(px(out, px0 + 5, g + 10 + g + 7), px(a, 5, 7));
    // The legend shows each class colour as a swatch.
    for (int c = 0; c < 4; ++c) {
      bool found = false;
      for (int y = out.H - legend; y < out.H && !found; ++y)
        for (int x = 0; x < out.W && !found; ++x) found = px(out, x, y) == class_color(c);
      EXPECT_TRUE(found) << "class " << c;
    }
    // More classes than fit on one row wrap onto more rows.
    std::vector<std::string> many(20, "aeroplane");
    EXPECT_GT(legend_height(many, out.W, 1), 2 * (10 + g));
  }
  {
    const Image c = random_image(30, 45, 8);  // 100/30 is not an integer: bilinear to 100 x 150
    const Image out = compose_panels({a, c}, {"", ""}, {});
    EXPECT_EQ(out.W, g + 80 + g + 150 + g);
    EXPECT_EQ(out.H, g + 10 + g + 100 + g);
  }
  {
    const Image big = random_image(400, 20, 9);  // common height >= 384: titles at scale 2
    const Image out = compose_panels({big}, {"x"}, {});
    EXPECT_EQ(out.H, g + 20 + g + 400 + g);
    EXPECT_EQ(out.W, g + std::max(20, text_width("x", 2)) + g);
  }
  EXPECT_TRUE(contains(error_of([&] { compose_panels({a, b}, {"a"}, {}); }), "1 titles for 2 panels"));
  EXPECT_TRUE(contains(error_of([&] { compose_panels({}, {}, {}); }), "no panels"));
  Image gray = a;
  gray.C = 1;
  EXPECT_TRUE(contains(error_of([&] { compose_panels({gray}, {""}, {}); }), "C = 1"));
}

TEST(UpscaleNearest, RepeatsPixels) {
  const Image img = random_image(5, 7, 10);
  const Image up = upscale_nearest(img, 3);
  ASSERT_EQ(up.H, 15);
  ASSERT_EQ(up.W, 21);
  for (int y = 0; y < 15; ++y)
    for (int x = 0; x < 21; ++x) ASSERT_EQ(px(up, x, y), px(img, x / 3, y / 3));
  EXPECT_EQ(upscale_nearest(img, 1).hwc, img.hwc);
  std::vector<uint8_t> labels(35);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = uint8_t(i);
  const auto ul = upscale_labels(labels, 5, 7, 2);
  ASSERT_EQ(ul.size(), 140u);
  EXPECT_EQ(ul[size_t(9) * 14 + 13], labels[size_t(4) * 7 + 6]);
  EXPECT_EQ(ul[size_t(3) * 14 + 4], labels[size_t(1) * 7 + 2]);
  EXPECT_TRUE(contains(error_of([&] { upscale_nearest(img, 0); }), "factor 0"));
  EXPECT_TRUE(contains(error_of([&] { upscale_labels(labels, 5, 6, 2); }), "35 bytes"));
}

TEST(DrawDetections, LabelsAboveBoxesAndInsideTheImage) {
  const Rgb grey{90, 90, 90};
  const Image img = solid(128, 128, grey);
  const std::vector<std::string> names = {"disc", "square", "triangle"};
  const DrawnBox box{10, 40, 60, 90, 1, 0.87f};
  EXPECT_EQ(box_label(box, names), "square 0.87");
  EXPECT_EQ(box_label({0, 0, 1, 1, 2, -1}, names), "triangle");
  EXPECT_EQ(box_label({0, 0, 1, 1, 7, 0.5f}, names), "#7 0.50");
  {
    const Image out = draw_detections(img, {box}, {}, names);
    const int lw = text_width("square 0.87"), lh = text_height(1);
    EXPECT_EQ(lw, 67);
    const Rgb c = class_color(1);
    // Everything changed lies on the box border or in the label [10, 77) x [30, 40).
    for (int y = 0; y < 128; ++y)
      for (int x = 0; x < 128; ++x) {
        const bool in_label = x >= 10 && x < 10 + lw && y >= 40 - lh && y < 40;
        const bool border = on_border(x, y, 10, 40, 60, 90, 2);
        if (!in_label && !border) {
          ASSERT_EQ(px(out, x, y), grey) << x << "," << y;
        }
        if (border) {
          ASSERT_EQ(px(out, x, y), c) << x << "," << y;
        }
        if (in_label) {
          ASSERT_TRUE(px(out, x, y) == c || px(out, x, y) == text_color_on(c)) << x << "," << y;
        }
      }
  }
  {
    // A box at the top-right corner: the label goes inside the top edge, shifted left into the image.
    const DrawnBox corner{100, 0, 128, 30, 0, 0.5f};
    const Image out = draw_detections(img, {corner}, {}, names);
    const int lw = text_width("disc 0.50");
    EXPECT_EQ(px(out, 128 - lw, 0), class_color(0));                       // label's top-left padding
    EXPECT_EQ(px(out, 128 - lw - 1, 0), grey);                             // just left of it
    EXPECT_EQ(px(out, 128 - lw, text_height(1)), grey);                    // just below it
  }
  {
    // Ground truth: dashed, no label; a NaN prediction is skipped; boxes outside the image draw nothing.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Image out = draw_detections(img, {{nan, 1, 2, 3, 0, 0.9f}, {500, 500, 600, 600, 1, 0.9f}},
                                      {{20, 20, 100, 100, 2, -1}}, names);
    int on = 0, off = 0;
    for (int x = 20; x < 100; ++x) (px(out, x, 20) == class_color(2) ? on : off)++;
    EXPECT_GT(on, 20);
    EXPECT_GT(off, 20);
    for (int y = 0; y < 20; ++y)
      for (int x = 0; x < 128; ++x) ASSERT_EQ(px(out, x, y), grey) << x << "," << y;
  }
}

TEST(DrawExample, TwoModelsSideBySidePngRoundTrip) {
  // A 64x64 synthetic scene with at least 2 objects, upscaled x4 before drawing so the labels stay readable.
  const int S = 64, f = 4;
  DenseSample s;
  for (int64_t i = 0; i < 50; ++i) {
    s = synthetic_dense_sample(11, i, S, S);
    if (s.boxes.size() >= 2) break;
  }
  ASSERT_GE(s.boxes.size(), 2u);
  const Image big = upscale_nearest(s.image, f);
  const std::vector<uint8_t> mask = upscale_labels(s.label, S, S, f);
  const auto& det_names = synthetic_det_class_names();
  const auto& seg_names = synthetic_seg_class_names();
  // Two "models": one close to the truth, one shifted, with a false positive and a worse mask (background
  // predicted as the first object's class in a band).
  std::vector<DrawnBox> gt = drawn_boxes(s.boxes);
  std::vector<DrawnBox> pred_a, pred_b;
  for (size_t i = 0; i < gt.size(); ++i) {
    DrawnBox a = gt[i], b = gt[i];
    a.score = 0.93f - 0.1f * float(i);
    a.x0 += 0.5f;
    a.y1 -= 0.7f;
    b.score = 0.71f - 0.2f * float(i);
    b.x0 += 3;
    b.x1 += 3;
    b.y0 -= 2;
    pred_a.push_back(a);
    pred_b.push_back(b);
  }
  pred_b.push_back({40, 44, 60, 62, 2, 0.34f});
  std::vector<uint8_t> mask_b = mask;
  for (size_t i = 0; i < mask_b.size(); ++i)
    if (mask_b[i] == 3 && (i / size_t(S * f)) % 64 < 10) mask_b[i] = uint8_t(s.boxes[0].cls);
  auto panel = [&](const std::vector<DrawnBox>& pred, const std::vector<uint8_t>& m) {
    return draw_detections(overlay_mask(big, m, kSyntheticSegVoid, 0.45f), scale_boxes(pred, float(f)),
                           scale_boxes(gt, float(f)), det_names);
  };
  const Image pic = compose_panels({panel(pred_a, mask), panel(pred_b, mask_b)},
                                   {"resnet18  mAP@0.5 0.81", "nl-resnet18-dw  mAP@0.5 0.64"}, seg_names);
  EXPECT_EQ(pic.W, kPanelGap + 2 * (S * f + kPanelGap));
  EXPECT_EQ(pic.H, kPanelGap + 10 + kPanelGap + S * f + kPanelGap + legend_height(seg_names, pic.W, 1));

  rf::testing::TempDir dir;
  const std::string path = dir / "pictures/example.png";
  std::filesystem::create_directories(dir / "pictures");
  write_png(path, pic);
  const Image back = decode_png_file(path);
  EXPECT_EQ(back.H, pic.H);
  EXPECT_EQ(back.W, pic.W);
  EXPECT_EQ(back.C, 3);
  EXPECT_TRUE(back.hwc == pic.hwc);
  if (const char* keep = std::getenv("RF_DRAW_EXAMPLE")) write_png(keep, pic);
}

// Pictures of predictions (see overlay.h): a 5x7 bitmap font, clipped rectangles, box labels, mask overlays,
// panel layout. Every write goes through a clipped span fill (fill_span) on int64 coordinates, so no
// coordinate, however large, can index outside the image.
// Checked by tests/datasets/test_overlay.cpp.
#include "datasets/overlay.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "host/core/check.h"

namespace rf::data {
namespace {

// ---- font: 5 columns per row, '#' = ink; 7 rows, an 8th for descenders. Own design, plain and blocky. ----
struct GlyphDef {
  char c;
  const char* rows;  // rows separated by spaces
};

constexpr GlyphDef kGlyphs[] = {
    {'A', ".###. #...# #...# ##### #...# #...# #...#"},
    {'B', "####. #...# #...# ####. #...# #...# ####."},
    {'C', ".###. #...# #.... #.... #.... #...# .###."},
    {'D', "####. #...# #...# #...# #...# #...# ####."},
    {'E', "##### #.... #.... ####. #.... #.... #####"},
    {'F', "##### #.... #.... ####. #.... #.... #...."},
    {'G', ".###. #...# #.... #.### #...# #...# .####"},
    {'H', "#...# #...# #...# ##### #...# #...# #...#"},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"},
    {'L', "#.... #.... #.... #.... #.... #.... #####"},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...#"},
    {'O', ".###. #...# #...# #...# #...# #...# .###."},
    {'P', "####. #...# #...# ####. #.... #.... #...."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...#"},
    {'S', ".###. #...# #.... .###. ....# #...# .###."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
    {'U', "#...# #...# #...# #...# #...# #...# .###."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... #####"},
    {'a', "..... ..... .###. ....# .#### #...# .####"},
    {'b', "#.... #.... #.##. ##..# #...# #...# ####."},
    {'c', "..... ..... .###. #.... #.... #...# .###."},
    {'d', "....# ....# .##.# #..## #...# #...# .####"},
    {'e', "..... ..... .###. #...# ##### #.... .###."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#..."},
    {'g', "..... ..... .#### #...# #...# .#### ....# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...#"},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."},
    {'j', "...#. ..... ..##. ...#. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#."},
    {'l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'m', "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"},
    {'n', "..... ..... #.##. ##..# #...# #...# #...#"},
    {'o', "..... ..... .###. #...# #...# #...# .###."},
    {'p', "..... ..... ####. #...# #...# ####. #.... #...."},
    {'q', "..... ..... .#### #...# #...# .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #...."},
    {'s', "..... ..... .###. #.... .###. ....# ####."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##."},
    {'u', "..... ..... #...# #...# #...# #..## .##.#"},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...#"},
    {'y', "..... ..... #...# #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... #####"},
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... #####"},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."},
    {'5', "##### #.... ####. ....# ....# #...# .###."},
    {'6', "..##. .#... #.... ####. #...# #...# .###."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#..."},
    {'8', ".###. #...# #...# .###. #...# #...# .###."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.."},
    {' ', "..... ..... ..... ..... ..... ..... ....."},
    {'.', "..... ..... ..... ..... ..... .##.. .##.."},
    {',', "..... ..... ..... ..... .##.. .##.. ..#.. .#..."},
    {'%', "##... ##..# ...#. ..#.. .#... #..## ...##"},
    {':', "..... .##.. .##.. ..... .##.. .##.. ....."},
    {'-', "..... ..... ..... .###. ..... ..... ....."},
    {'_', "..... ..... ..... ..... ..... ..... #####"},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."},
    {'/', "..... ....# ...#. ..#.. .#... #.... ....."},
    {'@', ".###. #...# #.### #.#.# #.### #.... .####"},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ....."},
    {'=', "..... ..... ##### ..... ##### ..... ....."},
    {'#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."},
    {'[', ".###. .#... .#... .#... .#... .#... .###."},
    {']', ".###. ...#. ...#. ...#. ...#. ...#. .###."},
    {'<', "...#. ..#.. .#... #.... .#... ..#.. ...#."},
    {'>', ".#... ..#.. ...#. ....# ...#. ..#.. .#..."},
    {'!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."},
    {'?', ".###. #...# ....# ...#. ..#.. ..... ..#.."},
    {'\'', "..#.. ..#.. .#... ..... ..... ..... ....."},
    {'*', "..... ..#.. #.#.# .###. #.#.# ..#.. ....."},
    {'|', "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
};
constexpr const char* kBoxGlyph = "##### #...# #...# #...# #...# #...# #####";

using Rows = std::array<uint8_t, kGlyphH>;

Rows parse_glyph(const char* s) {
  Rows rows{};
  int r = 0, c = 0;
  for (const char* p = s; *p; ++p) {
    if (*p == ' ') {
      ++r;
      c = 0;
      continue;
    }
    if (*p == '#') rows[size_t(r)] |= uint8_t(1u << (kGlyphW - 1 - c));
    ++c;
  }
  return rows;
}

struct Font {
  std::array<Rows, 256> rows{};
  std::array<bool, 256> defined{};
  Font() {
    const Rows box = parse_glyph(kBoxGlyph);
    rows.fill(box);
    for (const GlyphDef& g : kGlyphs) {
      rows[uint8_t(g.c)] = parse_glyph(g.rows);
      defined[uint8_t(g.c)] = true;
    }
  }
};

const Font& font() {
  static const Font f;
  return f;
}

void check_rgb(const Image& img, const char* what) {
  RF_CHECK(img.C == 3, "{}: image has C = {} channels, expected 3 (RGB)", what, img.C);
  RF_CHECK(img.H >= 0 && img.W >= 0, "{}: image size {}x{} is negative", what, img.H, img.W);
  RF_CHECK(img.hwc.size() == size_t(img.H) * size_t(img.W) * 3,
           "{}: image buffer holds {} bytes, expected H*W*3 = {}*{}*3 = {}", what, img.hwc.size(), img.H, img.W,
           size_t(img.H) * size_t(img.W) * 3);
}

// The only writer: pixels [x0, x1) of row y, clipped to the image.
void fill_span(Image& img, int64_t y, int64_t x0, int64_t x1, Rgb c) {
  if (y < 0 || y >= img.H) return;
  x0 = std::max<int64_t>(x0, 0);
  x1 = std::min<int64_t>(x1, img.W);
  if (x0 >= x1) return;
  uint8_t* p = img.hwc.data() + (size_t(y) * size_t(img.W) + size_t(x0)) * 3;
  for (int64_t x = x0; x < x1; ++x, p += 3) {
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
  }
}

void fill_irect(Image& img, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  for (int64_t y = std::max<int64_t>(y0, 0); y < std::min<int64_t>(y1, img.H); ++y) fill_span(img, y, x0, x1, c);
}

struct IRect {
  int64_t x0, y0, x1, y1;
};

// Rounded, sorted corners; coordinates far outside are clamped to just outside the image plus `margin`,
// which leaves the drawn pixels unchanged (a border `margin` wide starting there is still outside).
// false for a NaN corner.
bool round_box(float x0, float y0, float x1, float y1, int W, int H, int margin, IRect& r) {
  if (std::isnan(x0) || std::isnan(y0) || std::isnan(x1) || std::isnan(y1)) return false;
  auto rnd = [](float v, int size, int m) {
    const double lim = double(size) + double(m) + 1.0;
    return int64_t(std::llround(std::clamp(double(v), -double(m) - 1.0, lim)));
  };
  r.x0 = rnd(std::min(x0, x1), W, margin);
  r.x1 = rnd(std::max(x0, x1), W, margin);
  r.y0 = rnd(std::min(y0, y1), H, margin);
  r.y1 = rnd(std::max(y0, y1), H, margin);
  if (r.x1 <= r.x0) r.x1 = r.x0 + 1;
  if (r.y1 <= r.y0) r.y1 = r.y0 + 1;
  return true;
}

// Border `t` wide inside r; dash > 0: runs of `dash` pixels along each edge alternate on / off.
void draw_border(Image& img, const IRect& r, Rgb c, int64_t t, int64_t dash) {
  const int64_t ylo = std::max<int64_t>(r.y0, 0), yhi = std::min<int64_t>(r.y1, img.H);
  for (int64_t y = ylo; y < yhi; ++y) {
    const bool top_bottom = y < r.y0 + t || y >= r.y1 - t;
    if (top_bottom) {
      if (dash <= 0) {
        fill_span(img, y, r.x0, r.x1, c);
      } else {
        for (int64_t x = std::max<int64_t>(r.x0, 0); x < std::min<int64_t>(r.x1, img.W); ++x)
          if (((x - r.x0) / dash) % 2 == 0) fill_span(img, y, x, x + 1, c);
      }
    } else if (dash <= 0 || ((y - r.y0) / dash) % 2 == 0) {
      fill_span(img, y, r.x0, std::min(r.x1, r.x0 + t), c);
      fill_span(img, y, std::max(r.x0, r.x1 - t), r.x1, c);
    }
  }
}

const Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0};

}  // namespace

// ---- font ----

int text_width(const std::string& text, int scale) {
  RF_CHECK(scale >= 1 && scale <= 64, "text_width: scale {} outside [1, 64]", scale);
  if (text.empty()) return 0;
  return int((int64_t(kGlyphAdvance) * int64_t(text.size()) + 2 * kTextPad - 1) * scale);
}

int text_height(int scale) {
  RF_CHECK(scale >= 1 && scale <= 64, "text_height: scale {} outside [1, 64]", scale);
  return (kGlyphH + 2 * kTextPad) * scale;
}

std::array<uint8_t, kGlyphH> glyph_rows(char c) { return font().rows[uint8_t(c)]; }
bool glyph_defined(char c) { return font().defined[uint8_t(c)]; }

void draw_text(Image& img, int x, int y, const std::string& text, Rgb fg, Rgb bg, int scale) {
  check_rgb(img, "draw_text");
  RF_CHECK(scale >= 1 && scale <= 64, "draw_text: scale {} outside [1, 64]", scale);
  if (text.empty()) return;
  const int64_t s = scale, X = x, Y = y;
  fill_irect(img, X, Y, X + int64_t(text_width(text, scale)), Y + text_height(scale), bg);
  const Font& f = font();
  for (size_t i = 0; i < text.size(); ++i) {
    const int64_t gx = X + (kTextPad + kGlyphAdvance * int64_t(i)) * s;
    if (gx >= img.W) break;  // the rest is clipped
    if (gx + kGlyphW * s <= 0) continue;
    const Rows& rows = f.rows[uint8_t(text[i])];
    for (int r = 0; r < kGlyphH; ++r)
      for (int c = 0; c < kGlyphW; ++c)
        if (rows[size_t(r)] & (1u << (kGlyphW - 1 - c))) {
          const int64_t px = gx + c * s, py = Y + (kTextPad + r) * s;
          fill_irect(img, px, py, px + s, py + s, fg);
        }
  }
}

// ---- boxes ----

void draw_rect(Image& img, float x0, float y0, float x1, float y1, Rgb color, int thickness) {
  check_rgb(img, "draw_rect");
  RF_CHECK(thickness >= 1, "draw_rect: thickness {} < 1", thickness);
  IRect r;
  if (!round_box(x0, y0, x1, y1, img.W, img.H, thickness, r)) return;
  draw_border(img, r, color, thickness, 0);
}

void draw_rect_dashed(Image& img, float x0, float y0, float x1, float y1, Rgb color, int thickness, int dash) {
  check_rgb(img, "draw_rect_dashed");
  RF_CHECK(thickness >= 1, "draw_rect_dashed: thickness {} < 1", thickness);
  RF_CHECK(dash >= 1, "draw_rect_dashed: dash length {} < 1", dash);
  IRect r;
  if (!round_box(x0, y0, x1, y1, img.W, img.H, thickness, r)) return;
  draw_border(img, r, color, thickness, dash);
}

void fill_rect(Image& img, float x0, float y0, float x1, float y1, Rgb color) {
  check_rgb(img, "fill_rect");
  IRect r;
  if (!round_box(x0, y0, x1, y1, img.W, img.H, 0, r)) return;
  fill_irect(img, r.x0, r.y0, r.x1, r.y1, color);
}

Rgb class_color(int cls) {
  RF_CHECK(cls >= 0, "class_color: class {} is negative", cls);
  // Hand-picked: saturated primaries and secondaries first, then darker and paler variants.
  static const Rgb kPalette[] = {
      {230, 25, 75},   {60, 180, 75},   {255, 200, 20},  {0, 110, 220},  {245, 130, 48},  {145, 30, 180},
      {70, 230, 240},  {240, 50, 230},  {190, 240, 50},  {250, 170, 200}, {0, 128, 128},  {200, 170, 255},
      {150, 90, 30},   {255, 245, 180}, {128, 0, 0},     {140, 255, 190}, {128, 128, 0},  {255, 200, 150},
      {0, 0, 128},     {128, 128, 128}, {100, 60, 255},  {255, 100, 100}, {0, 80, 40},    {210, 210, 210},
  };
  constexpr int n = int(sizeof(kPalette) / sizeof(kPalette[0]));
  if (cls < n) return kPalette[cls];
  // Golden-ratio hue steps never repeat and keep consecutive classes far apart.
  const double h = std::fmod(double(cls) * 0.6180339887498949, 1.0) * 6.0, s = 0.7, v = 0.95;
  const int i = int(h) % 6;
  const double f = h - std::floor(h), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r = 0, g = 0, b = 0;
  switch (i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  return {uint8_t(std::lround(r * 255)), uint8_t(std::lround(g * 255)), uint8_t(std::lround(b * 255))};
}

Rgb text_color_on(Rgb bg) {
  const double luma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2];
  return luma >= 140 ? kBlack : kWhite;
}

std::vector<DrawnBox> drawn_boxes(const std::vector<BoxAnn>& boxes, float scale) {
  std::vector<DrawnBox> out;
  out.reserve(boxes.size());
  for (const BoxAnn& b : boxes)
    out.push_back(DrawnBox{b.x0 * scale, b.y0 * scale, b.x1 * scale, b.y1 * scale, int(b.cls), -1.0f});
  return out;
}

std::vector<DrawnBox> scale_boxes(std::vector<DrawnBox> boxes, float scale) {
  for (DrawnBox& b : boxes) {
    b.x0 *= scale;
    b.y0 *= scale;
    b.x1 *= scale;
    b.y1 *= scale;
  }
  return boxes;
}

std::string box_label(const DrawnBox& b, const std::vector<std::string>& class_names) {
  std::string name = (b.cls >= 0 && size_t(b.cls) < class_names.size()) ? class_names[size_t(b.cls)]
                                                                          : "#" + std::to_string(b.cls);
  if (b.score >= 0) name += fmt::format(" {:.2f}", b.score);
  return name;
}

Image draw_detections(const Image& img, const std::vector<DrawnBox>& pred, const std::vector<DrawnBox>& gt,
                      const std::vector<std::string>& class_names) {
  check_rgb(img, "draw_detections");
  Image out = img;
  if (img.H == 0 || img.W == 0) return out;
  const int side = std::min(img.H, img.W);
  const int unit = std::max(1, side / 256), scale = std::max(1, side / 320);
  // A negative class would only pick a colour; show it in grey rather than refuse to draw the picture.
  auto color_of = [](int cls) { return cls >= 0 ? class_color(cls) : Rgb{128, 128, 128}; };

  for (const DrawnBox& b : gt) draw_rect_dashed(out, b.x0, b.y0, b.x1, b.y1, color_of(b.cls), unit, 4 * unit);

  std::vector<size_t> order(pred.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pred[a].score < pred[b].score; });
  for (size_t i : order) {
    const DrawnBox& b = pred[i];
    draw_rect(out, b.x0, b.y0, b.x1, b.y1, color_of(b.cls), 2 * unit);
  }
  const int lh = text_height(scale);
  for (size_t i : order) {
    const DrawnBox& b = pred[i];
    IRect r;
    if (!round_box(b.x0, b.y0, b.x1, b.y1, img.W, img.H, 0, r)) continue;
    if (r.x1 <= 0 || r.y1 <= 0 || r.x0 >= img.W || r.y0 >= img.H) continue;  // not visible: no label
    const std::string text = box_label(b, class_names);
    const int64_t lw = text_width(text, scale);
    const int64_t lx = std::clamp<int64_t>(r.x0, 0, std::max<int64_t>(0, img.W - lw));
    int64_t ly = r.y0 - lh;
    if (ly < 0) ly = std::max<int64_t>(r.y0, 0);  // no room above: inside the top edge
    ly = std::clamp<int64_t>(ly, 0, std::max<int64_t>(0, img.H - lh));
    const Rgb bg = color_of(b.cls);
    draw_text(out, int(lx), int(ly), text, text_color_on(bg), bg, scale);
  }
  return out;
}

// ---- masks ----

Image overlay_mask(const Image& img, const uint8_t* labels, int void_label, float alpha) {
  check_rgb(img, "overlay_mask");
  RF_CHECK(labels != nullptr || img.H * img.W == 0, "overlay_mask: label map is null for a {}x{} image", img.H,
           img.W);
  RF_CHECK(std::isfinite(alpha) && alpha >= 0.0f && alpha <= 1.0f, "overlay_mask: alpha {} outside [0, 1]",
           alpha);
  const int H = img.H, W = img.W;
  const int a = int(std::lround(double(alpha) * 256.0)), b = 256 - a;
  Image out = img;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int l = labels[size_t(y) * size_t(W) + size_t(x)];
      if (l == void_label) continue;
      auto other = [&](int yy, int xx) {  // a neighbour that puts p on a boundary
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) return false;
        const int q = labels[size_t(yy) * size_t(W) + size_t(xx)];
        return q == void_label || q < l;
      };
      const bool boundary = other(y, x - 1) || other(y, x + 1) || other(y - 1, x) || other(y + 1, x);
      const Rgb c = class_color(l);
      uint8_t* p = out.hwc.data() + (size_t(y) * size_t(W) + size_t(x)) * 3;
      for (int k = 0; k < 3; ++k)
        p[k] = boundary ? uint8_t(c[size_t(k)] / 2) : uint8_t((a * c[size_t(k)] + b * p[k] + 128) >> 8);
    }
  return out;
}

Image overlay_mask(const Image& img, const std::vector<uint8_t>& labels, int void_label, float alpha) {
  check_rgb(img, "overlay_mask");
  RF_CHECK(labels.size() == size_t(img.H) * size_t(img.W),
           "overlay_mask: label map holds {} bytes, expected H*W = {}*{} = {}", labels.size(), img.H, img.W,
           size_t(img.H) * size_t(img.W));
  return overlay_mask(img, labels.data(), void_label, alpha);
}

// ---- layout ----

namespace {

// Lays the legend out (or only measures it when img is null); returns its height.
int layout_legend(Image* img, int y0, const std::vector<std::string>& class_names, int width, int scale) {
  if (class_names.empty()) return 0;
  const int g = kPanelGap, th = text_height(scale);
  int x = g, rows = 1;
  for (size_t i = 0; i < class_names.size(); ++i) {
    const int w = th + g / 2 + text_width(class_names[i], scale);  // swatch, a space, the name
    if (x > g && x + w > width - g) {
      x = g;
      ++rows;
    }
    if (img) {
      const int y = y0 + (rows - 1) * (th + g);
      fill_irect(*img, x, y, x + th, y + th, class_color(int(i)));
      draw_text(*img, x + th + g / 2, y, class_names[i], kBlack, kWhite, scale);
    }
    x += w + 2 * g;
  }
  return rows * (th + g);
}

}  // namespace

int legend_height(const std::vector<std::string>& class_names, int width, int scale) {
  return layout_legend(nullptr, 0, class_names, width, scale);
}

Image compose_panels(const std::vector<Image>& panels, const std::vector<std::string>& titles,
                     const std::vector<std::string>& class_names) {
  RF_CHECK(!panels.empty(), "compose_panels: no panels");
  RF_CHECK(titles.size() == panels.size(), "compose_panels: {} titles for {} panels (pass \"\" for none)",
           titles.size(), panels.size());
  int Hc = 0;
  for (size_t i = 0; i < panels.size(); ++i) {
    check_rgb(panels[i], "compose_panels");
    RF_CHECK(panels[i].H > 0 && panels[i].W > 0, "compose_panels: panel {} is empty ({}x{})", i, panels[i].H,
             panels[i].W);
    Hc = std::max(Hc, panels[i].H);
  }
  std::vector<Image> sized(panels.size());
  for (size_t i = 0; i < panels.size(); ++i) {
    const Image& p = panels[i];
    if (p.H == Hc) {
      sized[i] = p;
    } else if (Hc % p.H == 0) {
      sized[i] = upscale_nearest(p, Hc / p.H);  // integer ratio: keep the pixels crisp
    } else {
      const int Wn = std::max(1, int(std::lround(double(p.W) * Hc / p.H)));
      sized[i] = resize_bilinear(p, Hc, Wn);
    }
  }
  const int g = kPanelGap, s = Hc >= 384 ? 2 : 1, th = text_height(s);
  std::vector<int> cell(panels.size());
  int64_t W = g;
  for (size_t i = 0; i < panels.size(); ++i) {
    cell[i] = std::max(sized[i].W, text_width(titles[i], s));
    W += cell[i] + g;
  }
  RF_CHECK(W < (1 << 16), "compose_panels: picture would be {} pixels wide", W);
  const int legend = legend_height(class_names, int(W), s);
  Image out;
  out.C = 3;
  out.W = int(W);
  out.H = g + th + g + Hc + g + legend;
  out.hwc.assign(size_t(out.H) * size_t(out.W) * 3, 255);
  int x = g;
  for (size_t i = 0; i < panels.size(); ++i) {
    const Image& p = sized[i];
    draw_text(out, x + (cell[i] - text_width(titles[i], s)) / 2, g, titles[i], kBlack, kWhite, s);
    const int px = x + (cell[i] - p.W) / 2, py = g + th + g;
    for (int y = 0; y < p.H; ++y)
      std::memcpy(out.hwc.data() + (size_t(py + y) * size_t(out.W) + size_t(px)) * 3,
                  p.hwc.data() + size_t(y) * size_t(p.W) * 3, size_t(p.W) * 3);
    x += cell[i] + g;
  }
  layout_legend(&out, g + th + g + Hc + g, class_names, out.W, s);
  return out;
}

// ---- scaling ----

Image upscale_nearest(const Image& img, int factor) {
  check_rgb(img, "upscale_nearest");
  RF_CHECK(factor >= 1, "upscale_nearest: factor {} < 1", factor);
  RF_CHECK(int64_t(img.H) * factor < (1 << 16) && int64_t(img.W) * factor < (1 << 16),
           "upscale_nearest: {}x{} times {} is too large", img.H, img.W, factor);
  Image out;
  out.C = 3;
  out.H = img.H * factor;
  out.W = img.W * factor;
  out.hwc.resize(size_t(out.H) * size_t(out.W) * 3);
  for (int y = 0; y < out.H; ++y)
    for (int x = 0; x < out.W; ++x)
      std::memcpy(out.hwc.data() + (size_t(y) * size_t(out.W) + size_t(x)) * 3,
                  img.hwc.data() + (size_t(y / factor) * size_t(img.W) + size_t(x / factor)) * 3, 3);
  return out;
}

std::vector<uint8_t> upscale_labels(const std::vector<uint8_t>& labels, int H, int W, int factor) {
  RF_CHECK(H >= 0 && W >= 0 && labels.size() == size_t(H) * size_t(W),
           "upscale_labels: label map holds {} bytes, expected H*W = {}*{}", labels.size(), H, W);
  RF_CHECK(factor >= 1, "upscale_labels: factor {} < 1", factor);
  RF_CHECK(int64_t(H) * factor < (1 << 16) && int64_t(W) * factor < (1 << 16),
           "upscale_labels: {}x{} times {} is too large", H, W, factor);
  const int Ho = H * factor, Wo = W * factor;
  std::vector<uint8_t> out(size_t(Ho) * size_t(Wo));
  for (int y = 0; y < Ho; ++y)
    for (int x = 0; x < Wo; ++x)
      out[size_t(y) * size_t(Wo) + size_t(x)] = labels[size_t(y / factor) * size_t(W) + size_t(x / factor)];
  return out;
}

void write_png(const std::string& path, const Image& img) {
  check_rgb(img, "write_png");
  RF_CHECK(img.H > 0 && img.W > 0, "write_png: {}: image is empty ({}x{})", path, img.H, img.W);
  write_png_file(path, img.hwc.data(), img.H, img.W, 3);
}

}  // namespace rf::data

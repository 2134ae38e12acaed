// Pictures of predictions: boxes with "<class> 0.87" labels, label-map overlays, panels side by side with
// titles and a colour legend, written as PNG next to the results (issue 7). Plain CPU loops on interleaved
// HWC RGB uint8 images (Image from image_folder.h, C = 3 everywhere); a built-in 5x7 bitmap font (own glyphs,
// one descender row) so no font library is needed.
// Coordinates are continuous pixels as in datasets/dense.h (the dense-prediction annotations): a box [x0, x1) x [y0, y1) covers the pixels x0 <= x < x1
// when the corners are integers; corners are rounded to the nearest integer (half away from zero).
// Everything is clipped to the image: nothing is ever written outside it, whatever the coordinates (huge,
// negative, infinite). A box with a NaN coordinate is skipped (nothing drawn, no error): a diverged model's
// prediction should not stop the report that shows it. Inverted corners are sorted; a box thinner than one
// pixel after rounding is drawn one pixel wide.
// Bad input (C != 3, a buffer of the wrong size, thickness or scale < 1, alpha outside [0, 1], a negative
// class) throws rf::Error naming the function and the value.
// Checked by tests/datasets/test_overlay.cpp (border pixels exactly, clipping against a brute-force reference
// on random and extreme boxes, text confined to its label, distinct glyphs, exact blend formula, panel
// layout sizes, palette distinctness, and a PNG round trip of a full example).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dense.h"
#include "datasets/image_codec.h"

namespace rf::data {

using Rgb = std::array<uint8_t, 3>;

// ---- font ----
// Glyph cell 5 x 8 (rows 0..6 for capitals and digits, row 7 for descenders: g j p q y ,), advance 6 px.
// Defined: A-Z a-z 0-9 space . , % : - _ ( ) / @ + = # [ ] < > ! ? ' * |; any other byte is drawn as a box.
constexpr int kGlyphW = 5, kGlyphH = 8, kGlyphAdvance = 6, kTextPad = 1;
// Label size at an integer scale: (6 n + 1) x 10 pixels times scale (1 px padding all round); 0 x 0 for "".
int text_width(const std::string& text, int scale = 1);
int text_height(int scale = 1);
// The 8 rows of a glyph, bit 4 = leftmost column (the box glyph for undefined characters).
std::array<uint8_t, kGlyphH> glyph_rows(char c);
bool glyph_defined(char c);

// Text on a filled background label whose top-left corner is (x, y); the label is
// [x, x + text_width) x [y, y + text_height); the part outside the image is clipped.
void draw_text(Image& img, int x, int y, const std::string& text, Rgb fg, Rgb bg, int scale = 1);

// ---- boxes ----
// Border of [x0, x1) x [y0, y1) after rounding, `thickness` pixels wide, drawn inside the box.
void draw_rect(Image& img, float x0, float y0, float x1, float y1, Rgb color, int thickness = 2);
// Same border, dashed: pixels on runs of `dash` along each edge alternate drawn / skipped.
void draw_rect_dashed(Image& img, float x0, float y0, float x1, float y1, Rgb color, int thickness = 1,
                      int dash = 4);
// Filled rectangle (clipped, rounded like draw_rect).
void fill_rect(Image& img, float x0, float y0, float x1, float y1, Rgb color);

// A fixed palette of 24 hand-picked colours for classes 0..23 (pairwise RGB distance >= 40), then
// golden-ratio hue steps for higher classes; the same colour for a class everywhere. cls < 0 throws.
Rgb class_color(int cls);
// Black or white, whichever reads better on `bg` (Rec. 601 luma threshold 140).
Rgb text_color_on(Rgb bg);

struct DrawnBox {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int cls = 0;
  float score = -1;  // < 0: ground truth (no score printed)
};
// Ground-truth boxes (score -1) from a dataset's annotations; coordinates multiplied by `scale` (for an
// image upscaled by upscale_nearest).
std::vector<DrawnBox> drawn_boxes(const std::vector<BoxAnn>& boxes, float scale = 1.0f);
// Multiply coordinates by `scale` (predictions made on the small image, drawn on the upscaled one).
std::vector<DrawnBox> scale_boxes(std::vector<DrawnBox> boxes, float scale);
// "<class name> 0.87" (score >= 0, two decimals) or "<class name>"; a class without a name is "#<cls>".
std::string box_label(const DrawnBox& b, const std::vector<std::string>& class_names);

// A copy of img with gt boxes (dashed, 1 px per 256 px of the smaller side, in the class colour, no label)
// under the predicted boxes (solid, 2 px per 256 px, lowest score first so the best is on top), each
// prediction labelled with box_label on a class-coloured label just above the box, or inside its top edge
// when there is no room above, shifted left to stay inside the image. Text scale 1 per 320 px of the
// smaller side (at least 1). Labels are drawn after all boxes so no box line crosses a label.
Image draw_detections(const Image& img, const std::vector<DrawnBox>& pred, const std::vector<DrawnBox>& gt,
                      const std::vector<std::string>& class_names);

// ---- masks ----
// Each pixel with label l != void_label: out = (a c + (256 - a) p + 128) >> 8 per channel, with
// c = class_color(l), p = the image pixel, a = round(256 alpha) (alpha quantised to 1/256, so the result is
// within 1 of alpha c + (1 - alpha) p). Boundary pixels are drawn opaque in the darker colour c / 2: a
// non-void pixel is on a boundary when a 4-neighbour inside the image is void or has a smaller label (so a
// boundary between two classes is 1 px wide, on the larger label's side). Void pixels keep the image.
// labels: (H, W) row-major, H*W bytes.
Image overlay_mask(const Image& img, const uint8_t* labels, int void_label, float alpha = 0.5f);
Image overlay_mask(const Image& img, const std::vector<uint8_t>& labels, int void_label, float alpha = 0.5f);

// ---- layout ----
// Panels side by side, each under its title, with a legend strip below mapping class_color(i) to
// class_names[i] (none when class_names is empty). Layout (g = kPanelGap = 4, s = text scale: 1, or 2 when
// the common height is >= 384):
//   common height Hc = the largest panel height; others resized to Hc keeping the aspect ratio (nearest
//                 for an integer ratio, else bilinear);
//   cell width  = max(panel width, text_width(title, s)) (a long title widens the cell, never clipped;
//                 the panel is centred in it);
//   width  = g + sum over panels (cell width + g);
//   height = g + text_height(s) + g + Hc + g + legend, legend = legend_height(...) (0 without classes).
// Background white, titles black. titles.size() must equal panels.size() (missing titles: pass "").
constexpr int kPanelGap = 4;
Image compose_panels(const std::vector<Image>& panels, const std::vector<std::string>& titles,
                     const std::vector<std::string>& class_names);
// Height of the legend strip for a picture `width` pixels wide: entries (a square swatch, a space, the
// name) flow left to right and wrap; rows of text_height(s) + g pixels. 0 when class_names is empty.
int legend_height(const std::vector<std::string>& class_names, int width, int scale);

// ---- scaling ----
// Nearest-neighbour upscaling by an integer factor >= 1: out(y, x) = in(y / f, x / f).
Image upscale_nearest(const Image& img, int factor);
// The same for a label map (H, W) -> (H f, W f).
std::vector<uint8_t> upscale_labels(const std::vector<uint8_t>& labels, int H, int W, int factor);

// Convenience: write an RGB image as PNG (atomic, via write_png_file).
void write_png(const std::string& path, const Image& img);

}  // namespace rf::data

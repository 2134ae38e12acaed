// Dense datasets: validation, content hashes, and the joint image / box / label-map augmentation; see
// dense.h for the rules.
// The transform computes only the out_h x out_w window of the virtual scaled image (never the whole scaled
// image): per output column one source pair (x0, x1, weight), per row likewise, so a 512x512 sample costs
// ~0.8 M multiply-adds, about 1 ms on one core. Arithmetic is resize_bilinear's, in float, per pixel, with no
// reductions (and -ffp-contract=off), so outputs are identical whatever the thread count.
// Checked by tests/datasets/test_dense_augment.cpp.
#include "datasets/dense.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <type_traits>

#include "datasets/first_error.h"
#include "datasets/fnv.h"
#include "datasets/rng.h"
#include "host/core/check.h"

namespace rf::data {

namespace {

// FNV-1a helpers: datasets/fnv.h
inline uint64_t fnv_float(uint64_t h, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return fnv_le<uint32_t>(h, u);
}
uint64_t fnv_image(uint64_t h, const Image& im) {
  h = fnv_le<int64_t>(h, im.H);
  h = fnv_le<int64_t>(h, im.W);
  h = fnv_le<int64_t>(h, im.C);
  return fnv_bytes(h, im.hwc.data(), im.hwc.size());
}

void check_image(const std::string& name, int64_t i, const std::string& id, const Image& im) {
  RF_CHECK(im.H > 0 && im.W > 0 && im.C == 3 && im.hwc.size() == size_t(im.H) * size_t(im.W) * 3,
           "dataset '{}': image {} ({}) is {}x{}x{} with {} bytes, expected HxWx3 with H*W*3 bytes", name, i, id,
           im.H, im.W, im.C, im.hwc.size());
}

inline float u24(uint32_t v) { return float(v >> 8) * (1.0f / 16777216.0f); }

// Offset in [lo, hi] from a 32-bit word (multiply-shift; bias < span / 2^32).
inline int offset_from(uint32_t word, int lo, int hi) {
  const uint64_t span = uint64_t(hi - lo + 1);
  return lo + int((uint64_t(word) * span) >> 32);
}

}  // namespace

// ---- datasets ------------------------------------------------------------------------------------
int64_t DetDataset::num_boxes() const {
  int64_t n = 0;
  for (const auto& b : boxes) n += int64_t(b.size());
  return n;
}

void DetDataset::validate() const {
  RF_CHECK(boxes.size() == images.size(), "dataset '{}': {} box lists for {} images", name, boxes.size(),
           images.size());
  RF_CHECK(ids.empty() || ids.size() == images.size(), "dataset '{}': {} ids for {} images", name, ids.size(),
           images.size());
  RF_CHECK(!classes.empty(), "dataset '{}': no class names", name);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string id = ids.empty() ? std::to_string(i) : ids[i];
    check_image(name, int64_t(i), id, images[i]);
    for (size_t k = 0; k < boxes[i].size(); ++k) {
      const BoxAnn& b = boxes[i][k];
      RF_CHECK(b.cls >= 0 && b.cls < num_classes(), "dataset '{}': image {} ({}) box {} has class {}, expected 0..{}",
               name, i, id, k, b.cls, num_classes() - 1);
      RF_CHECK(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= float(images[i].W) && b.y1 <= float(images[i].H) && b.x1 > b.x0 &&
                   b.y1 > b.y0,
               "dataset '{}': image {} ({}) box {} = [{}, {}) x [{}, {}) is empty or outside the {}x{} image", name,
               i, id, k, b.x0, b.x1, b.y0, b.y1, images[i].W, images[i].H);
    }
  }
}

uint64_t DetDataset::content_hash() const {
  uint64_t h = fnv_le<int64_t>(kFnvOffset, size());
  for (size_t i = 0; i < images.size(); ++i) {
    h = fnv_image(h, images[i]);
    const auto& bl = i < boxes.size() ? boxes[i] : std::vector<BoxAnn>{};
    h = fnv_le<int64_t>(h, int64_t(bl.size()));
    for (const BoxAnn& b : bl) {
      h = fnv_float(h, b.x0);
      h = fnv_float(h, b.y0);
      h = fnv_float(h, b.x1);
      h = fnv_float(h, b.y1);
      h = fnv_le<int32_t>(h, b.cls);
      h = fnv_le<uint8_t>(h, b.difficult ? 1 : 0);
    }
  }
  return h;
}

std::string DetDataset::hash_hex() const { return fmt::format("fnv1a64:{:016x}", content_hash()); }

void SegDataset::validate() const {
  RF_CHECK(labels.size() == images.size(), "dataset '{}': {} label maps for {} images", name, labels.size(),
           images.size());
  RF_CHECK(ids.empty() || ids.size() == images.size(), "dataset '{}': {} ids for {} images", name, ids.size(),
           images.size());
  RF_CHECK(!classes.empty() && classes.size() <= 255, "dataset '{}': {} class names, expected 1..255", name,
           classes.size());
  RF_CHECK(void_label >= 0 && void_label <= 255 && void_label >= num_classes(),
           "dataset '{}': void label {}, expected {}..255 (not a class)", name, void_label, num_classes());
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string id = ids.empty() ? std::to_string(i) : ids[i];
    check_image(name, int64_t(i), id, images[i]);
    const auto& L = labels[i];
    RF_CHECK(L.size() == size_t(images[i].H) * size_t(images[i].W),
             "dataset '{}': label map {} ({}) has {} bytes, expected H*W = {}*{}", name, i, id, L.size(), images[i].H,
             images[i].W);
    for (size_t p = 0; p < L.size(); ++p)
      RF_CHECK(L[p] < num_classes() || L[p] == void_label,
               "dataset '{}': label map {} ({}) has value {} at (x={}, y={}), expected 0..{} or void {}", name, i, id,
               int(L[p]), p % size_t(images[i].W), p / size_t(images[i].W), num_classes() - 1, void_label);
  }
}

uint64_t SegDataset::content_hash() const {
  uint64_t h = fnv_le<int64_t>(kFnvOffset, size());
  h = fnv_le<int64_t>(h, void_label);
  for (size_t i = 0; i < images.size(); ++i) {
    h = fnv_image(h, images[i]);
    if (i < labels.size()) h = fnv_bytes(h, labels[i].data(), labels[i].size());
  }
  return h;
}

std::string SegDataset::hash_hex() const { return fmt::format("fnv1a64:{:016x}", content_hash()); }

std::vector<int64_t> SegDataset::label_histogram() const {
  std::vector<int64_t> h(256, 0);
  for (const auto& L : labels)
    for (uint8_t v : L) ++h[v];
  return h;
}

std::string resolve_list_path(const std::string& root, const std::string& rel, const std::string& list, int line,
                              const char* field) {
  RF_CHECK(!rel.empty(), "{} line {}: empty {}", list, line, field);
  const std::filesystem::path p(rel);
  RF_CHECK(!p.is_absolute() && !p.has_root_name() && !p.has_root_directory(),
           "{} line {}: {} '{}' is an absolute path; expected a path relative to the dataset root {}", list, line,
           field, rel, root);
  const std::filesystem::path n = p.lexically_normal();
  RF_CHECK(!n.empty() && *n.begin() != ".." && n != ".",
           "{} line {}: {} '{}' leaves the dataset root {} (\"..\"); expected a path inside it", list, line, field,
           rel, root);
  return (std::filesystem::path(root) / n).string();
}

void print_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

// ---- augmentation --------------------------------------------------------------------------------
DenseAugParams dense_augment_params(const DenseAugment& a, uint64_t seed, int64_t epoch, int64_t index) {
  RF_CHECK(a.out_h > 0 && a.out_w > 0, "dense augment: output size {}x{}, expected > 0", a.out_h, a.out_w);
  DenseAugParams p;
  if (!a.enabled) {
    p.Hs = a.out_h;
    p.Ws = a.out_w;
    return p;
  }
  RF_CHECK(a.scale_min > 0 && a.scale_max >= a.scale_min && a.scale_max <= 16,
           "dense augment: scale range [{}, {}], expected 0 < scale_min <= scale_max <= 16", a.scale_min, a.scale_max);
  const Philox4 w = rng_words(seed, uint64_t(index), uint64_t(epoch), kTagDenseAugment);
  const float s = a.scale_min + (a.scale_max - a.scale_min) * u24(w.x);
  p.Hs = std::max(1, int(std::lround(float(a.out_h) * s)));
  p.Ws = std::max(1, int(std::lround(float(a.out_w) * s)));
  p.crop_y = offset_from(w.y, std::min(0, p.Hs - a.out_h), std::max(0, p.Hs - a.out_h));
  p.crop_x = offset_from(w.z, std::min(0, p.Ws - a.out_w), std::max(0, p.Ws - a.out_w));
  p.flip = a.flip && (w.w & 1u);
  return p;
}

DenseSample apply_dense_augment(const Image& img, const std::vector<BoxAnn>* boxes, const std::vector<uint8_t>* label,
                                int void_label, const DenseAugParams& p, const DenseAugment& a) {
  const int H = img.H, W = img.W, C = img.C, oh = a.out_h, ow = a.out_w;
  RF_CHECK(H > 0 && W > 0 && C > 0 && img.hwc.size() == size_t(H) * size_t(W) * size_t(C),
           "dense augment: image {}x{}x{} with {} bytes", H, W, C, img.hwc.size());
  RF_CHECK(oh > 0 && ow > 0 && p.Hs > 0 && p.Ws > 0, "dense augment: output {}x{}, scaled size {}x{}", oh, ow, p.Hs,
           p.Ws);
  RF_CHECK(!label || label->size() == size_t(H) * size_t(W), "dense augment: label map has {} bytes, expected {}*{}",
           label ? label->size() : 0, H, W);
  RF_CHECK(void_label >= 0 && void_label <= 255, "dense augment: void label {}, expected 0..255", void_label);
  DenseSample out;
  out.image.H = oh;
  out.image.W = ow;
  out.image.C = C;
  out.image.hwc.resize(size_t(oh) * size_t(ow) * size_t(C));

  // Per output column / row: the scaled coordinate, or -1 where it falls in the padding.
  std::vector<int> xs(static_cast<size_t>(ow)), ys(static_cast<size_t>(oh));
  for (int x = 0; x < ow; ++x) {
    const int xc = p.flip ? ow - 1 - x : x;
    const int v = xc + p.crop_x;
    xs[size_t(x)] = (v >= 0 && v < p.Ws) ? v : -1;
  }
  for (int y = 0; y < oh; ++y) {
    const int v = y + p.crop_y;
    ys[size_t(y)] = (v >= 0 && v < p.Hs) ? v : -1;
  }
  // Bilinear taps, exactly resize_bilinear's arithmetic for a resize to Hs x Ws.
  const float sy = float(H) / float(p.Hs), sx = float(W) / float(p.Ws);
  std::vector<int> cx0(static_cast<size_t>(ow)), cx1(static_cast<size_t>(ow));
  std::vector<float> cax(static_cast<size_t>(ow));
  for (int x = 0; x < ow; ++x) {
    if (xs[size_t(x)] < 0) continue;
    const float fx = std::clamp((float(xs[size_t(x)]) + 0.5f) * sx - 0.5f, 0.f, float(W - 1));
    cx0[size_t(x)] = int(fx);
    cx1[size_t(x)] = std::min(cx0[size_t(x)] + 1, W - 1);
    cax[size_t(x)] = fx - float(cx0[size_t(x)]);
  }
  uint8_t pad[4] = {0, 0, 0, 0};
  for (int c = 0; c < std::min(C, 3); ++c)
    pad[c] = uint8_t(std::clamp(int(std::lround(255.0f * a.mean[size_t(c)])), 0, 255));
  const uint8_t* src = img.hwc.data();
  for (int y = 0; y < oh; ++y) {
    uint8_t* drow = out.image.hwc.data() + size_t(y) * size_t(ow) * size_t(C);
    const int yv = ys[size_t(y)];
    float ay = 0;
    int y0 = 0, y1 = 0;
    if (yv >= 0) {
      const float fy = std::clamp((float(yv) + 0.5f) * sy - 0.5f, 0.f, float(H - 1));
      y0 = int(fy);
      y1 = std::min(y0 + 1, H - 1);
      ay = fy - float(y0);
    }
    for (int x = 0; x < ow; ++x) {
      uint8_t* d = drow + size_t(x) * size_t(C);
      if (yv < 0 || xs[size_t(x)] < 0) {
        for (int c = 0; c < C; ++c) d[c] = c < 4 ? pad[c] : 0;
        continue;
      }
      const float ax = cax[size_t(x)];
      const size_t i00 = (size_t(y0) * size_t(W) + size_t(cx0[size_t(x)])) * size_t(C);
      const size_t i01 = (size_t(y0) * size_t(W) + size_t(cx1[size_t(x)])) * size_t(C);
      const size_t i10 = (size_t(y1) * size_t(W) + size_t(cx0[size_t(x)])) * size_t(C);
      const size_t i11 = (size_t(y1) * size_t(W) + size_t(cx1[size_t(x)])) * size_t(C);
      for (int c = 0; c < C; ++c) {
        const float top = float(src[i00 + size_t(c)]) * (1 - ax) + float(src[i01 + size_t(c)]) * ax;
        const float bot = float(src[i10 + size_t(c)]) * (1 - ax) + float(src[i11 + size_t(c)]) * ax;
        const float v = top * (1 - ay) + bot * ay;
        d[c] = uint8_t(std::clamp(int(v + 0.5f), 0, 255));
      }
    }
  }

  if (label) {  // nearest: the source pixel holding the scaled pixel's centre
    out.label.assign(size_t(oh) * size_t(ow), uint8_t(void_label));
    std::vector<int> lx(static_cast<size_t>(ow));
    for (int x = 0; x < ow; ++x)
      lx[size_t(x)] = xs[size_t(x)] < 0 ? -1
                                        : std::min(W - 1, int((float(xs[size_t(x)]) + 0.5f) * float(W) / float(p.Ws)));
    for (int y = 0; y < oh; ++y) {
      if (ys[size_t(y)] < 0) continue;
      const int ly = std::min(H - 1, int((float(ys[size_t(y)]) + 0.5f) * float(H) / float(p.Hs)));
      const uint8_t* lrow = label->data() + size_t(ly) * size_t(W);
      uint8_t* orow = out.label.data() + size_t(y) * size_t(ow);
      for (int x = 0; x < ow; ++x)
        if (lx[size_t(x)] >= 0) orow[x] = lrow[lx[size_t(x)]];
    }
  }

  if (boxes) {
    const float kx = float(p.Ws) / float(W), ky = float(p.Hs) / float(H);
    for (const BoxAnn& b : *boxes) {
      BoxAnn t = b;
      t.x0 = b.x0 * kx - float(p.crop_x);
      t.x1 = b.x1 * kx - float(p.crop_x);
      t.y0 = b.y0 * ky - float(p.crop_y);
      t.y1 = b.y1 * ky - float(p.crop_y);
      if (p.flip) {
        const float x0 = float(ow) - t.x1, x1 = float(ow) - t.x0;
        t.x0 = x0;
        t.x1 = x1;
      }
      const float scaled_area = t.area();
      t.x0 = std::clamp(t.x0, 0.f, float(ow));
      t.x1 = std::clamp(t.x1, 0.f, float(ow));
      t.y0 = std::clamp(t.y0, 0.f, float(oh));
      t.y1 = std::clamp(t.y1, 0.f, float(oh));
      if (!(t.x1 > t.x0 && t.y1 > t.y0)) continue;  // nothing left inside the output
      if (a.enabled && (t.area() < a.min_visible * scaled_area || t.width() < a.min_side || t.height() < a.min_side))
        continue;
      out.boxes.push_back(t);
    }
  }
  return out;
}

DenseSample augment_det(const DetDataset& d, int64_t index, const DenseAugment& a, uint64_t seed, int64_t epoch) {
  RF_CHECK(index >= 0 && index < d.size() && size_t(index) < d.boxes.size(),
           "augment_det: index {} out of range for '{}' ({} images)", index, d.name, d.size());
  const DenseAugParams p = dense_augment_params(a, seed, epoch, index);
  return apply_dense_augment(d.images[size_t(index)], &d.boxes[size_t(index)], nullptr, 255, p, a);
}

DenseSample augment_seg(const SegDataset& d, int64_t index, const DenseAugment& a, uint64_t seed, int64_t epoch) {
  RF_CHECK(index >= 0 && index < d.size() && size_t(index) < d.labels.size(),
           "augment_seg: index {} out of range for '{}' ({} images)", index, d.name, d.size());
  const DenseAugParams p = dense_augment_params(a, seed, epoch, index);
  return apply_dense_augment(d.images[size_t(index)], nullptr, &d.labels[size_t(index)], d.void_label, p, a);
}

void hflip_sample(DenseSample& s) {
  const int H = s.image.H, W = s.image.W, C = s.image.C;
  for (int y = 0; y < H; ++y) {
    uint8_t* row = s.image.hwc.data() + size_t(y) * size_t(W) * size_t(C);
    for (int x = 0; x < W / 2; ++x)
      for (int c = 0; c < C; ++c)
        std::swap(row[size_t(x) * size_t(C) + size_t(c)], row[size_t(W - 1 - x) * size_t(C) + size_t(c)]);
  }
  if (!s.label.empty()) {
    RF_CHECK(s.label.size() == size_t(H) * size_t(W), "hflip_sample: label map has {} bytes, expected {}*{}",
             s.label.size(), H, W);
    for (int y = 0; y < H; ++y) std::reverse(s.label.begin() + y * W, s.label.begin() + (y + 1) * W);
  }
  for (BoxAnn& b : s.boxes) {
    const float x0 = float(W) - b.x1, x1 = float(W) - b.x0;
    b.x0 = x0;
    b.x1 = x1;
  }
}

// ---- batches -------------------------------------------------------------------------------------
namespace {

template <typename GetSample>
DenseBatch make_batch_impl(const char* what, int64_t n_data, const std::vector<int64_t>& indices,
                           const DenseAugment& a, bool seg, GetSample&& get) {
  RF_CHECK(a.out_h > 0 && a.out_w > 0, "{}: output size {}x{}, expected > 0", what, a.out_h, a.out_w);
  for (size_t k = 0; k < indices.size(); ++k)
    RF_CHECK(indices[k] >= 0 && indices[k] < n_data, "{}: index {} (position {}) out of range, expected 0..{}", what,
             indices[k], k, n_data - 1);
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    RF_CHECK(a.std[size_t(c)] > 0, "{}: std[{}] = {}, expected > 0", what, c, a.std[size_t(c)]);
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.0f - a.mean[size_t(c)]) / a.std[size_t(c)];
  }
  DenseBatch B;
  B.N = int64_t(indices.size());
  B.H = a.out_h;
  B.W = a.out_w;
  B.index = indices;
  const size_t plane = size_t(B.H) * size_t(B.W);
  B.x.resize(size_t(B.N) * 3 * plane);
  if (seg)
    B.labels.resize(size_t(B.N) * plane);
  else
    B.boxes.resize(size_t(B.N));
  FirstError first_error(B.N);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < B.N; ++k) {
    try {
      DenseSample s = get(indices[size_t(k)]);
      RF_CHECK(s.image.C == 3, "{}: image {} has {} channels, expected 3", what, indices[size_t(k)], s.image.C);
      float* xo = B.x.data() + size_t(k) * 3 * plane;
      for (size_t q = 0; q < plane; ++q)
        for (int c = 0; c < 3; ++c) xo[size_t(c) * plane + q] = lut[c][s.image.hwc[q * 3 + size_t(c)]];
      if (seg)
        std::copy(s.label.begin(), s.label.end(), B.labels.begin() + std::ptrdiff_t(size_t(k) * plane));
      else
        B.boxes[size_t(k)] = std::move(s.boxes);
    } catch (const std::exception& e) {
      first_error.record(k, [&] { return std::string(e.what()); });
    }
  }
  first_error.rethrow();
  return B;
}

}  // namespace

DenseBatch make_det_batch(const DetDataset& d, const std::vector<int64_t>& indices, const DenseAugment& a,
                          uint64_t seed, int64_t epoch) {
  return make_batch_impl("make_det_batch", std::min<int64_t>(d.size(), int64_t(d.boxes.size())), indices, a, false,
                         [&](int64_t i) { return augment_det(d, i, a, seed, epoch); });
}

DenseBatch make_seg_batch(const SegDataset& d, const std::vector<int64_t>& indices, const DenseAugment& a,
                          uint64_t seed, int64_t epoch) {
  return make_batch_impl("make_seg_batch", std::min<int64_t>(d.size(), int64_t(d.labels.size())), indices, a, true,
                         [&](int64_t i) { return augment_seg(d, i, a, seed, epoch); });
}

}  // namespace rf::data

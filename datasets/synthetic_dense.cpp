// Procedural detection / segmentation scenes; see synthetic_dense.h for what is drawn.
// Random numbers: Philox keyed by the seed, counter (index, block, kTagSynthDense): blocks 0.. the scene's
// parameters (a few hundred uniforms at most), blocks 1,000,000+ the per-pixel noise (one byte per
// pixel-channel). Float arithmetic per pixel with no reductions (-ffp-contract=off): threads change nothing.
// Cost: 128x128 x 4 samples x <= 4 objects, ~1 ms per scene on one core.
// Checked by tests/datasets/test_synthetic_dense.cpp.
#include "datasets/synthetic_dense.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "datasets/rng.h"
#include "host/core/check.h"

namespace rf::data {

namespace {

using Uniforms = UniformStream;  // datasets/rng.h

void colour(Uniforms& U, float L, float out[3]) { tinted_colour(U, L, 50.f, out); }

struct Obj {
  int cls;
  float cx, cy, half, cr, sr;  // centre, half side, rotation cos/sin
  float col[3];
};

// Inside test at coordinates relative to the centre, normalised by the half side and un-rotated.
bool inside(const Obj& o, float px, float py) {
  const float u = (o.cr * px + o.sr * py) / o.half, v = (-o.sr * px + o.cr * py) / o.half;
  switch (o.cls) {
    case 0: return u * u + v * v < 1.0f;                                          // disc
    case 1: return std::fabs(u) < 0.9f && std::fabs(v) < 0.9f;                    // square
    default: return v > -1.0f && v < 0.85f && std::fabs(u) < 0.55f * (v + 1.0f);  // triangle, apex up
  }
}

}  // namespace

const std::vector<std::string>& synthetic_det_class_names() {
  static const std::vector<std::string> names = {"disc", "square", "triangle"};
  return names;
}
const std::vector<std::string>& synthetic_seg_class_names() {
  static const std::vector<std::string> names = {"disc", "square", "triangle", "background"};
  return names;
}

DenseSample synthetic_dense_sample(uint64_t seed, int64_t index, int H, int W, int max_objects) {
  RF_CHECK(H >= 16 && W >= 16 && H <= 4096 && W <= 4096, "synthetic_dense: size {}x{}, expected 16..4096 per side",
           H, W);
  RF_CHECK(max_objects >= 1 && max_objects <= 32, "synthetic_dense: max_objects {}, expected 1..32", max_objects);
  RF_CHECK(index >= 0, "synthetic_dense: index {} must be >= 0", index);
  Uniforms U{{seed, uint64_t(index), kTagSynthDense}};
  const float S = float(std::min(H, W));

  // Background.
  const float Lb = U.range(30, 225);
  float bg[3], bg2[3];
  colour(U, Lb, bg);
  colour(U, Lb + U.range(-40, 40), bg2);
  const int tex = std::min(3, int(U.next() * 4));
  const float tex_amp = U.range(5, 20), tex_freq = U.range(0.25f, 0.9f), tex_ang = U.range(0, 3.14159f);
  const float ca = std::cos(tex_ang), sa = std::sin(tex_ang);
  const float noise = U.range(4, 20);

  // Objects.
  const int k = 1 + std::min(max_objects - 1, int(U.next() * float(max_objects)));
  std::vector<Obj> objs;
  for (int j = 0; j < k; ++j) {
    Obj o;
    o.cls = std::min(2, int(U.next() * 3));
    o.half = 0.5f * U.range(0.10f, 0.45f) * S;
    const float ang = o.cls == 0 ? 0.0f : U.range(-0.35f, 0.35f);
    o.cr = std::cos(ang);
    o.sr = std::sin(ang);
    const float gap = U.range(55, 140);
    float Lf = (U.next() < 0.5f) ? Lb + gap : Lb - gap;
    if (Lf > 245) Lf = Lb - gap;
    if (Lf < 10) Lf = Lb + gap;
    colour(U, Lf, o.col);
    bool placed = false;
    for (int t = 0; t < 8; ++t) {
      const float cx = U.range(o.half, float(W) - o.half), cy = U.range(o.half, float(H) - o.half);
      if (placed) continue;  // the draws are made anyway: the stream does not depend on which try won
      bool ok = true;
      for (const Obj& p : objs) {
        const float ix = std::min(cx + o.half, p.cx + p.half) - std::max(cx - o.half, p.cx - p.half);
        const float iy = std::min(cy + o.half, p.cy + p.half) - std::max(cy - o.half, p.cy - p.half);
        const float inter = (ix > 0 && iy > 0) ? ix * iy : 0.0f;
        const float smaller = 4.0f * std::min(o.half * o.half, p.half * p.half);
        if (inter >= 0.25f * smaller) ok = false;
      }
      if (ok || (j == 0)) {
        o.cx = cx;
        o.cy = cy;
        placed = true;
      }
    }
    if (placed) objs.push_back(o);
  }
  const int K = int(objs.size());

  DenseSample s;
  s.image.H = H;
  s.image.W = W;
  s.image.C = 3;
  s.image.hwc.resize(size_t(H) * size_t(W) * 3);
  s.label.resize(size_t(H) * size_t(W));
  std::vector<int> bx0(static_cast<size_t>(K), W), by0(static_cast<size_t>(K), H), bx1(static_cast<size_t>(K), -1), by1(static_cast<size_t>(K), -1);
  NoiseBytes nb{{seed, uint64_t(index), kTagSynthDense, 1000000}};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      // Background colour at the pixel.
      const float t = background_texture(tex, x, y, W, H, ca, sa, tex_freq, 6);
      float b[3];
      for (int c = 0; c < 3; ++c) b[c] = (tex == 1) ? bg[c] + (bg2[c] - bg[c]) * (0.5f + 0.5f * t) : bg[c] + tex_amp * t;
      // 2x2 samples: owner = topmost object containing the sample, -1 = background.
      int owner[4];
      float v[3] = {0, 0, 0};
      for (int q = 0; q < 4; ++q) {
        const float px = float(x) + 0.25f + 0.5f * float(q & 1), py = float(y) + 0.25f + 0.5f * float(q >> 1);
        owner[q] = -1;
        for (int j = K - 1; j >= 0; --j)
          if (inside(objs[size_t(j)], px - objs[size_t(j)].cx, py - objs[size_t(j)].cy)) {
            owner[q] = j;
            break;
          }
        const float* col = owner[q] >= 0 ? objs[size_t(owner[q])].col : b;
        for (int c = 0; c < 3; ++c) v[c] += 0.25f * col[c];
      }
      const bool uniform = owner[0] == owner[1] && owner[0] == owner[2] && owner[0] == owner[3];
      s.label[size_t(y) * size_t(W) + size_t(x)] =
          uint8_t(!uniform ? kSyntheticSegVoid : owner[0] < 0 ? 3 : objs[size_t(owner[0])].cls);
      for (int j = 0; j < K; ++j) {
        const int n = (owner[0] == j) + (owner[1] == j) + (owner[2] == j) + (owner[3] == j);
        if (n >= 2) {
          bx0[size_t(j)] = std::min(bx0[size_t(j)], x);
          by0[size_t(j)] = std::min(by0[size_t(j)], y);
          bx1[size_t(j)] = std::max(bx1[size_t(j)], x + 1);
          by1[size_t(j)] = std::max(by1[size_t(j)], y + 1);
        }
      }
      uint8_t* out = s.image.hwc.data() + (size_t(y) * size_t(W) + size_t(x)) * 3;
      for (int c = 0; c < 3; ++c) {
        const float val = v[c] + noise * nb.next();
        out[c] = uint8_t(std::clamp(int(std::lround(val)), 0, 255));
      }
    }
  for (int j = 0; j < K; ++j) {
    if (bx1[size_t(j)] < 0) continue;  // fully hidden
    BoxAnn bb;
    bb.x0 = float(bx0[size_t(j)]);
    bb.y0 = float(by0[size_t(j)]);
    bb.x1 = float(bx1[size_t(j)]);
    bb.y1 = float(by1[size_t(j)]);
    bb.cls = objs[size_t(j)].cls;
    s.boxes.push_back(bb);
  }
  return s;
}

namespace {
void check_args(const char* what, int64_t n, int64_t first_index, int H, int W, int max_objects) {
  RF_CHECK(n > 0 && first_index >= 0, "{}: n = {}, first_index = {}; expected n > 0, first_index >= 0", what, n,
           first_index);
  // Exceptions cannot leave the parallel region: everything synthetic_dense_sample checks is checked here.
  RF_CHECK(H >= 16 && W >= 16 && H <= 4096 && W <= 4096, "{}: size {}x{}, expected 16..4096 per side", what, H, W);
  RF_CHECK(max_objects >= 1 && max_objects <= 32, "{}: max_objects {}, expected 1..32", what, max_objects);
}

// The part both dataset kinds share: name ("synthetic-det" / "synthetic-seg"), ids and images of scenes
// first_index .. first_index + n - 1, drawn in parallel; keep(i, scene) takes the task's targets.
template <typename D, typename Keep>
void make_scenes(D& d, const char* kind, int64_t n, uint64_t seed, int64_t first_index, int H, int W,
                 int max_objects, int threads, Keep&& keep) {
  d.name = fmt::format("synthetic-{}(seed={},first={},n={},{}x{},max_objects={})", kind, seed, first_index, n, H,
                       W, max_objects);
  d.ids.resize(size_t(n));
  d.images.resize(size_t(n));
  const int t = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 8) num_threads(t)
  for (int64_t i = 0; i < n; ++i) {
    DenseSample s = synthetic_dense_sample(seed, first_index + i, H, W, max_objects);
    d.ids[size_t(i)] = "synthetic:" + std::to_string(first_index + i);
    d.images[size_t(i)] = std::move(s.image);
    keep(size_t(i), s);
  }
}
}  // namespace

DetDataset make_synthetic_det(int64_t n, uint64_t seed, int64_t first_index, int H, int W, int max_objects,
                              int threads) {
  check_args("make_synthetic_det", n, first_index, H, W, max_objects);
  DetDataset d;
  d.classes = synthetic_det_class_names();
  d.boxes.resize(size_t(n));
  make_scenes(d, "det", n, seed, first_index, H, W, max_objects, threads,
              [&](size_t i, DenseSample& s) { d.boxes[i] = std::move(s.boxes); });
  return d;
}

SegDataset make_synthetic_seg(int64_t n, uint64_t seed, int64_t first_index, int H, int W, int max_objects,
                              int threads) {
  check_args("make_synthetic_seg", n, first_index, H, W, max_objects);
  SegDataset d;
  d.classes = synthetic_seg_class_names();
  d.void_label = kSyntheticSegVoid;
  d.labels.resize(size_t(n));
  make_scenes(d, "seg", n, seed, first_index, H, W, max_objects, threads,
              [&](size_t i, DenseSample& s) { d.labels[i] = std::move(s.label); });
  return d;
}

}  // namespace rf::data

// Procedural shapes-and-textures classification set; see synthetic.h for what is drawn.
// Every random number comes from Philox keyed by the seed with counter (index, block, kTagSynthetic): block
// 0..3 the image's parameters, blocks 1000+ the per-pixel noise (one byte per pixel-channel). The arithmetic
// is float per pixel with no reductions (and no FMA: -ffp-contract=off), so threads change nothing.
// Checked by tests/datasets/test_synthetic.cpp.
#include "datasets/synthetic.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "datasets/rng.h"
#include "host/core/check.h"

namespace rf::data {

namespace {

using Uniforms = UniformStream;  // datasets/rng.h

// Inside test for class c at normalised, rotated coordinates (u, v); the shape spans about [-1, 1].
bool inside(int c, float u, float v) {
  const float au = std::fabs(u), av = std::fabs(v), r2 = u * u + v * v;
  switch (c) {
    case 0: return r2 < 1.0f;                                                         // disc
    case 1: return au < 0.82f && av < 0.82f;                                          // square
    case 2: return v < 0.75f && v > -0.95f && au < 0.56f * (v + 0.95f);               // triangle
    case 3: return (au < 0.3f && av < 1.0f) || (av < 0.3f && au < 1.0f);              // plus
    case 4: return r2 < 1.0f && r2 > 0.36f;                                           // ring
    case 5: {                                                                         // x_cross
      const float p = std::fabs(0.7071f * (u + v)), q = std::fabs(0.7071f * (u - v));
      return (p < 0.28f && q < 1.05f) || (q < 0.28f && p < 1.05f);
    }
    case 6: return std::max(au, av) < 0.9f && std::max(au, av) > 0.55f;              // frame
    case 7: return au < 0.9f && av < 0.9f && std::fmod(v + 0.9f, 0.6f) < 0.3f;         // stripes
    case 8: return r2 < 1.0f && v > 0.0f;                                             // half_disc
    default: {                                                                        // dots
      const float a = (u - 0.55f) * (u - 0.55f) + v * v, b = (u + 0.55f) * (u + 0.55f) + v * v;
      return a < 0.16f || b < 0.16f;
    }
  }
}

void colour(Uniforms& U, float L, float out[3]) { tinted_colour(U, L, 60.f, out); }

}  // namespace

const std::vector<std::string>& synthetic_class_names() {
  static const std::vector<std::string> names = {"disc",  "square", "triangle", "plus",      "ring",
                                                 "x_cross", "frame", "stripes",  "half_disc", "dots"};
  return names;
}

int32_t synthetic_label(uint64_t seed, int64_t index) {
  RF_CHECK(index >= 0, "synthetic_label: index {} must be >= 0", index);
  const auto perm = seeded_permutation(10, seed, kTagSynthLabel, uint64_t(index / 10));
  return int32_t(perm[size_t(index % 10)]);
}

void synthetic_image(uint64_t seed, int64_t index, int H, int W, uint8_t* out) {
  RF_CHECK(H >= 8 && W >= 8, "synthetic_image: size {}x{}, expected at least 8x8", H, W);
  const int cls = synthetic_label(seed, index);
  Uniforms U{{seed, uint64_t(index), kTagSynthetic}};
  const float S = float(std::min(H, W));

  // Background: base colour, then one of flat / gradient / sine texture / checker, low amplitude.
  const float Lb = U.range(25, 230);
  float bg[3], bg2[3], fg[3], sp[3];
  colour(U, Lb, bg);
  colour(U, Lb + U.range(-40, 40), bg2);
  const int tex = int(U.next() * 4);
  const float tex_amp = U.range(6, 22), tex_freq = U.range(0.25f, 0.9f), tex_ang = U.range(0, 3.14159f);
  const float ca = std::cos(tex_ang), sa = std::sin(tex_ang);
  // Foreground: luminance at a random gap of 55..140 from the background, on whichever side fits.
  const float gap = U.range(55, 140);
  float Lf = (U.next() < 0.5f) ? Lb + gap : Lb - gap;
  if (Lf > 245) Lf = Lb - gap;
  if (Lf < 10) Lf = Lb + gap;
  colour(U, Lf, fg);
  // Geometry: centre within the middle 30 %, radius 22..40 % of the side, rotation +-20 degrees.
  const float cx = U.range(0.35f, 0.65f) * float(W), cy = U.range(0.35f, 0.65f) * float(H);
  const float s = U.range(0.22f, 0.40f) * S, ang = U.range(-0.35f, 0.35f);
  const float cr = std::cos(ang), sr = std::sin(ang);
  // Distractor speck: half the images, radius 1.2..2.5 px anywhere, its own colour.
  const bool speck = U.next() < 0.5f;
  const float spx = U.range(0, float(W)), spy = U.range(0, float(H)), spr = U.range(1.2f, 2.5f);
  colour(U, U.range(20, 235), sp);
  const float noise = U.range(6, 26);

  const size_t plane = size_t(H) * size_t(W);
  NoiseBytes nb{{seed, uint64_t(index), kTagSynthetic, 1000}};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      // Coverage of the shape by 2x2 supersampling (soft edges).
      int hits = 0;
      for (int sy = 0; sy < 2; ++sy)
        for (int sx = 0; sx < 2; ++sx) {
          const float px = float(x) + 0.25f + 0.5f * float(sx) - cx, py = float(y) + 0.25f + 0.5f * float(sy) - cy;
          const float u = (cr * px + sr * py) / s, v = (-sr * px + cr * py) / s;
          hits += inside(cls, u, v) ? 1 : 0;
        }
      const float a = float(hits) * 0.25f;
      const float t = background_texture(tex, x, y, W, H, ca, sa, tex_freq, 4);  // in [-1, 1]
      const bool in_speck = speck && ((float(x) - spx) * (float(x) - spx) + (float(y) - spy) * (float(y) - spy) <
                                      spr * spr);
      for (int c = 0; c < 3; ++c) {
        const float b = (tex == 1) ? bg[c] + (bg2[c] - bg[c]) * (0.5f + 0.5f * t) : bg[c] + tex_amp * t;
        float v = b * (1.0f - a) + fg[c] * a;
        if (in_speck) v = sp[c];
        v += noise * nb.next();
        out[size_t(c) * plane + size_t(y) * size_t(W) + size_t(x)] = uint8_t(std::clamp(int(std::lround(v)), 0, 255));
      }
    }
}

Dataset make_synthetic(int64_t n, uint64_t seed, int64_t first_index, int H, int W, int threads) {
  RF_CHECK(n > 0 && first_index >= 0, "make_synthetic: n = {}, first_index = {}; expected n > 0, first_index >= 0",
           n, first_index);
  Dataset d;
  d.name = fmt::format("synthetic(seed={},first={},n={},{}x{})", seed, first_index, n, H, W);
  d.N = n;
  d.C = 3;
  d.H = H;
  d.W = W;
  d.classes = synthetic_class_names();
  d.pixels.resize(size_t(n) * 3 * size_t(H) * size_t(W));
  d.labels.resize(static_cast<size_t>(n));
  const int t = threads > 0 ? threads : omp_get_max_threads();
  // Exceptions cannot leave the region; the only one possible (size) is checked before it.
  RF_CHECK(H >= 8 && W >= 8, "make_synthetic: size {}x{}, expected at least 8x8", H, W);
#pragma omp parallel for schedule(static) num_threads(t)
  for (int64_t i = 0; i < n; ++i) {
    d.labels[size_t(i)] = synthetic_label(seed, first_index + i);
    synthetic_image(seed, first_index + i, H, W, d.image(i));
  }
  return d;
}

}  // namespace rf::data

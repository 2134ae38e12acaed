// The built-in classification set: procedural 10-class images (shapes on textured backgrounds), a pure
// function of (seed, index), so any N, any seed, any thread count gives the same images.
// Classes: disc, square, triangle, plus, ring, x_cross, frame, stripes, half_disc, dots. Each image draws
// (Philox, seed, index) a background (flat, gradient, low-contrast sine or checker texture), a foreground
// colour at a random luminance gap from it, the shape's position, scale and a small rotation
// (±20 degrees), an optional distractor speck, and per-pixel noise of random strength: a small CNN learns
// it well above chance in a few epochs, but it is not separable by colour or by any single pixel.
// Labels: images 10b .. 10b+9 carry a Philox permutation of the 10 classes (exact balance per 10 images).
// Checked by tests/datasets/test_synthetic.cpp (determinism, seed sensitivity, thread invariance,
// class balance, class separation).
#pragma once
#include <cstdint>

#include "datasets/dataset.h"

namespace rf::data {

const std::vector<std::string>& synthetic_class_names();

// Label of image `index` under `seed`.
int32_t synthetic_label(uint64_t seed, int64_t index);

// Renders image `index` (class synthetic_label(seed, index)) into out_chw (3 * H * W bytes, R, G, B planes).
void synthetic_image(uint64_t seed, int64_t index, int H, int W, uint8_t* out_chw);

// n images, indices first_index .. first_index + n - 1 (so train and test can be disjoint ranges of one
// seed's stream: e.g. train = [0, 50000), test = [50000, 60000)). OpenMP over images; threads <= 0 means
// the default team.
Dataset make_synthetic(int64_t n, uint64_t seed, int64_t first_index = 0, int H = 32, int W = 32, int threads = 0);

}  // namespace rf::data

// The built-in detection and segmentation sets: procedural scenes of 1..max_objects shapes (disc, square,
// triangle) on textured, noisy backgrounds, a pure function of (seed, index), so any N, any seed, any thread
// count gives the same images. Both tasks see the same image for the same (seed, index).
// Per image (Philox, seed, index, kTagSynthDense): a background (flat, gradient, sine or checker texture at
// low amplitude), the object count, then per object a class, a size (side 10..45 % of min(H, W)), a small
// rotation (squares and triangles, +-20 degrees), a colour at a luminance gap of 55..140 from the background
// and a position (up to 8 tries for one whose box overlaps every earlier box by < 25 % of the smaller box;
// none found: the object is left out, except the first), and per-pixel noise of random strength.
// Later objects are drawn over earlier ones. Each pixel is 2x2 supersampled (soft edges):
//   segmentation label = the class of the object owning all 4 samples, background (3) when no object owns
//                        any, void (255) when the samples disagree (the ~1 px anti-aliased ring around each
//                        shape, where the colour is a blend);
//   detection box      = tight box [x0, x1) x [y0, y1) of the pixels where the object owns >= 2 samples
//                        (its visible part); an object left with no such pixel is not listed.
// So every pixel labelled with class c lies inside a box of class c (checked by the test).
// Checked by tests/datasets/test_synthetic_dense.cpp (determinism, seed sensitivity, thread invariance,
// mask inside boxes, det/seg agreement, class coverage).
#pragma once
#include <cstdint>

#include "datasets/dense.h"

namespace rf::data {

constexpr int kSyntheticSegVoid = 255;

const std::vector<std::string>& synthetic_det_class_names();  // disc, square, triangle
const std::vector<std::string>& synthetic_seg_class_names();  // disc, square, triangle, background

// One scene: image (H x W x 3), boxes (detection classes 0..2), label map (H*W, 0..3 or 255).
DenseSample synthetic_dense_sample(uint64_t seed, int64_t index, int H = 128, int W = 128, int max_objects = 4);

// n scenes, indices first_index .. first_index + n - 1 (train and test can be disjoint ranges of one seed).
// OpenMP over images; threads <= 0 means the default team.
DetDataset make_synthetic_det(int64_t n, uint64_t seed, int64_t first_index = 0, int H = 128, int W = 128,
                              int max_objects = 4, int threads = 0);
SegDataset make_synthetic_seg(int64_t n, uint64_t seed, int64_t first_index = 0, int H = 128, int W = 128,
                              int max_objects = 4, int threads = 0);

}  // namespace rf::data

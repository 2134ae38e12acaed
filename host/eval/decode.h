// Decoding of the anchor-free centre-point (CenterNet-style) detection head into boxes in input pixels.
// Reference (brute force, explicit 3x3 max) + fast path (threshold first, partial sort, OpenMP over images).
// Checked by tests/eval/test_decode.cpp: fast == reference exactly over a shape sweep, plus hand cases.
// det_decode / seg_argmax (the trunk's output tensors): tests/suites/test_dense_suite.cpp and the suites end to end.
//
// Rules:
// - score = sigmoid(heat logit), in float, the same function in both paths.
// - A cell is a peak when its score equals the max of the scores in its 3x3 neighbourhood of the same class
//   (neighbours outside the map are ignored). So every cell of a plateau of equal scores is a peak (this is
//   what CenterNet's "maxpool(heat) == heat" does); no plateau suppression.
// - Per image, the top_k peaks over all classes, ranked by descending score, ties: lower flat index
//   k*Hf*Wf + y*Wf + x first; peaks with score < score_threshold are dropped. Output order per image is
//   that ranking, images in order.
// - Box: cx = (x + off_x)*stride, cy = (y + off_y)*stride, w = wh_x*stride, h = wh_y*stride,
//   (cx - w/2, cy - h/2, cx + w/2, cy + h/2), each coordinate clamped to [0, Wf*stride] / [0, Hf*stride].
//   Negative sizes are not made absolute (the box then has area <= 0, IoU 0 in the metrics).
// - A NaN heat logit -> rf::Error naming the element (a NaN would make the peak test meaningless).
#pragma once
#include <cstdint>
#include <vector>

#include "host/core/tensor.h"
#include "host/eval/det_metrics.h"

namespace rf::eval {

struct DecodeOptions {
  int top_k = 100;
  float score_threshold = 0.05f;
  int stride = 8;
};

// heat: (N, K, Hf, Wf) logits; wh: (N, 2, Hf, Wf) box width/height in feature cells;
// off: (N, 2, Hf, Wf) centre offset in cells (x then y). Detection.image = first_image_index + n.
std::vector<Detection> decode_centernet(const float* heat, const float* wh, const float* off, int64_t N, int K,
                                        int Hf, int Wf, const DecodeOptions& opt, int64_t first_image_index = 0);

// The plain loop the fast path is tested against (single thread, all cells, explicit 3x3 max, full sort).
std::vector<Detection> decode_centernet_ref(const float* heat, const float* wh, const float* off, int64_t N,
                                            int K, int Hf, int Wf, const DecodeOptions& opt,
                                            int64_t first_image_index = 0);

// The detection trunk's output (N, K + 4, Hf, Wf) (host/models/dense.h: heat K | size 2 | offset 2) decoded at
// stride 8 with the default top_k: detections in network-input pixels, image = first_image + n.
std::vector<Detection> det_decode(const Tensor& out, int K, float score_threshold, int64_t first_image);

// Per-pixel argmax of (N, C, H, W) logits (ties: the lower class), (N, H, W) class indices.
std::vector<int32_t> seg_argmax(const Tensor& out);

}  // namespace rf::eval

// Dense (per-pixel) losses and targets of the detection and segmentation heads (MODELS.md, "Detection and
// segmentation"): CenterNet's penalty-reduced focal loss on heatmap logits, masked L1 for the size / offset
// maps, pixel-wise softmax cross-entropy with an ignore label, and the centre-point target encoder.
// Checked by tests/ops/test_dense_loss.cpp.
//
// Every loss returns its value (double) and writes the gradient of that value with respect to its prediction
// input; the gradient pointer may be nullptr (loss only). References are plain loops computing in double
// (instantiated for float and double inputs); the _cpu fast paths compute in float with OpenMP and sum per-row
// partial losses in double in a fixed order (the value does not depend on the thread count).
#pragma once
#include <cstdint>

namespace rf {

// ---- (a) CenterNet focal loss ---------------------------------------------------------------------
// logits, target, dlogits: (N, K, H, W); target in [0, 1], exactly 1 at object centres (else rf::Error naming
// the cell). p = clamp(sigmoid(logit), 1e-4, 1 - 1e-4);
//   t == 1: -(1 - p)^2 log p        t < 1: -(1 - t)^4 p^2 log(1 - p)
// summed over all cells and divided by max(1, number of cells with t == 1).
// Gradient (u = 1 / max(1, npos)):  t == 1: u (1-p)^2 (2 p log p - (1 - p));  t < 1: u (1-t)^4 p^2 (p - 2 (1-p) log(1-p)).
// Where the clamp is active (sigmoid outside [1e-4, 1 - 1e-4], |logit| > ~9.21) the gradient is 0: that is the
// exact derivative of the clamped loss (flat there), as in PyTorch's autograd through clamp.
// 1 - p is evaluated as sigmoid(-logit), not by subtraction, so log(1 - p) keeps its precision near p = 1.
template <typename T>
double centernet_focal_loss_ref(int N, int K, int H, int W, const T* logits, const T* target, T* dlogits);
double centernet_focal_loss_cpu(int N, int K, int H, int W, const float* logits, const float* target,
                                float* dlogits);

// ---- (b) masked L1 --------------------------------------------------------------------------------
// pred, target, dpred: (N, C, H, W) (C = 2 for the size and offset heads); mask: (N, H, W), every value 0 or 1
// (else rf::Error naming the cell). loss = sum_{n,c,y,x} mask |pred - target| / max(1, number of mask cells);
// dpred = mask * sign(pred - target) / max(1, count), 0 where pred == target.
template <typename T>
double masked_l1_loss_ref(int N, int C, int H, int W, const T* pred, const T* target, const T* mask, T* dpred);
double masked_l1_loss_cpu(int N, int C, int H, int W, const float* pred, const float* target, const float* mask,
                          float* dpred);

// ---- (c) pixel-wise softmax cross-entropy ------------------------------------------------------------
// logits, dlogits: (N, C, H, W); labels: (N, H, W). Pixels whose label equals ignore_label (e.g. 255, or 11 for
// CamVid's void) carry no loss and zero gradient; any other label must be < C (else rf::Error naming the value
// and the pixel (n, y, x)). Returns the mean over non-ignored pixels of -log softmax(logits)[label]
// (max-subtracted); 0 with an all-zero gradient when every pixel is ignored.
// dlogits = (softmax - onehot) / count at counted pixels.
template <typename T>
double pixel_cross_entropy_ref(int N, int C, int H, int W, const T* logits, const uint8_t* labels, int ignore_label,
                               T* dlogits);
double pixel_cross_entropy_cpu(int N, int C, int H, int W, const float* logits, const uint8_t* labels,
                               int ignore_label, float* dlogits);

// ---- (d) centre-point targets ---------------------------------------------------------------------------
// CenterNet's (CornerNet's) gaussian_radius: the largest r such that a box of size (h, w) whose corners move
// by r still has IoU >= min_overlap with the original, as the minimum over three cases, each the root of a
// quadratic a r^2 - b r + c = 0 (coded as in CenterNet, r = (b + sqrt(b^2 - 4ac)) / 2):
//   r1: a = 1,       b = h + w,             c = w h (1 - m) / (1 + m)
//   r2: a = 4,       b = 2 (h + w),         c = (1 - m) w h
//   r3: a = 4 m,     b = -2 m (h + w),      c = (m - 1) w h            (m = min_overlap)
// h, w in heatmap cells; returns min(r1, r2, r3) (not truncated).
double gaussian_radius(double h, double w, double min_overlap = 0.7);

// Targets of ONE image. boxes: (n, 4) as x0, y0, x1, y1 in input pixels; cls: (n) in [0, K) (else rf::Error
// naming the box). Outputs (overwritten, zeroed first): heat (K, Hf, Wf), wh (2, Hf, Wf), off (2, Hf, Wf),
// mask (Hf, Wf). For each box, skipped when zero-size (x1 <= x0 or y1 <= y0, NaN included) or fully outside
// [0, Wf*stride) x [0, Hf*stride):
//   centre c = ((x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride); cell = floor(c) clamped to the map;
//   off[:, cell] = c - cell (so cell + off decodes c exactly; outside [0, 1) only when the centre lies off the
//   map); wh[:, cell] = ((x1 - x0) / stride, (y1 - y0) / stride); mask[cell] = 1;
//   radius = max(0, int(gaussian_radius(h, w, 0.7))) with (h, w) the box size in cells, sigma = (2 radius + 1) / 6,
//   heat[cls] = max(heat[cls], exp(-(dx^2 + dy^2) / (2 sigma^2))) over |dx|, |dy| <= radius (clipped to the
//   map): peak exactly 1 at the cell. Two boxes on one cell: the later box's wh / off win.
void draw_centernet_targets(const float* boxes, const int32_t* cls, int n, int stride, int K, int Hf, int Wf,
                            float* heat, float* wh, float* off, float* mask);

}  // namespace rf

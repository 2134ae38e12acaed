// Dense losses of the detection / segmentation heads (CenterNet focal loss, masked L1, pixel softmax
// cross-entropy with an ignore label) and the centre-point target encoder. Formulas: host/ops/dense_loss.h.
// First the reference loops (double arithmetic, float and double inputs), then the fast CPU paths.
// Checked by tests/ops/test_dense_loss.cpp: hand values, fast vs reference over shape sweeps, finite
// differences of the double references, target encoding of single and overlapping boxes, bad inputs.
//
// Fast paths: inputs are validated (and positives / mask cells / valid pixels counted) by a serial pre-pass,
// because exceptions may not leave an OpenMP region; it reads 1 value per cell against the exp + log per cell
// of the main pass. The main pass runs OpenMP over rows of W pixels; each row's loss is summed in double and
// the rows are added serially in index order, so the value is the same for any thread count.
// Pixel cross-entropy keeps NCHW: for one (n, y) row the channel loop is outside and the W loop inside, so
// every inner loop streams contiguous floats (max, exp-sum, scale) and the running max / sum live in two
// W-float rows. exp / log are libm's scalar float versions (-ffast-math is off, so GCC does not vectorise
// them); the rest of each loop vectorises.
#include "host/ops/dense_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "host/core/check.h"

namespace rf {

namespace {

constexpr int64_t kParallelMin = int64_t(1) << 14;  // cells; below this one thread beats a fork/join
constexpr double kFocalClamp = 1e-4;

void check_dims(const char* op, const char* cname, int N, int C, int H, int W) {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1, "{}: sizes must be positive, got N={} {}={} H={} W={}", op, N,
           cname, C, H, W);
}

// Number of cells with target exactly 1; throws on a target outside [0, 1] (NaN included).
template <typename T>
int64_t focal_positives(int N, int K, int H, int W, const T* target) {
  check_dims("centernet_focal_loss", "K", N, K, H, W);
  const int64_t total = int64_t(N) * K * H * W;
  int64_t npos = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double t = double(target[i]);
    if (!(t >= 0.0 && t <= 1.0)) {
      const int64_t x = i % W, y = i / W % H, k = i / W / H % K, n = i / W / H / K;
      RF_FAIL("centernet_focal_loss(N={},K={},H={},W={}): target {} at (n={}, k={}, y={}, x={}) is outside [0, 1]",
              N, K, H, W, t, n, k, y, x);
    }
    npos += t == 1.0;
  }
  return npos;
}

// Number of mask cells; throws on a mask value other than 0 or 1.
template <typename T>
int64_t mask_cells(int N, int C, int H, int W, const T* mask) {
  check_dims("masked_l1_loss", "C", N, C, H, W);
  const int64_t total = int64_t(N) * H * W;
  int64_t count = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double m = double(mask[i]);
    if (!(m == 0.0 || m == 1.0))
      RF_FAIL("masked_l1_loss(N={},C={},H={},W={}): mask value {} at (n={}, y={}, x={}) must be 0 or 1", N, C, H, W,
              m, i / W / H, i / W % H, i % W);
    count += m == 1.0;
  }
  return count;
}

// Number of pixels not ignored; throws on a label >= C that is not ignore_label.
int64_t valid_pixels(int N, int C, int H, int W, const uint8_t* labels, int ignore_label) {
  check_dims("pixel_cross_entropy", "C", N, C, H, W);
  const int64_t total = int64_t(N) * H * W;
  int64_t count = 0;
  for (int64_t i = 0; i < total; ++i) {
    const int l = labels[i];
    if (l == ignore_label) continue;
    if (l >= C)
      RF_FAIL("pixel_cross_entropy(N={},C={},H={},W={}): label {} at pixel (n={}, y={}, x={}) is not a class "
              "(valid [0, {}]) and not ignore_label={}",
              N, C, H, W, l, i / W / H, i / W % H, i % W, C - 1, ignore_label);
    ++count;
  }
  return count;
}

}  // namespace

// ---- reference -----------------------------------------------------------------------------------

template <typename T>
double centernet_focal_loss_ref(int N, int K, int H, int W, const T* logits, const T* target, T* dlogits) {
  const int64_t npos = focal_positives(N, K, H, W, target);
  const double u = 1.0 / double(std::max<int64_t>(1, npos));
  const int64_t total = int64_t(N) * K * H * W;
  double loss = 0;
  for (int64_t i = 0; i < total; ++i) {
    const double x = double(logits[i]), t = double(target[i]);
    // p = sigmoid(x), q = 1 - p = sigmoid(-x), both without cancellation
    const double e = std::exp(-std::fabs(x));
    double p = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    double q = x >= 0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
    bool clamped = false;
    if (p < kFocalClamp) {
      p = kFocalClamp, q = 1.0 - kFocalClamp, clamped = true;
    } else if (q < kFocalClamp) {
      p = 1.0 - kFocalClamp, q = kFocalClamp, clamped = true;
    }
    double g;
    if (t == 1.0) {
      loss += -q * q * std::log(p);
      g = q * q * (2.0 * p * std::log(p) - q);  // d/dx, with dp/dx = p q
    } else {
      const double w = (1.0 - t) * (1.0 - t) * (1.0 - t) * (1.0 - t);
      loss += -w * p * p * std::log(q);
      g = w * p * p * (p - 2.0 * q * std::log(q));
    }
    if (dlogits) dlogits[i] = T(clamped ? 0.0 : g * u);
  }
  return loss * u;
}

template <typename T>
double masked_l1_loss_ref(int N, int C, int H, int W, const T* pred, const T* target, const T* mask, T* dpred) {
  const int64_t count = mask_cells(N, C, H, W, mask);
  const double u = 1.0 / double(std::max<int64_t>(1, count));
  double loss = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t i = ((n * C + c) * H + y) * W + x;
          const double m = double(mask[(n * H + y) * W + x]);
          const double d = double(pred[i]) - double(target[i]);
          loss += m * std::fabs(d);
          if (dpred) dpred[i] = T(m * ((d > 0) - (d < 0)) * u);
        }
  return loss * u;
}

template <typename T>
double pixel_cross_entropy_ref(int N, int C, int H, int W, const T* logits, const uint8_t* labels, int ignore_label,
                               T* dlogits) {
  const int64_t count = valid_pixels(N, C, H, W, labels, ignore_label);
  const double u = count ? 1.0 / double(count) : 0.0;
  const int64_t HW = int64_t(H) * W;
  double loss = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t px = 0; px < HW; ++px) {
      const T* l = logits + n * C * HW + px;  // channel c at l[c * HW]
      const int label = labels[n * HW + px];
      if (label == ignore_label) {
        if (dlogits)
          for (int64_t c = 0; c < C; ++c) dlogits[n * C * HW + c * HW + px] = T(0);
        continue;
      }
      double mx = double(l[0]);
      for (int64_t c = 1; c < C; ++c) mx = std::max(mx, double(l[c * HW]));
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += std::exp(double(l[c * HW]) - mx);
      loss += mx + std::log(sum) - double(l[label * HW]);
      if (dlogits)
        for (int64_t c = 0; c < C; ++c)
          dlogits[n * C * HW + c * HW + px] =
              T((std::exp(double(l[c * HW]) - mx) / sum - (c == label ? 1.0 : 0.0)) * u);
    }
  return loss * u;
}

template double centernet_focal_loss_ref<float>(int, int, int, int, const float*, const float*, float*);
template double centernet_focal_loss_ref<double>(int, int, int, int, const double*, const double*, double*);
template double masked_l1_loss_ref<float>(int, int, int, int, const float*, const float*, const float*, float*);
template double masked_l1_loss_ref<double>(int, int, int, int, const double*, const double*, const double*,
                                           double*);
template double pixel_cross_entropy_ref<float>(int, int, int, int, const float*, const uint8_t*, int, float*);
template double pixel_cross_entropy_ref<double>(int, int, int, int, const double*, const uint8_t*, int, double*);

// ---- fast CPU paths ------------------------------------------------------------------------------

double centernet_focal_loss_cpu(int N, int K, int H, int W, const float* logits, const float* target,
                                float* dlogits) {
  const int64_t npos = focal_positives(N, K, H, W, target);
  const float u = float(1.0 / double(std::max<int64_t>(1, npos)));
  const int64_t rows = int64_t(N) * K * H;
  const float lo = float(kFocalClamp), hi = 1.f - lo;
  std::vector<double> row_loss(rows);
#pragma omp parallel for schedule(static) if (rows > 1 && rows * W >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * W;
    const float* t = target + r * W;
    float* d = dlogits ? dlogits + r * W : nullptr;
    double acc = 0;
    for (int64_t j = 0; j < W; ++j) {
      const float e = std::exp(-std::fabs(x[j]));
      const float inv = 1.f / (1.f + e);
      float p = x[j] >= 0.f ? inv : e * inv;
      float q = x[j] >= 0.f ? e * inv : inv;
      const bool clamped = p < lo || q < lo;
      if (p < lo) p = lo, q = hi;
      if (q < lo) p = hi, q = lo;
      float term, g;
      if (t[j] == 1.f) {
        const float lp = std::log(p);
        term = -q * q * lp;
        g = q * q * (2.f * p * lp - q);
      } else {
        const float om = 1.f - t[j], w = (om * om) * (om * om);
        const float lq = std::log(q);
        term = -w * p * p * lq;
        g = w * p * p * (p - 2.f * q * lq);
      }
      acc += double(term);
      if (d) d[j] = clamped ? 0.f : g * u;
    }
    row_loss[r] = acc;
  }
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return total / double(std::max<int64_t>(1, npos));
}

double masked_l1_loss_cpu(int N, int C, int H, int W, const float* pred, const float* target, const float* mask,
                          float* dpred) {
  const int64_t count = mask_cells(N, C, H, W, mask);
  const float u = float(1.0 / double(std::max<int64_t>(1, count)));
  const int64_t rows = int64_t(N) * C * H;
  std::vector<double> row_loss(rows);
#pragma omp parallel for schedule(static) if (rows > 1 && rows * W >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / (int64_t(C) * H), y = r % H;
    const float* __restrict p = pred + r * W;
    const float* __restrict t = target + r * W;
    const float* __restrict m = mask + (n * H + y) * W;
    float acc = 0.f;  // <= W terms of one row in float, then double across rows
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < W; ++j) acc += m[j] * std::fabs(p[j] - t[j]);
    row_loss[r] = double(acc);
    if (dpred) {
      float* __restrict d = dpred + r * W;
#pragma omp simd
      for (int64_t j = 0; j < W; ++j) {
        const float diff = p[j] - t[j];
        d[j] = m[j] * float((diff > 0.f) - (diff < 0.f)) * u;
      }
    }
  }
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return total / double(std::max<int64_t>(1, count));
}

double pixel_cross_entropy_cpu(int N, int C, int H, int W, const float* logits, const uint8_t* labels,
                               int ignore_label, float* dlogits) {
  const int64_t count = valid_pixels(N, C, H, W, labels, ignore_label);
  const float u = count ? float(1.0 / double(count)) : 0.f;
  const int64_t HW = int64_t(H) * W, rows = int64_t(N) * H;
  std::vector<double> row_loss(rows);
#pragma omp parallel if (rows > 1 && rows * W * C >= kParallelMin)
  {
    std::vector<float> mx_buf(W), sum_buf(W);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / H, y = r % H;
      const float* l0 = logits + n * C * HW + y * W;  // channel c row at l0 + c * HW
      float* d0 = dlogits ? dlogits + n * C * HW + y * W : nullptr;
      const uint8_t* lab = labels + n * HW + y * W;
      float* __restrict mx = mx_buf.data();
      float* __restrict sum = sum_buf.data();
      std::copy(l0, l0 + W, mx);
      for (int64_t c = 1; c < C; ++c) {
        const float* __restrict l = l0 + c * HW;
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) mx[j] = std::max(mx[j], l[j]);
      }
      std::fill(sum, sum + W, 0.f);
      for (int64_t c = 0; c < C; ++c) {
        const float* l = l0 + c * HW;
        float* d = d0 ? d0 + c * HW : nullptr;
        if (d) {
          for (int64_t j = 0; j < W; ++j) {
            d[j] = std::exp(l[j] - mx[j]);
            sum[j] += d[j];
          }
        } else {
          for (int64_t j = 0; j < W; ++j) sum[j] += std::exp(l[j] - mx[j]);
        }
      }
      double acc = 0;
      for (int64_t j = 0; j < W; ++j)
        if (lab[j] != ignore_label) acc += double(mx[j]) + std::log(double(sum[j])) - double(l0[lab[j] * HW + j]);
      row_loss[r] = acc;
      if (d0) {
        // sum becomes the per-pixel scale u / sum (0 at ignored pixels), applied channel by channel
        for (int64_t j = 0; j < W; ++j) sum[j] = lab[j] == ignore_label ? 0.f : u / sum[j];
        for (int64_t c = 0; c < C; ++c) {
          float* __restrict d = d0 + c * HW;
#pragma omp simd
          for (int64_t j = 0; j < W; ++j) d[j] *= sum[j];
        }
        for (int64_t j = 0; j < W; ++j)
          if (lab[j] != ignore_label) d0[lab[j] * HW + j] -= u;
      }
    }
  }
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return count ? total / double(count) : 0.0;
}

// ---- centre-point targets ----------------------------------------------------------------------------

double gaussian_radius(double h, double w, double min_overlap) {
  const double m = min_overlap;
  const double b1 = h + w, c1 = w * h * (1 - m) / (1 + m);
  const double r1 = (b1 + std::sqrt(b1 * b1 - 4 * c1)) / 2;
  const double a2 = 4, b2 = 2 * (h + w), c2 = (1 - m) * w * h;
  const double r2 = (b2 + std::sqrt(b2 * b2 - 4 * a2 * c2)) / 2;
  const double a3 = 4 * m, b3 = -2 * m * (h + w), c3 = (m - 1) * w * h;
  const double r3 = (b3 + std::sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return std::min({r1, r2, r3});
}

void draw_centernet_targets(const float* boxes, const int32_t* cls, int n, int stride, int K, int Hf, int Wf,
                            float* heat, float* wh, float* off, float* mask) {
  RF_CHECK(n >= 0 && stride >= 1 && K >= 1 && Hf >= 1 && Wf >= 1,
           "draw_centernet_targets: need n >= 0, stride >= 1, K >= 1, Hf >= 1, Wf >= 1; got n={} stride={} K={} "
           "Hf={} Wf={}",
           n, stride, K, Hf, Wf);
  for (int b = 0; b < n; ++b)
    RF_CHECK(cls[b] >= 0 && cls[b] < K, "draw_centernet_targets: box {} has class {}, outside the valid range [0, {}]",
             b, cls[b], K - 1);
  const int64_t plane = int64_t(Hf) * Wf;
  std::fill(heat, heat + K * plane, 0.f);
  std::fill(wh, wh + 2 * plane, 0.f);
  std::fill(off, off + 2 * plane, 0.f);
  std::fill(mask, mask + plane, 0.f);
  const double img_w = double(Wf) * stride, img_h = double(Hf) * stride;
  for (int b = 0; b < n; ++b) {
    const double x0 = boxes[4 * b], y0 = boxes[4 * b + 1], x1 = boxes[4 * b + 2], y1 = boxes[4 * b + 3];
    if (!(x1 > x0 && y1 > y0)) continue;                          // zero-size, inverted or NaN
    if (x1 <= 0 || y1 <= 0 || x0 >= img_w || y0 >= img_h) continue;  // fully outside the image
    const double cx = (x0 + x1) / 2 / stride, cy = (y0 + y1) / 2 / stride;
    const int ix = int(std::clamp(std::floor(cx), 0.0, double(Wf - 1)));
    const int iy = int(std::clamp(std::floor(cy), 0.0, double(Hf - 1)));
    const double w = (x1 - x0) / stride, h = (y1 - y0) / stride;
    const int64_t at = int64_t(iy) * Wf + ix;
    off[at] = float(cx - ix);
    off[plane + at] = float(cy - iy);
    wh[at] = float(w);
    wh[plane + at] = float(h);
    mask[at] = 1.f;
    const int radius = std::max(0, int(gaussian_radius(h, w, 0.7)));
    const double sigma = (2 * radius + 1) / 6.0;
    float* hk = heat + int64_t(cls[b]) * plane;
    for (int dy = -radius; dy <= radius; ++dy) {
      const int yy = iy + dy;
      if (yy < 0 || yy >= Hf) continue;
      for (int dx = -radius; dx <= radius; ++dx) {
        const int xx = ix + dx;
        if (xx < 0 || xx >= Wf) continue;
        const float g = float(std::exp(-double(dx * dx + dy * dy) / (2 * sigma * sigma)));
        float& v = hk[int64_t(yy) * Wf + xx];
        v = std::max(v, g);
      }
    }
  }
}

}  // namespace rf

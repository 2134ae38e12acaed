// CenterNet-style decoding (heatmap peaks -> boxes); rules in decode.h.
// Reference: every cell, explicit 3x3 max, stable sort of all peaks. Fast: threshold first, on the logit
// (a trained heatmap has ~0.1 % of cells above 0.05, so the expf per cell, not the 3x3 test, is the cost),
// neighbour test only for survivors, nth_element down to top_k, OpenMP over images. Checked by tests/eval/test_decode.cpp (fast == reference exactly, hand cases).
#include "host/eval/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "host/core/check.h"

namespace rf::eval {

namespace {

// One function for both paths: the peak test compares these floats for equality.
inline float sigmoid_score(float logit) { return 1.0f / (1.0f + std::exp(-logit)); }

void check_args(const float* heat, const float* wh, const float* off, int64_t N, int K, int Hf, int Wf,
                const DecodeOptions& opt, int64_t first_image_index) {
  RF_CHECK(N >= 0, "decode_centernet: N = {}, expected >= 0", N);
  RF_CHECK(K >= 1 && Hf >= 1 && Wf >= 1, "decode_centernet: (K, Hf, Wf) = ({}, {}, {}), expected all >= 1", K, Hf,
           Wf);
  RF_CHECK(opt.top_k >= 1, "decode_centernet: top_k = {}, expected >= 1", opt.top_k);
  RF_CHECK(opt.stride >= 1, "decode_centernet: stride = {}, expected >= 1", opt.stride);
  RF_CHECK(!std::isnan(opt.score_threshold), "decode_centernet: score_threshold is NaN");
  RF_CHECK(first_image_index >= 0, "decode_centernet: first_image_index = {}, expected >= 0", first_image_index);
  RF_CHECK(N == 0 || (heat && wh && off), "decode_centernet: null heat/wh/off pointer for N = {}", N);
}

[[noreturn]] void fail_nan(int64_t n, int K, int Hf, int Wf, int64_t i_in_image) {
  const int64_t HW = int64_t(Hf) * Wf;
  const int64_t i = n * K * HW + i_in_image;
  RF_FAIL("decode_centernet: heat[{}] (n={}, k={}, y={}, x={}) is NaN: expected finite logits", i, n,
          i_in_image / HW, (i_in_image % HW) / Wf, i_in_image % Wf);
}

// Cell (y, x) of image n -> box in input pixels.
Box make_box(const float* wh_n, const float* off_n, int64_t HW, int y, int x, int Wf, int stride, float W_in,
             float H_in) {
  const int64_t i = int64_t(y) * Wf + x;
  const float s = float(stride);
  const float cx = (float(x) + off_n[i]) * s, cy = (float(y) + off_n[HW + i]) * s;
  const float w = wh_n[i] * s, h = wh_n[HW + i] * s;
  auto clampf = [](float v, float hi) { return std::min(std::max(v, 0.0f), hi); };
  return Box{clampf(cx - 0.5f * w, W_in), clampf(cy - 0.5f * h, H_in), clampf(cx + 0.5f * w, W_in),
             clampf(cy + 0.5f * h, H_in)};
}

// Smallest float logit x with sigmoid_score(x) >= thr (bisection over floats: sigmoid_score is monotone),
// lowered by a few ulps so that the logit test is a superset of the score test it stands in for.
float logit_floor(float thr) {
  if (!(thr > 0.0f)) return -std::numeric_limits<float>::infinity();
  if (thr > 1.0f) return std::numeric_limits<float>::infinity();
  float lo = -200.0f, hi = 200.0f;  // scores exactly 0 and 1 in float
  for (int it = 0; it < 400; ++it) {
    const float mid = float(0.5 * (double(lo) + double(hi)));
    if (mid <= lo || mid >= hi) break;
    (sigmoid_score(mid) >= thr ? hi : lo) = mid;
  }
  for (int u = 0; u < 4; ++u) hi = std::nextafter(hi, -std::numeric_limits<float>::infinity());
  return hi;
}

struct Peak {
  float score;
  int64_t flat;  // k*Hf*Wf + y*Wf + x
};

inline bool ranks_before(const Peak& a, const Peak& b) {
  return a.score > b.score || (a.score == b.score && a.flat < b.flat);
}

Detection to_detection(const Peak& p, const float* wh_n, const float* off_n, int64_t image, int Hf, int Wf,
                       int stride) {
  const int64_t HW = int64_t(Hf) * Wf;
  const int k = int(p.flat / HW), y = int((p.flat % HW) / Wf), x = int(p.flat % Wf);
  return Detection{image, k, p.score,
                   make_box(wh_n, off_n, HW, y, x, Wf, stride, float(Wf) * stride, float(Hf) * stride)};
}

}  // namespace

std::vector<Detection> decode_centernet_ref(const float* heat, const float* wh, const float* off, int64_t N,
                                            int K, int Hf, int Wf, const DecodeOptions& opt,
                                            int64_t first_image_index) {
  check_args(heat, wh, off, N, K, Hf, Wf, opt, first_image_index);
  const int64_t HW = int64_t(Hf) * Wf;
  std::vector<Detection> out;
  std::vector<float> score(static_cast<size_t>(K * HW));
  for (int64_t n = 0; n < N; ++n) {
    const float* heat_n = heat + n * K * HW;
    for (int64_t i = 0; i < K * HW; ++i) {
      if (std::isnan(heat_n[i])) fail_nan(n, K, Hf, Wf, i);
      score[size_t(i)] = sigmoid_score(heat_n[i]);
    }
    std::vector<Peak> peaks;
    for (int k = 0; k < K; ++k)
      for (int y = 0; y < Hf; ++y)
        for (int x = 0; x < Wf; ++x) {
          const float* plane = score.data() + k * HW;
          float m = plane[y * Wf + x];
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int yy = y + dy, xx = x + dx;
              if (yy >= 0 && yy < Hf && xx >= 0 && xx < Wf) m = std::max(m, plane[yy * Wf + xx]);
            }
          if (plane[y * Wf + x] == m) peaks.push_back(Peak{m, k * HW + int64_t(y) * Wf + x});
        }
    // Pushed in flat order, so a stable sort on score alone gives the documented tie order.
    std::stable_sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) { return a.score > b.score; });
    for (size_t j = 0; j < peaks.size() && j < size_t(opt.top_k); ++j)
      if (peaks[j].score >= opt.score_threshold)
        out.push_back(to_detection(peaks[j], wh + n * 2 * HW, off + n * 2 * HW, first_image_index + n, Hf, Wf,
                                   opt.stride));
  }
  return out;
}

std::vector<Detection> decode_centernet(const float* heat, const float* wh, const float* off, int64_t N, int K,
                                        int Hf, int Wf, const DecodeOptions& opt, int64_t first_image_index) {
  check_args(heat, wh, off, N, K, Hf, Wf, opt, first_image_index);
  const int64_t HW = int64_t(Hf) * Wf;
  std::vector<std::vector<Detection>> per_image(static_cast<size_t>(N));
  std::vector<int64_t> nan_at(static_cast<size_t>(N), -1);  // exceptions cannot leave the parallel region
  const float floor = logit_floor(opt.score_threshold);

  // K*HW compares per image plus an expf per cell above the floor: worth threads once N > 1.
#pragma omp parallel for schedule(dynamic, 1) if (N > 1 && K * HW * N >= 16384)
  for (int64_t n = 0; n < N; ++n) {
    const float* heat_n = heat + n * K * HW;
    // Cells below the logit floor score < threshold <= any candidate's score: a -1 stands in for them, which
    // neither passes the threshold nor beats a candidate in the 3x3 test, exactly as their true score would.
    std::vector<float> score(static_cast<size_t>(K * HW));
    for (int64_t i = 0; i < K * HW; ++i) {
      if (std::isnan(heat_n[i])) {
        nan_at[size_t(n)] = i;
        break;
      }
      score[size_t(i)] = heat_n[i] >= floor ? sigmoid_score(heat_n[i]) : -1.0f;
    }
    if (nan_at[size_t(n)] >= 0) continue;

    std::vector<Peak> peaks;
    for (int k = 0; k < K; ++k) {
      const float* plane = score.data() + k * HW;
      for (int y = 0; y < Hf; ++y) {
        const int y0 = std::max(y - 1, 0), y1 = std::min(y + 1, Hf - 1);
        for (int x = 0; x < Wf; ++x) {
          const float s = plane[y * Wf + x];
          if (!(s >= opt.score_threshold)) continue;
          const int x0 = std::max(x - 1, 0), x1 = std::min(x + 1, Wf - 1);
          bool peak = true;
          for (int yy = y0; yy <= y1 && peak; ++yy)
            for (int xx = x0; xx <= x1; ++xx)
              if (plane[yy * Wf + xx] > s) {
                peak = false;
                break;
              }
          if (peak) peaks.push_back(Peak{s, k * HW + int64_t(y) * Wf + x});
        }
      }
    }
    if (peaks.size() > size_t(opt.top_k)) {
      std::nth_element(peaks.begin(), peaks.begin() + opt.top_k, peaks.end(), ranks_before);
      peaks.resize(size_t(opt.top_k));
    }
    std::sort(peaks.begin(), peaks.end(), ranks_before);
    per_image[size_t(n)].reserve(peaks.size());
    for (const Peak& p : peaks)
      per_image[size_t(n)].push_back(
          to_detection(p, wh + n * 2 * HW, off + n * 2 * HW, first_image_index + n, Hf, Wf, opt.stride));
  }

  for (int64_t n = 0; n < N; ++n)
    if (nan_at[size_t(n)] >= 0) fail_nan(n, K, Hf, Wf, nan_at[size_t(n)]);
  std::vector<Detection> out;
  for (auto& v : per_image) out.insert(out.end(), v.begin(), v.end());
  return out;
}

namespace {
// Channels [c0, c0 + C) of an NCHW tensor, contiguous (decode_centernet takes one map per head).
std::vector<float> channels(const Tensor& t, int c0, int C) {
  const int64_t N = t.size(0), Ct = t.size(1), HW = t.size(2) * t.size(3);
  std::vector<float> out(size_t(N * C * HW));
  for (int64_t n = 0; n < N; ++n)
    std::copy(t.f32() + (n * Ct + c0) * HW, t.f32() + (n * Ct + c0 + C) * HW, out.data() + n * C * HW);
  return out;
}
}  // namespace

std::vector<Detection> det_decode(const Tensor& out, int K, float score_threshold, int64_t first_image) {
  RF_CHECK(out.ndim() == 4 && out.size(1) == K + 4, "det_decode: output {} (expected (N, {} + 4, Hf, Wf))",
           out.shape().str(), K);
  const std::vector<float> heat = channels(out, 0, K), size = channels(out, K, 2), off = channels(out, K + 2, 2);
  DecodeOptions d;
  d.score_threshold = score_threshold;
  d.stride = 8;
  return decode_centernet(heat.data(), size.data(), off.data(), out.size(0), K, int(out.size(2)), int(out.size(3)),
                          d, first_image);
}

std::vector<int32_t> seg_argmax(const Tensor& out) {
  const int64_t N = out.size(0), C = out.size(1), HW = out.size(2) * out.size(3);
  std::vector<int32_t> pred(size_t(N * HW));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p) {
      const float* x = out.f32() + n * C * HW + p;
      int best = 0;
      for (int64_t c = 1; c < C; ++c)
        if (x[c * HW] > x[best * HW]) best = int(c);
      pred[size_t(n * HW + p)] = best;
    }
  return pred;
}

}  // namespace rf::eval

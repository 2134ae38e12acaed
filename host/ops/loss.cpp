// Softmax cross-entropy over (N, C) logits, mean over the batch, optional label smoothing (PyTorch: the target
// is (1 - eps) * onehot + eps / C). Stable: the row max is subtracted before exp. The reference (double), then
// the fast OpenMP path (one thread per row block, float softmax, per-row losses summed in a fixed order).
// Checked by tests/ops/test_loss.cpp: hand values, fast vs reference, finite differences, bad labels.
#include "host/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "host/core/check.h"
#include "host/core/parallel.h"

namespace rf {

namespace {

constexpr int64_t kParallelMin = int64_t(1) << 15;  // logits; below this a fork/join costs more than the rows

// Checked before any work (and outside parallel regions, which exceptions may not leave).
void check_inputs(const char* op, int N, int C, const int32_t* labels, float label_smoothing) {
  RF_CHECK(N >= 1 && C >= 1, "{}(N={},C={}): N and C must both be >= 1", op, N, C);
  RF_CHECK(label_smoothing >= 0.f && label_smoothing <= 1.f,
           "{}(N={},C={}): label_smoothing must lie in [0, 1] (got {})", op, N, C, label_smoothing);
  for (int n = 0; n < N; ++n)
    if (labels[n] < 0 || labels[n] >= C)
      RF_FAIL("{}(N={},C={}): sample {} has label {}, outside the valid range [0, {}]", op, N, C, n, labels[n],
              C - 1);
}

}  // namespace

// ---- reference -----------------------------------------------------------------------------------

// loss_n = -sum_c target_c * log p_c = lse - (1 - eps) * logit_y - eps * mean_c(logit_c), lse = log sum exp.
template <typename T>
double softmax_cross_entropy_forward_ref(int N, int C, const T* logits, const int32_t* labels, T* probs,
                                         float label_smoothing) {
  check_inputs("softmax_cross_entropy_forward", N, C, labels, label_smoothing);
  const double eps = label_smoothing;
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* l = logits + n * C;
    double mx = double(l[0]);
    for (int64_t c = 1; c < C; ++c) mx = std::max(mx, double(l[c]));
    double sum = 0, sum_l = 0;
    for (int64_t c = 0; c < C; ++c) {
      sum += std::exp(double(l[c]) - mx);
      sum_l += double(l[c]);
    }
    for (int64_t c = 0; c < C; ++c) probs[n * C + c] = T(std::exp(double(l[c]) - mx) / sum);
    const double lse = mx + std::log(sum);
    total += lse - (1.0 - eps) * double(l[labels[n]]) - eps * sum_l / C;
  }
  return total / N;
}

template <typename T>
void softmax_cross_entropy_backward_ref(int N, int C, const T* probs, const int32_t* labels, T* dlogits,
                                        float label_smoothing) {
  check_inputs("softmax_cross_entropy_backward", N, C, labels, label_smoothing);
  const double eps = label_smoothing;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double target = eps / C + (c == labels[n] ? 1.0 - eps : 0.0);
      dlogits[n * C + c] = T((double(probs[n * C + c]) - target) / N);
    }
}

template double softmax_cross_entropy_forward_ref<float>(int, int, const float*, const int32_t*, float*, float);
template double softmax_cross_entropy_forward_ref<double>(int, int, const double*, const int32_t*, double*,
                                                          float);
template void softmax_cross_entropy_backward_ref<float>(int, int, const float*, const int32_t*, float*, float);
template void softmax_cross_entropy_backward_ref<double>(int, int, const double*, const int32_t*, double*, float);

// ---- fast CPU path -------------------------------------------------------------------------------

double softmax_cross_entropy_forward_cpu(int N, int C, const float* logits, const int32_t* labels, float* probs,
                                         float label_smoothing) {
  check_inputs("softmax_cross_entropy_forward", N, C, labels, label_smoothing);
  const double eps = label_smoothing;
  std::vector<double> row_loss(N);  // summed serially below: the result does not depend on the thread count
#pragma omp parallel for schedule(static) if (N > 1 && worth_threading(int64_t(N) * C, kParallelMin))
  for (int64_t n = 0; n < N; ++n) {
    const float* l = logits + n * C;
    float* p = probs + n * C;
    float mx = l[0];
    for (int64_t c = 1; c < C; ++c) mx = std::max(mx, l[c]);
    float sum = 0.f;
    double sum_l = 0;
    for (int64_t c = 0; c < C; ++c) {
      p[c] = std::exp(l[c] - mx);
      sum += p[c];
      sum_l += double(l[c]);
    }
    const float inv = 1.f / sum;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) p[c] *= inv;
    const double lse = double(mx) + std::log(double(sum));
    row_loss[n] = lse - (1.0 - eps) * double(l[labels[n]]) - eps * sum_l / C;
  }
  double total = 0;
  for (int n = 0; n < N; ++n) total += row_loss[n];
  return total / N;
}

void softmax_cross_entropy_backward_cpu(int N, int C, const float* probs, const int32_t* labels, float* dlogits,
                                        float label_smoothing) {
  check_inputs("softmax_cross_entropy_backward", N, C, labels, label_smoothing);
  const float invN = 1.f / float(N);
  const float off = label_smoothing / float(C);  // target of every class but the label
  const float on = 1.f - label_smoothing + off;   // target of the label
#pragma omp parallel for schedule(static) if (N > 1 && worth_threading(int64_t(N) * C, kParallelMin))
  for (int64_t n = 0; n < N; ++n) {
    const float* p = probs + n * C;
    float* d = dlogits + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = (p[c] - off) * invN;
    d[labels[n]] = (p[labels[n]] - on) * invN;
  }
}

}  // namespace rf

// Batch norm over (N, C, HW) per channel, PyTorch BatchNorm2d semantics: the reference loops (double
// accumulation), then the fast OpenMP paths (threads over channels, vectorised HW loops).
// The train ops also come with the residual add / ReLU that follow BN in a block fused into their passes.
// Checked by tests/ops/test_batchnorm.cpp: fast vs reference over a shape sweep, finite-difference gradients of
// the reference, running-stat and eval-mode hand cases, fused vs unfused bit for bit.
#include "host/ops/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "host/core/check.h"
#include "host/core/parallel.h"
#include "host/core/simd.h"

namespace rf {

std::string BatchNormShape::str() const {
  return fmt::format("batchnorm(N={},C={},HW={},eps={},momentum={})", N, C, HW, eps, momentum);
}

void check_batchnorm_shape(const BatchNormShape& s) {
  RF_CHECK(s.N >= 1 && s.C >= 1 && s.HW >= 1, "{}: N, C and HW must all be >= 1", s.str());
  RF_CHECK(std::isfinite(s.eps) && s.eps > 0.f, "{}: eps must be a finite value > 0 (got {})", s.str(), s.eps);
  RF_CHECK(s.momentum >= 0.f && s.momentum <= 1.f, "{}: momentum must lie in [0, 1] (got {})", s.str(),
           s.momentum);
}

namespace {

void check_train_shape(const BatchNormShape& s) {
  check_batchnorm_shape(s);
  // The unbiased variance divides by N*HW - 1; PyTorch refuses this case as well.
  RF_CHECK(int64_t(s.N) * s.HW > 1,
           "{}: train mode needs more than one value per channel (N*HW = {}); use eval mode or a larger batch",
           s.str(), int64_t(s.N) * s.HW);
}

// Below this many elements an OpenMP fork costs more than the work (a few us vs ~1 ns per element).
constexpr int64_t kParallelMin = int64_t(1) << 14;

}  // namespace

// ---- reference -----------------------------------------------------------------------------------

template <typename T>
void batchnorm_forward_train_ref(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, T* y,
                                 T* save_mean, T* save_invstd, T* running_mean, T* running_var) {
  check_train_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, M = N * HW;
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) sum += double(x[(n * C + c) * HW + i]);
    const double mean = sum / double(M);
    double sq = 0;  // two-pass variance
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double d = double(x[(n * C + c) * HW + i]) - mean;
        sq += d * d;
      }
    const double var = sq / double(M);  // biased: used to normalise
    const double invstd = 1.0 / std::sqrt(var + double(s.eps));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        y[j] = T((double(x[j]) - mean) * invstd * double(gamma[c]) + double(beta[c]));
      }
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double m = double(s.momentum);
    if (running_mean) running_mean[c] = T((1.0 - m) * double(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = T((1.0 - m) * double(running_var[c]) + m * sq / double(M - 1));
  }
}

template <typename T>
void batchnorm_forward_eval_ref(const BatchNormShape& s, const T* x, const T* gamma, const T* beta,
                                const T* running_mean, const T* running_var, T* y) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        y[j] = T((double(x[j]) - double(running_mean[c])) / std::sqrt(double(running_var[c]) + double(s.eps)) *
                     double(gamma[c]) +
                 double(beta[c]));
      }
}

// With xhat = (x - mean) * invstd over the M = N*HW values of a channel:
// dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma).
template <typename T>
void batchnorm_backward_ref(const BatchNormShape& s, const T* x, const T* dy, const T* gamma, const T* save_mean,
                            const T* save_invstd, T* dx, T* dgamma, T* dbeta) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, M = N * HW;
  for (int64_t c = 0; c < C; ++c) {
    const double mean = double(save_mean[c]), invstd = double(save_invstd[c]);
    double sdy = 0, sdy_xhat = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        sdy += double(dy[j]);
        sdy_xhat += double(dy[j]) * (double(x[j]) - mean) * invstd;
      }
    const double k = double(gamma[c]) * invstd / double(M);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t j = (n * C + c) * HW + i;
        const double xhat = (double(x[j]) - mean) * invstd;
        dx[j] = T(k * (double(M) * double(dy[j]) - sdy - xhat * sdy_xhat));
      }
    dgamma[c] = T(sdy_xhat);
    dbeta[c] = T(sdy);
  }
}

template void batchnorm_forward_train_ref<float>(const BatchNormShape&, const float*, const float*, const float*,
                                                 float*, float*, float*, float*, float*);
template void batchnorm_forward_train_ref<double>(const BatchNormShape&, const double*, const double*,
                                                  const double*, double*, double*, double*, double*, double*);
template void batchnorm_forward_eval_ref<float>(const BatchNormShape&, const float*, const float*, const float*,
                                                const float*, const float*, float*);
template void batchnorm_forward_eval_ref<double>(const BatchNormShape&, const double*, const double*,
                                                 const double*, const double*, const double*, double*);
template void batchnorm_backward_ref<float>(const BatchNormShape&, const float*, const float*, const float*,
                                            const float*, const float*, float*, float*, float*);
template void batchnorm_backward_ref<double>(const BatchNormShape&, const double*, const double*, const double*,
                                             const double*, const double*, double*, double*, double*);

// ---- fast CPU path -------------------------------------------------------------------------------
// One thread per channel: a channel's M = N*HW values are N contiguous runs of HW floats, C*HW apart.
// Each run is summed in float by a vectorised loop (at most HW terms), the runs are added in double.
// Results do not depend on the thread count: each channel is computed by one thread in a fixed order.

namespace {
// Channel c's sums of d = x - K and d^2 (the train forward's statistics), each run of HW in float, runs in double.
void shifted_sums(const BatchNormShape& s, const float* x, int64_t c, float K, double& s1, double& s2) {
  const int64_t N = s.N, C = s.C, HW = s.HW;
  s1 = 0, s2 = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xp = x + (n * C + c) * HW;
    float a1 = 0.f, a2 = 0.f;
#pragma omp simd reduction(+ : a1, a2)
    for (int64_t i = 0; i < HW; ++i) {
      const float d = xp[i] - K;
      a1 += d;
      a2 += d * d;
    }
    s1 += a1;
    s2 += a2;
  }
}

// Channel c's sums of g and g (x - mean) (the backward's), summed as shifted_sums; g = dy, or with kMask dy
// masked by the ReLU that followed the forward: [(x - mean) * scale + b > 0], the forward's own output value
// recomputed (the same float expression on the same operands: the same mask as relu_backward_cpu on y).
template <bool kMask>
void dy_sums(const BatchNormShape& s, const float* x, const float* dy, int64_t c, float mean, float scale, float b,
             double& sdy, double& sdy_xmu) {
  const int64_t N = s.N, C = s.C, HW = s.HW;
  sdy = 0, sdy_xmu = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xp = x + (n * C + c) * HW;
    const float* dyp = dy + (n * C + c) * HW;
    float a1 = 0.f, a2 = 0.f;
#pragma omp simd reduction(+ : a1, a2)
    for (int64_t i = 0; i < HW; ++i) {
      const float g = !kMask || (xp[i] - mean) * scale + b > 0.f ? dyp[i] : 0.f;
      a1 += g;
      a2 += g * (xp[i] - mean);
    }
    sdy += a1;
    sdy_xmu += a2;
  }
}

// One run of the train forward's output: y = act((x - mean) * scale + b (+ res)), each step the float operation
// of the unfused ops (batchnorm, then add_forward_cpu / relu_forward_cpu).
template <bool kRes, bool kRelu>
void output_run(const float* xp, const float* rp, float* yp, int64_t HW, float mean, float scale, float b) {
#pragma omp simd
  for (int64_t i = 0; i < HW; ++i) {
    float v = (xp[i] - mean) * scale + b;
    if (kRes) v = v + rp[i];
    if (kRelu) v = v > 0.f ? v : 0.f;
    yp[i] = v;
  }
}

void output_run(const float* xp, const float* rp, bool relu, float* yp, int64_t HW, float mean, float scale,
                float b) {
  if (rp && relu) output_run<true, true>(xp, rp, yp, HW, mean, scale, b);
  else if (rp) output_run<true, false>(xp, rp, yp, HW, mean, scale, b);
  else if (relu) output_run<false, true>(xp, rp, yp, HW, mean, scale, b);
  else output_run<false, false>(xp, rp, yp, HW, mean, scale, b);
}

void forward_train(const BatchNormShape& s, const float* x, const float* gamma, const float* beta, const float* res,
                   bool relu, float* y, float* save_mean, float* save_invstd, float* save_scale,
                   float* running_mean, float* running_var) {
  check_train_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, M = N * HW;
#pragma omp parallel for schedule(static) if (C > 1 && worth_threading(N * C * HW, kParallelMin))
  for (int64_t c = 0; c < C; ++c) {
    // Statistics in one pass with shifted data: sums of d = x - K, K a value of the channel. Since K lies
    // within a few std of the mean, sum d^2 - (sum d)^2 / M cancels little, unlike E[x^2] - E[x]^2.
    const float K = x[c * HW];
    double s1 = 0, s2 = 0;
    shifted_sums(s, x, c, K, s1, s2);
    const double shift = s1 / double(M);
    const double sq = std::max(0.0, s2 - s1 * shift);  // sum (x - mean)^2
    const double mean = double(K) + shift;
    const double invstd = 1.0 / std::sqrt(sq / double(M) + double(s.eps));
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
    const double m = double(s.momentum);
    if (running_mean) running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * mean);
    if (running_var) running_var[c] = float((1.0 - m) * double(running_var[c]) + m * sq / double(M - 1));

    // (x - mean) * scale + beta rather than x * scale + shift: no cancellation when |mean| >> std.
    const float fmean = float(mean), scale = float(double(gamma[c]) * invstd), b = beta[c];
    if (save_scale) save_scale[c] = scale;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * HW;
      output_run(x + o, res ? res + o : nullptr, relu, y + o, HW, fmean, scale, b);
    }
  }
}

template <bool kMask>
void backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma, const float* beta,
              const float* save_mean, const float* save_invstd, const float* save_scale, float* dx, float* dgamma,
              float* dbeta) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, M = N * HW;
#pragma omp parallel for schedule(static) if (C > 1 && worth_threading(N * C * HW, kParallelMin))
  for (int64_t c = 0; c < C; ++c) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    const float fscale = kMask ? save_scale[c] : 0.f, b = kMask ? beta[c] : 0.f;  // the ReLU mask's operands
    double sdy = 0, sdy_xmu = 0;  // sum g, sum g * (x - mean)
    dy_sums<kMask>(s, x, dy, c, mean, fscale, b, sdy, sdy_xmu);
    dbeta[c] = float(sdy);
    dgamma[c] = float(sdy_xmu * double(invstd));
    // dx = gamma * invstd * (g - sum g / M - (x - mean) * invstd^2 * sum g (x - mean) / M)
    const float k = float(double(gamma[c]) * double(invstd));
    const float mean_dy = float(sdy / double(M));
    const float kx = float(sdy_xmu * double(invstd) * double(invstd) / double(M));
    for (int64_t n = 0; n < N; ++n) {
      const float* xp = x + (n * C + c) * HW;
      const float* dyp = dy + (n * C + c) * HW;
      float* dxp = dx + (n * C + c) * HW;
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) {
        const float g = !kMask || (xp[i] - mean) * fscale + b > 0.f ? dyp[i] : 0.f;
        dxp[i] = k * ((g - mean_dy) - (xp[i] - mean) * kx);
      }
    }
  }
}
}  // namespace

void batchnorm_forward_train_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* y, float* save_mean, float* save_invstd, float* running_mean,
                                 float* running_var) {
  forward_train(s, x, gamma, beta, nullptr, false, y, save_mean, save_invstd, nullptr, running_mean, running_var);
}

void batchnorm_forward_train_act_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                     const float* res, bool relu, float* y, float* save_mean, float* save_invstd,
                                     float* save_scale, float* running_mean, float* running_var) {
  forward_train(s, x, gamma, beta, res, relu, y, save_mean, save_invstd, save_scale, running_mean, running_var);
}

std::vector<float> batchnorm_eval_scale(const BatchNormShape& s, const float* gamma, const float* running_var) {
  std::vector<float> scale(size_t(s.C));
  for (int64_t c = 0; c < s.C; ++c)
    scale[c] = float(double(gamma[c]) / std::sqrt(double(running_var[c]) + double(s.eps)));
  return scale;
}

void batchnorm_forward_eval_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, float* y) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW;
  const std::vector<float> scale = batchnorm_eval_scale(s, gamma, running_var);
  // One fused pass over (N*C) planes of HW values; the per-plane constants come from the small tables.
#pragma omp parallel for schedule(static) if (worth_threading(N * C * HW, kParallelMin))
  for (int64_t p = 0; p < N * C; ++p) {
    const int64_t c = p % C;
    const float mean = running_mean[c], k = scale[c], b = beta[c];
    const float* xp = x + p * HW;
    float* yp = y + p * HW;
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) yp[i] = (xp[i] - mean) * k + b;
  }
}

void batchnorm_backward_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                            const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                            float* dbeta) {
  backward<false>(s, x, dy, gamma, nullptr, save_mean, save_invstd, nullptr, dx, dgamma, dbeta);
}

void batchnorm_backward_relu_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                                 const float* beta, const float* save_mean, const float* save_invstd,
                                 const float* save_scale, float* dx, float* dgamma, float* dbeta) {
  backward<true>(s, x, dy, gamma, beta, save_mean, save_invstd, save_scale, dx, dgamma, dbeta);
}

void batchnorm_forward_train_sync_cpu(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                      float* y, float* save_mean, float* save_invstd, float* running_mean,
                                      float* running_var, const BnSum& sum) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW;
  // Two passes, two sums over the processes: the global mean, then the squares about it. One pass with a shift
  // (as batchnorm_forward_train_cpu) needs a shift near the batch's values that every process shares; the
  // running mean is not near them early in training, and sum d^2 - (sum d)^2 / M then cancels (tested).
  auto channel_sums = [&](const float* shift, std::vector<double>& out) {  // per channel: sum d, sum d^2
#pragma omp parallel for schedule(static) if (C > 1 && worth_threading(N * C * HW, kParallelMin))
    for (int64_t c = 0; c < C; ++c) shifted_sums(s, x, c, shift[c], out[size_t(c)], out[size_t(C + c)]);
    out[size_t(2 * C)] = double(N * HW);
    sum(out.data(), int64_t(out.size()));
  };
  std::vector<double> sums(size_t(2 * C + 1), 0.0);
  channel_sums(running_mean, sums);
  const double M = sums[size_t(2 * C)];
  RF_CHECK(M > 1, "batchnorm (synchronised): {} values per channel over all processes (expected > 1)", M);
  std::vector<double> mean(static_cast<size_t>(C));
  std::vector<float> fmean(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    mean[size_t(c)] = double(running_mean[c]) + sums[size_t(c)] / M;
    fmean[size_t(c)] = float(mean[size_t(c)]);
  }
  channel_sums(fmean.data(), sums);  // about the mean: no cancellation
  std::vector<double> invstd_d(static_cast<size_t>(C));  // y's scale from the double, as the plain op
  for (int64_t c = 0; c < C; ++c) {
    const double s1 = sums[size_t(c)], s2 = sums[size_t(C + c)];
    const double m_c = double(fmean[size_t(c)]) + s1 / M;
    const double sq = std::max(0.0, s2 - s1 * (s1 / M));
    const double invstd = 1.0 / std::sqrt(sq / M + double(s.eps));
    save_mean[c] = float(m_c);
    save_invstd[c] = float(invstd);
    invstd_d[size_t(c)] = invstd;
    const double m = double(s.momentum);
    running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * m_c);
    running_var[c] = float((1.0 - m) * double(running_var[c]) + m * sq / (M - 1));
  }
#pragma omp parallel for schedule(static) if (worth_threading(N * C * HW, kParallelMin))
  for (int64_t p = 0; p < N * C; ++p) {
    const int64_t c = p % C;
    const float fm = save_mean[c], scale = float(double(gamma[c]) * invstd_d[size_t(c)]), b = beta[c];
    const float* xp = x + p * HW;
    float* yp = y + p * HW;
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) yp[i] = (xp[i] - fm) * scale + b;
  }
}

void batchnorm_backward_sync_cpu(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                                 const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                                 float* dbeta, const BnSum& sum) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW;
  std::vector<double> sums(size_t(2 * C + 1), 0.0);  // sum dy, sum dy (x - mean) per channel, count
#pragma omp parallel for schedule(static) if (C > 1 && worth_threading(N * C * HW, kParallelMin))
  for (int64_t c = 0; c < C; ++c) {
    double sdy = 0, sdy_xmu = 0;
    dy_sums<false>(s, x, dy, c, save_mean[c], 0.f, 0.f, sdy, sdy_xmu);
    sums[size_t(c)] = sdy, sums[size_t(C + c)] = sdy_xmu;
    dbeta[c] = float(sdy);  // this process's share
    dgamma[c] = float(sdy_xmu * double(save_invstd[c]));
  }
  sums[size_t(2 * C)] = double(N * HW);
  sum(sums.data(), int64_t(sums.size()));
  const double M = sums[size_t(2 * C)];
#pragma omp parallel for schedule(static) if (worth_threading(N * C * HW, kParallelMin))
  for (int64_t p = 0; p < N * C; ++p) {
    const int64_t c = p % C;
    const float mean = save_mean[c], invstd = save_invstd[c];
    const float k = float(double(gamma[c]) * double(invstd));
    const float mean_dy = float(sums[size_t(c)] / M);
    const float kx = float(sums[size_t(C + c)] * double(invstd) * double(invstd) / M);
    const float* xp = x + p * HW;
    const float* dyp = dy + p * HW;
    float* dxp = dx + p * HW;
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) dxp[i] = k * ((dyp[i] - mean_dy) - (xp[i] - mean) * kx);
  }
}

void batchnorm_eval_epilogue_cpu(const BatchNormShape& s, const float* z, int shuffle_groups, const float* gamma,
                                 const float* beta, const float* running_mean, const float* running_var,
                                 const float* res, bool relu, float* y) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, G = shuffle_groups > 1 ? shuffle_groups : 1;
  RF_CHECK(C % G == 0, "batchnorm epilogue: C={} not divisible by shuffle groups {}", C, G);
  const std::vector<float> scale = batchnorm_eval_scale(s, gamma, running_var);
  // One read of z (and res) and one write of y per value, instead of the 3-4 passes of the unfused ops.
#pragma omp parallel for schedule(static) if (worth_threading(N * C * HW, kParallelMin))
  for (int64_t p = 0; p < N * C; ++p) {
    const int64_t n = p / C, c = p % C, o = G > 1 ? (c % G) * (C / G) + c / G : c;
    const float mean = running_mean[o], k = scale[o], b = beta[o];
    const float* zp = z + p * HW;
    const float* rp = res ? res + (n * C + o) * HW : nullptr;
    float* yp = y + (n * C + o) * HW;
    if (rp && relu) {
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) {
        const float v = ((zp[i] - mean) * k + b) + rp[i];
        yp[i] = v > 0.f ? v : 0.f;
      }
    } else if (rp) {
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) yp[i] = ((zp[i] - mean) * k + b) + rp[i];
    } else if (relu) {
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) {
        const float v = (zp[i] - mean) * k + b;
        yp[i] = v > 0.f ? v : 0.f;
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < HW; ++i) yp[i] = (zp[i] - mean) * k + b;
    }
  }
}

void batchnorm_eval_epilogue_nc16_cpu(const BatchNormShape& s, const float* z, const float* gamma,
                                      const float* beta, const float* running_mean, const float* running_var,
                                      const float* res, bool relu, float* y, bool y_nc16) {
  check_batchnorm_shape(s);
  const int64_t N = s.N, C = s.C, HW = s.HW, CB = C / 16;
  RF_CHECK(C % 16 == 0, "batchnorm epilogue (nChw16c): C={} is not a multiple of 16", C);
  const std::vector<float> scale = batchnorm_eval_scale(s, gamma, running_var);
  // A task per (sample, block of 16 channels): HW x 16 values of z; 16 pixels at a time through a tile, so
  // that an NCHW y (and res) are written and read along rows.
#pragma omp parallel for schedule(static) if (worth_threading(N * C * HW, kParallelMin))
  for (int64_t p = 0; p < N * CB; ++p) {
    const int64_t n = p / CB, c0 = (p % CB) * 16;
    const float* mean = running_mean + c0;
    const float* k = scale.data() + c0;
    const float* b = beta + c0;
    const float* zp = z + p * HW * 16;
    const float* rp = res ? res + (n * C + c0) * HW : nullptr;  // channel l's plane at rp + l * HW
    float tile[16][16];
    for (int64_t h0 = 0; h0 < HW; h0 += 16) {
      const int64_t m = std::min<int64_t>(16, HW - h0);
      for (int64_t i = 0; i < m; ++i) {
#pragma omp simd
        for (int l = 0; l < 16; ++l) tile[i][l] = (zp[(h0 + i) * 16 + l] - mean[l]) * k[l] + b[l];
      }
      float* yp = y + (n * C + c0) * HW + h0;  // NCHW: channel l's row at yp + l * HW
      if constexpr (simd::kLanes == 16) {
        if (!y_nc16 && m == 16) {
          // The tile transposed in registers (channel l's 16 pixels in r[l]), then the residual's and y's rows
          // along memory: the same operations per value as the loops below, (bn + res), then ReLU.
          simd::Lanes r[16];
          for (int i = 0; i < 16; ++i) simd::lanes_load(r[i], tile[i]);
          simd::transpose(r);
          for (int l = 0; l < 16; ++l) {
            if (rp) {
              simd::Lanes v;
              simd::lanes_load(v, rp + l * HW + h0);
              r[l] = r[l] + v;
            }
            if (relu) r[l] = r[l] > 0.f ? r[l] : simd::Lanes{};
            simd::lanes_store(yp + l * HW, r[l]);
          }
          continue;
        }
      }
      if (rp)
        for (int l = 0; l < 16; ++l)
          for (int64_t i = 0; i < m; ++i) tile[i][l] = tile[i][l] + rp[l * HW + h0 + i];
      if (relu)
        for (int64_t i = 0; i < m; ++i) {
#pragma omp simd
          for (int l = 0; l < 16; ++l) tile[i][l] = tile[i][l] > 0.f ? tile[i][l] : 0.f;
        }
      if (y_nc16) {
        for (int64_t i = 0; i < m; ++i) std::memcpy(y + (p * HW + h0 + i) * 16, tile[i], sizeof tile[i]);
      } else {
        for (int l = 0; l < 16; ++l)
          for (int64_t i = 0; i < m; ++i) yp[l * HW + i] = tile[i][l];
      }
    }
  }
}

}  // namespace rf

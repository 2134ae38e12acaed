// Global average pool (N, C, HW) -> (N, C) and the linear layer y = x w^T + b: the reference loops (double
// accumulation), then the fast OpenMP paths (row dot products and row axpys, vectorised along contiguous rows).
// Checked by tests/ops/test_linear.cpp: fast vs reference over shape sweeps, finite differences, a hand case.
#include "host/ops/linear.h"

#include <cstdint>

#include "host/core/check.h"
#include "host/core/parallel.h"

namespace rf {

namespace {


void check_pool(int N, int C, int HW) {
  RF_CHECK(N >= 1 && C >= 1 && HW >= 1, "global_avg_pool(N={},C={},HW={}): N, C and HW must all be >= 1", N, C,
           HW);
}

void check_linear(int N, int IN, int OUT) {
  RF_CHECK(N >= 1 && IN >= 1 && OUT >= 1, "linear(N={},IN={},OUT={}): N, IN and OUT must all be >= 1", N, IN,
           OUT);
}

// s0 + sum over k < n of a[k sa] * b[k sb], accumulated in double in ascending k: the one loop of the
// reference linear's forward, dx and dw (they differ only in the strides).
template <typename T> double dot_ref(double s0, const T* a, int64_t sa, const T* b, int64_t sb, int64_t n) {
  double s = s0;
  for (int64_t k = 0; k < n; ++k) s += double(a[k * sa]) * double(b[k * sb]);
  return s;
}

}  // namespace

// ---- reference -----------------------------------------------------------------------------------

template <typename T> void global_avg_pool_forward_ref(int N, int C, int HW, const T* x, T* y) {
  check_pool(N, C, HW);
  for (int64_t p = 0; p < int64_t(N) * C; ++p) {
    double s = 0;
    for (int64_t i = 0; i < HW; ++i) s += double(x[p * HW + i]);
    y[p] = T(s / HW);
  }
}

template <typename T> void global_avg_pool_backward_ref(int N, int C, int HW, const T* dy, T* dx) {
  check_pool(N, C, HW);
  for (int64_t p = 0; p < int64_t(N) * C; ++p)
    for (int64_t i = 0; i < HW; ++i) dx[p * HW + i] = T(double(dy[p]) / HW);
}

template <typename T> void linear_forward_ref(int N, int IN, int OUT, const T* x, const T* w, const T* b, T* y) {
  check_linear(N, IN, OUT);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OUT; ++o)
      y[n * OUT + o] = T(dot_ref(b ? double(b[o]) : 0.0, x + n * IN, 1, w + o * IN, 1, IN));
}

// dx = dy w, dw = dy^T x, db = sum over the batch of dy.
template <typename T>
void linear_backward_ref(int N, int IN, int OUT, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  check_linear(N, IN, OUT);
  if (dx)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < IN; ++i) dx[n * IN + i] = T(dot_ref(0.0, dy + n * OUT, 1, w + i, IN, OUT));
  if (dw)
    for (int64_t o = 0; o < OUT; ++o)
      for (int64_t i = 0; i < IN; ++i) dw[o * IN + i] = T(dot_ref(0.0, dy + o, OUT, x + i, IN, N));
  if (db)
    for (int64_t o = 0; o < OUT; ++o) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += double(dy[n * OUT + o]);
      db[o] = T(s);
    }
}

template void global_avg_pool_forward_ref<float>(int, int, int, const float*, float*);
template void global_avg_pool_forward_ref<double>(int, int, int, const double*, double*);
template void global_avg_pool_backward_ref<float>(int, int, int, const float*, float*);
template void global_avg_pool_backward_ref<double>(int, int, int, const double*, double*);
template void linear_forward_ref<float>(int, int, int, const float*, const float*, const float*, float*);
template void linear_forward_ref<double>(int, int, int, const double*, const double*, const double*, double*);
template void linear_backward_ref<float>(int, int, int, const float*, const float*, const float*, float*, float*,
                                         float*);
template void linear_backward_ref<double>(int, int, int, const double*, const double*, const double*, double*,
                                          double*, double*);

// ---- fast CPU path -------------------------------------------------------------------------------

void global_avg_pool_forward_cpu(int N, int C, int HW, const float* x, float* y) {
  check_pool(N, C, HW);
  const int64_t P = int64_t(N) * C;
  const float inv = 1.f / float(HW);
#pragma omp parallel for schedule(static) if (worth_threading(P * HW))
  for (int64_t p = 0; p < P; ++p) {
    const float* xp = x + p * HW;
    float s = 0.f;  // HW <= a few thousand: float sum with vector lanes stays well within tolerance
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < HW; ++i) s += xp[i];
    y[p] = s * inv;
  }
}

void global_avg_pool_backward_cpu(int N, int C, int HW, const float* dy, float* dx) {
  check_pool(N, C, HW);
  const int64_t P = int64_t(N) * C;
  const float inv = 1.f / float(HW);
#pragma omp parallel for schedule(static) if (worth_threading(P * HW))
  for (int64_t p = 0; p < P; ++p) {
    const float g = dy[p] * inv;
    float* dxp = dx + p * HW;
#pragma omp simd
    for (int64_t i = 0; i < HW; ++i) dxp[i] = g;
  }
}

// The model's head is (128, 512) x (10, 512)^T: w is 20 KB and stays in L1/L2, so one thread per batch row
// with contiguous dot products over IN is already cache friendly; no blocking needed at these sizes.
void linear_forward_cpu(int N, int IN, int OUT, const float* x, const float* w, const float* b, float* y) {
  check_linear(N, IN, OUT);
  const int64_t work = int64_t(N) * IN * OUT;
#pragma omp parallel for schedule(static) if (N > 1 && worth_threading(work))
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * IN;
    for (int64_t o = 0; o < OUT; ++o) {
      const float* wo = w + o * IN;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < IN; ++i) s += xn[i] * wo[i];
      y[n * OUT + o] = b ? s + b[o] : s;
    }
  }
}

namespace {
// out row r = sum_{j < J} a[r*ar + j*aj] * B row j (rows of IN floats), r < R, in order of j: one thread per output
// row when `work` is worth threads, so no two threads write the same row.
void sum_scaled_rows(int64_t R, int64_t J, int64_t IN, const float* a, int64_t ar, int64_t aj, const float* B,
                     float* out, int64_t work) {
#pragma omp parallel for schedule(static) if (R > 1 && worth_threading(work))
  for (int64_t r = 0; r < R; ++r) {
    float* outr = out + r * IN;
    for (int64_t i = 0; i < IN; ++i) outr[i] = 0.f;
    for (int64_t j = 0; j < J; ++j) {
      const float g = a[r * ar + j * aj];
      const float* bj = B + j * IN;
#pragma omp simd
      for (int64_t i = 0; i < IN; ++i) outr[i] += g * bj[i];
    }
  }
}
}  // namespace

void linear_backward_cpu(int N, int IN, int OUT, const float* x, const float* w, const float* dy, float* dx,
                         float* dw, float* db) {
  check_linear(N, IN, OUT);
  const int64_t work = int64_t(N) * IN * OUT;
  // dx row n = sum_o dy[n, o] * w row o: axpys along IN, one thread per batch row.
  if (dx) sum_scaled_rows(N, OUT, IN, dy, OUT, 1, w, dx, work);
  // dw row o = sum_n dy[n, o] * x row n: one thread per output row, so no two threads write the same row.
  if (dw) sum_scaled_rows(OUT, N, IN, dy, 1, OUT, x, dw, work);
  if (db)
    for (int64_t o = 0; o < OUT; ++o) {
      float s = 0.f;
      for (int64_t n = 0; n < N; ++n) s += dy[n * OUT + o];
      db[o] = s;
    }
}

}  // namespace rf

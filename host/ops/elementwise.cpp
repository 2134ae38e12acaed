// ReLU and the residual add (optionally fused with the ReLU after it): the reference loops, then the fast
// OpenMP paths (contiguous static chunks per thread, vectorised bodies; no threads on small inputs).
// Checked by tests/ops/test_elementwise.cpp: fast vs reference over sizes, in-place use, finite differences.
#include "host/ops/elementwise.h"

#include "host/core/check.h"
#include "host/core/parallel.h"

namespace rf {

namespace {


void check_n(const char* op, int64_t n) { RF_CHECK(n >= 0, "{}: element count must be >= 0 (got {})", op, n); }

}  // namespace

// ---- reference -----------------------------------------------------------------------------------

template <typename T> void relu_forward_ref(int64_t n, const T* x, T* y) {
  check_n("relu_forward", n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T> void relu_backward_ref(int64_t n, const T* y, const T* dy, T* dx) {
  check_n("relu_backward", n);
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <typename T> void add_forward_ref(int64_t n, const T* a, const T* b, T* y, bool relu) {
  check_n("add_forward", n);
  for (int64_t i = 0; i < n; ++i) {
    const T s = a[i] + b[i];
    y[i] = relu ? (s > T(0) ? s : T(0)) : s;
  }
}

template <typename T> void add_backward_ref(int64_t n, const T* y, const T* dy, T* da, T* db, bool relu) {
  check_n("add_backward", n);
  for (int64_t i = 0; i < n; ++i) {
    const T g = (!relu || y[i] > T(0)) ? dy[i] : T(0);
    da[i] = g;
    db[i] = g;
  }
}

template void relu_forward_ref<float>(int64_t, const float*, float*);
template void relu_forward_ref<double>(int64_t, const double*, double*);
template void relu_backward_ref<float>(int64_t, const float*, const float*, float*);
template void relu_backward_ref<double>(int64_t, const double*, const double*, double*);
template void add_forward_ref<float>(int64_t, const float*, const float*, float*, bool);
template void add_forward_ref<double>(int64_t, const double*, const double*, double*, bool);
template void add_backward_ref<float>(int64_t, const float*, const float*, float*, float*, bool);
template void add_backward_ref<double>(int64_t, const double*, const double*, double*, double*, bool);

// ---- fast CPU path -------------------------------------------------------------------------------
// Outputs may alias inputs (in-place ReLU, da == dy), so no __restrict: each element is read before written.

void relu_forward_cpu(int64_t n, const float* x, float* y) {
  check_n("relu_forward", n);
#pragma omp parallel for simd schedule(static) if (worth_threading(n))
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_backward_cpu(int64_t n, const float* y, const float* dy, float* dx) {
  check_n("relu_backward", n);
#pragma omp parallel for simd schedule(static) if (worth_threading(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

void add_forward_cpu(int64_t n, const float* a, const float* b, float* y, bool relu) {
  check_n("add_forward", n);
  if (relu) {
#pragma omp parallel for simd schedule(static) if (worth_threading(n))
    for (int64_t i = 0; i < n; ++i) {
      const float s = a[i] + b[i];
      y[i] = s > 0.f ? s : 0.f;
    }
  } else {
#pragma omp parallel for simd schedule(static) if (worth_threading(n))
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
}

void add_backward_cpu(int64_t n, const float* y, const float* dy, float* da, float* db, bool relu) {
  check_n("add_backward", n);
#pragma omp parallel for simd schedule(static) if (worth_threading(n))
  for (int64_t i = 0; i < n; ++i) {
    const float g = (!relu || y[i] > 0.f) ? dy[i] : 0.f;
    da[i] = g;
    db[i] = g;
  }
}

}  // namespace rf

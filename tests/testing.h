// Test helpers: random inputs (never zeros; random_vec, random_tensor), scaled tolerances, finite-difference
// gradient checks, the expected error (expect_error) and a fresh temp folder (temp_dir).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "host/core/tensor.h"

namespace rf::testing {

// fn() must throw rf::Error whose message holds every one of parts (a file, an option, a field, a value...).
// label (optional) names the case in the failure message of a table-driven test.
template <typename F>
void expect_error(F&& fn, const std::vector<std::string>& parts, const std::string& label = "") {
  const std::string who = label.empty() ? std::string() : label + ": ";
  try {
    fn();
    ADD_FAILURE() << who << "no error thrown; expected an rf::Error mentioning '" << parts.at(0) << "'";
  } catch (const rf::Error& e) {
    const std::string m = e.what();
    for (const std::string& p : parts) EXPECT_NE(m.find(p), std::string::npos) << who << "'" << p << "' not in: " << m;
  }
}

// A fresh, empty folder under the system's temp folder, unique to this process (removed first if it exists).
inline std::string temp_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("rf_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// Uniform in [-1, 1], bounded away from 0 so that tests never feed zeros.
template <typename T>
std::vector<T> random_vec(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) {
    double x = d(gen);
    if (std::fabs(x) < 1e-3) x = 1e-3;
    e = T(x);
  }
  return v;
}

// N class labels uniform in [0, C) (the loss tests, CPU and GPU).
inline std::vector<int32_t> random_labels(int N, int C, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> l(size_t(N > 0 ? N : 0));
  for (auto& v : l) v = int32_t(gen() % uint32_t(C));
  return l;
}

template <typename A, typename B>
std::vector<B> cast_vec(const std::vector<A>& a) {
  return std::vector<B>(a.begin(), a.end());
}

// |a - b| <= atol + rtol * |ref| elementwise; reports the first few mismatches with their index.
template <typename T, typename U>
::testing::AssertionResult all_close(const std::vector<T>& got, const std::vector<U>& ref, double atol,
                                     double rtol, const std::string& what = "") {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double g = double(got[i]), r = double(ref[i]);
    double err = std::fabs(g - r), tol = atol + rtol * std::fabs(r);
    if (!(err <= tol)) {  // NaN fails too
      if (bad++ == 0) first = i;
      worst = std::max(worst, err);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements differ; first at " << first << " (got "
                                       << double(got[first]) << ", ref " << double(ref[first])
                                       << "), worst |err| " << worst;
}

// Finite-difference check of a gradient in double precision.
// loss(x) must return sum_i y_i(x) * g_i for a fixed random g; analytic is d loss / d x.
// Checks up to max_checks elements spread over x, with central differences of step eps.
inline ::testing::AssertionResult check_grad(const std::function<double(const std::vector<double>&)>& loss,
                                             std::vector<double> x, const std::vector<double>& analytic,
                                             const std::string& what, double eps = 1e-6, double tol = 1e-5,
                                             size_t max_checks = 64) {
  if (x.size() != analytic.size())
    return ::testing::AssertionFailure() << what << ": gradient size " << analytic.size() << " vs " << x.size();
  size_t step = std::max<size_t>(1, x.size() / max_checks);
  for (size_t i = 0; i < x.size(); i += step) {
    double keep = x[i];
    x[i] = keep + eps;
    double lp = loss(x);
    x[i] = keep - eps;
    double lm = loss(x);
    x[i] = keep;
    double num = (lp - lm) / (2 * eps);
    double err = std::fabs(num - analytic[i]);
    if (err > tol * (1.0 + std::fabs(num)))
      return ::testing::AssertionFailure() << what << ": d/dx[" << i << "] numeric " << num << " analytic "
                                           << analytic[i] << " (|err| " << err << ")";
  }
  return ::testing::AssertionSuccess();
}

// A slice of cuRAND's Philox stream: key seed, subsequence sub, offset off (in 32-bit words), n words (the
// stream-layout tables of tests/core/test_philox.cpp and tests/gpu/test_philox_gpu.cpp).
struct CurandSlice {
  uint64_t seed, sub, off;
  size_t n;
};

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// An f32 tensor of shape s, filled by random_vec in [-scale, scale].
inline rf::Tensor random_tensor(const rf::Shape& s, uint32_t seed, float scale = 1.f) {
  rf::Tensor t = rf::Tensor::empty(s);
  auto v = random_vec<float>(size_t(t.numel()), seed, -scale, scale);
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

// sum_i a_i * b_i in double over two f32 tensors of b's size (the loss y . g of a directional-derivative check).
inline double tensor_dot(const rf::Tensor& a, const rf::Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < b.numel(); ++i) s += double(a.f32()[i]) * b.f32()[i];
  return s;
}

}  // namespace rf::testing

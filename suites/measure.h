// Small measuring helpers shared by the suites (classify, detect, segment) and the gate: medians, mean ± std
// over seeds as the results JSON holds them, and timed eval forwards.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/core/philox.h"
#include "host/models/model.h"

namespace rf {

using SuiteClock = std::chrono::steady_clock;
inline double seconds_since(SuiteClock::time_point t0) {
  return std::chrono::duration<double>(SuiteClock::now() - t0).count();
}

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// {"mean", "std" (sample std over seeds, 0 for one seed), "values"}: the gate reads this shape as a metric.
inline nlohmann::json mean_std_json(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(std::max<size_t>(1, v.size()));
  for (double x : v) s += (x - m) * (x - m);
  double sd = v.size() > 1 ? std::sqrt(s / double(v.size() - 1)) : 0.0;
  return {{"mean", m}, {"std", sd}, {"values", v}};
}

// Median seconds of `reps` eval forwards of a batch of N random (N, 3, H, W) images, after one warm-up.
inline double time_forward(Model& m, int N, int H, int W, int reps) {
  Tensor x = Tensor::empty(Shape{N, 3, H, W});
  seeded_normal_fill(99, 1.f, x.numel(), x.f32());
  m.forward(x, false);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = SuiteClock::now();
    Tensor y = m.forward(x, false);
    t.push_back(seconds_since(t0));
  }
  return median_of(t);
}

}  // namespace rf

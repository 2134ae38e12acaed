// Small measuring helpers shared by the suites (classify, detect, segment) and the gate: medians, mean ± std
// over seeds as the results JSON holds them, and timed eval forwards.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
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

// Seeded-weight regeneration of a loaded model, timed warm: one untimed call, then the median of `reps` timed
// calls. The regeneration inside load_model is a single cold call (first touch of the weight buffers, cold caches,
// thread-pool start-up): it once read 123 ms for the dw model against 0.46 ms for the 512 model, so the suites
// report it only as regen_cold_seconds and use this figure for regeneration time.
constexpr int kRegenReps = 7;
inline double regen_seconds_median(Model& m, int reps = kRegenReps) {
  m.regenerate_seeded();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = SuiteClock::now();
    m.regenerate_seeded();
    t.push_back(seconds_since(t0));
  }
  return median_of(t);
}

// Table cells. A share of ResNet-18 when it is part of the run, else "—" (never 0.0 %, which reads as a value).
inline std::string pct_of_r18_cell(double v, double base) {
  return base > 0 ? fmt::format("{:.1f}%", 100 * v / base) : "—";
}
// A metric's mean ± std over seeds in percent; one seed has no spread, so no "± 0.00".
inline std::string pct_mean_std_cell(const nlohmann::json& j) {
  const size_t n = j.contains("values") ? j["values"].size() : 0;
  if (n == 1) return fmt::format("{:.2f}%", 100 * j["mean"].get<double>());
  return fmt::format("{:.2f}±{:.2f}%", 100 * j["mean"].get<double>(), 100 * j["std"].get<double>());
}

}  // namespace rf

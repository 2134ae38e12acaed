// Per-op time counters (host/core/profile.h). Checked by tests/core/test_profile.cpp.
#include "host/core/profile.h"

#include <omp.h>

#include <array>
#include <atomic>
#include <mutex>

#include "host/core/check.h"

namespace rf::profile {
namespace {
constexpr int kMaxKinds = 64;
std::atomic<bool> g_on{false};
std::mutex g_mu;
std::array<std::string, kMaxKinds> g_names;
int g_kinds = 0;
std::array<std::atomic<int64_t>, kMaxKinds> g_ns{};     // nanoseconds (team-share scaled)
std::array<std::atomic<int64_t>, kMaxKinds> g_calls{};
}  // namespace

void set_enabled(bool on) { g_on.store(on, std::memory_order_relaxed); }
bool enabled() { return g_on.load(std::memory_order_relaxed); }

void reset() {
  for (int i = 0; i < kMaxKinds; ++i) g_ns[size_t(i)] = 0, g_calls[size_t(i)] = 0;
}

int kind_id(const char* kind) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (int i = 0; i < g_kinds; ++i)
    if (g_names[size_t(i)] == kind) return i;
  RF_CHECK(g_kinds < kMaxKinds, "profile: more than {} op kinds (registering '{}')", kMaxKinds, kind);
  g_names[size_t(g_kinds)] = kind;
  return g_kinds++;
}

void add(int id, double seconds) {
  // Inside a team every thread runs its own scope at the same time: its share of the wall time.
  if (omp_in_parallel()) seconds /= omp_get_num_threads();
  g_ns[size_t(id)].fetch_add(int64_t(seconds * 1e9), std::memory_order_relaxed);
  g_calls[size_t(id)].fetch_add(1, std::memory_order_relaxed);
}

std::vector<Row> snapshot() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<Row> rows;
  for (int i = 0; i < g_kinds; ++i)
    if (g_calls[size_t(i)] > 0) rows.push_back({g_names[size_t(i)], double(g_ns[size_t(i)]) * 1e-9, g_calls[size_t(i)]});
  return rows;
}

}  // namespace rf::profile

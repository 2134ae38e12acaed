// Threading: one knob for our OpenMP kernels and oneDNN (which uses the same OpenMP runtime), and the one
// "worth threading" threshold of the host kernels. Covered by the op tests (tests/ops/), which run every
// kernel below and above the threshold.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>

#include "host/core/profile.h"

namespace rf {
void set_num_threads(int n);  // n <= 0: leave the default (OMP_NUM_THREADS or all cores)
int num_threads();

// Below ~64K element operations (~10 us on one core) waking an OpenMP team costs more than it saves, and on
// an oversubscribed machine a descheduled thread stalls the whole region. A kernel whose unit of work is
// dearer or cheaper passes the break-even it measured as min_work. Use: `#pragma omp parallel if
// (worth_threading(work))`.
constexpr int64_t kMinThreadedWork = int64_t(1) << 16;
inline bool worth_threading(int64_t work, int64_t min_work = kMinThreadedWork) { return work >= min_work; }

// Thread t's part [begin, end) of the items [0, items) split into `parts` contiguous ranges of about equal
// total cost (cost(i) >= 0, the same on every thread): item i goes to the part its cost's midpoint falls in.
// A static split of unequal items that keeps each thread's items neighbours (an OpenMP schedule(static) with
// equal counts, or dynamic, loses one or the other). Equal counts when every cost is 0.
template <typename Cost>
std::pair<int64_t, int64_t> cost_balanced_range(int64_t items, int t, int parts, const Cost& cost) {
  double total = 0;
  for (int64_t i = 0; i < items; ++i) total += double(cost(i));
  if (!(total > 0)) return {items * t / parts, items * (t + 1) / parts};
  int64_t begin = items, end = items;
  double before = 0;
  for (int64_t i = 0; i < items; ++i) {
    const double c = double(cost(i));
    const int64_t part = std::min<int64_t>(parts - 1, int64_t((before + 0.5 * c) * parts / total));
    if (part >= t && begin == items) begin = i;
    if (part > t) {
      end = i;
      break;
    }
    before += c;
  }
  return {begin, std::max(begin, end)};
}

// fn(t, i) for every item i in [0, items) on a team of `threads`, the threads taking one item at a time
// (dynamic), t the calling thread's number in 0..threads-1 (for its own scratch). An exception may not leave
// an OpenMP region: the first one fn throws is kept and rethrown once the team has ended (the items already
// started finish; the others still run). The ops inside fn run on one thread (no nested teams); their profile
// scopes count as they would on the calling thread (profile::TeamMember).
template <typename Fn>
void parallel_items(int64_t items, int threads, const Fn& fn) {
  std::exception_ptr err;
  const bool covered = profile::Scope::inside();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < items; ++i) {
    try {
      const profile::TeamMember member(covered);
      fn(omp_get_thread_num(), i);
    } catch (...) {
#pragma omp critical(rf_parallel_items_error)
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
}
}  // namespace rf

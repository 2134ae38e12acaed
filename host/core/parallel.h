// Threading: one knob for our OpenMP kernels and oneDNN (which uses the same OpenMP runtime), and the one
// "worth threading" threshold of the host kernels. Covered by the op tests (tests/ops/), which run every
// kernel below and above the threshold.
#pragma once
#include <cstdint>

namespace rf {
void set_num_threads(int n);  // n <= 0: leave the default (OMP_NUM_THREADS or all cores)
int num_threads();

// Below ~64K element operations (~10 us on one core) waking an OpenMP team costs more than it saves, and on
// an oversubscribed machine a descheduled thread stalls the whole region. A kernel whose unit of work is
// dearer or cheaper passes the break-even it measured as min_work. Use: `#pragma omp parallel if
// (worth_threading(work))`.
constexpr int64_t kMinThreadedWork = int64_t(1) << 16;
inline bool worth_threading(int64_t work, int64_t min_work = kMinThreadedWork) { return work >= min_work; }
}  // namespace rf

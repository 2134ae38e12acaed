// Threading: one knob for our OpenMP kernels and oneDNN (which uses the same OpenMP runtime).
#pragma once

namespace rf {
void set_num_threads(int n);  // n <= 0: leave the default (OMP_NUM_THREADS or all cores)
int num_threads();
}  // namespace rf

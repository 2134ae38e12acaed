// Global average pool (N, C, HW) -> (N, C) and the linear layer y = x w^T + b. Checked by
// tests/ops/test_linear.cpp.
#pragma once

namespace rf {

template <typename T> void global_avg_pool_forward_ref(int N, int C, int HW, const T* x, T* y);
template <typename T> void global_avg_pool_backward_ref(int N, int C, int HW, const T* dy, T* dx);
void global_avg_pool_forward_cpu(int N, int C, int HW, const float* x, float* y);
void global_avg_pool_backward_cpu(int N, int C, int HW, const float* dy, float* dx);

// x (N, IN), w (OUT, IN), b (OUT) or nullptr -> y (N, OUT).
template <typename T> void linear_forward_ref(int N, int IN, int OUT, const T* x, const T* w, const T* b, T* y);
// dx (N, IN), dw (OUT, IN), db (OUT) overwritten; any of them may be nullptr to skip it.
template <typename T>
void linear_backward_ref(int N, int IN, int OUT, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);
void linear_forward_cpu(int N, int IN, int OUT, const float* x, const float* w, const float* b, float* y);
void linear_backward_cpu(int N, int IN, int OUT, const float* x, const float* w, const float* dy, float* dx,
                         float* dw, float* db);

}  // namespace rf

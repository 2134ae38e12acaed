// Elementwise ops: ReLU and the residual add (optionally fused with the ReLU that follows it in a
// BasicBlock). Checked by tests/ops/test_elementwise.cpp.
#pragma once
#include <cstdint>

namespace rf {

template <typename T> void relu_forward_ref(int64_t n, const T* x, T* y);
// Uses the output y for the mask (y > 0), so it works in place.
template <typename T> void relu_backward_ref(int64_t n, const T* y, const T* dy, T* dx);
void relu_forward_cpu(int64_t n, const float* x, float* y);
void relu_backward_cpu(int64_t n, const float* y, const float* dy, float* dx);

// y = a + b, or y = relu(a + b) when relu is true.
template <typename T> void add_forward_ref(int64_t n, const T* a, const T* b, T* y, bool relu);
void add_forward_cpu(int64_t n, const float* a, const float* b, float* y, bool relu);
// Backward of the (fused) add: da = db = dy * [y > 0] (or dy without relu); da and db may alias dy.
template <typename T> void add_backward_ref(int64_t n, const T* y, const T* dy, T* da, T* db, bool relu);
void add_backward_cpu(int64_t n, const float* y, const float* dy, float* da, float* db, bool relu);

}  // namespace rf

// CUDA twins of host/ops/elementwise.h (ReLU, the residual add with its optional ReLU), host/ops/shuffle.h's
// channel shuffle and host/ops/linear.h (global average pool, the linear classifier): the small ops between
// the convs of a model on the GPU. Same semantics and layouts as the _cpu ops; all pointers on the device.
// Plain C++ header. Checked by tests/gpu/test_elementwise_gpu.cpp against the _ref ops.
#pragma once
#include <cstdint>

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

void relu_forward_cuda(int64_t n, const float* x, float* y, cudaStream_t stream = nullptr);  // may be in place
void relu_backward_cuda(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream = nullptr);
// y = a + b (relu: max(a + b, 0)); y may alias a or b.
void add_forward_cuda(int64_t n, const float* a, const float* b, float* y, bool relu, cudaStream_t stream = nullptr);
// da = db = dy * [y > 0] (or dy without relu); da and db may alias dy; db may be null.
void add_backward_cuda(int64_t n, const float* y, const float* dy, float* da, float* db, bool relu,
                       cudaStream_t stream = nullptr);
// y += x (n floats): the sum of an NL module's three branch gradients.
void accumulate_cuda(int64_t n, const float* x, float* y, cudaStream_t stream = nullptr);
// x *= a (n floats): the dense heads' loss weights on their gradients.
void scale_cuda(int64_t n, float a, float* x, cudaStream_t stream = nullptr);

// Channel shuffle with G groups, (N, C, HW): output channel j*(C/G) + i takes input channel i*G + j.
void channel_shuffle_forward_cuda(int N, int C, int HW, int G, const float* x, float* y,
                                  cudaStream_t stream = nullptr);
void channel_shuffle_backward_cuda(int N, int C, int HW, int G, const float* dy, float* dx,
                                   cudaStream_t stream = nullptr);

// (N, C, HW) -> (N, C) mean over the plane, and its backward (dx = dy / HW broadcast).
void global_avg_pool_forward_cuda(int N, int C, int HW, const float* x, float* y, cudaStream_t stream = nullptr);
void global_avg_pool_backward_cuda(int N, int C, int HW, const float* dy, float* dx, cudaStream_t stream = nullptr);
// y (N, OUT) = x (N, IN) w^T (w: (OUT, IN)) + b (b may be null); backward: dx (N, IN), dw (OUT, IN), db (OUT)
// overwritten, each may be null to skip it.
void linear_forward_cuda(int N, int IN, int OUT, const float* x, const float* w, const float* b, float* y,
                         cudaStream_t stream = nullptr);
void linear_backward_cuda(int N, int IN, int OUT, const float* x, const float* w, const float* dy, float* dx,
                          float* dw, float* db, cudaStream_t stream = nullptr);

}  // namespace rf

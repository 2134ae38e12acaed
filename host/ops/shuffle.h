// Channel concat and channel shuffle, NCHW. Checked by tests/ops/test_shuffle.cpp.
#pragma once
#include <cstdint>

namespace rf {

// Channel shuffle with G groups (C % G == 0): output channel j*(C/G) + i takes input channel i*G + j.
template <typename T> void channel_shuffle_forward_ref(int N, int C, int HW, int G, const T* x, T* y);
template <typename T> void channel_shuffle_backward_ref(int N, int C, int HW, int G, const T* dy, T* dx);
void channel_shuffle_forward_cpu(int N, int C, int HW, int G, const float* x, float* y);
void channel_shuffle_backward_cpu(int N, int C, int HW, int G, const float* dy, float* dx);

// Concat along channels: parts p = 0..P-1 of Cs[p] channels each -> y (N, sum Cs, HW).
template <typename T>
void concat_channels_forward_ref(int N, int HW, int P, const int* Cs, const T* const* xs, T* y);
template <typename T>
void concat_channels_backward_ref(int N, int HW, int P, const int* Cs, const T* dy, T* const* dxs);
void concat_channels_forward_cpu(int N, int HW, int P, const int* Cs, const float* const* xs, float* y);
void concat_channels_backward_cpu(int N, int HW, int P, const int* Cs, const float* dy, float* const* dxs);

}  // namespace rf

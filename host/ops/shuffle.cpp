// Channel shuffle and channel concat, NCHW: pure data movement, so every path is exact.
// Reference: plain element loops (float and double). Fast path: one memcpy per contiguous block
// (a channel plane for the shuffle, a part of one sample for the concat), OpenMP over blocks.
// Checked by tests/ops/test_shuffle.cpp (known permutation, round trips, fast == reference bit for bit).
#include "host/ops/shuffle.h"

#include <cstring>
#include <vector>

#include "host/core/check.h"
#include "host/core/parallel.h"

namespace rf {

namespace {
void check_shuffle(int N, int C, int HW, int G) {
  RF_CHECK(N >= 1 && C >= 1 && HW >= 1, "channel_shuffle: sizes must be positive, got N={} C={} HW={}", N, C, HW);
  RF_CHECK(G >= 1 && C % G == 0, "channel_shuffle: groups G={} must be >= 1 and divide C={}", G, C);
}

// Returns the total channel count. Ptr: const T* or T*.
template <typename Ptr>
int check_concat(int N, int HW, int P, const int* Cs, const Ptr* ptrs, const char* what) {
  RF_CHECK(N >= 1 && HW >= 1, "{}: sizes must be positive, got N={} HW={}", what, N, HW);
  RF_CHECK(P >= 1 && Cs != nullptr && ptrs != nullptr,
           "{}: need P >= 1 parts with channel counts and pointers, got P={}", what, P);
  int C = 0;
  for (int p = 0; p < P; ++p) {
    RF_CHECK(Cs[p] >= 1, "{}: part {} has {} channels, expected >= 1", what, p, Cs[p]);
    RF_CHECK(ptrs[p] != nullptr, "{}: part {} has a null pointer", what, p);
    C += Cs[p];
  }
  return C;
}
}  // namespace

// ---- reference -----------------------------------------------------------------------------------

template <typename T>
void channel_shuffle_forward_ref(int N, int C, int HW, int G, const T* x, T* y) {
  check_shuffle(N, C, HW, G);
  const int Cg = C / G;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < Cg; ++i)
      for (int j = 0; j < G; ++j)
        for (int e = 0; e < HW; ++e)
          y[(int64_t(n) * C + j * Cg + i) * HW + e] = x[(int64_t(n) * C + i * G + j) * HW + e];
}

// The inverse of the shuffle with G groups is the shuffle with C/G groups (dx channel i*G + j takes dy channel
// j*(C/G) + i).
template <typename T>
void channel_shuffle_backward_ref(int N, int C, int HW, int G, const T* dy, T* dx) {
  check_shuffle(N, C, HW, G);
  channel_shuffle_forward_ref<T>(N, C, HW, C / G, dy, dx);
}

namespace {
// f(i, p, j) for every element: i its index in the concatenated tensor, j in part p; in (n, p, c, e) order.
template <class F>
void for_each_concat_element(int N, int HW, int P, const int* Cs, int C, F f) {
  for (int n = 0; n < N; ++n) {
    int c0 = 0;
    for (int p = 0; p < P; ++p) {
      for (int c = 0; c < Cs[p]; ++c)
        for (int e = 0; e < HW; ++e) f((int64_t(n) * C + c0 + c) * HW + e, p, (int64_t(n) * Cs[p] + c) * HW + e);
      c0 += Cs[p];
    }
  }
}
}  // namespace

template <typename T>
void concat_channels_forward_ref(int N, int HW, int P, const int* Cs, const T* const* xs, T* y) {
  const int C = check_concat(N, HW, P, Cs, xs, "concat_channels");
  for_each_concat_element(N, HW, P, Cs, C, [&](int64_t i, int p, int64_t j) { y[i] = xs[p][j]; });
}

template <typename T>
void concat_channels_backward_ref(int N, int HW, int P, const int* Cs, const T* dy, T* const* dxs) {
  const int C = check_concat(N, HW, P, Cs, dxs, "concat_channels backward");
  for_each_concat_element(N, HW, P, Cs, C, [&](int64_t i, int p, int64_t j) { dxs[p][j] = dy[i]; });
}

#define RF_SHUFFLE_INSTANTIATE(T)                                                                           \
  template void channel_shuffle_forward_ref<T>(int, int, int, int, const T*, T*);                          \
  template void channel_shuffle_backward_ref<T>(int, int, int, int, const T*, T*);                         \
  template void concat_channels_forward_ref<T>(int, int, int, const int*, const T* const*, T*);            \
  template void concat_channels_backward_ref<T>(int, int, int, const int*, const T*, T* const*);
RF_SHUFFLE_INSTANTIATE(float)
RF_SHUFFLE_INSTANTIATE(double)
#undef RF_SHUFFLE_INSTANTIATE

// ---- fast path -----------------------------------------------------------------------------------

namespace {
// Copies under ~256 KiB finish in a few microseconds, about what waking a thread team costs: more than 64K
// elements.
bool worth_threads(int64_t elements) { return worth_threading(elements, kMinThreadedWork + 1); }

// Shuffle as a channel permutation: dst channel (n, a) <- src channel (n, map(a)), one plane per memcpy.
// inverse=false: a = j*Cg + i takes i*G + j; inverse=true: a = i*G + j takes j*Cg + i.
void permute_channels(int N, int C, int HW, int G, bool inverse, const float* src, float* dst) {
  const int Cg = C / G;
  const int64_t planes = int64_t(N) * C;
  const size_t bytes = sizeof(float) * size_t(HW);
#pragma omp parallel for schedule(static) if (worth_threads(planes * HW))
  for (int64_t q = 0; q < planes; ++q) {
    const int64_t n = q / C;
    const int a = int(q % C);
    const int from = inverse ? (a % G) * Cg + a / G : (a % Cg) * G + a / Cg;
    std::memcpy(dst + q * HW, src + (n * C + from) * HW, bytes);
  }
}

// Channel offset of each part in the concatenated tensor.
std::vector<int> part_offsets(int P, const int* Cs) {
  std::vector<int> off(P);
  for (int p = 0, c0 = 0; p < P; ++p) off[p] = c0, c0 += Cs[p];
  return off;
}
}  // namespace

void channel_shuffle_forward_cpu(int N, int C, int HW, int G, const float* x, float* y) {
  check_shuffle(N, C, HW, G);
  permute_channels(N, C, HW, G, false, x, y);
}

void channel_shuffle_backward_cpu(int N, int C, int HW, int G, const float* dy, float* dx) {
  check_shuffle(N, C, HW, G);
  permute_channels(N, C, HW, G, true, dy, dx);
}

// Concat and split: N*P contiguous copies of Cs[p]*HW elements (one part of one sample each).
// f(i, p, j, n): copy n floats between the concatenated tensor at i and part p at j.
namespace {
template <class F>
void for_each_concat_block(int N, int HW, int P, const int* Cs, int C, F f) {
  const std::vector<int> off = part_offsets(P, Cs);
  const int64_t blocks = int64_t(N) * P;
#pragma omp parallel for schedule(static) if (worth_threads(int64_t(N) * C * HW))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t n = b / P;
    const int p = int(b % P);
    f((n * C + off[p]) * HW, p, n * Cs[p] * HW, size_t(Cs[p]) * HW);
  }
}
}  // namespace

void concat_channels_forward_cpu(int N, int HW, int P, const int* Cs, const float* const* xs, float* y) {
  const int C = check_concat(N, HW, P, Cs, xs, "concat_channels");
  for_each_concat_block(N, HW, P, Cs, C, [&](int64_t i, int p, int64_t j, size_t n) {
    std::memcpy(y + i, xs[p] + j, sizeof(float) * n);
  });
}

void concat_channels_backward_cpu(int N, int HW, int P, const int* Cs, const float* dy, float* const* dxs) {
  const int C = check_concat(N, HW, P, Cs, dxs, "concat_channels backward");
  for_each_concat_block(N, HW, P, Cs, C, [&](int64_t i, int p, int64_t j, size_t n) {
    std::memcpy(dxs[p] + j, dy + i, sizeof(float) * n);
  });
}

}  // namespace rf

// A conv's bias on the GPU (cuda/ops/bias.cu) against the CPU: bias_add_cuda bit-exact with the same float
// additions, bias_grad_cuda against conv2d_backward_weight_ref's db (double sums; host/ops/conv.h) to the rounding
// bound of a float tree sum, over shapes with a batch > 1, odd planes, K not a multiple of anything, 1x1 planes,
// and outputs in a channel slice of a wider buffer (channels outside keep their values). Runs on the CPU in every
// build against the CUDA emulation (label gpu-emu) and on a device under label gpu.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/ops/bias.h"
#include "gpu_testing.h"
#include "host/ops/conv.h"
#include "testing.h"

namespace {

using namespace rf::gpu_testing;
using namespace rf::testing;

class BiasGpu : public GpuTest {};

// (N, K, output side) of a 1x1 conv; extra channels around the slice when `slice`.
struct Case {
  int N, K, side;
  bool slice;
};
const Case kCases[] = {{1, 1, 1, false}, {2, 3, 5, false}, {3, 7, 9, true}, {2, 64, 16, true},
                       {4, 13, 1, true}, {1, 5, 33, false}, {2, 300, 3, true}};

rf::Conv2dShape shape_of(const Case& c) {
  rf::Conv2dShape s;
  s.N = c.N, s.C = 2, s.H = c.side, s.W = c.side, s.K = c.K, s.k = 1;
  if (c.slice) s.y_nstride = int64_t(c.K + 3) * c.side * c.side;  // channels [2, 2 + K) of (N, K + 3, side, side)
  return s;
}

TEST_F(BiasGpu, AddIsBitExactAndStaysInItsSlice) {
  for (const Case& c : kCases) {
    const rf::Conv2dShape s = shape_of(c);
    SCOPED_TRACE(fmt::format("N={} K={} side={} slice={}", c.N, c.K, c.side, c.slice));
    const int64_t plane = int64_t(c.side) * c.side, off = c.slice ? 2 * plane : 0;
    const std::vector<float> y0 = random_vec<float>(size_t(c.N * s.y_batch_stride()), 5 + c.K);
    const std::vector<float> b = random_vec<float>(size_t(c.K), 7 + c.K);
    std::vector<float> y_ref = y0;
    for (int n = 0; n < c.N; ++n)
      for (int k = 0; k < c.K; ++k)
        for (int64_t p = 0; p < plane; ++p) y_ref[size_t(n * s.y_batch_stride() + off + k * plane + p)] += b[size_t(k)];
    DeviceBuffer<float> d_y(y0), d_b(b);
    rf::bias_add_cuda(s, d_b.ptr, d_y.ptr + off);
    EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1);
  }
}

TEST_F(BiasGpu, GradMatchesTheConvReference) {
  for (const Case& c : kCases) {
    const rf::Conv2dShape s = shape_of(c);
    SCOPED_TRACE(fmt::format("N={} K={} side={} slice={}", c.N, c.K, c.side, c.slice));
    const int64_t off = c.slice ? 2 * int64_t(c.side) * c.side : 0;
    const std::vector<float> dy = random_vec<float>(size_t(c.N * s.y_batch_stride()), 11 + c.K);
    const std::vector<double> x(size_t(s.N) * s.C * s.H * s.W, 1.0);
    std::vector<double> dw(size_t(s.weight_numel())), db_ref(size_t(c.K));
    const std::vector<double> dy_d = cast_vec<float, double>(dy);
    rf::conv2d_backward_weight_ref<double>(s, x.data(), dy_d.data() + off, dw.data(), db_ref.data());
    DeviceBuffer<float> d_dy(dy), d_db(size_t(c.K));
    d_db.poison();
    rf::bias_grad_cuda(s, d_dy.ptr + off, d_db.ptr);
    // A float sum of n terms of |v| <= 1: error below n * 2^-24 * sum|v|, far inside 1e-5 * n.
    const double n = double(c.N) * c.side * c.side;
    EXPECT_TRUE(all_close(d_db.to_host(), db_ref, 1e-5 * n, 1e-5, "db"));
  }
}

TEST_F(BiasGpu, GradIsTheSameOnEveryRun) {
  const rf::Conv2dShape s = shape_of({3, 9, 17, true});
  const std::vector<float> dy = random_vec<float>(size_t(s.N * s.y_batch_stride()), 3);
  DeviceBuffer<float> d_dy(dy), d_a(9), d_b(9);
  rf::bias_grad_cuda(s, d_dy.ptr, d_a.ptr);
  rf::bias_grad_cuda(s, d_dy.ptr, d_b.ptr);
  EXPECT_EQ(first_bit_mismatch(d_a.to_host(), d_b.to_host()), -1);
}

}  // namespace

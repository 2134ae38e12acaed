// The direct CUDA convs (cuda/ops/conv.cu) against the CPU reference (host/ops/conv.h), over a sweep of the
// models' conv kinds: the stem (3 -> 8, 3x3), 3x3 stride 2, the 1x1 stride-2 shortcut, grouped 1x1, depthwise
// 3x3, 7x7 stride 2, grouped 3x3 stride 3; odd sizes, N = 1..3, bias null and not, outputs in a channel slice.
// - forward and input gradient: bit-exact against conv2d_*_ref<float> (the kernels add in double in the
//   reference's order), and within one float rounding (2^-24 relative) of the double reference;
// - weight gradient: within one float rounding of the double reference plus the double sum's own rounding
//   (another order of addition); db as the bias kernel's float tree sum (tests/gpu/test_bias_gpu.cpp);
// - y in a slice: the channels around it keep their values; dy's channels around its slice are NaN, so a read of
//   them shows; dx, dw, db start as NaN, so an element never written shows;
// - a second run gives the same bits; bad shapes and null pointers throw before any launch.
// Emulated (label gpu-emu) the binary takes about 0.6 s in a Release build, almost all of it the weight
// gradient's ~3800 blocks of 256 threads. Runs on a device under label gpu.
// The order of the double additions cannot be seen in these tests (two orders give the same float after rounding
// but for ~2^-29 of the elements); the kernels keep the reference's order so that bit-exactness is guaranteed.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda/ops/conv.h"
#include "gpu_testing.h"
#include "host/ops/conv.h"
#include "testing.h"

namespace {

using rf::Conv2dShape;
using namespace rf::gpu_testing;
using namespace rf::testing;

class ConvGpu : public GpuTest {};

struct Case {
  int N, C, H, W, K, k, stride, pad, groups;
  bool slice;  // y / dy: channels [2, 2 + K) of (N, K + 3, OH, OW)
};
const Case kCases[] = {
    {2, 3, 8, 8, 8, 3, 1, 1, 1, false},   // the stem, 3 -> 8
    {3, 4, 7, 7, 8, 3, 2, 1, 1, true},    // 3x3 stride 2, odd size
    {2, 8, 8, 8, 16, 1, 2, 0, 1, true},   // 1x1 stride-2 shortcut (stride > k: odd inputs get no gradient)
    {2, 24, 5, 5, 16, 1, 1, 0, 4, true},  // grouped 1x1 (the NL module's)
    {1, 8, 7, 7, 8, 3, 1, 1, 8, false},   // depthwise 3x3
    {2, 2, 9, 9, 3, 7, 2, 3, 1, true},    // 7x7 stride 2 pad 3
    {1, 6, 5, 5, 4, 3, 3, 0, 2, true},    // grouped 3x3 stride 3, no padding
    {2, 2, 16, 16, 2, 3, 1, 1, 1, false}, // 512 positions per weight: every weight-gradient thread has a share
    {3, 16, 8, 8, 16, 3, 1, 1, 1, true},  // a ResNet block's 3x3, 16 -> 16
    {2, 4, 6, 6, 4, 5, 2, 2, 2, false},   // grouped 5x5 stride 2, even size
    {1, 3, 4, 4, 5, 3, 1, 2, 1, true},    // pad 2 > k/2: the output (6x6) is larger than the input
};

Conv2dShape shape_of(const Case& c) {
  Conv2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.k = c.k, s.stride = c.stride, s.pad = c.pad,
  s.groups = c.groups;
  if (c.slice) s.y_nstride = int64_t(c.K + 3) * s.OH() * s.OW();
  return s;
}
int64_t slice_offset(const Case& c, const Conv2dShape& s) { return c.slice ? 2 * int64_t(s.OH()) * s.OW() : 0; }
size_t x_size(const Conv2dShape& s) { return size_t(s.N) * s.C * s.H * s.W; }
size_t y_buffer_size(const Conv2dShape& s) { return size_t(s.N * s.y_batch_stride()); }

// dy for a case: random in the slice, NaN in the channels around it (a kernel that reads them gives NaN).
std::vector<float> dy_of(const Case& c, const Conv2dShape& s, uint32_t seed) {
  std::vector<float> dy = random_vec<float>(y_buffer_size(s), seed);
  const int64_t off = slice_offset(c, s), len = int64_t(s.K) * s.OH() * s.OW();
  for (int64_t i = 0; i < int64_t(dy.size()); ++i) {
    const int64_t r = i % s.y_batch_stride();
    if (r < off || r >= off + len) dy[size_t(i)] = std::numeric_limits<float>::quiet_NaN();
  }
  return dy;
}

// One float rounding: float(v) is within 2^-24 of v, relative (round to nearest).
constexpr double kFloatRounding = 1.0 / (1 << 24);

TEST_F(ConvGpu, ForwardBitExactAndStaysInItsSlice) {
  for (const Case& c : kCases)
    for (bool with_bias : {false, true}) {
      const Conv2dShape s = shape_of(c);
      SCOPED_TRACE(s.str() + (with_bias ? " with bias" : " no bias"));
      const std::vector<float> x = random_vec<float>(x_size(s), 3 + c.C);
      const std::vector<float> w = random_vec<float>(size_t(s.weight_numel()), 5 + c.K);
      const std::vector<float> b = random_vec<float>(size_t(s.K), 7 + c.k);
      const std::vector<float> y0 = random_vec<float>(y_buffer_size(s), 11);  // the values around the slice
      const int64_t off = slice_offset(c, s);
      std::vector<float> y_ref = y0;
      rf::conv2d_forward_ref<float>(s, x.data(), w.data(), with_bias ? b.data() : nullptr, y_ref.data() + off);
      DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_y(y0);
      rf::conv2d_forward_cuda(s, d_x.ptr, d_w.ptr, with_bias ? d_b.ptr : nullptr, d_y.ptr + off);
      const std::vector<float> y = d_y.to_host();
      EXPECT_EQ(first_bit_mismatch(y, y_ref), -1);  // the slice bit-exact, the rest untouched

      const std::vector<double> xd = cast_vec<float, double>(x), wd = cast_vec<float, double>(w),
                                bd = cast_vec<float, double>(b);
      std::vector<double> y_dref = cast_vec<float, double>(y0);
      rf::conv2d_forward_ref<double>(s, xd.data(), wd.data(), with_bias ? bd.data() : nullptr, y_dref.data() + off);
      EXPECT_TRUE(all_close(y, y_dref, 0.0, kFloatRounding, "y vs double"));
    }
}

TEST_F(ConvGpu, BackwardDataBitExact) {
  for (const Case& c : kCases) {
    const Conv2dShape s = shape_of(c);
    SCOPED_TRACE(s.str());
    const std::vector<float> dy = dy_of(c, s, 13 + c.K);
    const std::vector<float> w = random_vec<float>(size_t(s.weight_numel()), 17 + c.C);
    const int64_t off = slice_offset(c, s);
    std::vector<float> dx_ref(x_size(s));
    rf::conv2d_backward_data_ref<float>(s, dy.data() + off, w.data(), dx_ref.data());
    DeviceBuffer<float> d_dy(dy), d_w(w), d_dx(x_size(s));
    d_dx.poison();
    rf::conv2d_backward_data_cuda(s, d_dy.ptr + off, d_w.ptr, d_dx.ptr);
    const std::vector<float> dx = d_dx.to_host();
    EXPECT_EQ(first_bit_mismatch(dx, dx_ref), -1);

    const std::vector<double> dyd = cast_vec<float, double>(dy), wd = cast_vec<float, double>(w);
    std::vector<double> dx_dref(x_size(s));
    rf::conv2d_backward_data_ref<double>(s, dyd.data() + off, wd.data(), dx_dref.data());
    EXPECT_TRUE(all_close(dx, dx_dref, 0.0, kFloatRounding, "dx vs double"));
  }
}

TEST_F(ConvGpu, BackwardWeightWithinOneRounding) {
  int i = 0;
  for (const Case& c : kCases) {
    const bool with_db = i++ % 2 == 0;
    const Conv2dShape s = shape_of(c);
    SCOPED_TRACE(s.str() + (with_db ? " with db" : " no db"));
    const std::vector<float> x = random_vec<float>(x_size(s), 19 + c.C);
    const std::vector<float> dy = dy_of(c, s, 23 + c.K);
    const int64_t off = slice_offset(c, s);
    const std::vector<double> xd = cast_vec<float, double>(x), dyd = cast_vec<float, double>(dy);
    std::vector<double> dw_ref(size_t(s.weight_numel())), db_ref(size_t(s.K));
    rf::conv2d_backward_weight_ref<double>(s, xd.data(), dyd.data() + off, dw_ref.data(), db_ref.data());
    DeviceBuffer<float> d_x(x), d_dy(dy), d_dw(size_t(s.weight_numel())), d_db(size_t(s.K));
    d_dw.poison();
    d_db.poison();
    rf::conv2d_backward_weight_cuda(s, d_x.ptr, d_dy.ptr + off, d_dw.ptr, with_db ? d_db.ptr : nullptr);
    // P = N*OH*OW products of |v| <= 1: the double partial sums are within P^2 * 2^-53 (< 3e-11 here) of the
    // exact sum, then one float rounding (2^-24 relative). A lost share (a missing barrier) is off by ~0.1 or NaN.
    const double P = double(s.N) * s.OH() * s.OW();
    EXPECT_TRUE(all_close(d_dw.to_host(), dw_ref, 2.0 * P * P * std::ldexp(1.0, -53), kFloatRounding, "dw"));
    const std::vector<float> db = d_db.to_host();
    if (with_db) {
      EXPECT_TRUE(all_close(db, db_ref, 1e-5 * P, 1e-5, "db"));  // a float tree sum (bias_grad_cuda)
    } else {
      for (float v : db) EXPECT_TRUE(std::isnan(v)) << "db written although null was passed";
    }
  }
}

TEST_F(ConvGpu, SecondRunGivesTheSameBits) {
  for (const Case& c : {kCases[3], kCases[7]}) {
    const Conv2dShape s = shape_of(c);
    SCOPED_TRACE(s.str());
    const int64_t off = slice_offset(c, s);
    const std::vector<float> x = random_vec<float>(x_size(s), 29), w = random_vec<float>(size_t(s.weight_numel()), 31);
    const std::vector<float> b = random_vec<float>(size_t(s.K), 37), dy = dy_of(c, s, 41);
    DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_dy(dy);
    std::vector<float> runs[2][4];  // y, dx, dw, db
    for (auto& r : runs) {
      DeviceBuffer<float> d_y(y_buffer_size(s)), d_dx(x_size(s)), d_dw(size_t(s.weight_numel())), d_db(size_t(s.K));
      d_y.poison();
      rf::conv2d_forward_cuda(s, d_x.ptr, d_w.ptr, d_b.ptr, d_y.ptr + off);
      rf::conv2d_backward_data_cuda(s, d_dy.ptr + off, d_w.ptr, d_dx.ptr);
      rf::conv2d_backward_weight_cuda(s, d_x.ptr, d_dy.ptr + off, d_dw.ptr, d_db.ptr);
      r[0] = d_y.to_host(), r[1] = d_dx.to_host(), r[2] = d_dw.to_host(), r[3] = d_db.to_host();
    }
    for (int j = 0; j < 4; ++j) EXPECT_EQ(fnv1a_bits(runs[0][j]), fnv1a_bits(runs[1][j])) << "output " << j;
  }
}

// The host-side checks: no device needed (nothing launches).
TEST(ConvGpuArgs, BadShapesAndNullPointersThrowBeforeLaunch) {
  float dummy = 0.0f;
  float* p = &dummy;
  Conv2dShape bad_groups;
  bad_groups.C = 6, bad_groups.K = 4, bad_groups.groups = 4, bad_groups.H = bad_groups.W = 4;
  expect_error([&] { rf::conv2d_forward_cuda(bad_groups, p, p, nullptr, p); }, {"C=6", "groups=4"}, "groups");
  Conv2dShape big_kernel;
  big_kernel.H = big_kernel.W = 2, big_kernel.k = 5;
  expect_error([&] { rf::conv2d_backward_data_cuda(big_kernel, p, p, p); }, {"k=5"}, "kernel");
  Conv2dShape huge_pad;
  huge_pad.pad = INT_MAX / 2 + 1;  // H + 2*pad = INT_MAX + 2
  expect_error([&] { rf::conv2d_forward_cuda(huge_pad, p, p, nullptr, p); }, {"conv2d_forward_cuda", "2*pad"},
               "pad");
  Conv2dShape many_weights;
  many_weights.C = many_weights.K = 1 << 14, many_weights.H = many_weights.W = 3;
  expect_error([&] { rf::conv2d_backward_weight_cuda(many_weights, p, p, p, nullptr); }, {"weights exceed"},
               "weights");
  Conv2dShape ok;
  ok.H = ok.W = 3;
  expect_error([&] { rf::conv2d_forward_cuda(ok, nullptr, p, nullptr, p); }, {"null x, w or y"}, "x");
  expect_error([&] { rf::conv2d_backward_data_cuda(ok, p, p, nullptr); }, {"null dy, w or dx"}, "dx");
  expect_error([&] { rf::conv2d_backward_weight_cuda(ok, p, nullptr, p, p); }, {"null x, dy or dw"}, "dy");
}

}  // namespace

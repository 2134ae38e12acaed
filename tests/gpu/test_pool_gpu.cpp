// GPU pooling (cuda/ops/pool.cu) against the CPU reference (host/ops/pool.h), over a sweep of shapes (odd sizes,
// strides 1 and 2, batch > 1, C not a multiple of 5 for the mixed pool's uneven groups), outputs in a channel
// slice of a wider buffer. Max pool forward and backward are bit-exact (same comparisons, same additions in the
// same order), including ties; the mixed pool matches to a tolerance (another summation order).
// Without a device the GPU tests skip with a message; the argument checks run everywhere.
// The same sweep runs on the CPU against the CUDA emulation in every build (cuda/emu, CTest label gpu-emu).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/ops/pool.h"
#include "gpu_testing.h"
#include "host/ops/pool.h"
#include "testing.h"

namespace {

using rf::MixedPoolShape;
using rf::Pool2dShape;
using namespace rf::gpu_testing;
using namespace rf::testing;

class PoolGpu : public rf::gpu_testing::GpuTest {};

struct Case {
  int N, C, H, W, stride;
  std::string str() const { return fmt::format("pool(N={},C={},H={},W={},s={})", N, C, H, W, stride); }
};
const Case kCases[] = {{2, 5, 7, 9, 1},   {3, 7, 7, 9, 2},   {2, 12, 16, 16, 1}, {2, 13, 17, 15, 2},
                       {1, 64, 32, 32, 1}, {2, 64, 32, 32, 2}, {4, 9, 1, 1, 1},    {2, 11, 3, 2, 2},
                       {1, 6, 40, 37, 1},  {1, 8, 35, 70, 2}};

// Values on a 1/4 grid (never 0): many ties, so the first-maximum rule is exercised.
std::vector<float> with_ties(std::vector<float> v) {
  for (float& e : v) e = (std::floor(e * 4.0f) + 0.5f) / 4.0f;
  return v;
}

// The slice's elements: channels [off_c, off_c + C) of a batch-strided buffer.
std::vector<float> slice_of(const std::vector<float>& buf, int N, int64_t ns, int64_t off, int64_t len) {
  std::vector<float> out;
  for (int n = 0; n < N; ++n) out.insert(out.end(), buf.begin() + n * ns + off, buf.begin() + n * ns + off + len);
  return out;
}

TEST_F(PoolGpu, MaxPoolForwardBackwardBitExact) {
  for (const Case& c : kCases)
    for (bool ties : {false, true}) {
      Pool2dShape s{c.N, c.C, c.H, c.W, 3, c.stride, 1, 0};
      const int64_t plane = int64_t(s.OH()) * s.OW(), len = int64_t(c.C) * plane;
      s.y_nstride = len + 4 * plane;  // channels [2, 2 + C) of (N, C + 4, OH, OW)
      const int64_t off = 2 * plane;
      SCOPED_TRACE(s.str() + (ties ? " with ties" : ""));
      std::vector<float> x = random_vec<float>(size_t(c.N) * c.C * c.H * c.W, 3 + c.C);
      if (ties) x = with_ties(x);
      std::vector<float> y_ref(size_t(c.N * s.y_nstride), 0.0f);
      rf::max_pool2d_forward_ref<float>(s, x.data(), y_ref.data() + off);
      const std::vector<float> dy = random_vec<float>(y_ref.size(), 17 + c.C);
      std::vector<float> dx_ref(x.size());
      rf::max_pool2d_backward_ref<float>(s, x.data(), dy.data() + off, dx_ref.data());

      DeviceBuffer<float> d_x(x), d_y(y_ref.size()), d_dy(dy), d_dx(x.size());
      d_y.poison();
      d_dx.poison();
      rf::max_pool2d_forward_cuda(s, d_x.ptr, d_y.ptr + off);
      rf::max_pool2d_backward_cuda(s, d_x.ptr, d_dy.ptr + off, d_dx.ptr);
      const std::vector<float> y = d_y.to_host();
      EXPECT_EQ(first_bit_mismatch(slice_of(y, c.N, s.y_nstride, off, len),
                                   slice_of(y_ref, c.N, s.y_nstride, off, len)), -1) << "forward";
      EXPECT_EQ(first_bit_mismatch(d_dx.to_host(), dx_ref), -1) << "backward";
      // Channels outside the slice keep the poison.
      EXPECT_EQ(rf::gpu_testing::bits_of(y[0]), 0xFFFFFFFFu);
      EXPECT_EQ(rf::gpu_testing::bits_of(y[size_t(s.y_nstride - 1)]), 0xFFFFFFFFu);
    }
}

TEST_F(PoolGpu, MaxPoolOtherWindows) {
  for (int k : {2, 3, 5})
    for (int stride : {1, 2, 3}) {
      Pool2dShape s{2, 3, 11, 10, k, stride, k / 2, 0};
      SCOPED_TRACE(s.str());
      const std::vector<float> x = random_vec<float>(size_t(2 * 3 * 11 * 10), 5 * k + stride);
      std::vector<float> y_ref(size_t(s.N) * s.C * s.OH() * s.OW());
      rf::max_pool2d_forward_ref<float>(s, x.data(), y_ref.data());
      const std::vector<float> dy = random_vec<float>(y_ref.size(), 9);
      std::vector<float> dx_ref(x.size());
      rf::max_pool2d_backward_ref<float>(s, x.data(), dy.data(), dx_ref.data());
      DeviceBuffer<float> d_x(x), d_y(y_ref.size()), d_dy(dy), d_dx(x.size());
      rf::max_pool2d_forward_cuda(s, d_x.ptr, d_y.ptr);
      rf::max_pool2d_backward_cuda(s, d_x.ptr, d_dy.ptr, d_dx.ptr);
      EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1) << "forward";
      EXPECT_EQ(first_bit_mismatch(d_dx.to_host(), dx_ref), -1) << "backward";
    }
}

TEST_F(PoolGpu, MixedAvgPoolForwardBackwardMatchReference) {
  for (const Case& c : kCases) {
    if (c.C < 5) continue;
    MixedPoolShape s{c.N, c.C, c.H, c.W, c.stride, 0};
    const int64_t plane = int64_t(s.OH()) * s.OW(), len = int64_t(c.C) * plane;
    s.y_nstride = len + 3 * plane;  // channels [1, 1 + C) of (N, C + 3, OH, OW)
    const int64_t off = plane;
    SCOPED_TRACE(s.str());
    const std::vector<float> x = random_vec<float>(size_t(c.N) * c.C * c.H * c.W, 23 + c.C);
    std::vector<float> y_ref(size_t(c.N * s.y_nstride), 0.0f);
    rf::mixed_avg_pool_forward_ref<float>(s, x.data(), y_ref.data() + off);
    const std::vector<float> dy = random_vec<float>(y_ref.size(), 29 + c.C);
    std::vector<float> dx_ref(x.size());
    rf::mixed_avg_pool_backward_ref<float>(s, dy.data() + off, dx_ref.data());

    DeviceBuffer<float> d_x(x), d_y(y_ref.size()), d_dy(dy), d_dx(x.size());
    d_y.poison();
    d_dx.poison();
    rf::mixed_avg_pool_forward_cuda(s, d_x.ptr, d_y.ptr + off);
    rf::mixed_avg_pool_backward_cuda(s, d_dy.ptr + off, d_dx.ptr);
    const std::vector<float> y = d_y.to_host();
    // Sums of up to 121 terms of |x| <= 1 in another order: a few ulps of the window's sum of magnitudes.
    EXPECT_TRUE(all_close(slice_of(y, c.N, s.y_nstride, off, len), slice_of(y_ref, c.N, s.y_nstride, off, len), 2e-6,
                          1e-5, "mixed pool forward"));
    EXPECT_TRUE(all_close(d_dx.to_host(), dx_ref, 2e-6, 1e-5, "mixed pool backward"));
    EXPECT_EQ(rf::gpu_testing::bits_of(y[0]), 0xFFFFFFFFu) << "wrote outside the slice";
  }
}

// ---- checks that need no device ----------------------------------------------------------------------------

TEST(PoolGpuArgs, BadShapesThrowBeforeLaunch) {
  float dummy = 0;
  EXPECT_THROW(rf::max_pool2d_forward_cuda(Pool2dShape{1, 1, 4, 4, 3, 0, 1, 0}, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::max_pool2d_forward_cuda(Pool2dShape{1, 1, 4, 4, 3, 1, 1, 0}, nullptr, &dummy), rf::Error);
  EXPECT_THROW(rf::max_pool2d_backward_cuda(Pool2dShape{1, 1, 4, 4, 3, 1, 2, 0}, &dummy, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::mixed_avg_pool_forward_cuda(MixedPoolShape{1, 4, 4, 4, 1, 0}, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::mixed_avg_pool_forward_cuda(MixedPoolShape{1, 5, 4, 4, 1, 5 * 16 - 1}, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::mixed_avg_pool_backward_cuda(MixedPoolShape{1, 5, 0, 4, 1, 0}, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::mixed_avg_pool_forward_cuda(MixedPoolShape{1, 5, 64, 64, 8, 0}, &dummy, &dummy), rf::Error);
}

}  // namespace

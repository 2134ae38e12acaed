// GPU NL module forward (cuda/ops/nl_module.cu) against the host op's reference composition (nl_module_forward_ref,
// host/ops/nl_module.h: seeded conv + ReLU, max pool and mixed pool into their slices of the concat buffer, grouped
// 1x1 conv with bias, channel shuffle). Sweep: dw / 512-like / 768-like widths, strides 1 and 2, odd
// sizes, batch > 1, shuffle on and off; the grouped 1x1 conv alone over tile-boundary shapes. The regenerating and
// the materialised-weight variants must give the same bits.
// Without a device the GPU tests skip with a message; the argument checks run everywhere.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/ops/nl_module.h"
#include "gpu_testing.h"
#include "host/ops/conv.h"
#include "host/ops/nl_module.h"
#include "host/ops/pool.h"
#include "host/ops/seeded_conv.h"
#include "host/ops/shuffle.h"
#include "testing.h"

namespace {

using rf::NLModuleShape;
using namespace rf::gpu_testing;
using namespace rf::testing;

class NLModuleGpu : public rf::gpu_testing::GpuTest {};

rf::Conv2dShape pointwise_shape(int N, int C, int K, int H, int W, int groups) {
  rf::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.k = 1, s.stride = 1, s.pad = 0, s.groups = groups;
  return s;
}

// CPU: cat and y from the host op's reference composition (host/ops/nl_module.h), the reference loops of the ops
// NLModule composes.
void nl_forward_ref(const NLModuleShape& s, const std::vector<float>& x, const std::vector<float>& w_pw,
                    const std::vector<float>& b_pw, std::vector<float>& cat, std::vector<float>& y) {
  const rf::SeededConvSpec spec = s.seeded_spec();
  std::vector<float> w(size_t(spec.weight_numel()));
  rf::seeded_conv_weights(spec, w.data());
  cat.assign(size_t(s.cat_numel()), 0.0f);
  y.resize(size_t(s.out_numel()));
  rf::nl_module_forward_ref<float>(s, x.data(), w.data(), w_pw.data(), b_pw.data(), cat.data(), y.data());
}

TEST_F(NLModuleGpu, ForwardMatchesCpuComposition) {
  const NLModuleShape cases[] = {
      // N, C_in, H, W, C_out, stride, C_nl, gpw, shuffle, seed
      {2, 16, 9, 11, 16, 1, 16, 4, true, 1000},   // dw
      {3, 16, 9, 11, 32, 2, 16, 4, true, 1001},   // dw, downsampling
      {2, 8, 8, 8, 8, 1, 64, 4, true, 1002},      // 512-like: 1 in, 8 out per group
      {2, 24, 5, 5, 40, 2, 36, 4, true, 1003},    // 768-like: gcd 12, 2 in and 3 out per group
      {2, 12, 7, 13, 12, 1, 20, 4, false, 1004},  // no shuffle
      {4, 64, 4, 4, 64, 1, 64, 4, true, 1005},    // a last-stage map
      {1, 7, 1, 3, 8, 2, 10, 4, true, 1006},      // C_in % 5 != 0 (uneven mixed groups), dense conv, 1-row map
  };
  for (const NLModuleShape& s : cases) {
    SCOPED_TRACE(s.str());
    const std::vector<float> x = random_vec<float>(size_t(s.N) * s.C_in * s.H * s.W, uint32_t(s.seed));
    const std::vector<float> w_pw =
        random_vec<float>(size_t(s.C_out) * (s.C_cat() / s.gpw), uint32_t(s.seed + 1), -0.2, 0.2);
    const std::vector<float> b_pw = random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 2));
    std::vector<float> cat_ref, y_ref;
    nl_forward_ref(s, x, w_pw, b_pw, cat_ref, y_ref);

    const rf::SeededConvSpec spec = s.seeded_spec();
    std::vector<float> w_seeded(size_t(spec.weight_numel()));
    rf::seeded_conv_weights(spec, w_seeded.data());
    DeviceBuffer<float> d_x(x), d_w(w_pw), d_b(b_pw), d_ws(w_seeded), d_cat(cat_ref.size()), d_y(y_ref.size()),
        d_cat2(cat_ref.size()), d_y2(y_ref.size());
    d_cat.poison();
    d_y.poison();
    rf::nl_module_forward_cuda(s, d_x.ptr, d_w.ptr, d_b.ptr, d_cat.ptr, d_y.ptr);
    rf::nl_module_forward_cuda(s, d_x.ptr, d_w.ptr, d_b.ptr, d_cat2.ptr, d_y2.ptr, nullptr, d_ws.ptr);
    const std::vector<float> cat = d_cat.to_host(), y = d_y.to_host();
    EXPECT_TRUE(all_close(cat, cat_ref, 2e-5, 1e-4, "concat buffer (three branches)"));
    EXPECT_TRUE(all_close(y, y_ref, 1e-4, 1e-4, "module output"));
    EXPECT_EQ(first_bit_mismatch(y, d_y2.to_host()), -1) << "regenerated and materialised variants differ";
  }
}

TEST_F(NLModuleGpu, GroupedPointwiseConvWithShuffleMatchesReference) {
  struct Case {
    int N, C, K, H, W, groups, shuffle;
  };
  const Case cases[] = {{3, 200, 136, 7, 5, 4, 4}, {2, 24, 300, 3, 3, 2, 0}, {5, 8, 8, 1, 1, 1, 2},
                        {2, 192, 64, 32, 32, 4, 4}, {1, 12, 20, 9, 11, 4, 5}};
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("pointwise(N={},C={},K={},H={},W={},g={},shuffle={})", c.N, c.C, c.K, c.H, c.W, c.groups,
                             c.shuffle));
    const int HW = c.H * c.W;
    const std::vector<float> x = random_vec<float>(size_t(c.N) * c.C * HW, 1 + c.C);
    const std::vector<float> w = random_vec<float>(size_t(c.K) * (c.C / c.groups), 2 + c.K, -0.2, 0.2);
    const std::vector<float> b = random_vec<float>(size_t(c.K), 3);
    std::vector<float> z(size_t(c.N) * c.K * HW), ref(z.size());
    rf::conv2d_forward_ref<float>(pointwise_shape(c.N, c.C, c.K, c.H, c.W, c.groups), x.data(), w.data(), b.data(),
                                  z.data());
    if (c.shuffle) rf::channel_shuffle_forward_ref<float>(c.N, c.K, HW, c.shuffle, z.data(), ref.data());
    else ref = z;
    DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_y(ref.size());
    d_y.poison();
    rf::grouped_pointwise_conv_forward_cuda(c.N, c.C, c.K, HW, c.groups, c.shuffle, d_x.ptr, d_w.ptr, d_b.ptr,
                                            d_y.ptr);
    EXPECT_TRUE(all_close(d_y.to_host(), ref, 1e-4, 1e-4, "grouped 1x1 conv + shuffle"));
  }
}

// ---- checks that need no device ----------------------------------------------------------------------------

TEST(NLModuleGpuArgs, BadShapesThrowBeforeLaunch) {
  float dummy = 0;
  NLModuleShape ok{1, 16, 8, 8, 16, 1, 16, 4, true, 1};
  NLModuleShape few = ok;
  few.C_in = 4;
  EXPECT_THROW(rf::nl_module_forward_cuda(few, &dummy, &dummy, &dummy, &dummy, &dummy), rf::Error);
  NLModuleShape odd = ok;
  odd.C_out = 18;
  EXPECT_THROW(rf::nl_module_forward_cuda(odd, &dummy, &dummy, &dummy, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::nl_module_forward_cuda(ok, nullptr, &dummy, &dummy, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::grouped_pointwise_conv_forward_cuda(1, 10, 8, 4, 4, 0, &dummy, &dummy, &dummy, &dummy), rf::Error);
  EXPECT_THROW(rf::grouped_pointwise_conv_forward_cuda(1, 8, 8, 4, 4, 3, &dummy, &dummy, &dummy, &dummy), rf::Error);
  EXPECT_EQ(ok.seeded_spec().groups, 16);
  EXPECT_EQ((NLModuleShape{1, 512, 4, 4, 512, 1, 768, 4, true, 1}.seeded_spec().groups), 256);
}

}  // namespace

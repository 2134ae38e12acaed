// GPU seeded conv (cuda/ops/seeded_conv.cu) against the CPU reference (host/ops/seeded_conv.h):
// - the weight tiles the kernel regenerates in shared memory hash to the CPU's seeded_conv_weights for every
//   NL module of every NL model and for several tile shapes / block sizes / channel chunks;
// - forward (+ReLU) and input gradient match the reference over a sweep (depthwise, gcd groups, dense, odd sizes,
//   strides 1 and 2, batch > 1, ReLU on and off), writing into a channel slice that must stay in bounds;
// - the regenerating and the materialised-weight variants give the same bits (same kernel, same weights).
// Without a device the GPU tests skip with a message; the argument checks run everywhere.
// The same sweep runs on the CPU against the CUDA emulation in every build (cuda/emu, CTest label gpu-emu).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/ops/seeded_conv.h"
#include "gpu_testing.h"
#include "host/models/model.h"
#include "host/ops/seeded_conv.h"
#include "testing.h"

namespace {

using rf::SeededConvLaunch;
using rf::SeededConvSpec;
using namespace rf::gpu_testing;
using namespace rf::testing;

class SeededConvGpu : public rf::gpu_testing::GpuTest {};

struct Case {
  int N, C_in, C_out, H, W, stride, groups;
  bool relu;
  SeededConvSpec spec(uint64_t seed) const {
    SeededConvSpec s;
    s.seed = seed, s.C_in = C_in, s.C_out = C_out, s.k = 3, s.stride = stride, s.pad = 1, s.groups = groups;
    s.relu = relu;
    return s;
  }
  std::string str() const {
    return fmt::format("seeded_conv(N={},C_in={},C_out={},H={},W={},s={},g={}{})", N, C_in, C_out, H, W, stride,
                       groups, relu ? ",relu" : "");
  }
};

// Depthwise, NL-512-like (1 input, 8 outputs per group), NL-768-stage-4-like (2 in, 3 out), gcd groups, dense
// (one and two input-channel chunks of 32), 1x1 maps, odd sizes, strides 1 and 2.
const Case kCases[] = {
    {2, 16, 16, 9, 11, 1, 16, true},  {3, 16, 16, 9, 11, 2, 16, true},  {2, 8, 64, 7, 5, 1, 8, true},
    {2, 8, 64, 8, 8, 2, 8, true},     {4, 20, 30, 4, 4, 1, 10, true},   {3, 20, 30, 5, 3, 2, 10, true},
    {2, 12, 20, 13, 7, 1, 4, false},  {2, 12, 20, 13, 7, 2, 4, true},   {2, 6, 10, 9, 9, 1, 1, true},
    {1, 40, 12, 6, 7, 2, 1, true},    {2, 40, 36, 5, 6, 1, 1, false},   {5, 24, 24, 1, 1, 1, 24, true},
    {1, 9, 9, 2, 3, 2, 3, true},      {2, 33, 66, 3, 5, 1, 33, true},
};
// (threads, tile_c, grid_x): grid_x 1 and 3 make blocks loop over several position tiles with one weight tile.
const SeededConvLaunch kLaunches[] = {{256, 16, 0}, {32, 4, 0}, {128, 8, 3}, {64, 32, 0}, {224, 16, 0}, {256, 32, 1},
                                      {32, 8, 1}};

TEST_F(SeededConvGpu, RegeneratedTilesHashToTheCpuWeightsForEveryNlLayer) {
  int layers = 0;
  for (const char* cfg : {"nl-resnet18:cnl=dw,seed=1000", "nl-resnet18:cnl=512,seed=2000",
                          "nl-resnet18:cnl=768,seed=3000"}) {
    auto model = rf::build_model(rf::ModelConfig::parse(cfg));
    for (rf::NLModule* m : model->nl_modules()) {
      const SeededConvSpec& spec = m->seeded_spec();
      std::vector<float> cpu(size_t(spec.weight_numel()));
      rf::seeded_conv_weights(spec, cpu.data());
      const uint64_t want = fnv1a_bits(cpu);
      DeviceBuffer<float> d(cpu.size());
      for (const SeededConvLaunch& l : kLaunches)
        for (int chunk : {0, 1, 3}) {
          SCOPED_TRACE(fmt::format("{} {}: tile_c={} threads={} ci_chunk={}", cfg, spec.str(), l.tile_c, l.threads,
                                   chunk));
          d.poison();
          rf::seeded_conv_regen_weights_cuda(spec, d.ptr, l, chunk);
          const std::vector<float> got = d.to_host();
          EXPECT_EQ(fnv1a_bits(got), want) << "first differing weight " << first_bit_mismatch(got, cpu);
        }
      ++layers;
    }
  }
  EXPECT_EQ(layers, 3 * 16);
}

TEST_F(SeededConvGpu, ForwardMatchesCpuReferenceInASlice) {
  for (const Case& c : kCases) {
    const SeededConvSpec spec = c.spec(7 + uint64_t(c.C_in) * 131 + uint64_t(c.C_out));
    const rf::Conv2dShape cs = spec.conv_shape(c.N, c.H, c.W);
    const int64_t plane = int64_t(cs.OH()) * cs.OW();
    // Output slice: channels [3, 3 + C_out) of a (N, C_out + 5, OH, OW) buffer.
    const int64_t ns = int64_t(c.C_out + 5) * plane, off = 3 * plane;
    const std::vector<float> x = random_vec<float>(size_t(c.N) * c.C_in * c.H * c.W, 11 + c.C_in);
    std::vector<float> w(size_t(spec.weight_numel()));
    rf::seeded_conv_weights(spec, w.data());
    std::vector<float> ref(size_t(c.N * ns), 0.0f);
    rf::seeded_conv_forward_ref<float>(spec, c.N, c.H, c.W, x.data(), w.data(), ref.data() + off, ns);

    DeviceBuffer<float> dx(x), dw(w), dy_regen(ref.size()), dy_mat(ref.size());
    for (const SeededConvLaunch& l : kLaunches) {
      SCOPED_TRACE(fmt::format("{} tile_c={} threads={}", c.str(), l.tile_c, l.threads));
      dy_regen.poison();
      dy_mat.poison();
      rf::seeded_conv_forward_cuda(spec, c.N, c.H, c.W, dx.ptr, dy_regen.ptr + off, ns, nullptr, nullptr, l);
      rf::seeded_conv_forward_cuda(spec, c.N, c.H, c.W, dx.ptr, dy_mat.ptr + off, ns, nullptr, dw.ptr, l);
      const std::vector<float> got = dy_regen.to_host(), got_mat = dy_mat.to_host();
      std::vector<float> slice, ref_slice;
      for (int n = 0; n < c.N; ++n)
        for (int64_t i = 0; i < int64_t(c.C_out) * plane; ++i) {
          slice.push_back(got[size_t(n * ns + off + i)]);
          ref_slice.push_back(ref[size_t(n * ns + off + i)]);
        }
      EXPECT_TRUE(all_close(slice, ref_slice, 2e-5, 1e-4, "forward (regenerated weights)"));
      EXPECT_EQ(first_bit_mismatch(got, got_mat), -1) << "regenerated and materialised variants differ";
      // Outside the slice the poison (NaN bits 0xFFFFFFFF) must survive.
      size_t touched = 0;
      for (int n = 0; n < c.N; ++n)
        for (int64_t i = 0; i < ns; ++i)
          if ((i < off || i >= off + int64_t(c.C_out) * plane) &&
              rf::gpu_testing::bits_of(got[size_t(n * ns + i)]) != 0xFFFFFFFFu)
            ++touched;
      EXPECT_EQ(touched, 0u) << "elements written outside the output slice";
    }
  }
}

TEST_F(SeededConvGpu, BackwardDataMatchesCpuReference) {
  for (const Case& c : kCases) {
    const SeededConvSpec spec = c.spec(99 + uint64_t(c.C_out));
    const rf::Conv2dShape cs = spec.conv_shape(c.N, c.H, c.W);
    const int64_t plane = int64_t(cs.OH()) * cs.OW();
    const int64_t ns = int64_t(c.C_out + 2) * plane;  // y / dy in a slice at channel 0 of a wider buffer
    const std::vector<float> x = random_vec<float>(size_t(c.N) * c.C_in * c.H * c.W, 5 + c.C_out);
    std::vector<float> w(size_t(spec.weight_numel()));
    rf::seeded_conv_weights(spec, w.data());
    std::vector<float> y(size_t(c.N * ns), 0.0f);
    rf::seeded_conv_forward_ref<float>(spec, c.N, c.H, c.W, x.data(), w.data(), y.data(), ns);
    const std::vector<float> dy = random_vec<float>(y.size(), 77 + c.C_in);
    std::vector<float> ref(x.size());
    rf::seeded_conv_backward_data_ref<float>(spec, c.N, c.H, c.W, y.data(), dy.data(), w.data(), ref.data(), ns);

    DeviceBuffer<float> d_y(y), d_dy(dy), d_w(w), d_dx(x.size()), d_dx_mat(x.size());
    for (const SeededConvLaunch& l : kLaunches) {
      SCOPED_TRACE(fmt::format("{} backward tile_c={} threads={}", c.str(), l.tile_c, l.threads));
      d_dx.poison();
      d_dx_mat.poison();
      rf::seeded_conv_backward_data_cuda(spec, c.N, c.H, c.W, d_y.ptr, d_dy.ptr, d_dx.ptr, ns, nullptr, nullptr, l);
      rf::seeded_conv_backward_data_cuda(spec, c.N, c.H, c.W, d_y.ptr, d_dy.ptr, d_dx_mat.ptr, ns, nullptr, d_w.ptr, l);
      const std::vector<float> got = d_dx.to_host();
      EXPECT_TRUE(all_close(got, ref, 2e-5, 1e-4, "backward data (regenerated weights)"));
      EXPECT_EQ(first_bit_mismatch(got, d_dx_mat.to_host()), -1) << "regenerated and materialised variants differ";
    }
  }
}

TEST_F(SeededConvGpu, DeviceMaterialisedWeightsEqualCpuBits) {
  const SeededConvSpec spec = kCases[2].spec(4242);
  std::vector<float> cpu(size_t(spec.weight_numel()));
  rf::seeded_conv_weights(spec, cpu.data());
  DeviceBuffer<float> d(cpu.size());
  rf::seeded_conv_weights_cuda(spec, d.ptr);
  EXPECT_EQ(fnv1a_bits(d.to_host()), fnv1a_bits(cpu));
}

// ---- checks that need no device ----------------------------------------------------------------------------

TEST(SeededConvGpuArgs, BadArgumentsThrowBeforeLaunch) {
  SeededConvSpec s = kCases[0].spec(1);
  float dummy = 0;
  auto throws_with = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no rf::Error thrown, expected one about " << needle;
    } catch (const rf::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SeededConvSpec k5 = s;
  k5.k = 5, k5.pad = 2;
  throws_with([&] { rf::seeded_conv_forward_cuda(k5, 1, 8, 8, &dummy, &dummy, 0, nullptr); }, "3x3 only");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 1, 8, 8, &dummy, &dummy, 0, nullptr, nullptr, {100, 16}); },
              "launch.threads");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 1, 8, 8, &dummy, &dummy, 0, nullptr, nullptr, {512, 16}); },
              "launch.threads");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 1, 8, 8, &dummy, &dummy, 0, nullptr, nullptr, {256, 12}); },
              "launch.tile_c");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 1, 8, 8, &dummy, &dummy, 16 * 64 - 1, nullptr); }, "y_nstride");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 0, 8, 8, &dummy, &dummy, 0, nullptr); }, "sizes must be positive");
  SeededConvSpec bad_groups = s;
  bad_groups.groups = 3;
  throws_with([&] { rf::seeded_conv_forward_cuda(bad_groups, 1, 8, 8, &dummy, &dummy, 0, nullptr); }, "groups");
  throws_with([&] { rf::seeded_conv_backward_data_cuda(s, 1, 8, 8, nullptr, &dummy, &dummy, 0, nullptr); },
              "ReLU mask");
  throws_with([&] { rf::seeded_conv_regen_weights_cuda(s, &dummy, SeededConvLaunch{}, 33); }, "ci_chunk");
  throws_with([&] { rf::seeded_conv_forward_cuda(s, 1, 8, 8, &dummy, &dummy, 0, nullptr, nullptr, {256, 16, -1}); },
              "launch.grid_x");
}

}  // namespace

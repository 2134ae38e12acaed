// Bilinear upsampling on the GPU (cuda/ops/upsample.cu) against the CPU references (host/ops/upsample.h):
// - forward bit for bit against upsample_bilinear_forward_ref<float>, backward bit for bit against
//   upsample_bilinear_backward_ref<float> and equal to the double reference rounded to float, over a sweep of
//   N = 1..3, C = 1..5, H and W = 1..9 with each axis resized by its own ratio (1, 2, 4, 8, non-integer up like
//   5 -> 12, down to a half, a non-integer down like 9 -> 6), plus named cases (5x5 -> 12x12, 12x12 -> 5x5,
//   1x1 -> 8x8, 9x9 -> 72x72, 3x7 -> 24x14) and one launch past the 4096 x 256 grid cap each way (grid-stride);
//   every output starts poisoned (NaN bytes), so an element left unwritten fails the bit comparison;
// - the same bits on a second run; bad shapes, null pointers, element counts past int64 indexing and
//   overlapping input / output refused before any launch.
// Emulated in every build (CTest label gpu-emu, ~0.5 s in Release), on a device under label gpu.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cuda/ops/upsample.h"
#include "gpu_testing.h"
#include "host/ops/upsample.h"
#include "testing.h"

namespace {

using namespace rf::gpu_testing;
using namespace rf::testing;

class UpsampleGpu : public GpuTest {};

rf::UpsampleShape shape(int N, int C, int H, int W, int Ho, int Wo) {
  rf::UpsampleShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.Ho = Ho, s.Wo = Wo;
  return s;
}

// The output sizes one axis of n samples is resized to: ratios 1, 2, 4, 8, 12/5 (rounded up), n + 1, a half
// (down) and two thirds (down, non-integer).
std::vector<int> outputs_for(int n) {
  return {n, 2 * n, 4 * n, 8 * n, (12 * n + 4) / 5, n + 1, std::max(1, n / 2), std::max(1, (2 * n + 2) / 3)};
}

// Every pair of row / column resizes, twice each with other sizes: H and W run through 1..9, N through 1..3 and
// C through 1..5 as the case number grows; then the named cases.
std::vector<rf::UpsampleShape> sweep() {
  std::vector<rf::UpsampleShape> cases;
  int k = 0;
  for (int ry = 0; ry < 8; ++ry)
    for (int rx = 0; rx < 8; ++rx)
      for (int rep = 0; rep < 2; ++rep, ++k) {
        const int H = 1 + k % 9, W = 1 + (5 * k + 3) % 9;
        cases.push_back(shape(1 + k % 3, 1 + k % 5, H, W, outputs_for(H)[ry], outputs_for(W)[rx]));
      }
  cases.push_back(shape(2, 3, 5, 5, 12, 12));
  cases.push_back(shape(2, 3, 12, 12, 5, 5));
  cases.push_back(shape(3, 2, 1, 1, 8, 8));
  cases.push_back(shape(2, 3, 9, 9, 72, 72));
  cases.push_back(shape(1, 4, 3, 7, 24, 14));
  cases.push_back(shape(2, 1, 7, 2, 3, 16));
  return cases;
}

struct Result {
  std::vector<float> y, dx;
};

// Forward and backward on poisoned outputs.
Result run_gpu(const rf::UpsampleShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  DeviceBuffer<float> d_x(x), d_y(size_t(s.y_numel())), d_dy(dy), d_dx(size_t(s.x_numel()));
  d_y.poison(), d_dx.poison();
  rf::upsample_bilinear_forward_cuda(s, d_x.ptr, d_y.ptr);
  rf::upsample_bilinear_backward_cuda(s, d_dy.ptr, d_dx.ptr);
  return {d_y.to_host(), d_dx.to_host()};
}

void expect_matches_references(const rf::UpsampleShape& s, uint32_t seed) {
  SCOPED_TRACE(s.str());
  const std::vector<float> x = random_vec<float>(size_t(s.x_numel()), seed);
  const std::vector<float> dy = random_vec<float>(size_t(s.y_numel()), seed + 1);
  std::vector<float> y_ref(dy.size()), dx_ref(x.size());
  rf::upsample_bilinear_forward_ref<float>(s, x.data(), y_ref.data());
  rf::upsample_bilinear_backward_ref<float>(s, dy.data(), dx_ref.data());
  const std::vector<double> dy_d(dy.begin(), dy.end());
  std::vector<double> dx_ref_d(x.size());
  rf::upsample_bilinear_backward_ref<double>(s, dy_d.data(), dx_ref_d.data());
  const std::vector<float> dx_ref_rounded(dx_ref_d.begin(), dx_ref_d.end());

  const Result got = run_gpu(s, x, dy);
  EXPECT_EQ(first_bit_mismatch(got.y, y_ref), -1) << "forward vs upsample_bilinear_forward_ref<float>";
  EXPECT_EQ(first_bit_mismatch(got.dx, dx_ref), -1) << "backward vs upsample_bilinear_backward_ref<float>";
  EXPECT_EQ(first_bit_mismatch(got.dx, dx_ref_rounded), -1) << "backward vs the double reference, rounded";
}

TEST_F(UpsampleGpu, ForwardAndBackwardBitExactOverSweep) {
  const std::vector<rf::UpsampleShape> cases = sweep();
  for (size_t i = 0; i < cases.size(); ++i) expect_matches_references(cases[i], uint32_t(11 + 2 * i));
}

// More outputs (forward) / inputs (backward) than the 4096 blocks x 256 threads of the grid: the grid-stride loops.
TEST_F(UpsampleGpu, BitExactPastTheGridCap) {
  expect_matches_references(shape(1, 5, 60, 60, 480, 480), 101);   // 1.15M outputs
  expect_matches_references(shape(1, 1, 1030, 1030, 300, 500), 103);  // 1.06M inputs, downsampling
}

TEST_F(UpsampleGpu, SameBitsOnEveryRun) {
  for (const rf::UpsampleShape& s : {shape(2, 3, 5, 7, 12, 40), shape(3, 2, 9, 4, 4, 9)}) {
    SCOPED_TRACE(s.str());
    const std::vector<float> x = random_vec<float>(size_t(s.x_numel()), 7);
    const std::vector<float> dy = random_vec<float>(size_t(s.y_numel()), 8);
    const Result a = run_gpu(s, x, dy), b = run_gpu(s, x, dy);
    EXPECT_EQ(fnv1a_bits(a.y), fnv1a_bits(b.y));
    EXPECT_EQ(fnv1a_bits(a.dx), fnv1a_bits(b.dx));
  }
}

TEST_F(UpsampleGpu, RefusesBadCalls) {
  DeviceBuffer<float> a(64), b(64);
  const auto both = [&](const rf::UpsampleShape& s, const float* in, float* out, const std::vector<std::string>& parts,
                        const std::string& label) {
    expect_error([&] { rf::upsample_bilinear_forward_cuda(s, in, out); }, parts, "forward: " + label);
    expect_error([&] { rf::upsample_bilinear_backward_cuda(s, in, out); }, parts, "backward: " + label);
  };
  both(shape(0, 1, 2, 2, 4, 4), a.ptr, b.ptr, {"N=0"}, "N = 0");
  both(shape(1, 1, 2, -3, 4, 4), a.ptr, b.ptr, {"W=-3"}, "W < 0");
  both(shape(1, 1, 2, 2, 0, 4), a.ptr, b.ptr, {"Ho=0"}, "Ho = 0");
  both(shape(1, 1, 2, 2, 4, 4), nullptr, b.ptr, {"_cuda", "null"}, "null input");
  both(shape(1, 1, 2, 2, 4, 4), a.ptr, nullptr, {"_cuda", "null"}, "null output");
  both(shape(65536, 65536, 65536, 65536, 65536, 65536), a.ptr, b.ptr, {"_cuda", "int64 indexing"}, "overflow");
  both(shape(1, 1, 4, 4, 4, 4), a.ptr, a.ptr + 8, {"_cuda", "overlap"}, "overlap");
  // Refused before any launch: the poisoned output is untouched.
  b.poison();
  expect_error([&] { rf::upsample_bilinear_forward_cuda(shape(1, 1, 2, 2, 0, 4), a.ptr, b.ptr); }, {"Ho=0"});
  const std::vector<float> out = b.to_host();
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float e) { return bits_of(e) == 0xFFFFFFFFu; }));
}

}  // namespace

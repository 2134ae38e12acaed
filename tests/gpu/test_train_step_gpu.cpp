// A training step's GPU kernels (cuda/ops/train_step.cu) against the CPU: the softmax cross-entropy forward
// (loss and probs) and backward against softmax_cross_entropy_*_ref<double> (host/ops/loss.h) with and without
// label smoothing over N = 1, 7, 64 and C = 10, 21, rows wider than a block with one peaked logit (what a
// missing barrier in the max or sum trees breaks) and extreme logits (±80) that must stay finite; the backward
// also bit-exact with softmax_cross_entropy_backward_cpu from the same probs; a bad label throws naming the
// sample; the correct count against trainer.cpp's argmax (first max on ties); the sum of squares against a
// double host sum; the SGD update bit-exact with a loop written as SGD::step's. Also CUB's two-phase
// temp-storage protocol on the emulation's twin (cuda/emu/cub_emu.h). Runs on the CPU against the CUDA
// emulation (label gpu-emu) and on a device under label gpu.
//
// Tolerances (stated where used): the GPU computes each row's loss in double from float exponentials, so the loss
// is within 1e-6 * (1 + |loss|) of the double reference; probs within 1e-5 relative (float exp and reciprocal);
// the sum of squares within 1e-12 relative (a double sum of positive terms in CUB's order).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cuda/ops/train_step.h"
#include "gpu_testing.h"
#include "host/ops/loss.h"
#include "testing.h"
#if defined(RF_CUDA_EMU)
#include "cuda/cub.h"  // the twin; the real CUB needs nvcc, so it is tested through train_step.cu on a device
#endif

namespace {

using namespace rf::gpu_testing;
using namespace rf::testing;

class TrainStepGpu : public GpuTest {};

struct LossCase {
  int N, C;
  float smoothing;
};

// The forward and backward of one batch against the references; logits and labels given.
void check_loss(int N, int C, float smoothing, const std::vector<float>& logits, const std::vector<int32_t>& labels) {
  SCOPED_TRACE(fmt::format("N={} C={} smoothing={}", N, C, smoothing));
  const std::vector<double> logits_d = cast_vec<float, double>(logits);
  std::vector<double> probs_ref(logits.size()), dlogits_ref(logits.size());
  const double loss_ref =
      rf::softmax_cross_entropy_forward_ref<double>(N, C, logits_d.data(), labels.data(), probs_ref.data(), smoothing);

  DeviceBuffer<float> d_logits(logits), d_probs(logits.size()), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_labels(labels);
  d_probs.poison();
  d_dlogits.poison();
  const double loss =
      rf::softmax_cross_entropy_forward_cuda(N, C, d_logits.ptr, d_labels.ptr, d_probs.ptr, smoothing);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, loss_ref, 1e-6 * (1.0 + std::fabs(loss_ref)));
  const std::vector<float> probs = d_probs.to_host();
  EXPECT_TRUE(all_close(probs, probs_ref, 1e-9, 1e-5, "probs"));
  // Run to run: the same bits (CUB is deterministic on one device, the twin always).
  EXPECT_EQ(rf::softmax_cross_entropy_forward_cuda(N, C, d_logits.ptr, d_labels.ptr, d_probs.ptr, smoothing), loss);

  rf::softmax_cross_entropy_backward_cuda(N, C, d_probs.ptr, d_labels.ptr, d_dlogits.ptr, smoothing);
  const std::vector<float> dlogits = d_dlogits.to_host();
  std::vector<float> dlogits_cpu(logits.size());
  rf::softmax_cross_entropy_backward_cpu(N, C, probs.data(), labels.data(), dlogits_cpu.data(), smoothing);
  EXPECT_EQ(first_bit_mismatch(dlogits, dlogits_cpu), -1) << "backward differs from the CPU's float operations";
  const std::vector<double> probs_d = cast_vec<float, double>(probs);
  rf::softmax_cross_entropy_backward_ref<double>(N, C, probs_d.data(), labels.data(), dlogits_ref.data(), smoothing);
  EXPECT_TRUE(all_close(dlogits, dlogits_ref, 1e-8, 1e-6, "dlogits"));
}

TEST_F(TrainStepGpu, LossMatchesTheReference) {
  for (float smoothing : {0.f, 0.1f})
    for (int N : {1, 7, 64})
      for (int C : {10, 21}) {
        const uint32_t seed = uint32_t(N * 100 + C);
        check_loss(N, C, smoothing, random_vec<float>(size_t(N) * C, seed, -4.0, 4.0), random_labels(N, C, seed));
      }
}

// Rows of C = 300 > the kernel's 128 threads: every thread holds partial maxima and sums, so a missing barrier
// of a tree reduction changes the result. Half the rows have one logit of +80 among logits in [-80, -20]: a max
// that misses it overflows exp and the row turns NaN.
TEST_F(TrainStepGpu, LossOfWideAndPeakedRows) {
  const int N = 32, C = 300;
  std::vector<float> logits = random_vec<float>(size_t(N) * C, 17, -4.0, 4.0);
  const std::vector<float> low = random_vec<float>(size_t(N) * C, 18, -80.0, -20.0);
  std::mt19937 gen(19);
  for (int n = 0; n < N; n += 2) {
    std::copy(low.begin() + int64_t(n) * C, low.begin() + int64_t(n + 1) * C, logits.begin() + int64_t(n) * C);
    logits[size_t(n) * C + gen() % C] = 80.f;
  }
  for (float smoothing : {0.f, 0.1f}) check_loss(N, C, smoothing, logits, random_labels(N, C, 20));
}

// Logits of ±80 (exp(160) overflows a float): the stable softmax keeps the loss and probs finite.
TEST_F(TrainStepGpu, ExtremeLogitsStayFinite) {
  const int N = 7, C = 21;
  std::vector<float> logits = random_vec<float>(size_t(N) * C, 23);
  for (float& v : logits) v = v > 0 ? 80.f : -80.f;
  const std::vector<int32_t> labels = random_labels(N, C, 24);
  for (float smoothing : {0.f, 0.1f}) check_loss(N, C, smoothing, logits, labels);
}

TEST_F(TrainStepGpu, BadLabelThrowsNamingTheSample) {
  const int N = 7, C = 10;
  DeviceBuffer<float> d_logits(random_vec<float>(size_t(N) * C, 29)), d_probs(size_t(N) * C);
  std::vector<int32_t> labels = random_labels(N, C, 30);
  labels[2] = -1, labels[5] = 10;
  DeviceBuffer<int32_t> d_labels(labels);
  expect_error([&] { rf::softmax_cross_entropy_forward_cuda(N, C, d_logits.ptr, d_labels.ptr, d_probs.ptr); },
               {"softmax_cross_entropy_forward_cuda", "sample 2", "label -1", "[0, 9]"}, "first of two bad");
  labels[2] = 3;
  d_labels.upload(labels);
  expect_error([&] { rf::softmax_cross_entropy_forward_cuda(N, C, d_logits.ptr, d_labels.ptr, d_probs.ptr, 0.1f); },
               {"sample 5", "label 10"}, "one bad");
  expect_error([&] { rf::softmax_cross_entropy_forward_cuda(N, C, d_logits.ptr, d_labels.ptr, d_probs.ptr, 1.5f); },
               {"label_smoothing", "1.5"}, "smoothing");
}

// trainer.cpp's count: a strict > scan, so the first of tied maxima is the prediction.
int64_t count_correct_host(int N, int C, const std::vector<float>& logits, const std::vector<int32_t>& labels) {
  int64_t correct = 0;
  for (int n = 0; n < N; ++n) {
    const float* row = logits.data() + int64_t(n) * C;
    int best = 0;
    for (int c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    correct += best == labels[size_t(n)];
  }
  return correct;
}

TEST_F(TrainStepGpu, CountCorrectMatchesTheCpuArgmaxWithTies) {
  for (int N : {1, 7, 64, 1000}) {
    const int C = 10;
    SCOPED_TRACE(fmt::format("N={}", N));
    std::vector<float> logits = random_vec<float>(size_t(N) * C, uint32_t(31 + N));
    std::vector<int32_t> labels = random_labels(N, C, uint32_t(32 + N));
    std::mt19937 gen(uint32_t(33 + N));
    for (int n = 0; n < N; ++n) {  // each row: a tie of two maxima, the label on the first, the second or neither
      float* row = logits.data() + int64_t(n) * C;
      const int a = int(gen() % C), b = int(gen() % C);
      row[a] = row[b] = 2.f;
      if (n % 3 == 0) labels[size_t(n)] = std::min(a, b);
      if (n % 3 == 1) labels[size_t(n)] = std::max(a, b);
    }
    const int64_t expected = count_correct_host(N, C, logits, labels);
    if (N >= 7) {
      EXPECT_GT(expected, 0);
    }
    DeviceBuffer<float> d_logits(logits);
    DeviceBuffer<int32_t> d_labels(labels);
    EXPECT_EQ(rf::count_correct_cuda(N, C, d_logits.ptr, d_labels.ptr), expected);
  }
  EXPECT_EQ(rf::count_correct_cuda(0, 10, nullptr, nullptr), 0);
}

TEST_F(TrainStepGpu, SumSquaresMatchesADoubleHostSum) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(1000), int64_t(1) << 20}) {
    SCOPED_TRACE(fmt::format("n={}", n));
    const std::vector<float> x = random_vec<float>(size_t(n), uint32_t(41 + n), -3.0, 3.0);
    double expected = 0;
    for (float v : x) expected += double(v) * v;
    DeviceBuffer<float> d_x(x);
    const double got = rf::sum_squares_cuda(n, d_x.ptr, stream);
    EXPECT_NEAR(got, expected, 1e-12 * expected);
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// The update of SGD::step (host/models/model.cpp), written the same way: bit-exact over three steps (so the
// velocity carries), with and without weight decay and a clipping scale.
TEST_F(TrainStepGpu, SgdUpdateIsBitExactWithTheCpu) {
  struct Case {
    int64_t n;
    float lr, momentum, wd, scale;
  };
  for (const Case& c : {Case{1, 0.1f, 0.9f, 5e-4f, 1.f}, Case{1000, 0.05f, 0.9f, 0.f, 0.37f},
                        Case{(int64_t(1) << 16) + 3, 0.4f, 0.8f, 1e-3f, 0.71f}}) {
    SCOPED_TRACE(fmt::format("n={} lr={} momentum={} wd={} scale={}", c.n, c.lr, c.momentum, c.wd, c.scale));
    std::vector<float> w = random_vec<float>(size_t(c.n), 51), v = random_vec<float>(size_t(c.n), 52, -0.1, 0.1);
    DeviceBuffer<float> d_w(w), d_v(v), d_g(size_t(c.n));
    for (int step = 0; step < 3; ++step) {
      const std::vector<float> g = random_vec<float>(size_t(c.n), uint32_t(53 + step));
      d_g.upload(g);
      rf::sgd_update_cuda(c.n, d_w.ptr, d_g.ptr, d_v.ptr, c.lr, c.momentum, c.wd, c.scale);
      for (int64_t i = 0; i < c.n; ++i) {
        float d = g[size_t(i)] * c.scale + c.wd * w[size_t(i)];
        v[size_t(i)] = c.momentum * v[size_t(i)] + d;
        w[size_t(i)] -= c.lr * v[size_t(i)];
      }
    }
    EXPECT_EQ(first_bit_mismatch(d_w.to_host(), w), -1) << "weights";
    EXPECT_EQ(first_bit_mismatch(d_v.to_host(), v), -1) << "velocity";
  }
  rf::sgd_update_cuda(0, nullptr, nullptr, nullptr, 0.1f, 0.9f, 0.f, 1.f);  // nothing to do, no launch
}

// CUB's protocol as the twin keeps it: the size query reads and writes nothing, the work needs that much storage.
TEST_F(TrainStepGpu, CubTwinKeepsTheTempStorageProtocol) {
#if !defined(RF_CUDA_EMU)
  GTEST_SKIP() << "the CUB twin exists only under the CUDA emulation; the real CUB (nvcc only) is exercised "
                  "through train_step.cu by the other tests";
#else
  const std::vector<float> x = {1.f, 2.f, 3.5f};
  double out = -1;
  size_t bytes = 0;
  ASSERT_EQ(cub::DeviceReduce::Sum(nullptr, bytes, static_cast<const float*>(nullptr), &out, 3), cudaSuccess);
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(out, -1) << "the size query must do no work";
  std::vector<char> temp(bytes);
  size_t too_few = bytes - 1;
  EXPECT_EQ(cub::DeviceReduce::Sum(temp.data(), too_few, x.data(), &out, 3), cudaErrorInvalidValue);
  EXPECT_EQ(out, -1);
  ASSERT_EQ(cub::DeviceReduce::Sum(temp.data(), bytes, x.data(), &out, 3), cudaSuccess);
  EXPECT_EQ(out, 6.5);
  ASSERT_EQ(cub::DeviceReduce::Sum(temp.data(), bytes, x.data(), &out, 0), cudaSuccess);
  EXPECT_EQ(out, 0.0) << "no items: the initial value";
  // int flags into a 64-bit count (the accumulator is the output's type), num_items of another integer type.
  const std::vector<int> flags = {1, 0, 1, 1};
  int64_t count = -1;
  ASSERT_EQ(cub::DeviceReduce::Sum(temp.data(), bytes, flags.data(), &count, int64_t(4)), cudaSuccess);
  EXPECT_EQ(count, 3);
  // TransformReduce: sum of squares in double from floats, left to right.
  size_t tr_bytes = 0;
  const auto plus = [](double a, double b) { return a + b; };
  const auto square = [](float v) { return double(v) * v; };
  ASSERT_EQ(cub::DeviceReduce::TransformReduce(nullptr, tr_bytes, x.data(), &out, 3u, plus, square, 0.0),
            cudaSuccess);
  std::vector<char> tr_temp(tr_bytes);
  ASSERT_EQ(cub::DeviceReduce::TransformReduce(tr_temp.data(), tr_bytes, x.data(), &out, 3u, plus, square, 0.5),
            cudaSuccess);
  EXPECT_EQ(out, 0.5 + 1.0 + 4.0 + 12.25);
#endif
}

}  // namespace

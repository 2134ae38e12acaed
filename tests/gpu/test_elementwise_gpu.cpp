// The small GPU ops (cuda/ops/elementwise.cu) against their CPU references, all bit for bit (the same float
// expressions; the pool and the linear layer sum in double in the _ref's order):
// - ReLU, the residual add (with and without its ReLU), add backward and y += x over odd sizes, in place and with
//   the aliasing the header allows (y = a or b, da or db = dy, db null), and past 4096 blocks x 256 threads
//   (~1M elements: the grid-stride loops); n = 0 launches nothing, n < 0 is refused;
// - channel shuffle forward and backward with G in {1, a divisor, C}, HW = 1, and its round trip;
// - global average pool forward and backward, the linear layer forward (with and without bias) and backward with
//   each of dx, dw, db skipped.
// Emulated in every build (CTest label gpu-emu), on a device under label gpu.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/ops/elementwise.h"
#include "gpu_testing.h"
#include "host/ops/elementwise.h"
#include "host/ops/linear.h"
#include "host/ops/shuffle.h"
#include "testing.h"

namespace {

using namespace rf::gpu_testing;
using namespace rf::testing;

class ElementwiseGpu : public GpuTest {};

// Odd sizes around the block size, and one past the grid's 4096 blocks of 256 threads (~0.1 s a launch emulated).
constexpr int64_t kMaxGridThreads = 4096 * 256;
const int64_t kSizes[] = {1, 2, 7, 255, 256, 257, 1000, 4099, kMaxGridThreads + 123};

// Random values with exact zeros and negative zeros among them (the ReLU's edge).
std::vector<float> values(int64_t n, uint32_t seed) {
  std::vector<float> v = random_vec<float>(size_t(n), seed);
  for (size_t i = 0; i < v.size(); i += 5) v[i] = (i / 5) % 2 ? -0.f : 0.f;
  return v;
}

// Every element still 0xFF bytes (DeviceBuffer::poison): the op wrote nothing there.
bool untouched(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float e) { return bits_of(e) == 0xFFFFFFFFu; });
}

TEST_F(ElementwiseGpu, ReluForwardBackwardBitExactInPlace) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(fmt::format("n={}", n));
    const std::vector<float> x = values(n, 3), dy = values(n, 4);
    std::vector<float> y_ref(x.size()), dx_ref(x.size());
    rf::relu_forward_ref<float>(n, x.data(), y_ref.data());
    rf::relu_backward_ref<float>(n, y_ref.data(), dy.data(), dx_ref.data());
    DeviceBuffer<float> d_x(x), d_y(x.size()), d_dy(dy), d_dx(x.size());
    d_y.poison(), d_dx.poison();
    rf::relu_forward_cuda(n, d_x.ptr, d_y.ptr);
    rf::relu_backward_cuda(n, d_y.ptr, d_dy.ptr, d_dx.ptr);
    EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1);
    EXPECT_EQ(first_bit_mismatch(d_dx.to_host(), dx_ref), -1);
    rf::relu_forward_cuda(n, d_x.ptr, d_x.ptr);  // in place
    rf::relu_backward_cuda(n, d_y.ptr, d_dy.ptr, d_dy.ptr);
    EXPECT_EQ(first_bit_mismatch(d_x.to_host(), y_ref), -1) << "in place";
    EXPECT_EQ(first_bit_mismatch(d_dy.to_host(), dx_ref), -1) << "in place";
  }
}

TEST_F(ElementwiseGpu, AddForwardBitExactWhenYAliasesAnInput) {
  for (int64_t n : kSizes)
    for (bool relu : {false, true})
      for (int out : {0, 1, 2}) {  // y separate, y = a, y = b
        if (n > kMaxGridThreads && out != 0) continue;  // the grid-stride loop once per relu flag is enough
        SCOPED_TRACE(fmt::format("n={} relu={} y={}", n, relu, out == 0 ? "own" : out == 1 ? "a" : "b"));
        const std::vector<float> a = values(n, 5), b = values(n, 6);
        std::vector<float> y_ref(a.size());
        rf::add_forward_ref<float>(n, a.data(), b.data(), y_ref.data(), relu);
        DeviceBuffer<float> d_a(a), d_b(b), d_y(a.size());
        d_y.poison();
        float* y = out == 0 ? d_y.ptr : out == 1 ? d_a.ptr : d_b.ptr;
        rf::add_forward_cuda(n, d_a.ptr, d_b.ptr, y, relu);
        const DeviceBuffer<float>& got = out == 0 ? d_y : out == 1 ? d_a : d_b;
        EXPECT_EQ(first_bit_mismatch(got.to_host(), y_ref), -1);
      }
}

TEST_F(ElementwiseGpu, AddBackwardBitExactWithAliasesAndNullDb) {
  for (int64_t n : kSizes)
    for (bool relu : {false, true})
      for (int mode : {0, 1, 2, 3}) {  // da, db own; da = dy; db = dy; db null
        if (n > kMaxGridThreads && mode != 0) continue;
        SCOPED_TRACE(fmt::format("n={} relu={} mode={}", n, relu, mode));
        std::vector<float> y = values(n, 7);
        rf::relu_forward_ref<float>(n, y.data(), y.data());  // a ReLU output: zeros and positives
        const std::vector<float> dy = values(n, 8);
        std::vector<float> g_ref(y.size()), unused(y.size());
        rf::add_backward_ref<float>(n, y.data(), dy.data(), g_ref.data(), unused.data(), relu);
        DeviceBuffer<float> d_y(y), d_dy(dy), d_da(y.size()), d_db(y.size());
        d_da.poison(), d_db.poison();
        float* da = mode == 1 ? d_dy.ptr : d_da.ptr;
        float* db = mode == 2 ? d_dy.ptr : mode == 3 ? nullptr : d_db.ptr;
        rf::add_backward_cuda(n, d_y.ptr, d_dy.ptr, da, db, relu);
        EXPECT_EQ(first_bit_mismatch(mode == 1 ? d_dy.to_host() : d_da.to_host(), g_ref), -1) << "da";
        if (mode == 3) {
          EXPECT_TRUE(untouched(d_db.to_host())) << "db null, yet its buffer changed";
        } else {
          EXPECT_EQ(first_bit_mismatch(mode == 2 ? d_dy.to_host() : d_db.to_host(), g_ref), -1) << "db";
        }
      }
}

TEST_F(ElementwiseGpu, AccumulateAddsInPlace) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(fmt::format("n={}", n));
    const std::vector<float> x = values(n, 9), y0 = values(n, 10);
    std::vector<float> y_ref = y0;
    for (size_t i = 0; i < y_ref.size(); ++i) y_ref[i] += x[i];
    DeviceBuffer<float> d_x(x), d_y(y0);
    rf::accumulate_cuda(n, d_x.ptr, d_y.ptr);
    EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1);
    EXPECT_EQ(first_bit_mismatch(d_x.to_host(), x), -1) << "x changed";
  }
}

TEST_F(ElementwiseGpu, ScaleIsBitExactInPlace) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(fmt::format("n={}", n));
    const std::vector<float> x0 = values(n, 11);
    std::vector<float> x_ref = x0;
    for (float& v : x_ref) v *= 0.1f;
    DeviceBuffer<float> d_x(x0);
    rf::scale_cuda(n, 0.1f, d_x.ptr);
    EXPECT_EQ(first_bit_mismatch(d_x.to_host(), x_ref), -1);
  }
}

TEST_F(ElementwiseGpu, EmptyLaunchesNothingAndNegativeCountsAreRefused) {
  // n = 0: nothing to read or write, so null pointers are fine and nothing launches.
  rf::relu_forward_cuda(0, nullptr, nullptr);
  rf::relu_backward_cuda(0, nullptr, nullptr, nullptr);
  rf::add_forward_cuda(0, nullptr, nullptr, nullptr, true);
  rf::add_backward_cuda(0, nullptr, nullptr, nullptr, nullptr, true);
  rf::accumulate_cuda(0, nullptr, nullptr);
  rf::scale_cuda(0, 2.f, nullptr);
  CUDA_CHECK(cudaGetLastError());
  DeviceBuffer<float> buf(4);
  expect_error([&] { rf::relu_forward_cuda(-1, buf.ptr, buf.ptr); }, {"relu_forward_cuda", "-1"});
  expect_error([&] { rf::add_forward_cuda(-3, buf.ptr, buf.ptr, buf.ptr, false); }, {"add_forward_cuda", "-3"});
  expect_error([&] { rf::accumulate_cuda(4, nullptr, buf.ptr); }, {"accumulate_cuda", "null"});
}

struct ShuffleCase {
  int N, C, HW, G;
};

TEST_F(ElementwiseGpu, ChannelShuffleBitExactAndInverts) {
  const ShuffleCase cases[] = {{1, 6, 5, 2}, {2, 12, 7, 3}, {3, 9, 1, 3},  {4, 10, 3, 5},
                               {2, 8, 4, 1}, {2, 8, 4, 8},  {1, 15, 16, 5}, {2, 6, 33, 6}};
  for (const ShuffleCase& c : cases) {
    SCOPED_TRACE(fmt::format("N={} C={} HW={} G={}", c.N, c.C, c.HW, c.G));
    const size_t n = size_t(c.N) * c.C * c.HW;
    const std::vector<float> x = random_vec<float>(n, 11 + c.C);
    std::vector<float> y_ref(n), dx_ref(n);
    rf::channel_shuffle_forward_ref<float>(c.N, c.C, c.HW, c.G, x.data(), y_ref.data());
    rf::channel_shuffle_backward_ref<float>(c.N, c.C, c.HW, c.G, x.data(), dx_ref.data());
    DeviceBuffer<float> d_x(x), d_y(n), d_dx(n), d_back(n);
    d_y.poison(), d_dx.poison(), d_back.poison();
    rf::channel_shuffle_forward_cuda(c.N, c.C, c.HW, c.G, d_x.ptr, d_y.ptr);
    rf::channel_shuffle_backward_cuda(c.N, c.C, c.HW, c.G, d_x.ptr, d_dx.ptr);
    rf::channel_shuffle_backward_cuda(c.N, c.C, c.HW, c.G, d_y.ptr, d_back.ptr);
    EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1) << "forward";
    EXPECT_EQ(first_bit_mismatch(d_dx.to_host(), dx_ref), -1) << "backward";
    EXPECT_EQ(first_bit_mismatch(d_back.to_host(), x), -1) << "backward of forward";
  }
  DeviceBuffer<float> buf(12);
  expect_error([&] { rf::channel_shuffle_forward_cuda(1, 6, 2, 4, buf.ptr, buf.ptr); }, {"G=4", "C=6"});
  expect_error([&] { rf::channel_shuffle_backward_cuda(0, 6, 2, 3, buf.ptr, buf.ptr); }, {"N=0"});
}

TEST_F(ElementwiseGpu, GlobalAvgPoolBitExact) {
  struct Case {
    int N, C, HW;
  };
  const Case cases[] = {{1, 1, 1}, {2, 3, 16}, {3, 7, 49}, {4, 5, 1}, {2, 13, 300}};
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("N={} C={} HW={}", c.N, c.C, c.HW));
    const size_t n = size_t(c.N) * c.C * c.HW, p = size_t(c.N) * c.C;
    const std::vector<float> x = random_vec<float>(n, 13 + c.C), dy = random_vec<float>(p, 14 + c.C);
    std::vector<float> y_ref(p), dx_ref(n);
    rf::global_avg_pool_forward_ref<float>(c.N, c.C, c.HW, x.data(), y_ref.data());
    rf::global_avg_pool_backward_ref<float>(c.N, c.C, c.HW, dy.data(), dx_ref.data());
    DeviceBuffer<float> d_x(x), d_y(p), d_dy(dy), d_dx(n);
    d_y.poison(), d_dx.poison();
    rf::global_avg_pool_forward_cuda(c.N, c.C, c.HW, d_x.ptr, d_y.ptr);
    rf::global_avg_pool_backward_cuda(c.N, c.C, c.HW, d_dy.ptr, d_dx.ptr);
    EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1) << "forward";
    EXPECT_EQ(first_bit_mismatch(d_dx.to_host(), dx_ref), -1) << "backward";
  }
  DeviceBuffer<float> buf(4);
  expect_error([&] { rf::global_avg_pool_forward_cuda(2, 2, 0, buf.ptr, buf.ptr); }, {"HW=0"});
}

TEST_F(ElementwiseGpu, LinearBitExactWithEachGradientSkipped) {
  struct Case {
    int N, IN, OUT;
  };
  const Case cases[] = {{1, 1, 1}, {2, 7, 3}, {3, 33, 10}, {4, 512, 10}, {2, 5, 17}};
  for (const Case& c : cases) {
    const int N = c.N, IN = c.IN, OUT = c.OUT;
    SCOPED_TRACE(fmt::format("N={} IN={} OUT={}", N, IN, OUT));
    const std::vector<float> x = random_vec<float>(size_t(N) * IN, 15 + IN),
                             w = random_vec<float>(size_t(OUT) * IN, 16), b = random_vec<float>(size_t(OUT), 17),
                             dy = random_vec<float>(size_t(N) * OUT, 18);
    DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_dy(dy), d_y(dy.size()), d_dx(x.size()), d_dw(w.size()),
        d_db(b.size());
    for (bool bias : {true, false}) {
      std::vector<float> y_ref(dy.size());
      rf::linear_forward_ref<float>(N, IN, OUT, x.data(), w.data(), bias ? b.data() : nullptr, y_ref.data());
      d_y.poison();
      rf::linear_forward_cuda(N, IN, OUT, d_x.ptr, d_w.ptr, bias ? d_b.ptr : nullptr, d_y.ptr);
      EXPECT_EQ(first_bit_mismatch(d_y.to_host(), y_ref), -1) << "forward, bias " << bias;
    }
    std::vector<float> dx_ref(x.size()), dw_ref(w.size()), db_ref(b.size());
    rf::linear_backward_ref<float>(N, IN, OUT, x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(),
                                   db_ref.data());
    for (int skip : {-1, 0, 1, 2}) {  // none, dx, dw, db
      SCOPED_TRACE(fmt::format("skipped gradient {}", skip));
      d_dx.poison(), d_dw.poison(), d_db.poison();
      rf::linear_backward_cuda(N, IN, OUT, d_x.ptr, d_w.ptr, d_dy.ptr, skip == 0 ? nullptr : d_dx.ptr,
                               skip == 1 ? nullptr : d_dw.ptr, skip == 2 ? nullptr : d_db.ptr);
      const std::vector<float> dx = d_dx.to_host(), dw = d_dw.to_host(), db = d_db.to_host();
      EXPECT_TRUE(skip == 0 ? untouched(dx) : first_bit_mismatch(dx, dx_ref) == -1) << "dx";
      EXPECT_TRUE(skip == 1 ? untouched(dw) : first_bit_mismatch(dw, dw_ref) == -1) << "dw";
      EXPECT_TRUE(skip == 2 ? untouched(db) : first_bit_mismatch(db, db_ref) == -1) << "db";
    }
  }
  DeviceBuffer<float> buf(4);
  expect_error([&] { rf::linear_forward_cuda(1, 0, 1, buf.ptr, buf.ptr, nullptr, buf.ptr); }, {"IN=0"});
  expect_error([&] { rf::linear_backward_cuda(1, 1, 1, buf.ptr, buf.ptr, nullptr, buf.ptr, nullptr, nullptr); },
               {"null dy"});
}

}  // namespace

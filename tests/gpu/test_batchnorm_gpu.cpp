// Batch norm on the GPU (cuda/ops/batchnorm.cu) against the CPU (host/ops/batchnorm.h), over shapes with N = 1..4,
// odd HW, HW = 1 with N >= 2, C not a power of two, more values per channel than threads per block, a mean far
// from 0 and momenta 0, 0.1, 0.3 and 1:
// - train forward against batchnorm_forward_train_ref<double>: save_mean, save_invstd and the running stats to
//   1e-6 relative (double sums in another order, then one float rounding), y to 1e-5 absolute + relative (a few
//   float roundings of values below ~4, and the float mean's rounding when |mean| is 8); running_* null gives the
//   same outputs bit for bit; momentum 0 leaves the running stats' bits;
// - eval forward bit-exact against batchnorm_forward_eval_cpu (the same float expression and double scale), and
//   against the double reference to 1e-5, including C > 4096 (the kernel's loop over channels);
// - backward against batchnorm_backward_ref<double> given the same float save_mean / save_invstd: dgamma, dbeta
//   to 1e-6 relative, dx to 1e-5 absolute + relative (every tolerance here also held at a tenth of it when
//   measured under the emulation: a margin for the device's own rounding);
// - two runs give the same bits; the CPU's shape refusals (N*HW == 1 in train mode, eps <= 0).
// Emulated in every build (CTest label gpu-emu), on a device under label gpu.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/ops/batchnorm.h"
#include "gpu_testing.h"
#include "host/ops/batchnorm.h"
#include "testing.h"

namespace {

using rf::BatchNormShape;
using namespace rf::gpu_testing;
using namespace rf::testing;

class BatchNormGpu : public GpuTest {};

struct Case {
  int N, C, HW;
  float offset;  // added to x: the mean's distance from 0
  float momentum;
};
const Case kCases[] = {{2, 3, 1, 0.f, 0.1f},  {1, 1, 2, 0.f, 0.1f},    {3, 5, 7, 0.f, 0.3f},
                       {4, 7, 9, 8.f, 0.1f},  {2, 13, 33, 0.f, 0.f},   {1, 6, 300, 0.f, 1.f},
                       {4, 3, 100, -5.f, 0.1f}, {3, 10, 1, 0.f, 0.1f}, {2, 33, 16, 0.f, 0.1f}};

BatchNormShape shape_of(const Case& c) {
  BatchNormShape s;
  s.N = c.N, s.C = c.C, s.HW = c.HW, s.momentum = c.momentum;
  return s;
}

// The inputs of one case: x (N, C, HW), gamma, beta, running stats (var > 0), dy.
struct Inputs {
  std::vector<float> x, gamma, beta, rmean, rvar, dy;
};
Inputs inputs_of(const Case& c, uint32_t seed) {
  const size_t n = size_t(c.N) * c.C * c.HW, C = size_t(c.C);
  Inputs in{random_vec<float>(n, seed), random_vec<float>(C, seed + 1), random_vec<float>(C, seed + 2),
            random_vec<float>(C, seed + 3), random_vec<float>(C, seed + 4, 0.1, 2.0), random_vec<float>(n, seed + 5)};
  for (float& v : in.x) v += c.offset;
  return in;
}

std::vector<double> d(const std::vector<float>& v) { return cast_vec<float, double>(v); }

TEST_F(BatchNormGpu, ForwardTrainMatchesTheReference) {
  for (const Case& c : kCases) {
    const BatchNormShape s = shape_of(c);
    SCOPED_TRACE(s.str() + fmt::format(" offset={}", c.offset));
    const Inputs in = inputs_of(c, 7 + c.C);
    const size_t C = size_t(c.C);
    std::vector<double> y_ref(in.x.size()), mean_ref(C), invstd_ref(C), rmean_ref = d(in.rmean),
        rvar_ref = d(in.rvar);
    const std::vector<double> x_d = d(in.x), gamma_d = d(in.gamma), beta_d = d(in.beta);
    rf::batchnorm_forward_train_ref<double>(s, x_d.data(), gamma_d.data(), beta_d.data(), y_ref.data(),
                                            mean_ref.data(), invstd_ref.data(), rmean_ref.data(), rvar_ref.data());

    DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_rmean(in.rmean), d_rvar(in.rvar);
    DeviceBuffer<float> d_y(in.x.size()), d_mean(C), d_invstd(C);
    d_y.poison(), d_mean.poison(), d_invstd.poison();
    rf::batchnorm_forward_train_cuda(s, d_x.ptr, d_gamma.ptr, d_beta.ptr, d_y.ptr, d_mean.ptr, d_invstd.ptr,
                                     d_rmean.ptr, d_rvar.ptr);
    const std::vector<float> y = d_y.to_host(), mean = d_mean.to_host(), invstd = d_invstd.to_host();
    EXPECT_TRUE(all_close(y, y_ref, 1e-5, 1e-5, "y"));
    EXPECT_TRUE(all_close(mean, mean_ref, 1e-9, 1e-6, "save_mean"));
    EXPECT_TRUE(all_close(invstd, invstd_ref, 1e-9, 1e-6, "save_invstd"));
    EXPECT_TRUE(all_close(d_rmean.to_host(), rmean_ref, 1e-9, 1e-6, "running_mean"));
    EXPECT_TRUE(all_close(d_rvar.to_host(), rvar_ref, 1e-9, 1e-6, "running_var (unbiased)"));
    if (c.momentum == 0.f) {
      EXPECT_EQ(first_bit_mismatch(d_rmean.to_host(), in.rmean), -1) << "momentum 0 changed running_mean";
      EXPECT_EQ(first_bit_mismatch(d_rvar.to_host(), in.rvar), -1) << "momentum 0 changed running_var";
    }

    // Without running stats: the same outputs, bit for bit.
    DeviceBuffer<float> d_y2(in.x.size()), d_mean2(C), d_invstd2(C);
    d_y2.poison(), d_mean2.poison(), d_invstd2.poison();
    rf::batchnorm_forward_train_cuda(s, d_x.ptr, d_gamma.ptr, d_beta.ptr, d_y2.ptr, d_mean2.ptr, d_invstd2.ptr,
                                     nullptr, nullptr);
    EXPECT_EQ(first_bit_mismatch(d_y2.to_host(), y), -1);
    EXPECT_EQ(first_bit_mismatch(d_mean2.to_host(), mean), -1);
    EXPECT_EQ(first_bit_mismatch(d_invstd2.to_host(), invstd), -1);
  }
}

TEST_F(BatchNormGpu, ForwardEvalIsBitExactWithTheCpuOp) {
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.push_back({1, 1, 1, 0.f, 0.1f});     // eval takes a single value per channel
  cases.push_back({2, 4100, 150, 0.f, 0.1f});  // more channels than grid rows and values than threads
  for (const Case& c : cases) {
    const BatchNormShape s = shape_of(c);
    SCOPED_TRACE(s.str() + fmt::format(" offset={}", c.offset));
    const Inputs in = inputs_of(c, 31 + c.C);
    std::vector<float> y_cpu(in.x.size());
    rf::batchnorm_forward_eval_cpu(s, in.x.data(), in.gamma.data(), in.beta.data(), in.rmean.data(),
                                   in.rvar.data(), y_cpu.data());
    std::vector<double> y_ref(in.x.size());
    const std::vector<double> x_d = d(in.x), gamma_d = d(in.gamma), beta_d = d(in.beta), rmean_d = d(in.rmean),
                              rvar_d = d(in.rvar);
    rf::batchnorm_forward_eval_ref<double>(s, x_d.data(), gamma_d.data(), beta_d.data(), rmean_d.data(),
                                           rvar_d.data(), y_ref.data());

    DeviceBuffer<float> d_x(in.x), d_gamma(in.gamma), d_beta(in.beta), d_rmean(in.rmean), d_rvar(in.rvar);
    DeviceBuffer<float> d_y(in.x.size());
    d_y.poison();
    rf::batchnorm_forward_eval_cuda(s, d_x.ptr, d_gamma.ptr, d_beta.ptr, d_rmean.ptr, d_rvar.ptr, d_y.ptr);
    const std::vector<float> y = d_y.to_host();
    EXPECT_EQ(first_bit_mismatch(y, y_cpu), -1);
    EXPECT_TRUE(all_close(y, y_ref, 1e-5, 1e-5, "y"));
  }
}

TEST_F(BatchNormGpu, BackwardMatchesTheReference) {
  for (const Case& c : kCases) {
    const BatchNormShape s = shape_of(c);
    SCOPED_TRACE(s.str() + fmt::format(" offset={}", c.offset));
    const Inputs in = inputs_of(c, 53 + c.C);
    const size_t C = size_t(c.C);
    // The statistics the backward gets: the reference forward's, rounded to float as a float model keeps them.
    std::vector<float> y(in.x.size()), mean(C), invstd(C);
    rf::batchnorm_forward_train_ref<float>(s, in.x.data(), in.gamma.data(), in.beta.data(), y.data(), mean.data(),
                                           invstd.data(), nullptr, nullptr);
    std::vector<double> dx_ref(in.x.size()), dgamma_ref(C), dbeta_ref(C);
    const std::vector<double> x_d = d(in.x), dy_d = d(in.dy), gamma_d = d(in.gamma), mean_d = d(mean),
                              invstd_d = d(invstd);
    rf::batchnorm_backward_ref<double>(s, x_d.data(), dy_d.data(), gamma_d.data(), mean_d.data(), invstd_d.data(),
                                       dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());

    DeviceBuffer<float> d_x(in.x), d_dy(in.dy), d_gamma(in.gamma), d_mean(mean), d_invstd(invstd);
    DeviceBuffer<float> d_dx(in.x.size()), d_dgamma(C), d_dbeta(C);
    d_dx.poison(), d_dgamma.poison(), d_dbeta.poison();
    rf::batchnorm_backward_cuda(s, d_x.ptr, d_dy.ptr, d_gamma.ptr, d_mean.ptr, d_invstd.ptr, d_dx.ptr, d_dgamma.ptr,
                                d_dbeta.ptr);
    EXPECT_TRUE(all_close(d_dx.to_host(), dx_ref, 1e-5, 1e-5, "dx"));
    EXPECT_TRUE(all_close(d_dgamma.to_host(), dgamma_ref, 1e-9, 1e-6, "dgamma"));
    EXPECT_TRUE(all_close(d_dbeta.to_host(), dbeta_ref, 1e-9, 1e-6, "dbeta"));
  }
}

TEST_F(BatchNormGpu, RunsRepeatTheirBits) {
  const Case c{3, 9, 77, 0.5f, 0.1f};
  const BatchNormShape s = shape_of(c);
  const Inputs in = inputs_of(c, 3);
  const size_t n = in.x.size(), C = size_t(c.C);
  DeviceBuffer<float> d_x(in.x), d_dy(in.dy), d_gamma(in.gamma), d_beta(in.beta);
  std::vector<uint64_t> hashes[2];
  for (auto& h : hashes) {
    DeviceBuffer<float> d_rmean(in.rmean), d_rvar(in.rvar), d_y(n), d_mean(C), d_invstd(C), d_dx(n), d_dg(C),
        d_db(C);
    rf::batchnorm_forward_train_cuda(s, d_x.ptr, d_gamma.ptr, d_beta.ptr, d_y.ptr, d_mean.ptr, d_invstd.ptr,
                                     d_rmean.ptr, d_rvar.ptr);
    rf::batchnorm_backward_cuda(s, d_x.ptr, d_dy.ptr, d_gamma.ptr, d_mean.ptr, d_invstd.ptr, d_dx.ptr, d_dg.ptr,
                                d_db.ptr);
    for (const DeviceBuffer<float>* b : {&d_y, &d_mean, &d_invstd, &d_rmean, &d_rvar, &d_dx, &d_dg, &d_db})
      h.push_back(fnv1a_bits(b->to_host()));
  }
  EXPECT_EQ(hashes[0], hashes[1]);
}

TEST_F(BatchNormGpu, RefusesTheCpuOpsBadShapes) {
  BatchNormShape one;  // N = HW = 1: no unbiased variance in train mode
  one.C = 3;
  DeviceBuffer<float> buf(16);
  float* p = buf.ptr;
  expect_error([&] { rf::batchnorm_forward_train_cuda(one, p, p, p, p, p, p, p, p); },
               {"batchnorm(N=1,C=3,HW=1", "N*HW = 1", "eval mode"});
  BatchNormShape bad_eps;
  bad_eps.N = 2, bad_eps.eps = 0.f;
  expect_error([&] { rf::batchnorm_forward_eval_cuda(bad_eps, p, p, p, p, p, p); }, {"eps", "got 0"});
  expect_error([&] { rf::batchnorm_backward_cuda(bad_eps, p, p, p, p, p, p, p, p); }, {"eps", "got 0"});
  expect_error([&] { rf::batchnorm_backward_cuda(one, p, nullptr, p, p, p, p, p, p); }, {"null pointer"});
}

}  // namespace

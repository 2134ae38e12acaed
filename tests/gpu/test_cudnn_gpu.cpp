// cuDNN wrapper (cuda/cudnn_ops.cu) against the CPU references (host/ops/conv.h, host/ops/batchnorm.h): conv
// forward (+bias, into a channel slice), backward data, backward filter (+bias) over ResNet-18's conv kinds (3x3
// s1/s2, 1x1 s2 shortcut, 7x7 s2 stem) plus grouped and depthwise convs, with heuristic and exhaustive algorithm
// selection; BN training forward (with the running-stat update), inference forward and backward.
// Without a device (or a build without cuDNN) the GPU tests skip with a message; the argument checks run everywhere.
// Emulated (label gpu-emu) the cuDNN tests skip: a vendor library runs on a real GPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/cudnn_ops.h"
#include "gpu_testing.h"
#include "host/ops/batchnorm.h"
#include "host/ops/conv.h"
#include "testing.h"

namespace {

using rf::gpu_testing::DeviceBuffer;
using rf::testing::all_close;
using rf::testing::random_vec;

class CudnnGpu : public rf::gpu_testing::GpuTest {
 protected:
  void SetUp() override {
    RF_SKIP_IN_EMULATION("cuDNN");
    GpuTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!rf::cudnn_available()) GTEST_SKIP() << "this build has no cuDNN (RF_HAVE_CUDNN unset): cuDNN test skipped";
    std::printf("cuDNN runtime version %zu\n", rf::cudnn_runtime_version());
  }
};

rf::Conv2dShape conv(int N, int C, int H, int W, int K, int k, int stride, int pad, int groups) {
  rf::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.k = k, s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

const rf::Conv2dShape kConvs[] = {
    conv(2, 16, 17, 15, 32, 3, 1, 1, 1),  // BasicBlock 3x3
    conv(3, 16, 17, 17, 24, 3, 2, 1, 1),  // downsampling 3x3
    conv(2, 16, 16, 16, 32, 1, 2, 0, 1),  // shortcut 1x1 s2
    conv(2, 3, 33, 31, 16, 7, 2, 3, 1),   // large-input stem
    conv(2, 48, 9, 9, 32, 1, 1, 0, 4),    // grouped 1x1 (the NL module's pointwise conv)
    conv(2, 24, 11, 9, 24, 3, 1, 1, 24),  // depthwise
    conv(1, 12, 5, 7, 20, 3, 2, 1, 4),    // grouped 3x3
};

TEST_F(CudnnGpu, ConvForwardBackwardMatchReference) {
  for (rf::CudnnAlgoSearch search : {rf::CudnnAlgoSearch::heuristic, rf::CudnnAlgoSearch::exhaustive}) {
    rf::CudnnOptions opt;
    opt.search = search;
    rf::CudnnContext ctx(nullptr, opt);
    for (rf::Conv2dShape s : kConvs) {
      const int64_t plane = int64_t(s.OH()) * s.OW(), len = int64_t(s.K) * plane;
      s.y_nstride = len + 2 * plane;  // y in channels [0, K) of (N, K + 2, OH, OW)
      SCOPED_TRACE(s.str() + (search == rf::CudnnAlgoSearch::exhaustive ? " exhaustive" : " heuristic"));
      const double wscale = 1.0 / std::sqrt(double(s.C / s.groups * s.k * s.k));
      const std::vector<float> x = random_vec<float>(size_t(s.N) * s.C * s.H * s.W, 1 + s.C);
      const std::vector<float> w = random_vec<float>(size_t(s.weight_numel()), 2 + s.K, -wscale, wscale);
      const std::vector<float> b = random_vec<float>(size_t(s.K), 3);
      std::vector<float> y_ref(size_t(s.N * s.y_nstride), 0.0f);
      rf::conv2d_forward_ref<float>(s, x.data(), w.data(), b.data(), y_ref.data());
      const std::vector<float> dy = random_vec<float>(y_ref.size(), 4);
      std::vector<float> dx_ref(x.size()), dw_ref(w.size()), db_ref(b.size());
      rf::conv2d_backward_data_ref<float>(s, dy.data(), w.data(), dx_ref.data());
      rf::conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), dw_ref.data(), db_ref.data());

      DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_y(y_ref.size()), d_dy(dy), d_dx(x.size()), d_dw(w.size()),
          d_db(b.size());
      d_y.poison();
      rf::cudnn_conv2d_forward(ctx, s, d_x.ptr, d_w.ptr, d_b.ptr, d_y.ptr);
      rf::cudnn_conv2d_backward_data(ctx, s, d_dy.ptr, d_w.ptr, d_dx.ptr);
      rf::cudnn_conv2d_backward_weight(ctx, s, d_x.ptr, d_dy.ptr, d_dw.ptr, d_db.ptr);
      std::vector<float> y = d_y.to_host(), y_slice, ref_slice;
      for (int n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < len; ++i) {
          y_slice.push_back(y[size_t(n * s.y_nstride + i)]);
          ref_slice.push_back(y_ref[size_t(n * s.y_nstride + i)]);
        }
      // FMA math (no TF32), but Winograd / FFT algorithms round differently from the direct sum.
      EXPECT_TRUE(all_close(y_slice, ref_slice, 1e-3, 1e-3, "forward"));
      EXPECT_EQ(rf::gpu_testing::bits_of(y[size_t(len)]), 0xFFFFFFFFu) << "wrote outside the slice";
      EXPECT_TRUE(all_close(d_dx.to_host(), dx_ref, 1e-3, 1e-3, "backward data"));
      EXPECT_TRUE(all_close(d_dw.to_host(), dw_ref, 2e-3, 1e-3, "backward filter"));
      EXPECT_TRUE(all_close(d_db.to_host(), db_ref, 2e-3, 1e-3, "backward bias"));
    }
    std::printf("%s", ctx.algorithm_report().c_str());
  }
}

TEST_F(CudnnGpu, BatchNormMatchesReference) {
  rf::CudnnContext ctx;
  for (rf::BatchNormShape s : {rf::BatchNormShape{4, 16, 9 * 11}, rf::BatchNormShape{2, 7, 1},
                               rf::BatchNormShape{3, 32, 64}}) {
    SCOPED_TRACE(s.str());
    const size_t n = size_t(s.N) * s.C * s.HW, C = size_t(s.C);
    const std::vector<float> x = random_vec<float>(n, 5, -2.0, 3.0);
    const std::vector<float> gamma = random_vec<float>(C, 6, 0.5, 1.5), beta = random_vec<float>(C, 7);
    const std::vector<float> rm0 = random_vec<float>(C, 8), rv0 = random_vec<float>(C, 9, 0.5, 2.0);
    std::vector<float> y_ref(n), mean_ref(C), invstd_ref(C), rm_ref = rm0, rv_ref = rv0;
    rf::batchnorm_forward_train_ref<float>(s, x.data(), gamma.data(), beta.data(), y_ref.data(), mean_ref.data(),
                                           invstd_ref.data(), rm_ref.data(), rv_ref.data());
    const std::vector<float> dy = random_vec<float>(n, 10);
    std::vector<float> dx_ref(n), dgamma_ref(C), dbeta_ref(C), ye_ref(n);
    rf::batchnorm_backward_ref<float>(s, x.data(), dy.data(), gamma.data(), mean_ref.data(), invstd_ref.data(),
                                      dx_ref.data(), dgamma_ref.data(), dbeta_ref.data());
    rf::batchnorm_forward_eval_ref<float>(s, x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(),
                                          ye_ref.data());

    DeviceBuffer<float> d_x(x), d_g(gamma), d_b(beta), d_y(n), d_mean(C), d_invstd(C), d_rm(rm0), d_rv(rv0), d_dy(dy),
        d_dx(n), d_dg(C), d_db(C), d_ye(n), d_rm0(rm0), d_rv0(rv0);
    rf::cudnn_batchnorm_forward_train(ctx, s, d_x.ptr, d_g.ptr, d_b.ptr, d_y.ptr, d_mean.ptr, d_invstd.ptr, d_rm.ptr,
                                      d_rv.ptr);
    rf::cudnn_batchnorm_backward(ctx, s, d_x.ptr, d_dy.ptr, d_g.ptr, d_mean.ptr, d_invstd.ptr, d_dx.ptr, d_dg.ptr,
                                 d_db.ptr);
    rf::cudnn_batchnorm_forward_eval(ctx, s, d_x.ptr, d_g.ptr, d_b.ptr, d_rm0.ptr, d_rv0.ptr, d_ye.ptr);
    EXPECT_TRUE(all_close(d_y.to_host(), y_ref, 1e-4, 1e-4, "train forward y"));
    EXPECT_TRUE(all_close(d_mean.to_host(), mean_ref, 1e-5, 1e-4, "saved mean"));
    EXPECT_TRUE(all_close(d_invstd.to_host(), invstd_ref, 1e-5, 1e-4, "saved inverse std"));
    EXPECT_TRUE(all_close(d_rm.to_host(), rm_ref, 1e-5, 1e-4, "running mean"));
    EXPECT_TRUE(all_close(d_rv.to_host(), rv_ref, 1e-5, 1e-4, "running variance (unbiased)"));
    EXPECT_TRUE(all_close(d_dx.to_host(), dx_ref, 1e-4, 1e-3, "backward dx"));
    EXPECT_TRUE(all_close(d_dg.to_host(), dgamma_ref, 1e-4, 1e-3, "backward dgamma"));
    EXPECT_TRUE(all_close(d_db.to_host(), dbeta_ref, 1e-4, 1e-3, "backward dbeta"));
    EXPECT_TRUE(all_close(d_ye.to_host(), ye_ref, 1e-4, 1e-4, "inference forward"));
  }
}

// ---- checks that need no device ----------------------------------------------------------------------------

TEST(CudnnGpuArgs, AvailabilityIsReportedWithoutADevice) {
  if (rf::cudnn_available()) {
    // cudnnGetVersion() needs the library, not a GPU: 9.x here.
    EXPECT_GE(rf::cudnn_runtime_version(), 90000u);
    std::printf("cuDNN runtime version %zu\n", rf::cudnn_runtime_version());
  } else {
    EXPECT_EQ(rf::cudnn_runtime_version(), 0u);
    EXPECT_THROW(rf::CudnnContext ctx, rf::Error);
  }
}

}  // namespace

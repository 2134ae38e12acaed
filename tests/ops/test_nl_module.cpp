// The NL module op (host/ops/nl_module.{h,cpp}): the fast path against the reference composition over a sweep
// of shapes (dw / 512-like / 768-like widths, strides 1 and 2, odd sizes, uneven mixed-pool groups, shuffle on
// and off), forward and backward; the reference's branches against the reference ops run on their own; the
// double reference's gradients (input, 1x1 weights and bias) against finite differences; the fast backward
// (concat rebuilt from x) and forward bit for bit against the fast ops one by one (the shuffle folded into the
// 1x1 conv or not); bad shapes.
#include "host/ops/nl_module.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "host/core/check.h"
#include "host/ops/batchnorm.h"
#include "host/ops/elementwise.h"
#include "host/ops/pool.h"
#include "host/ops/shuffle.h"
#include "testing.h"

namespace {

using rf::NLModuleShape;
using namespace rf::testing;

const std::vector<NLModuleShape>& cases() {
  static const std::vector<NLModuleShape> c = {
      // N, C_in, H, W, C_out, stride, C_nl, gpw, shuffle, seed
      {2, 16, 9, 11, 16, 1, 16, 4, true, 1000},   // dw
      {3, 16, 9, 11, 32, 2, 16, 4, true, 1001},   // dw, downsampling
      {2, 8, 8, 8, 8, 1, 64, 4, true, 1002},      // 512-like: 1 in, 8 out per group
      {2, 24, 5, 5, 40, 2, 36, 4, true, 1003},    // 768-like: gcd 12, 2 in and 3 out per group
      {2, 12, 7, 13, 12, 1, 20, 4, false, 1004},  // no shuffle
      {4, 64, 4, 4, 64, 1, 64, 4, true, 1005},    // a last-stage map (the small-plane pools)
      {2, 32, 32, 32, 32, 1, 32, 4, true, 1007},  // a first-stage map (the 1x1 GEMM kernels)
      {3, 16, 32, 32, 16, 1, 48, 4, true, 1008},  // 768-like first stage: backward ranges of 1 and 2 samples
      {1, 7, 1, 3, 8, 2, 10, 4, true, 1006},      // C_in % 5 != 0 (uneven mixed groups), dense conv, 1-row map
  };
  return c;
}

std::vector<float> seeded_weights(const NLModuleShape& s) {
  std::vector<float> w(size_t(s.seeded_spec().weight_numel()));
  rf::seeded_conv_weights(s.seeded_spec(), w.data());
  return w;
}

struct Inputs {
  std::vector<float> x, w_pw, b_pw, ws;
  std::vector<float> cat, y;  // the float reference forward on these inputs: the concat buffer, the module output
  explicit Inputs(const NLModuleShape& s)
      : x(random_vec<float>(size_t(s.N) * s.C_in * s.H * s.W, uint32_t(s.seed))),
        w_pw(random_vec<float>(size_t(s.C_out) * (s.C_cat() / s.gpw), uint32_t(s.seed + 1), -0.2, 0.2)),
        b_pw(random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 2))),
        ws(seeded_weights(s)),
        cat(size_t(s.cat_numel())),
        y(size_t(s.out_numel())) {
    rf::nl_module_forward_ref<float>(s, x.data(), ws.data(), w_pw.data(), b_pw.data(), cat.data(), y.data());
  }
};

TEST(NLModule, ForwardMatchesReferenceComposition) {
  for (const NLModuleShape& s : cases()) {
    SCOPED_TRACE(s.str());
    const Inputs in(s);
    std::vector<float> cat(in.cat.size(), 7.f), y(in.y.size(), 7.f), z(in.y.size());
    rf::nl_module_forward_cpu(s, in.x.data(), in.ws.data(), in.w_pw.data(), in.b_pw.data(), cat.data(), y.data(),
                              z.data());
    EXPECT_TRUE(all_close(cat, in.cat, 1e-5, 1e-5, "concat buffer (three branches)"));
    EXPECT_TRUE(all_close(y, in.y, 1e-4, 1e-4, "module output"));
  }
}

// The fast forward, the shuffle folded into the 1x1 conv where it can be (no scratch z then), gives the bits of
// the fast ops one by one: branches, conv, shuffle pass.
TEST(NLModule, ForwardEqualsOpByOp) {
  int folded = 0;
  for (const NLModuleShape& s : cases()) {
    SCOPED_TRACE(s.str());
    const Inputs in(s);
    const int64_t plane = int64_t(s.OH()) * s.OW();
    std::vector<float> cat0(in.cat.size()), z(in.y.size()), y0(in.y.size());
    rf::nl_module_branches_forward_cpu(s, in.x.data(), in.ws.data(), cat0.data());
    rf::conv2d_forward_cpu(s.pointwise_shape(), cat0.data(), in.w_pw.data(), in.b_pw.data(),
                           s.shuffle ? z.data() : y0.data());
    if (s.shuffle) rf::channel_shuffle_forward_cpu(s.N, s.C_out, int(plane), s.gpw, z.data(), y0.data());
    const bool fold = rf::nl_module_folds_shuffle(s);
    folded += fold;
    std::vector<float> cat(in.cat.size(), 7.f), y(in.y.size(), 7.f), zz(in.y.size());
    rf::nl_module_forward_cpu(s, in.x.data(), in.ws.data(), in.w_pw.data(), in.b_pw.data(), cat.data(), y.data(),
                              fold ? nullptr : zz.data());
    EXPECT_EQ(cat, cat0);
    EXPECT_EQ(y, y0);
  }
  EXPECT_EQ(folded, 4);  // the 32x32, 8x8 and 4x4 cases: the gemm_1x1 kernels
}

// Eval: the BN epilogue fused into the 1x1 conv's output pass gives the bits of the module (shuffle off) then
// batchnorm_eval_epilogue_cpu with the shuffle's groups, with and without a residual and the ReLU.
TEST(NLModule, EvalEpilogueFusedEqualsModuleThenEpilogue) {
  int fused = 0;
  for (NLModuleShape s : cases()) {
    for (const bool shuffle : {true, false}) {
      s.shuffle = shuffle;
      if (!rf::nl_module_epilogue_applies(s)) continue;
      ++fused;
      const Inputs in(s);
      const int64_t plane = int64_t(s.OH()) * s.OW();
      const rf::BatchNormShape bs{s.N, s.C_out, int(plane)};
      const auto gamma = random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 4), 0.5, 1.5);
      const auto beta = random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 5));
      const auto mean = random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 6));
      const auto var = random_vec<float>(size_t(s.C_out), uint32_t(s.seed + 7), 0.1, 2.0);
      const auto res = random_vec<float>(in.y.size(), uint32_t(s.seed + 8));
      const std::vector<float> scale = rf::batchnorm_eval_scale(bs, gamma.data(), var.data());
      NLModuleShape u = s;
      u.shuffle = false;
      std::vector<float> cat(in.cat.size()), z(in.y.size());
      rf::nl_module_forward_cpu(u, in.x.data(), in.ws.data(), in.w_pw.data(), in.b_pw.data(), cat.data(), z.data());
      for (int v = 0; v < 4; ++v) {
        const bool with_res = v & 1, relu = v & 2;
        SCOPED_TRACE(fmt::format("{} res={} relu={}", s.str(), with_res, relu));
        std::vector<float> want(in.y.size()), y(in.y.size(), 7.f), cat2(in.cat.size(), 7.f);
        rf::batchnorm_eval_epilogue_cpu(bs, z.data(), s.shuffle ? s.gpw : 1, gamma.data(), beta.data(), mean.data(),
                                        var.data(), with_res ? res.data() : nullptr, relu, want.data());
        rf::ConvEpilogue ep;
        ep.mean = mean.data(), ep.scale = scale.data(), ep.shift = beta.data();
        ep.res = with_res ? res.data() : nullptr, ep.relu = relu;
        rf::nl_module_forward_epilogue_cpu(s, in.x.data(), in.ws.data(), in.w_pw.data(), in.b_pw.data(), ep,
                                           cat2.data(), y.data());
        EXPECT_EQ(cat2, cat);
        EXPECT_EQ(y, want);
      }
    }
  }
  EXPECT_EQ(fused, 8);  // the 32x32, 8x8 and 4x4 cases (gemm_1x1), shuffle on and off
}

// The reference's concat buffer holds each branch as the reference op computes it on its own, densely.
TEST(NLModule, ReferenceBranchesAreTheReferenceOps) {
  for (const NLModuleShape& s : {cases()[1], cases()[3], cases()[7]}) {
    SCOPED_TRACE(s.str());
    const Inputs in(s);
    const int64_t plane = int64_t(s.OH()) * s.OW();
    std::vector<float> a(size_t(s.N) * s.C_nl * plane), b(size_t(s.N) * s.C_in * plane), c(b.size());
    rf::seeded_conv_forward_ref<float>(s.seeded_spec(), s.N, s.H, s.W, in.x.data(), in.ws.data(), a.data());
    rf::max_pool2d_forward_ref<float>(rf::Pool2dShape{s.N, s.C_in, s.H, s.W, 3, s.stride, 1}, in.x.data(), b.data());
    rf::mixed_avg_pool_forward_ref<float>(rf::MixedPoolShape{s.N, s.C_in, s.H, s.W, s.stride}, in.x.data(), c.data());
    for (int n = 0; n < s.N; ++n) {
      const float* cn = in.cat.data() + n * s.C_cat() * plane;
      const int64_t na = s.C_nl * plane, nb = s.C_in * plane;
      EXPECT_EQ(std::vector<float>(cn, cn + na), std::vector<float>(a.begin() + n * na, a.begin() + (n + 1) * na));
      EXPECT_EQ(std::vector<float>(cn + na, cn + na + nb),
                std::vector<float>(b.begin() + n * nb, b.begin() + (n + 1) * nb));
      EXPECT_EQ(std::vector<float>(cn + na + nb, cn + na + 2 * nb),
                std::vector<float>(c.begin() + n * nb, c.begin() + (n + 1) * nb));
    }
    std::vector<float> z(in.y.size()), y2(in.y.size());
    rf::conv2d_forward_ref<float>(s.pointwise_shape(), in.cat.data(), in.w_pw.data(), in.b_pw.data(), z.data());
    if (s.shuffle) rf::channel_shuffle_forward_ref<float>(s.N, s.C_out, int(plane), s.gpw, z.data(), y2.data());
    else y2 = z;
    EXPECT_EQ(in.y, y2);
  }
}

TEST(NLModule, BackwardMatchesReference) {
  for (const NLModuleShape& s : cases()) {
    SCOPED_TRACE(s.str());
    const Inputs in(s);
    const std::vector<float> dy = random_vec<float>(in.y.size(), uint32_t(s.seed + 3));
    std::vector<float> dx_ref(in.x.size()), dw_ref(in.w_pw.size()), db_ref(in.b_pw.size());
    rf::nl_module_backward_ref<float>(s, in.x.data(), in.cat.data(), dy.data(), in.ws.data(), in.w_pw.data(),
                                      dx_ref.data(), dw_ref.data(), db_ref.data());
    std::vector<float> dx(dx_ref.size(), 7.f), dw(dw_ref.size(), 7.f), db(db_ref.size(), 7.f);
    std::vector<float> cat(in.cat.size(), 7.f), dz(in.y.size());
    std::vector<uint8_t> mask(size_t(s.N) * s.C_nl * s.OH() * s.OW());
    rf::nl_module_backward_cpu(s, s.N, in.x.data(), dy.data(), in.ws.data(), in.w_pw.data(), dx.data(), dw.data(),
                               db.data(), cat.data(), mask.data(), dz.data());
    EXPECT_TRUE(all_close(dx, dx_ref, 1e-4, 1e-4, "dx"));
    EXPECT_TRUE(all_close(dw, dw_ref, 1e-3, 1e-4, "dw_pw"));
    EXPECT_TRUE(all_close(db, db_ref, 1e-3, 1e-4, "db_pw"));
  }
}

// The fast backward rebuilds the concat from x and overwrites it with its gradient (training memory): it must
// give the bits of the fast ops run one by one on a kept concat buffer and a separate gradient buffer.
TEST(NLModule, BackwardEqualsOpByOpOnKeptConcat) {
  for (const NLModuleShape& s : cases()) {
    SCOPED_TRACE(s.str());
    const Inputs in(s);
    const std::vector<float> dy = random_vec<float>(in.y.size(), uint32_t(s.seed + 3));
    const int64_t plane = int64_t(s.OH()) * s.OW(), ns = int64_t(s.C_cat()) * plane;
    const int64_t nx = int64_t(in.x.size());
    // Op by op, as the module ran before (the forward's concat kept).
    std::vector<float> cat(in.cat.size()), y(in.y.size()), z(in.y.size());
    rf::nl_module_forward_cpu(s, in.x.data(), in.ws.data(), in.w_pw.data(), in.b_pw.data(), cat.data(), y.data(),
                              z.data());
    std::vector<float> dz(in.y.size()), dcat(cat.size()), tmp(in.x.size());
    std::vector<float> dx0(in.x.size()), dw0(in.w_pw.size()), db0(in.b_pw.size());
    const float* d = dy.data();
    if (s.shuffle) {
      rf::channel_shuffle_backward_cpu(s.N, s.C_out, int(plane), s.gpw, dy.data(), dz.data());
      d = dz.data();
    }
    rf::conv2d_backward_data_cpu(s.pointwise_shape(), d, in.w_pw.data(), dcat.data());
    rf::conv2d_backward_weight_cpu(s.pointwise_shape(), cat.data(), d, dw0.data(), db0.data());
    rf::seeded_conv_backward_data_cpu(s.seeded_spec(), s.N, s.H, s.W, cat.data(), dcat.data(), in.ws.data(),
                                      dx0.data(), ns);
    rf::max_pool2d_backward_cpu(rf::Pool2dShape{s.N, s.C_in, s.H, s.W, 3, s.stride, 1, ns}, in.x.data(),
                                dcat.data() + s.C_nl * plane, tmp.data());
    rf::add_forward_cpu(nx, dx0.data(), tmp.data(), dx0.data(), false);
    rf::mixed_avg_pool_backward_cpu(rf::MixedPoolShape{s.N, s.C_in, s.H, s.W, s.stride, ns},
                                    dcat.data() + (s.C_nl + s.C_in) * plane, tmp.data());
    rf::add_forward_cpu(nx, dx0.data(), tmp.data(), dx0.data(), false);
    // The op, all samples at once and range by range where the 1x1 weight gradient allows it.
    const std::vector<float> res = random_vec<float>(dx0.size(), uint32_t(s.seed + 9));
    std::vector<int> chunks = {s.N};
    if (rf::Conv1x1WeightGrad::applies(s.pointwise_shape()))
      for (int c = 1; c < s.N; ++c) chunks.push_back(c);
    for (int chunk : chunks) {
      SCOPED_TRACE(fmt::format("chunk={}", chunk));
      std::vector<float> dx(dx0.size(), 7.f), dw(dw0.size(), 7.f), db(db0.size(), 7.f);
      std::vector<float> scratch(size_t(chunk) * s.C_cat() * plane, 7.f);
      std::vector<float> dzc(size_t(chunk) * s.C_out * plane);
      std::vector<uint8_t> mask(size_t(chunk) * s.C_nl * plane);
      rf::nl_module_backward_cpu(s, chunk, in.x.data(), dy.data(), in.ws.data(), in.w_pw.data(), dx.data(),
                                 dw.data(), db.data(), scratch.data(), mask.data(),
                                 rf::nl_module_folds_shuffle(s) ? nullptr : dzc.data());
      EXPECT_EQ(dx, dx0);
      EXPECT_EQ(dw, dw0);
      EXPECT_EQ(db, db0);
      // A residual gradient added in the pools' pass: the bits of add_forward_cpu after the call.
      std::vector<float> dxr(dx0.size(), 7.f), sum(dx0.size());
      rf::nl_module_backward_cpu(s, chunk, in.x.data(), dy.data(), in.ws.data(), in.w_pw.data(), dxr.data(),
                                 dw.data(), db.data(), scratch.data(), mask.data(),
                                 rf::nl_module_folds_shuffle(s) ? nullptr : dzc.data(), res.data());
      rf::add_forward_cpu(nx, dx0.data(), res.data(), sum.data(), false);
      EXPECT_EQ(dxr, sum) << "with res";
    }
  }
}

TEST(NLModule, ReferenceGradientsMatchFiniteDifferences) {
  for (const NLModuleShape& s : {NLModuleShape{2, 10, 5, 6, 8, 1, 12, 4, true, 2000},
                                 NLModuleShape{1, 8, 7, 5, 12, 2, 12, 4, true, 2001},
                                 NLModuleShape{2, 6, 4, 4, 4, 1, 12, 2, false, 2002}}) {
    SCOPED_TRACE(s.str());
    const std::vector<float> ws = seeded_weights(s);
    const std::vector<double> x = random_vec<double>(size_t(s.N) * s.C_in * s.H * s.W, uint32_t(s.seed));
    const std::vector<double> w = random_vec<double>(size_t(s.C_out) * (s.C_cat() / s.gpw), uint32_t(s.seed + 1));
    const std::vector<double> b = random_vec<double>(size_t(s.C_out), uint32_t(s.seed + 2));
    const std::vector<double> g = random_vec<double>(size_t(s.out_numel()), uint32_t(s.seed + 3));
    std::vector<double> cat(size_t(s.cat_numel())), y(size_t(s.out_numel()));
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      std::vector<double> c(cat.size()), yy(y.size());
      rf::nl_module_forward_ref<double>(s, xx.data(), ws.data(), ww.data(), bb.data(), c.data(), yy.data());
      return dot(yy, g);
    };
    rf::nl_module_forward_ref<double>(s, x.data(), ws.data(), w.data(), b.data(), cat.data(), y.data());
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    rf::nl_module_backward_ref<double>(s, x.data(), cat.data(), g.data(), ws.data(), w.data(), dx.data(), dw.data(),
                                       db.data());
    EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(v, w, b); }, x, dx, "dx", 1e-6, 1e-6, 96));
    EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(x, v, b); }, w, dw, "dw_pw", 1e-6, 1e-6));
    EXPECT_TRUE(check_grad([&](const std::vector<double>& v) { return loss(x, w, v); }, b, db, "db_pw", 1e-6, 1e-6));
  }
}

TEST(NLModule, BadShapesThrow) {
  float d = 0;
  const NLModuleShape ok{1, 16, 6, 6, 16, 1, 16, 4, true, 1};  // 6x6: the 1x1 conv on oneDNN, the shuffle a pass
  NLModuleShape few = ok, odd = ok, cat_odd = ok;
  few.C_in = 4;     // the mixed pool needs 5 groups
  odd.C_out = 18;   // not a multiple of gpw
  cat_odd.C_nl = 3;  // C_cat = 35
  for (const NLModuleShape& s : {few, odd, cat_odd}) {
    EXPECT_THROW(s.validate(), rf::Error) << s.str();
    EXPECT_THROW(rf::nl_module_forward_cpu(s, &d, &d, &d, &d, &d, &d, &d), rf::Error) << s.str();
    EXPECT_THROW(rf::nl_module_forward_ref<float>(s, &d, &d, &d, &d, &d, &d), rf::Error) << s.str();
  }
  // With the shuffle on the fast path needs its scratch.
  EXPECT_THROW(rf::nl_module_forward_cpu(ok, &d, &d, &d, &d, &d, &d, nullptr), rf::Error);
  uint8_t m = 0;
  EXPECT_THROW(rf::nl_module_backward_cpu(ok, 1, &d, &d, &d, &d, &d, &d, &d, &d, &m, nullptr), rf::Error);
  EXPECT_THROW(rf::nl_module_backward_cpu(ok, 0, &d, &d, &d, &d, &d, &d, &d, &d, &m, &d), rf::Error);  // chunk 0
  EXPECT_EQ(ok.seeded_spec().groups, 16);
  EXPECT_EQ((NLModuleShape{1, 512, 4, 4, 512, 1, 768, 4, true, 1}.seeded_spec().groups), 256);
}

}  // namespace

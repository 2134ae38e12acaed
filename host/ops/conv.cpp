// conv2d on the CPU, the dispatcher: Conv2dShape's checks, which algorithm runs per shape and pass
// (conv2d_cpu_algo), and the conv2d_*_cpu entry points. The kernels: conv_ref.cpp (reference loops),
// conv_direct.cpp (our direct OpenMP + SIMD kernel), conv_gemm1x1.cpp (our 1x1 GEMM kernels), conv_onednn.cpp
// (oneDNN, primitives cached per shape); what they share in conv_kernels.h. Checked by tests/ops/test_conv.cpp
// (every algorithm against the reference over a sweep of shapes, the double reference against finite
// differences).
//
// Which algorithm runs (conv2d_cpu_algo) was measured at batch 64 on 2 threads of a Zen 4 (AVX-512) host,
// per pass, on the ResNet-18 / NL-ResNet-18 layers at 32x32:
//  * few channels per group (C/groups <= 4: depthwise, and the seeded convs with groups = gcd(C_in, C_nl)):
//    the direct kernel, 2-10x oneDNN, whose plain-layout path for them is im2col + a tiny sgemm per group.
//    Exception: depthwise at <= 16x16 goes to oneDNN's jit_dw on nChw16c (1.5-5x the direct kernel there
//    even with the reorders).
//  * ungrouped k x k, k > 1: oneDNN on blocked layouts (jit:avx512_core), reordering the activations in and out
//    on every call: still 1.2-2x its plain-layout im2col + gemm path (which the 3-channel stem keeps, but for
//    its weight gradient). One sample's forward at <= 8x8 outputs (C >= 128) runs on nhwc instead, where
//    oneDNN takes brgconv, which streams the weights from DRAM faster (dnnl_nhwc_forward, conv_onednn.cpp).
//  * 1x1 stride 1 (the NL modules' grouped 1x1 with bias): at 32x32 and 4x4 gemm_1x1, our loop over
//    (sample, group) with register-blocked kernels or oneDNN's sgemm per call (3x oneDNN's gemm convolution
//    on the weight gradient at 32x32); in between oneDNN's plain gemm convolution. 1x1 stride 2 (the
//    shortcuts): oneDNN's plain gemm (blocked jit_1x1 at <= 8x8).
#include <string>

#include "host/core/check.h"
#include "host/ops/conv.h"
#include "host/ops/conv_kernels.h"

namespace rf {

using namespace conv_detail;

void Conv2dShape::validate() const {
  RF_CHECK(N >= 1 && C >= 1 && H >= 1 && W >= 1 && K >= 1, "{}: sizes must be >= 1", str());
  RF_CHECK(k >= 1, "{}: kernel size k={} must be >= 1", str(), k);
  RF_CHECK(stride >= 1, "{}: stride={} must be >= 1", str(), stride);
  RF_CHECK(pad >= 0, "{}: pad={} must be >= 0", str(), pad);
  RF_CHECK(groups >= 1, "{}: groups={} must be >= 1", str(), groups);
  RF_CHECK(C % groups == 0, "{}: C={} is not a multiple of groups={}", str(), C, groups);
  RF_CHECK(K % groups == 0, "{}: K={} is not a multiple of groups={}", str(), K, groups);
  RF_CHECK(H + 2 * pad >= k && W + 2 * pad >= k, "{}: kernel k={} larger than the padded input {}x{}", str(),
           k, H + 2 * pad, W + 2 * pad);
  RF_CHECK(y_nstride == 0 || y_nstride >= int64_t(K) * OH() * OW(),
           "{}: y_nstride={} is smaller than one output sample K*OH*OW={}", str(), y_nstride,
           int64_t(K) * OH() * OW());
}

std::string Conv2dShape::str() const {
  std::string r = fmt::format("conv2d(N={},C={},H={},W={},K={},k={},s={},p={},g={}", N, C, H, W, K, k, stride,
                              pad, groups);
  if (y_nstride) r += fmt::format(",ys={}", y_nstride);
  return r + ")";
}

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::direct: return "direct";
    case ConvAlgo::dnnl_plain: return "dnnl_plain";
    case ConvAlgo::dnnl_blocked: return "dnnl_blocked";
    case ConvAlgo::gemm_1x1: return "gemm_1x1";
  }
  return "?";
}

ConvAlgo conv2d_cpu_algo(const Conv2dShape& s, ConvPass pass) {
  s.validate();
  const int Cg = s.C / s.groups, Kg = s.K / s.groups, HW = s.H * s.W;
  const bool blockable = Cg % 16 == 0 && Kg % 16 == 0;  // oneDNN's blocked kernels want whole 16-blocks
  if (s.groups > 1 && Cg <= 4) {
    // Depthwise at <= 16x16: oneDNN's jit_dw on nChw16c beat the general direct kernel even paying the
    // reorders (1.5-5x at 4x4 to 16x16, all passes but one: 0.9x for the 16x16 stride-1 weight gradient);
    // the direct kernel's 3x3 path (conv_direct3x3.cpp) beats it at stride 1, forward and input gradient,
    // and at stride 2 forward (0.67-0.95 at batch 1, 0.5-1.0 at batch 64).
    if (Cg == 1 && Kg == 1 && s.C % 16 == 0 && HW <= 256 &&
        !((s.stride == 1 || pass == ConvPass::forward) && direct3x3_applies(s, pass)))
      return ConvAlgo::dnnl_blocked;
    return ConvAlgo::direct;
  }
  if (s.k == 1 && s.stride == 1 && s.pad == 0) {
    // Ours at 32x32 (weight gradient 2.6-3.5x, the rest 1.0-1.15x) and at 4x4 (1.05-1.4x).
    // Only where measured: planes that are whole 16-lane chunks (4x4, 8x8, 12x12, ...). At 6x6 and 3x3 (a 24x24
    // network's last stages) our kernel's ragged tails made that network 2.4x slower than oneDNN's gemm.
    // From 8x8 to 24x24 gemm_1x1 is one sgemm (or, on AVX-512, the chain kernel with its bits) per (sample, group)
    // in every pass, with the bits of oneDNN's gemm convolution (tests/ops/test_conv.cpp): the forward and the
    // input gradient per value, the weight gradient's per-thread partial sums at 1, 2 and 4 threads (oneDNN splits
    // the items differently over 3), the bias gradient's order (Conv1x1WeightGrad keeps oneDNN's). Forward
    // 0.95-1.05x its time, input gradient 0.89-1.12x, weight gradient 0.91-1.33x at 2 threads (NL shapes, batches
    // of 5-64); and there the eval BN epilogue fuses into the forward (conv2d_forward_epilogue_cpu), and the NL
    // module's backward runs by sample ranges with its shuffle folded and its ReLU mask applied in place.
    const bool ours = HW % 16 == 0 && (HW >= 64 || HW == 16);
    return ours ? ConvAlgo::gemm_1x1 : ConvAlgo::dnnl_plain;
  }
  if (s.k == 1) return HW <= 64 && blockable ? ConvAlgo::dnnl_blocked : ConvAlgo::dnnl_plain;  // shortcuts
  if (s.groups == 1) {
    // The 3-channel stem: oneDNN's blocked kernels take a plain src there, and its gemm is faster (1.3x
    // forward, 3x input gradient), except for the weight gradient (blocked 2.7x).
    if (pass != ConvPass::backward_weight && s.C < 8) return ConvAlgo::dnnl_plain;
    return ConvAlgo::dnnl_blocked;
  }
  return blockable ? ConvAlgo::dnnl_blocked : ConvAlgo::dnnl_plain;
}

std::string conv2d_cpu_impl_name(const Conv2dShape& s, ConvPass pass) {
  s.validate();
  const ConvAlgo a = conv2d_cpu_algo(s, pass);
  if (a == ConvAlgo::direct || (a == ConvAlgo::gemm_1x1 && gemm_applies(s))) return conv_algo_name(a);
  return std::string(conv_algo_name(a)) + ":" + dnnl_impl_name(s, pass, a == ConvAlgo::dnnl_blocked);
}

void conv2d_forward_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* w, const float* b,
                             float* y, bool relu, ConvWeightPack* pack) {
  s.validate();
  if (a == ConvAlgo::direct) return direct_forward(s, x, w, b, y, relu);
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_forward(s, x, w, b, y, relu);
  dnnl_forward(s, a == ConvAlgo::dnnl_blocked, x, w, b, y, relu, pack);
}

void conv2d_backward_data_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* dy, const float* w, float* dx,
                                   const float* relu_y) {
  s.validate();
  if (a == ConvAlgo::direct) return direct_backward_data(s, dy, w, dx, relu_y);
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_backward_data(s, dy, w, dx, relu_y);
  dnnl_backward_data(s, a == ConvAlgo::dnnl_blocked, dy, w, dx, relu_y);
}

void conv2d_backward_weight_cpu_with(ConvAlgo a, const Conv2dShape& s, const float* x, const float* dy,
                                     float* dw, float* db) {
  s.validate();
  if (a == ConvAlgo::direct) return direct_backward_weight(s, x, dy, dw, db);
  if (a == ConvAlgo::gemm_1x1 && gemm_applies(s)) return gemm1x1_backward_weight(s, x, dy, dw, db);
  dnnl_backward_weight(s, a == ConvAlgo::dnnl_blocked, x, dy, dw, db);
}

void conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  conv2d_forward_cpu_with(conv2d_cpu_algo(s, ConvPass::forward), s, x, w, b, y, false);
}
void conv2d_forward_packed_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                               ConvWeightPack* pack) {
  conv2d_forward_cpu_with(conv2d_cpu_algo(s, ConvPass::forward), s, x, w, b, y, false, pack);
}
bool conv2d_nc16_applies(const Conv2dShape& s) {
  return s.C % 16 == 0 && s.K % 16 == 0 && s.y_nstride == 0 && s.groups == 1 && s.k > 1;
}
void conv2d_forward_nc16_cpu(const Conv2dShape& s, const float* x, bool x_nc16, const float* w, const float* b,
                             float* y, bool y_nc16, ConvWeightPack* pack) {
  s.validate();
  RF_CHECK(conv2d_nc16_applies(s), "{}: no nChw16c path (C, K multiples of 16, ungrouped k > 1, contiguous y)",
           s.str());
  dnnl_forward(s, true, x, w, b, y, false, pack, x_nc16, y_nc16);
}
void conv2d_forward_relu_cpu(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  conv2d_forward_cpu_with(conv2d_cpu_algo(s, ConvPass::forward), s, x, w, b, y, true);
}
void conv2d_backward_data_cpu(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  conv2d_backward_data_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_data), s, dy, w, dx, nullptr);
}
void conv2d_backward_data_relu_cpu(const Conv2dShape& s, const float* y, const float* dy, const float* w,
                                   float* dx) {
  conv2d_backward_data_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_data), s, dy, w, dx, y);
}
void conv2d_backward_weight_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* db) {
  conv2d_backward_weight_cpu_with(conv2d_cpu_algo(s, ConvPass::backward_weight), s, x, dy, dw, db);
}

}  // namespace rf

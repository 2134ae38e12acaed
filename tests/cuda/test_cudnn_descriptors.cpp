// The cuDNN graph-API conv descriptors (cuda/cudnn_graph_conv.cu) for every conv shape the baseline uses, checked
// WITHOUT a GPU: cudnn_check_conv_descriptors builds and finalises the x / w / y tensors, the convolution and the
// operation of each pass, which is where cuDNN validates attribute types, counts and shape consistency (a wrong
// output size, stride or group split is refused here). What needs a GPU (operation graph, engines, execution) is
// covered by tests/gpu/test_cudnn_gpu.cpp. Label cpu: runs in CI wherever the build has cuDNN.
#include <gtest/gtest.h>

#include "cuda/cudnn_ops.h"
#include "host/core/check.h"

namespace {

rf::Conv2dShape conv(int N, int C, int H, int W, int K, int k, int stride, int pad, int groups) {
  rf::Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.k = k, s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

TEST(CudnnDescriptors, EveryBaselineShapeFinalises) {
  if (!rf::cudnn_available()) GTEST_SKIP() << "this build has no cuDNN (RF_HAVE_CUDNN unset)";
  const rf::Conv2dShape shapes[] = {
      conv(256, 3, 32, 32, 64, 3, 1, 1, 1),     // ResNet-18 CIFAR stem
      conv(256, 64, 32, 32, 64, 3, 1, 1, 1),    // stage 1 BasicBlock
      conv(256, 64, 32, 32, 128, 3, 2, 1, 1),   // stage 2 downsampling 3x3
      conv(256, 64, 32, 32, 128, 1, 2, 0, 1),   // shortcut 1x1 s2
      conv(256, 512, 4, 4, 512, 3, 1, 1, 1),    // stage 4
      conv(2, 16, 17, 15, 32, 3, 1, 1, 1),      // odd sizes (tests/gpu/test_cudnn_gpu.cpp)
      conv(2, 3, 33, 31, 16, 7, 2, 3, 1),       // large-input stem
      conv(2, 48, 9, 9, 32, 1, 1, 0, 4),        // grouped 1x1 (the NL module's pointwise conv)
      conv(2, 24, 11, 9, 24, 3, 1, 1, 24),      // depthwise
      conv(1, 12, 5, 7, 20, 3, 2, 1, 4),        // grouped 3x3
  };
  for (rf::Conv2dShape s : shapes) {
    SCOPED_TRACE(s.str());
    EXPECT_NO_THROW(rf::cudnn_check_conv_descriptors(s));
    s.y_nstride = int64_t(s.K + 2) * s.OH() * s.OW();  // y as a channel slice of a wider buffer
    EXPECT_NO_THROW(rf::cudnn_check_conv_descriptors(s));
  }
}

}  // namespace

// CUDA NL module forward (MODELS.md): the three branches written straight into their channel slices of one
// concatenated buffer (seeded conv + ReLU | 3x3 max pool | mixed average pool), then the grouped 1x1 conv with
// bias whose output indexing applies the channel shuffle (no separate concat or shuffle pass).
// Plain C++ header. Checked by tests/gpu/test_nl_module_gpu.cpp against the CPU ops composed as in
// host/models/layers.cpp (NLModule::forward).
#pragma once
#include <cstdint>
#include <string>

#include "host/ops/seeded_conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

struct NLModuleShape {
  int N = 1, C_in = 5, H = 1, W = 1;
  int C_out = 4, stride = 1;
  int C_nl = 5;            // seeded-conv width (dw: C_nl = C_in)
  int gpw = 4;             // groups of the 1x1 conv and of the shuffle
  bool shuffle = true;
  uint64_t seed = 0;       // the module's seed

  int OH() const { return (H - 1) / stride + 1; }
  int OW() const { return (W - 1) / stride + 1; }
  int C_cat() const { return C_nl + 2 * C_in; }
  SeededConvSpec seeded_spec() const;  // 3x3, pad 1, groups gcd(C_in, C_nl), ReLU
  void validate() const;               // throws rf::Error naming the bad field
  std::string str() const;
};

// z[n, o, m] = b[o] + sum_{c < C/groups} w[o, c] x[n, g(o) * C/groups + c, m], written to output channel
// (o % G) * (K / G) + o / G when shuffle_groups = G > 0 (the shuffle of MODELS.md), else to channel o.
// x (N, C, HW), w (K, C/groups), b (K) or null, y (N, K, HW); all on the device.
void grouped_pointwise_conv_forward_cuda(int N, int C, int K, int HW, int groups, int shuffle_groups,
                                         const float* x, const float* w, const float* b, float* y,
                                         cudaStream_t stream = nullptr);

// x (N, C_in, H, W); w_pw (C_out, C_cat/gpw) and b_pw (C_out): the learnable 1x1 conv; cat (N, C_cat, OH, OW)
// scratch the caller keeps for the backward; y (N, C_out, OH, OW). w_seeded_materialised_or_null as in
// seeded_conv_forward_cuda (null: regenerate in shared memory).
void nl_module_forward_cuda(const NLModuleShape& s, const float* x, const float* w_pw, const float* b_pw, float* cat,
                            float* y, cudaStream_t stream = nullptr,
                            const float* w_seeded_materialised_or_null = nullptr);

}  // namespace rf

// CUDA NL module forward (MODELS.md): the three branches written straight into their channel slices of one
// concatenated buffer (seeded conv + ReLU | 3x3 max pool | mixed average pool), then the grouped 1x1 conv with
// bias whose output indexing applies the channel shuffle (no separate concat or shuffle pass).
// Plain C++ header. Checked by tests/gpu/test_nl_module_gpu.cpp against the host op's reference composition
// (nl_module_forward_ref, host/ops/nl_module.h).
#pragma once
#include <cstdint>
#include <string>

#include "host/ops/nl_module.h"
#include "host/ops/seeded_conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace rf {

// NLModuleShape: host/ops/nl_module.h.

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

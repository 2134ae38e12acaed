// The NL module of MODELS.md as one op: branch a (seeded 3x3 conv + ReLU), b (3x3 max pool, pad 1) and c (mixed
// average pool) written straight into their channel slices of one concatenated buffer `cat` (N, C_cat, OH, OW),
// then the learnable grouped 1x1 conv with bias (gpw groups), then the channel shuffle (gpw groups) when on.
// _ref composes the reference ops (float and double); _cpu the fast ones (what host/models/layers.cpp's
// NLModule runs); _cuda is cuda/ops/nl_module.h. Checked by tests/ops/test_nl_module.cpp (the fast op against
// the reference composition over a sweep of shapes, the double reference's gradients against finite
// differences) and tests/gpu/test_nl_module_gpu.cpp (the CUDA op against nl_module_forward_ref).
#pragma once
#include <cstdint>
#include <string>

#include "host/ops/conv.h"
#include "host/ops/seeded_conv.h"

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
  SeededConvSpec seeded_spec() const;        // 3x3, pad 1, groups gcd(C_in, C_nl), ReLU
  Conv2dShape pointwise_shape() const;       // the 1x1 conv: (N, C_cat, OH, OW) -> (N, C_out, OH, OW), gpw groups
  int64_t cat_numel() const { return int64_t(N) * C_cat() * OH() * OW(); }
  int64_t out_numel() const { return int64_t(N) * C_out * OH() * OW(); }
  void validate() const;                     // throws rf::Error naming the bad field
  std::string str() const;
};

// x (N, C_in, H, W); w_seeded (C_nl, C_in/groups, 3, 3): the seeded weights as seeded_conv_weights(
// s.seeded_spec()) materialises them; w_pw (C_out, C_cat/gpw), b_pw (C_out): the 1x1 conv; cat (N, C_cat, OH,
// OW) written (the backward reads it); y (N, C_out, OH, OW).
template <typename T>
void nl_module_forward_ref(const NLModuleShape& s, const T* x, const float* w_seeded, const T* w_pw, const T* b_pw,
                           T* cat, T* y);
// dy (N, C_out, OH, OW) -> dx (N, C_in, H, W), dw_pw, db_pw (all overwritten); x and cat as in the forward.
template <typename T>
void nl_module_backward_ref(const NLModuleShape& s, const T* x, const T* cat, const T* dy, const float* w_seeded,
                            const T* w_pw, T* dx, T* dw_pw, T* db_pw);

// The fast path. Branches a, b, c only: x (N, C_in, H, W) -> cat (N, C_cat, OH, OW). The forward runs it, and
// the training backward runs it again to rebuild cat from x instead of keeping cat alive between the passes
// (the same calls on the same input: the same bits).
void nl_module_branches_forward_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, float* cat);
// Whether the 1x1 conv applies the shuffle itself (conv1x1_folds_shuffle: the gemm_1x1 kernels write and read
// the shuffled planes directly, same bits); then the scratch z and dz below are unused and may be null.
bool nl_module_folds_shuffle(const NLModuleShape& s);
// The whole module. z: the 1x1 conv's output before the shuffle (out_numel() floats), needed when s.shuffle
// and not nl_module_folds_shuffle(s) (unused, may be null, otherwise: the conv writes y).
void nl_module_forward_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, const float* w_pw,
                           const float* b_pw, float* cat, float* y, float* z = nullptr);
// Eval only: the module followed by the eval epilogue of the BN after it (ep: see conv2d_forward_epilogue_cpu,
// o counted after the shuffle), fused into the 1x1 conv's output pass: the bits of nl_module_forward_cpu with the
// shuffle off, then batchnorm_eval_epilogue_cpu with s.gpw shuffle groups (or 1 when s.shuffle is off), with
// one pass over the output less. Where the 1x1 forward runs gemm_1x1 (nl_module_epilogue_applies).
bool nl_module_epilogue_applies(const NLModuleShape& s);
void nl_module_forward_epilogue_cpu(const NLModuleShape& s, const float* x, const float* w_seeded, const float* w_pw,
                                    const float* b_pw, const ConvEpilogue& ep, float* cat, float* y);
// Training backward from x alone, `chunk` samples at a time (chunk = N: all at once). Per range: the branches
// are rebuilt from x into cat, then the 1x1 conv's input gradient dcat replaces them in the same buffer;
// the 1x1 weight gradient is summed range by range (Conv1x1WeightGrad: the bits of one call on all N).
// Scratch for `chunk` samples: cat (chunk * C_cat * OH * OW floats); mask (chunk * C_nl * OH * OW bytes:
// branch a's ReLU mask, taken before cat is overwritten; unused, may be null, where the 1x1 input gradient masks
// in place: conv1x1_backward_data_inplace_applies(s.pointwise_shape())); dz (chunk * C_out * OH * OW floats, when s.shuffle and not nl_module_folds_shuffle(s);
// else unused, may be null). The same bits as the fast ops on a kept concat (tests/ops/test_nl_module.cpp), for
// every chunk. res (may be null; laid out as dx): added to dx in the pools' pass, the bits of add_forward_cpu(dx,
// res) after the call (the residual block's shortcut gradient).
void nl_module_backward_cpu(const NLModuleShape& s, int chunk, const float* x, const float* dy,
                            const float* w_seeded, const float* w_pw, float* dx, float* dw_pw, float* db_pw,
                            float* cat, uint8_t* mask, float* dz = nullptr, const float* res = nullptr);
// The chunk for nl_module_backward_cpu whose concat scratch fits max_cat_bytes (at least 1 sample); N where
// the 1x1 weight gradient has no range-by-range path (Conv1x1WeightGrad::applies) or all of cat fits.
int nl_module_backward_chunk(const NLModuleShape& s, int64_t max_cat_bytes);

}  // namespace rf

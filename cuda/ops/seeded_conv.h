// CUDA twin of host/ops/seeded_conv.h: seeded 3x3 conv forward (+ fused ReLU) and input gradient, NCHW, for
// depthwise, grouped and ungrouped convs. Each thread block regenerates the weight tile it needs into shared
// memory from (seed, weight index) with the shared RF_HD Philox text (host/core/philox.h), 4 weights per
// Philox call, so the weight tensor never exists in device memory and its bits equal the CPU's
// seeded_conv_weights() whatever the grid or block shape. The same kernels read materialised weights from
// device memory when given a pointer (the "plain" variant, for the regen-vs-materialised benchmark).
// Plain C++ header (no CUDA headers needed). Checked by tests/gpu/test_seeded_conv_gpu.cpp against
// host/ops/seeded_conv.h's CPU reference.
#pragma once
#include <cstdint>

#include "host/ops/seeded_conv.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // the same typedef as CUDA's driver_types.h

namespace rf {

// Launch-shape knobs (the results' bits do not depend on them except through the summation order of the
// conv itself, which is fixed per output: ci then kh then kw). Defaults are what the launchers pick.
struct SeededConvLaunch {
  int threads = 256;  // threads per block: one output position (or input position, backward) each; 32..256
  int tile_c = 16;    // output channels per block (forward) / input channels per block (backward): 4, 8, 16, 32
  int grid_x = 0;     // blocks along the positions; each loops over position tiles of `threads`, building its
                      // weight tile once when a group's channels fit one chunk. 0 = about 8 blocks per SM in all.
};

// y = [relu](conv(x, W(seed))), written into y with batch stride y_nstride (0 = contiguous C_out*OH*OW), so a
// caller can target a channel slice of a concatenated tensor. x (N, C_in, H, W), y (N, C_out, OH, OW), device.
// w_materialised_or_null: nullptr -> weights regenerated per block; else (C_out, C_in/groups, 3, 3) on the
// device (from seeded_conv_weights + a copy, or seeded_conv_weights_cuda) and read from there.
void seeded_conv_forward_cuda(const SeededConvSpec& spec, int N, int H, int W, const float* x, float* y,
                              int64_t y_nstride, cudaStream_t stream,
                              const float* w_materialised_or_null = nullptr,
                              const SeededConvLaunch& launch = SeededConvLaunch{});

// dx = conv^T(dy * [y > 0]) (mask only when spec.relu); y and dy with batch stride y_nstride, dx (N, C_in, H, W)
// overwritten. Weights regenerated the same way (or read from w_materialised_or_null).
void seeded_conv_backward_data_cuda(const SeededConvSpec& spec, int N, int H, int W, const float* y,
                                    const float* dy, float* dx, int64_t y_nstride, cudaStream_t stream,
                                    const float* w_materialised_or_null = nullptr,
                                    const SeededConvLaunch& launch = SeededConvLaunch{});

// The layer's weights materialised on the device, (C_out, C_in/groups, 3, 3): the same bits as the CPU's
// seeded_conv_weights (it is seeded_normal_fill_cuda with the spec's std).
void seeded_conv_weights_cuda(const SeededConvSpec& spec, float* d_w, cudaStream_t stream = nullptr);

// Test hook: the weight tile a forward block of the regenerating kernel builds in shared memory, dumped
// for every block of a grid with `launch.tile_c` output channels per block and input-channel chunks of
// `ci_chunk` (0 = the launcher's choice), concatenated back into (C_out, C_in/groups, 3, 3) order in d_w.
// Lets tests hash the in-kernel regenerated weights against the CPU's for several tile shapes.
void seeded_conv_regen_weights_cuda(const SeededConvSpec& spec, float* d_w, const SeededConvLaunch& launch,
                                    int ci_chunk = 0, cudaStream_t stream = nullptr);

}  // namespace rf

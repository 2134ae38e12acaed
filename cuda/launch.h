// Kernel launch and shared-memory declarations that compile both ways: plain CUDA under nvcc, the host
// emulation (cuda/emu/cuda_emu.h) when RF_CUDA_EMU is defined. Every kernel of cuda/ uses them, so its test runs
// emulated in CI (label gpu-emu) and on a real GPU (label gpu) from the same source.
//   RF_LAUNCH(grid, block, smem, stream, kernel)(args...)  = kernel<<<grid, block, smem, stream>>>(args...)
//                                                           (kernel last: template arguments may hold commas)
//   RF_SHARED(float, tile, [16][64]);                       = __shared__ float tile[16][64];
//   RF_DYNAMIC_SHARED(float, smem);                         = extern __shared__ float smem[];
// Included by cuda/cuda_check.h; checked by tests/gpu/emu/test_cuda_emu.cpp and every kernel test.
#pragma once

#if defined(RF_CUDA_EMU)
#include "cuda/emu/cuda_emu.h"

#define RF_LAUNCH(grid, block, smem, stream, ...) ::rf_emu::Launcher(grid, block, smem, stream, __VA_ARGS__)
// A per-block buffer of exactly sizeof(type dims), keyed by this declaration (a function-local tag).
#define RF_SHARED(type, name, dims)                                                                        \
  using rf_shared_type_##name = type dims;                                                                 \
  static const char rf_shared_tag_##name = 0;                                                              \
  rf_shared_type_##name& name = *static_cast<rf_shared_type_##name*>(                                      \
      ::rf_emu::static_shared(&rf_shared_tag_##name, sizeof(rf_shared_type_##name)))
#define RF_DYNAMIC_SHARED(type, name) type* const name = static_cast<type*>(::rf_emu::dynamic_shared())

#else  // nvcc
#define RF_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#define RF_SHARED(type, name, dims) __shared__ type name dims
#define RF_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

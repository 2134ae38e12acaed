// CUB's device-wide reductions for the kernel files of cuda/: under nvcc the real CUB (CUDA 13 ships it as CCCL
// in include/cccl, which nvcc searches), under the CUDA emulation (RF_CUDA_EMU) its host twin cuda/emu/cub_emu.h,
// which has the same signatures for the subset cuda/ uses (cub::DeviceReduce::Sum and ::TransformReduce, with
// CUB's two-phase temp-storage protocol; cub::BlockReduce's Sum, for BN's per-channel statistics), so one call text
// compiles both ways.
// The twin sums SEQUENTIALLY (left to right); the device's CUB sums in a tree, so the two round differently and
// tests compare CUB results with a tolerance (never bit-exact across the emulation and a GPU).
// Used by cuda/ops/train_step.cu, cuda/ops/dense_loss.cu and cuda/ops/batchnorm.cu; checked by their tests in
// tests/gpu/.
#pragma once
#if defined(RF_CUDA_EMU)
#include "cuda/emu/cub_emu.h"
#else
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_reduce.cuh>
#endif

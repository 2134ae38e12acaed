// The GPU benchmarks (Google Benchmark), the one GPU harness: the seeded 3x3 conv regenerating its weights in shared
// memory against the same kernel on materialised weights and against cuDNN on the same shape (the dw / 512 / 768
// layers of NL-ResNet-18); Philox normals, ours (bit-exact with the CPU) against curandGenerateNormal; the max pool
// and mixed average pool forward; the fused NL module forward against its unfused sequence of launches.
// Registered into bench_kernels (its GPU half); the device check runs `bench_kernels --benchmark_filter=^BM_gpu_`
// and reads Google Benchmark's own JSON (scripts/device-summary.py).
//
// Names pair with the CPU ones for `reframe gate` (BM_<op>/<impl>/<shape>):
//   BM_gpu_seeded_conv/{materialized,regen,cudnn}/N=..,H=..,seeded_conv(...)
//   BM_gpu_philox_normal/{ours,curand}/n=<n>
//   BM_gpu_max_pool/cuda/pool2d(...)          BM_gpu_mixed_avg_pool/cuda/mixed_avg_pool(...)
//   BM_gpu_nl_module/{unfused,fused}/nl_module(...)
// Shapes: batch 256 at 32x32 (full), batch 32 at 16x16 (gate), batch 2 at 8x8 with two layers (smoke).
// Timing and counters: gpu_benchmarks.cpp. Without a CUDA device nothing is registered.
// Checked by tests/gpu/test_gpu_bench_registration.cpp (names on every machine; with a device, a smoke run of every
// benchmark, which includes each benchmark's correctness check).
#pragma once
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "cuda/cudnn_ops.h"
#include "cuda/ops/seeded_weights.h"

namespace rf {

// The names register_gpu_benchmarks registers for `mode` when a device is present (needs no device).
std::vector<std::string> gpu_benchmark_names(BenchMode mode);

// Registers the GPU benchmarks and returns their names; registers nothing (and returns {}) without a device.
std::vector<std::string> register_gpu_benchmarks_listed(BenchMode mode);

inline void register_gpu_benchmarks(BenchMode mode) { (void)register_gpu_benchmarks_listed(mode); }

}  // namespace rf

// The shared main of the Google Benchmark binaries: strips our own size flags, registers the benchmarks,
// runs them.
//   --smoke  tiny shapes (the CTest smoke tests: every benchmark runs once, quickly)
//   --gate   the shapes of the CI gate (scripts/ci-gate.sh): small enough for a few repetitions in CI,
//            large enough that a fast path's speedup over its reference is measured, not its overhead
//   (none)   the full shapes of the issue (batch 64, 32x32, ResNet-18's layers)
//   --profile per-op time counters (host/core/profile.h) as benchmark counters: ms per iteration by op kind
//   --device cpu|cuda|cuda:N|auto   where the models run (host/core/device.h): refused before anything runs when
//            the device cannot be used; the choice is run_device() for register_all (bench_models registers its
//            GPU benchmarks for cuda)
#pragma once
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "host/core/check.h"
#include "host/core/device.h"
#include "host/core/profile.h"

namespace rf {

enum class BenchMode { full, smoke, gate };

inline int run_benchmark_main(int argc, char** argv, void (*register_all)(BenchMode mode)) {
  BenchMode mode = BenchMode::full;
  std::string device = "cpu";
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--device=", 9) == 0) {
      device = argv[i] + 9;
    } else if (std::strcmp(argv[i], "--device") == 0) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: error: --device needs a value (cpu, cuda, cuda:N or auto)\n", argv[0]);
        return 2;
      }
      device = argv[++i];
    } else if (std::strcmp(argv[i], "--smoke") == 0)
      mode = BenchMode::smoke;
    else if (std::strcmp(argv[i], "--gate") == 0)
      mode = BenchMode::gate;
    else if (std::strcmp(argv[i], "--profile") == 0)
      profile::set_enabled(true);
    else
      args.push_back(argv[i]);
  }
  try {
    set_run_device(select_device(device, "--device"));
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", argv[0], e.what());
    return 2;
  }
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;
  register_all(mode);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace rf

// The shared main of the Google Benchmark binaries: strips our own size flags, registers the benchmarks,
// runs them.
//   --smoke  tiny shapes (the CTest smoke tests: every benchmark runs once, quickly)
//   --gate   the shapes of the CI gate (scripts/ci-gate.sh): small enough for a few repetitions in CI,
//            large enough that a fast path's speedup over its reference is measured, not its overhead
//   (none)   the full shapes of the issue (batch 64, 32x32, ResNet-18's layers)
#pragma once
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

namespace rf {

enum class BenchMode { full, smoke, gate };

inline int run_benchmark_main(int argc, char** argv, void (*register_all)(BenchMode mode)) {
  BenchMode mode = BenchMode::full;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0)
      mode = BenchMode::smoke;
    else if (std::strcmp(argv[i], "--gate") == 0)
      mode = BenchMode::gate;
    else
      args.push_back(argv[i]);
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

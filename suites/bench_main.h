// The shared main of the Google Benchmark binaries: strips our own --smoke flag (tiny shapes, for the CTest
// smoke test), registers the benchmarks, runs them.
#pragma once
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

namespace rf {

inline int run_benchmark_main(int argc, char** argv, void (*register_all)(bool smoke)) {
  bool smoke = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0)
      smoke = true;
    else
      args.push_back(argv[i]);
  }
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  register_all(smoke);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace rf

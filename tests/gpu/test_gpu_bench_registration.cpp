// The GPU half of bench_kernels (bench/cuda/gpu_benchmarks.h): its names, on every machine, and its registration.
// Names: every mode lists each op's impls under the exact names `reframe gate` pairs (BM_gpu_<op>/<impl>/<shape>,
// a denominator impl beside each numerator on the same shape), no duplicates, the mode's batch in every shape.
// Registration: without a device nothing is registered (Google Benchmark finds no BM_gpu_ benchmark) and the test
// skips with "no CUDA device"; with one, exactly the listed names are registered and a smoke run of all of them
// completes without an error (which includes the unfused NL module's bit-exact check against the fused one).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "bench/cuda/gpu_benchmarks.h"

namespace {

using rf::BenchMode;

struct Parsed {
  std::string op, impl, shape;
};
Parsed parse(const std::string& name) {
  const size_t s1 = name.find('/'), s2 = name.find('/', s1 + 1);
  if (s1 == std::string::npos || s2 == std::string::npos) return {name, "", ""};
  return {name.substr(0, s1), name.substr(s1 + 1, s2 - s1 - 1), name.substr(s2 + 1)};
}

const char* mode_str(BenchMode m) { return m == BenchMode::smoke ? "smoke" : m == BenchMode::gate ? "gate" : "full"; }

TEST(GpuBenchNames, EveryOpHasItsImplsOnEveryShape) {
  const bool cudnn = rf::cudnn_available();
  // op -> the impl set each of its shapes must carry.
  const std::map<std::string, std::set<std::string>> expected = {
      {"BM_gpu_seeded_conv",
       cudnn ? std::set<std::string>{"materialized", "regen", "cudnn"} : std::set<std::string>{"materialized", "regen"}},
      {"BM_gpu_philox_normal", {"ours", "curand"}},
      {"BM_gpu_max_pool", {"cuda"}},
      {"BM_gpu_mixed_avg_pool", {"cuda"}},
      {"BM_gpu_nl_module", {"unfused", "fused"}}};
  const std::map<BenchMode, int> batch = {{BenchMode::smoke, 2}, {BenchMode::gate, 32}, {BenchMode::full, 256}};
  const std::map<BenchMode, size_t> layers = {{BenchMode::smoke, 2}, {BenchMode::gate, 7}, {BenchMode::full, 7}};
  for (BenchMode mode : {BenchMode::smoke, BenchMode::gate, BenchMode::full}) {
    SCOPED_TRACE(mode_str(mode));
    const std::vector<std::string> names = rf::gpu_benchmark_names(mode);
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size()) << "duplicate names";
    std::map<std::string, std::map<std::string, std::set<std::string>>> shapes;  // op -> shape -> impls
    for (const std::string& name : names) {
      const Parsed p = parse(name);
      ASSERT_TRUE(expected.count(p.op)) << "unexpected op in " << name;
      EXPECT_TRUE(expected.at(p.op).count(p.impl)) << "unexpected impl in " << name;
      if (p.op != "BM_gpu_philox_normal") {
        EXPECT_NE(p.shape.find("N=" + std::to_string(batch.at(mode)) + ","), std::string::npos)
            << name << ": the mode's batch is missing from the shape";
      }
      shapes[p.op][p.shape].insert(p.impl);
    }
    ASSERT_EQ(shapes.size(), expected.size()) << "an op has no benchmark";
    for (const auto& [op, by_shape] : shapes)
      for (const auto& [shape, impls] : by_shape) EXPECT_EQ(impls, expected.at(op)) << op << "/" << shape;
    // 3 variants (dw, 512, 768) per seeded-conv layer, less the 512 variant's last stage (C_in = C_nl = 512: the
    // dw layer, listed once) where the mode has it; one pool shape per layer; one Philox size.
    const size_t variant_layers = 3 * layers.at(mode) - (mode == BenchMode::smoke ? 0 : 1);
    EXPECT_EQ(shapes["BM_gpu_seeded_conv"].size(), variant_layers);
    EXPECT_EQ(shapes["BM_gpu_nl_module"].size(), variant_layers);
    EXPECT_EQ(shapes["BM_gpu_max_pool"].size(), layers.at(mode));
    EXPECT_EQ(shapes["BM_gpu_mixed_avg_pool"].size(), layers.at(mode));
    EXPECT_EQ(shapes["BM_gpu_philox_normal"].size(), 1u);
  }
  // A few exact names (what the gate and the docs refer to).
  const std::vector<std::string> smoke = rf::gpu_benchmark_names(BenchMode::smoke);
  const std::set<std::string> have(smoke.begin(), smoke.end());
  for (const char* name : {"BM_gpu_philox_normal/ours/n=65536", "BM_gpu_philox_normal/curand/n=65536",
                           "BM_gpu_max_pool/cuda/pool2d(N=2,C=64,H=8,W=8,k=3,s=2,p=1)",
                           "BM_gpu_mixed_avg_pool/cuda/mixed_avg_pool(N=2,C=64,H=8,W=8,s=1)",
                           "BM_gpu_seeded_conv/regen/N=2,H=8,seeded_conv(seed=1000,C_in=64,C_out=64,k=3,s=1,p=1,g=64,relu)",
                           "BM_gpu_seeded_conv/materialized/N=2,H=8,seeded_conv(seed=1001,C_in=64,C_out=512,k=3,s=2,p=1,g=64,relu)"})
    EXPECT_TRUE(have.count(name)) << "missing " << name;
  const std::vector<std::string> full = rf::gpu_benchmark_names(BenchMode::full);
  EXPECT_TRUE(std::set<std::string>(full.begin(), full.end())
                  .count("BM_gpu_nl_module/fused/nl_module(N=256,C_in=512,H=4,W=4,C_out=512,s=1,C_nl=768,gpw=4,"
                         "shuffle,seed=2006)"));
}

// Collects the runs of RunSpecifiedBenchmarks.
class Collect : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override { all.insert(all.end(), runs.begin(), runs.end()); }
  std::vector<Run> all;
};

TEST(GpuBenchRegistration, RegistersOnlyWithADevice) {
  // Tiny budget: every benchmark runs a few iterations.
  static char arg0[] = "gpu_test_gpu_bench_registration", arg1[] = "--benchmark_min_time=0.001";
  char* argv[] = {arg0, arg1, nullptr};
  int argc = 2;
  benchmark::Initialize(&argc, argv);

  const std::vector<std::string> registered = rf::register_gpu_benchmarks_listed(BenchMode::smoke);
  Collect runs;
  const size_t ran = benchmark::RunSpecifiedBenchmarks(&runs, "BM_gpu_");
  if (rf::cuda_device_count_or_zero() == 0) {
    EXPECT_TRUE(registered.empty());
    EXPECT_EQ(ran, 0u) << "a GPU benchmark was registered without a device";
    EXPECT_TRUE(runs.all.empty());
    GTEST_SKIP() << "no CUDA device visible: registration checked to be empty, GPU benchmark runs skipped";
  }
  EXPECT_EQ(registered, rf::gpu_benchmark_names(BenchMode::smoke));
  EXPECT_EQ(ran, registered.size());
  std::set<std::string> seen;
  for (const auto& r : runs.all) {
    seen.insert(r.run_name.function_name);
    EXPECT_FALSE(r.error_occurred) << r.run_name.function_name << ": " << r.error_message;
    EXPECT_GT(r.iterations, 0) << r.run_name.function_name;
    EXPECT_GT(r.real_accumulated_time, 0.0) << r.run_name.function_name << ": no manual (event) time";
  }
  EXPECT_EQ(seen, std::set<std::string>(registered.begin(), registered.end()));
}

}  // namespace

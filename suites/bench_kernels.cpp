// bench_kernels: every CPU op, reference against fast path, on the shapes of ResNet-18 / NL-ResNet-18 at 32x32.
// Counters: MAC/s for convs, window reads/s for pools, bytes/s for memory-bound ops, normals/s for Philox.
//   bench_kernels [--smoke] [google benchmark flags]
// Names: BM_<op>/<impl>/<shape>, impl = ref | cpu, so a ratio is two rows of one run.
#include <benchmark/benchmark.h>

#include "suites/bench_main.h"

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "host/core/philox.h"
#include "host/core/tensor.h"
#include "host/ops/batchnorm.h"
#include "host/ops/conv.h"
#include "host/ops/pool.h"
#include "host/ops/seeded_conv.h"

using namespace rf;

namespace {

std::vector<float> rnd(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  seeded_normal_fill(seed, 1.f, n, v.data());
  return v;
}

void BM_conv2d(benchmark::State& state, Conv2dShape s, bool fast) {
  auto x = rnd(int64_t(s.N) * s.C * s.H * s.W, 1), w = rnd(s.weight_numel(), 2), b = rnd(s.K, 3);
  std::vector<float> y(size_t(int64_t(s.N) * s.K * s.OH() * s.OW()));
  for (auto _ : state) {
    if (fast)
      conv2d_forward_cpu(s, x.data(), w.data(), b.data(), y.data());
    else
      conv2d_forward_ref<float>(s, x.data(), w.data(), b.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MACs"] = benchmark::Counter(double(s.macs()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(s.str());
}

void BM_conv2d_backward(benchmark::State& state, Conv2dShape s, bool fast) {
  auto x = rnd(int64_t(s.N) * s.C * s.H * s.W, 1), w = rnd(s.weight_numel(), 2);
  auto dy = rnd(int64_t(s.N) * s.K * s.OH() * s.OW(), 3);
  std::vector<float> dx(x.size()), dw(w.size()), db(size_t(s.K));
  for (auto _ : state) {
    if (fast) {
      conv2d_backward_data_cpu(s, dy.data(), w.data(), dx.data());
      conv2d_backward_weight_cpu(s, x.data(), dy.data(), dw.data(), db.data());
    } else {
      conv2d_backward_data_ref<float>(s, dy.data(), w.data(), dx.data());
      conv2d_backward_weight_ref<float>(s, x.data(), dy.data(), dw.data(), db.data());
    }
    benchmark::ClobberMemory();
  }
  state.counters["MACs"] =
      benchmark::Counter(2.0 * double(s.macs()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(s.str());
}

void BM_seeded_conv(benchmark::State& state, SeededConvSpec spec, int N, int H, bool fast) {
  Conv2dShape s = spec.conv_shape(N, H, H);
  auto x = rnd(int64_t(N) * spec.C_in * H * H, 1);
  std::vector<float> w(size_t(spec.weight_numel())), y(size_t(int64_t(N) * spec.C_out * s.OH() * s.OW()));
  seeded_conv_weights(spec, w.data());
  for (auto _ : state) {
    if (fast)
      seeded_conv_forward_cpu(spec, N, H, H, x.data(), w.data(), y.data());
    else
      seeded_conv_forward_ref<float>(spec, N, H, H, x.data(), w.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MACs"] = benchmark::Counter(double(s.macs()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(spec.str());
}

void BM_max_pool(benchmark::State& state, Pool2dShape s, bool fast) {
  auto x = rnd(int64_t(s.N) * s.C * s.H * s.W, 1);
  std::vector<float> y(static_cast<size_t>(int64_t(s.N) * s.C * s.OH() * s.OW()));
  for (auto _ : state) {
    if (fast)
      max_pool2d_forward_cpu(s, x.data(), y.data());
    else
      max_pool2d_forward_ref<float>(s, x.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["reads"] =
      benchmark::Counter(double(s.window_reads()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(s.str());
}

void BM_mixed_avg_pool(benchmark::State& state, MixedPoolShape s, bool fast) {
  auto x = rnd(int64_t(s.N) * s.C * s.H * s.W, 1);
  std::vector<float> y(static_cast<size_t>(int64_t(s.N) * s.C * s.OH() * s.OW()));
  for (auto _ : state) {
    if (fast)
      mixed_avg_pool_forward_cpu(s, x.data(), y.data());
    else
      mixed_avg_pool_forward_ref<float>(s, x.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["reads"] =
      benchmark::Counter(double(s.window_reads()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(s.str());
}

void BM_batchnorm_train(benchmark::State& state, BatchNormShape s, bool fast) {
  int64_t n = int64_t(s.N) * s.C * s.HW;
  auto x = rnd(n, 1), g = rnd(s.C, 2), b = rnd(s.C, 3);
  std::vector<float> y(static_cast<size_t>(n)), mean(size_t(s.C)), invstd(size_t(s.C)), rm(size_t(s.C), 0.f), rv(size_t(s.C), 1.f);
  for (auto _ : state) {
    if (fast)
      batchnorm_forward_train_cpu(s, x.data(), g.data(), b.data(), y.data(), mean.data(), invstd.data(), rm.data(),
                                  rv.data());
    else
      batchnorm_forward_train_ref<float>(s, x.data(), g.data(), b.data(), y.data(), mean.data(), invstd.data(),
                                         rm.data(), rv.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 8);
  state.SetLabel(s.str());
}

void BM_philox_normal(benchmark::State& state, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    seeded_normal_fill(1234, 1.f, n, out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <typename F, typename S>
void reg(const std::string& op, F fn, S s, bool with_ref) {
  for (bool fast : {false, true}) {
    if (!fast && !with_ref) continue;
    std::string name = "BM_" + op + (fast ? "/cpu/" : "/ref/") + s.str();
    benchmark::RegisterBenchmark(name.c_str(), fn, s, fast)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

Conv2dShape conv(int N, int C, int H, int K, int k, int stride, int pad, int groups) {
  Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = H, s.K = K, s.k = k, s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

void register_all(bool smoke) {
  const int N = smoke ? 2 : 64;
  const int S = smoke ? 8 : 32;
  // ResNet-18's 3x3 conv at stage 1 and 3, a shortcut, and the NL module's pointwise and seeded convs.
  std::vector<Conv2dShape> convs = {conv(N, 64, S, 64, 3, 1, 1, 1), conv(N, 256, S / 4, 256, 3, 1, 1, 1),
                                    conv(N, 128, S / 2, 256, 1, 2, 0, 1), conv(N, 192, S, 64, 1, 1, 0, 4),
                                    conv(N, 1536, S / 8, 512, 1, 1, 0, 4), conv(N, 64, S, 64, 3, 1, 1, 64),
                                    conv(N, 64, S, 512, 3, 1, 1, 64)};
  // The reference of the big dense 3x3 convs takes seconds per call at N=64: timed in smoke mode only.
  auto ref_affordable = [&](const Conv2dShape& s) { return smoke || s.groups > 1 || s.k == 1; };
  for (const Conv2dShape& s : convs) reg("conv2d", BM_conv2d, s, ref_affordable(s));
  for (const Conv2dShape& s : {convs[0], convs[3], convs[5]})
    reg("conv2d_backward", BM_conv2d_backward, s, ref_affordable(s));
  for (int cnl : {0, 512, 768}) {
    SeededConvSpec spec;
    spec.seed = 1;
    spec.C_in = 64;
    spec.C_out = cnl ? cnl : 64;
    spec.groups = std::gcd(spec.C_in, spec.C_out);
    for (bool fast : {false, true}) {
      std::string name = std::string("BM_seeded_conv") + (fast ? "/cpu/" : "/ref/") + spec.str();
      benchmark::RegisterBenchmark(name.c_str(), BM_seeded_conv, spec, N, S, fast)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  for (int stride : {1, 2}) {
    reg("max_pool", BM_max_pool, Pool2dShape{N, 64, S, S, 3, stride, 1}, true);
    reg("mixed_avg_pool", BM_mixed_avg_pool, MixedPoolShape{N, 64, S, S, stride}, true);
  }
  reg("batchnorm_train", BM_batchnorm_train, BatchNormShape{N, 64, S * S}, true);
  benchmark::RegisterBenchmark("BM_philox_normal/cpu", BM_philox_normal, int64_t(smoke ? 4096 : 1 << 22))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) { return rf::run_benchmark_main(argc, argv, register_all); }

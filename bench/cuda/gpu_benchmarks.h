// The GPU half of bench_kernels (Google Benchmark): the seeded 3x3 conv regenerating its weights in shared memory
// against the same kernel on materialised weights and against cuDNN's dense / grouped conv on the same shape; Philox
// normals, ours (bit-exact with the CPU) against cuRAND's host API (curandGenerateNormal, PHILOX4_32_10); the max
// pool and mixed average pool forward; the fused NL module forward against its unfused sequence of launches.
// Host code only (compiled by g++ inside bench/bench_kernels.cpp): it calls the *_cuda launchers, never a kernel.
//
// Timing: CUDA events around each iteration's launch(es) on the default stream, reported through Google
// Benchmark's manual time (UseManualTime + SetIterationTime), after one untimed warm-up call (module load,
// cuRAND's generator set-up, cuDNN's algorithm search). Device buffers are allocated once per benchmark and
// freed when it ends; every CUDA / cuRAND / cuDNN call is checked, and an error ends that benchmark with
// SkipWithError (the gate ignores errored rows) instead of aborting the binary.
// Counters: FLOP/s (2 * MACs, a rate), bytes/s (SetBytesProcessed: what the op must read and write once),
// items/s (SetItemsProcessed: outputs, or normals).
//
// Names pair with the CPU ones for `reframe gate` (BM_<op>/<impl>/<shape>; the gate divides each impl by
// "materialized", "cudnn" or "ref" of the same op and shape):
//   BM_gpu_seeded_conv/{materialized,regen,cudnn}/N=..,H=..,seeded_conv(...)
//   BM_gpu_philox_normal/{ours,curand}/n=<n>
//   BM_gpu_max_pool/cuda/pool2d(...)          BM_gpu_mixed_avg_pool/cuda/mixed_avg_pool(...)
//   BM_gpu_nl_module/{unfused,fused}/nl_module(...)
// Shapes: the distinct seeded-conv layers of NL-ResNet-18 (dw / 512 / 768), batch 256 at 32x32 (full), batch 32 at
// 16x16 (gate), batch 2 at 8x8 with the first two layers only (smoke).
// Without a CUDA device register_gpu_benchmarks registers nothing. Checked by
// tests/gpu/test_gpu_bench_registration.cpp (names everywhere; with a device, a smoke run of every benchmark,
// which also proves the unfused NL module sequence equals the fused module bit for bit).
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <curand.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_ops.h"
#include "cuda/ops/nl_module.h"
#include "cuda/ops/pool.h"
#include "cuda/ops/seeded_conv.h"
#include "cuda/ops/seeded_weights.h"
#include "bench/bench_main.h"

namespace rf {
namespace gpu_bench {

// One benchmark to register: its name and its body (setup, warm-up, timed loop, counters).
struct GpuBenchmark {
  std::string name;
  std::function<void(benchmark::State&)> body;
};

// A device buffer of n floats, freed without throwing.
struct DeviceFloats {
  float* p = nullptr;
  size_t n = 0;
  explicit DeviceFloats(size_t count) : n(count) {
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), (n > 0 ? n : 1) * sizeof(float)));
  }
  ~DeviceFloats() {
    if (p) CUDA_CHECK_NOTHROW(cudaFree(p));
  }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  // Random (never zero-filled) contents from our own Philox stream.
  void fill(uint64_t seed, float std) { seeded_normal_fill_cuda(seed, std, int64_t(n), p); }
};

// A pair of CUDA events timing what runs between them on the default stream.
class EventTimer {
 public:
  EventTimer() {
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    if (start_) CUDA_CHECK_NOTHROW(cudaEventDestroy(start_));
    if (stop_) CUDA_CHECK_NOTHROW(cudaEventDestroy(stop_));
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  template <typename F>
  double milliseconds(F&& launch) {
    CUDA_CHECK(cudaEventRecord(start_, nullptr));
    launch();
    CUDA_CHECK(cudaEventRecord(stop_, nullptr));
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return double(ms);
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// One untimed warm-up call, then one event-timed call per iteration, reported as manual time.
template <typename F>
void time_iterations(benchmark::State& state, F&& launch) {
  launch();
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaDeviceSynchronize());
  EventTimer timer;
  for (auto _ : state) state.SetIterationTime(timer.milliseconds(launch) / 1e3);
}

inline void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration * double(state.iterations()), benchmark::Counter::kIsRate);
}
inline void set_bytes_items(benchmark::State& state, double bytes_per_iteration, double items_per_iteration) {
  state.SetBytesProcessed(int64_t(bytes_per_iteration * double(state.iterations())));
  state.SetItemsProcessed(int64_t(items_per_iteration * double(state.iterations())));
}

// The distinct seeded-conv layers of NL-ResNet-18 (CIFAR): input channels, input size as a divisor of the image
// size (stage s has S >> s), stride. Stage 2..4's first module has stride 2 on the previous stage's width.
struct Layer {
  int C_in, H_shift, stride;
};
inline std::vector<Layer> layers(BenchMode mode) {
  if (mode == BenchMode::smoke) return {{64, 0, 1}, {64, 0, 2}};
  return {{64, 0, 1}, {64, 0, 2}, {128, 1, 1}, {128, 1, 2}, {256, 2, 1}, {256, 2, 2}, {512, 3, 1}};
}
inline int batch(BenchMode mode) { return mode == BenchMode::smoke ? 2 : mode == BenchMode::gate ? 32 : 256; }
inline int image(BenchMode mode) { return mode == BenchMode::smoke ? 8 : mode == BenchMode::gate ? 16 : 32; }
inline int64_t philox_n(BenchMode mode) {
  // full: 2^28 normals = 1 GiB of floats, long enough that launch overhead is noise.
  return mode == BenchMode::smoke ? (int64_t(1) << 16) : mode == BenchMode::gate ? (int64_t(1) << 24)
                                                                                  : (int64_t(1) << 28);
}
constexpr int kVariants[] = {0, 512, 768};  // C_nl; 0 = dw (C_nl = C_in)

inline SeededConvSpec seeded_spec(const Layer& L, int cnl, uint64_t seed) {
  SeededConvSpec spec;
  spec.seed = seed;
  spec.C_in = L.C_in;
  spec.C_out = cnl == 0 ? L.C_in : cnl;
  spec.k = 3, spec.stride = L.stride, spec.pad = 1;
  spec.groups = std::gcd(spec.C_in, spec.C_out);
  spec.relu = true;
  return spec;
}

// ---- seeded conv: impl 0 = materialized, 1 = regen, 2 = cuDNN (same shape and weights, no fused ReLU) ----
inline void bm_seeded_conv(benchmark::State& state, SeededConvSpec spec, int N, int H, int impl) {
  spec.validate();
  const Conv2dShape cs = spec.conv_shape(N, H, H);
  DeviceFloats x(size_t(N) * spec.C_in * H * H), y(size_t(N) * spec.C_out * cs.OH() * cs.OW()),
      w(size_t(spec.weight_numel()));
  x.fill(7, 1.0f);
  seeded_conv_weights_cuda(spec, w.p);
  CUDA_CHECK(cudaDeviceSynchronize());
  double weight_bytes = 0;
  if (impl == 2) {
    CudnnOptions opt;
    opt.search = CudnnAlgoSearch::exhaustive;  // cuDNN's best measured algorithm (searched in the warm-up)
    opt.allow_tf32 = false;                    // FP32 math, as our kernels
    CudnnContext ctx(nullptr, opt);
    time_iterations(state, [&] { cudnn_conv2d_forward(ctx, cs, x.p, w.p, nullptr, y.p); });
    std::string algo = ctx.algorithm_report();
    for (char& ch : algo)
      if (ch == '\n') ch = ' ';
    state.SetLabel("cuDNN fp32, no fused ReLU: " + algo);
    weight_bytes = 4.0 * double(w.n);
  } else {
    const float* w_or_null = impl == 0 ? w.p : nullptr;
    time_iterations(state, [&] { seeded_conv_forward_cuda(spec, N, H, H, x.p, y.p, 0, nullptr, w_or_null); });
    state.SetLabel(impl == 0 ? "weights read from device memory" : "weights regenerated in shared memory");
    if (impl == 0) weight_bytes = 4.0 * double(w.n);
  }
  set_flops(state, 2.0 * double(cs.macs()));
  set_bytes_items(state, 4.0 * double(x.n + y.n) + weight_bytes, double(y.n));
}

// ---- Philox normals: ours (seeded_normal_fill_cuda) or cuRAND's host generator ----
struct CurandGenerator {
  curandGenerator_t g = nullptr;
  explicit CurandGenerator(uint64_t seed) {
    CURAND_CHECK(curandCreateGenerator(&g, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(g, seed));
  }
  ~CurandGenerator() {
    if (g) {
      const curandStatus_t st = curandDestroyGenerator(g);
      if (st != CURAND_STATUS_SUCCESS)
        std::fprintf(stderr, "curandDestroyGenerator failed: %s\n", curand_status_string(st));
    }
  }
  CurandGenerator(const CurandGenerator&) = delete;
  CurandGenerator& operator=(const CurandGenerator&) = delete;
};

inline void bm_philox_normal(benchmark::State& state, int64_t n, bool ours) {
  DeviceFloats out{size_t(n)};
  if (ours) {
    time_iterations(state, [&] { seeded_normal_fill_cuda(1234, 1.0f, n, out.p); });
  } else {
    CurandGenerator gen(1234);  // n is even: curandGenerateNormal's Box-Muller pairs
    time_iterations(state, [&] { CURAND_CHECK(curandGenerateNormal(gen.g, out.p, size_t(n), 0.0f, 1.0f)); });
  }
  set_bytes_items(state, 4.0 * double(n), double(n));
}

// ---- pools ----
inline void bm_max_pool(benchmark::State& state, Pool2dShape s) {
  s.validate();
  DeviceFloats x(size_t(s.N) * s.C * s.H * s.W), y(size_t(s.N) * s.C * s.OH() * s.OW());
  x.fill(7, 1.0f);
  time_iterations(state, [&] { max_pool2d_forward_cuda(s, x.p, y.p); });
  state.counters["reads"] =
      benchmark::Counter(double(s.window_reads()) * double(state.iterations()), benchmark::Counter::kIsRate);
  set_bytes_items(state, 4.0 * double(x.n + y.n), double(y.n));
}

inline void bm_mixed_avg_pool(benchmark::State& state, MixedPoolShape s) {
  s.validate();
  DeviceFloats x(size_t(s.N) * s.C * s.H * s.W), y(size_t(s.N) * s.C * s.OH() * s.OW());
  x.fill(7, 1.0f);
  time_iterations(state, [&] { mixed_avg_pool_forward_cuda(s, x.p, y.p); });
  state.counters["reads"] =
      benchmark::Counter(double(s.window_reads()) * double(state.iterations()), benchmark::Counter::kIsRate);
  set_bytes_items(state, 4.0 * double(x.n + y.n), double(y.n));
}

// ---- NL module forward: fused (nl_module_forward_cuda) or unfused ----
// Unfused = what composing the ops one by one costs: each branch into its own dense buffer (seeded conv with
// weights regenerated, as in the fused module), three copies into the concat buffer, the grouped 1x1 conv without
// the shuffle, then the shuffle as G strided copies. The fused module writes the branches into their slices of
// the concat buffer and the 1x1 conv writes shuffled channels, so it saves the concat and shuffle traffic.
struct NlUnfused {
  NLModuleShape s;
  int64_t plane;
  DeviceFloats a, b, c, z;  // seeded conv (N, C_nl, ..), max pool (N, C_in, ..), mixed pool (N, C_in, ..), 1x1 (N, C_out, ..)
  explicit NlUnfused(const NLModuleShape& shape)
      : s(shape),
        plane(int64_t(shape.OH()) * shape.OW()),
        a(size_t(int64_t(s.N) * s.C_nl * plane)),
        b(size_t(int64_t(s.N) * s.C_in * plane)),
        c(size_t(int64_t(s.N) * s.C_in * plane)),
        z(size_t(int64_t(s.N) * s.C_out * plane)) {}

  // cat (N, C_cat, OH, OW), y (N, C_out, OH, OW); x (N, C_in, H, W).
  void forward(const float* x, const float* w_pw, const float* b_pw, float* cat, float* y) {
    seeded_conv_forward_cuda(s.seeded_spec(), s.N, s.H, s.W, x, a.p, 0, nullptr);
    max_pool2d_forward_cuda(Pool2dShape{s.N, s.C_in, s.H, s.W, 3, s.stride, 1, 0}, x, b.p);
    mixed_avg_pool_forward_cuda(MixedPoolShape{s.N, s.C_in, s.H, s.W, s.stride, 0}, x, c.p);
    // Concat: per branch one 2D copy, a row per sample (branch width -> its slice of a C_cat-wide row).
    const size_t row = size_t(s.C_cat()) * size_t(plane) * sizeof(float);
    const std::pair<const float*, int> parts[3] = {{a.p, s.C_nl}, {b.p, s.C_in}, {c.p, s.C_in}};
    int64_t c0 = 0;
    for (const auto& [src, C] : parts) {
      const size_t width = size_t(C) * size_t(plane) * sizeof(float);
      CUDA_CHECK(cudaMemcpy2DAsync(cat + c0 * plane, row, src, width, width, size_t(s.N), cudaMemcpyDeviceToDevice,
                                   nullptr));
      c0 += C;
    }
    grouped_pointwise_conv_forward_cuda(s.N, s.C_cat(), s.C_out, int(plane), s.gpw, 0, cat, w_pw, b_pw,
                                        s.shuffle ? z.p : y, nullptr);
    if (s.shuffle) shuffle(z.p, y);
  }

  // y channel j*(K/G) + i = z channel i*G + j. For one j, the sources (n, i) sit at a constant pitch of G planes
  // (n*K + i*G + j = (n*K/G + i)*G + j) and the destinations at one plane inside K-plane slices: one 3D copy
  // (width one plane, height K/G rows, depth N samples) per j.
  void shuffle(const float* zp, float* y) const {
    const int G = s.gpw, K = s.C_out, KG = K / G;
    const size_t plane_bytes = size_t(plane) * sizeof(float);
    for (int j = 0; j < G; ++j) {
      cudaMemcpy3DParms p{};
      p.srcPtr = make_cudaPitchedPtr(const_cast<float*>(zp + int64_t(j) * plane), size_t(G) * plane_bytes,
                                     plane_bytes, size_t(KG));
      p.dstPtr = make_cudaPitchedPtr(y + int64_t(j) * KG * plane, plane_bytes, plane_bytes, size_t(K));
      p.extent = make_cudaExtent(plane_bytes, size_t(KG), size_t(s.N));
      p.kind = cudaMemcpyDeviceToDevice;
      CUDA_CHECK(cudaMemcpy3DAsync(&p, nullptr));
    }
  }
};

inline void bm_nl_module(benchmark::State& state, NLModuleShape s, bool fused) {
  s.validate();
  const int64_t plane = int64_t(s.OH()) * s.OW();
  DeviceFloats x(size_t(s.N) * s.C_in * s.H * s.W), w_pw(size_t(s.C_out) * (s.C_cat() / s.gpw)),
      b_pw(size_t(s.C_out)), cat(size_t(int64_t(s.N) * s.C_cat() * plane)), y(size_t(int64_t(s.N) * s.C_out * plane));
  x.fill(7, 1.0f);
  w_pw.fill(8, 0.1f);
  b_pw.fill(9, 0.1f);
  if (fused) {
    time_iterations(state, [&] { nl_module_forward_cuda(s, x.p, w_pw.p, b_pw.p, cat.p, y.p); });
    state.SetLabel("branches into concat slices, 1x1 writes shuffled channels");
  } else {
    NlUnfused u(s);
    {
      // The unfused sequence must compute the fused module's output bit for bit (same kernels, same sums): a
      // wrong copy geometry ends the benchmark here rather than timing garbage.
      DeviceFloats y_ref(y.n);
      nl_module_forward_cuda(s, x.p, w_pw.p, b_pw.p, cat.p, y_ref.p);
      u.forward(x.p, w_pw.p, b_pw.p, cat.p, y.p);
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<float> got(y.n), ref(y.n);
      CUDA_CHECK(cudaMemcpy(got.data(), y.p, y.n * sizeof(float), cudaMemcpyDeviceToHost));
      CUDA_CHECK(cudaMemcpy(ref.data(), y_ref.p, y.n * sizeof(float), cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < got.size(); ++i)
        if (std::memcmp(&got[i], &ref[i], sizeof(float)) != 0)
          throw Error(fmt::format("{}: unfused output differs from nl_module_forward_cuda at element {} ({} vs {})",
                                  s.str(), i, got[i], ref[i]));
    }
    time_iterations(state, [&] { u.forward(x.p, w_pw.p, b_pw.p, cat.p, y.p); });
    state.SetLabel("branches to own buffers + concat copies + 1x1 + shuffle copies");
  }
  const Conv2dShape cs = s.seeded_spec().conv_shape(s.N, s.H, s.W);
  const double pw_macs = double(s.N) * s.C_out * double(plane) * (s.C_cat() / s.gpw);
  set_flops(state, 2.0 * (double(cs.macs()) + pw_macs));
  set_bytes_items(state, 4.0 * double(x.n + y.n + w_pw.n + b_pw.n), double(y.n));
}

// Runs a body; a CUDA / cuRAND / cuDNN / shape error ends this benchmark (not the binary) with its message.
inline void run_guarded(benchmark::State& state, const std::function<void(benchmark::State&)>& body) {
  try {
    body(state);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// Every GPU benchmark of a mode, whether or not a device is present (names and closures only; nothing runs).
inline std::vector<GpuBenchmark> gpu_benchmark_list(BenchMode mode) {
  const int N = batch(mode), S = image(mode);
  const bool cudnn = cudnn_available();
  std::vector<GpuBenchmark> out;
  // The 512 variant's last stage (C_in = C_nl = 512) is the dw variant's layer: listed once.
  std::set<std::string> shapes_seen;
  for (int cnl : kVariants) {
    uint64_t seed = 1000;
    for (const Layer& L : layers(mode)) {
      const SeededConvSpec spec = seeded_spec(L, cnl, seed++);
      const int H = S >> L.H_shift;
      const std::string shape = fmt::format("N={},H={},{}", N, H, spec.str());
      if (!shapes_seen.insert(shape).second) continue;
      static const char* names[] = {"materialized", "regen", "cudnn"};
      for (int impl = 0; impl < 3; ++impl) {
        if (impl == 2 && !cudnn) continue;
        out.push_back({std::string("BM_gpu_seeded_conv/") + names[impl] + "/" + shape,
                       [=](benchmark::State& st) { bm_seeded_conv(st, spec, N, H, impl); }});
      }
    }
  }
  const int64_t n = philox_n(mode);
  for (bool ours : {true, false})
    out.push_back({fmt::format("BM_gpu_philox_normal/{}/n={}", ours ? "ours" : "curand", n),
                   [=](benchmark::State& st) { bm_philox_normal(st, n, ours); }});
  for (const Layer& L : layers(mode)) {
    const int H = S >> L.H_shift;
    const Pool2dShape mp{N, L.C_in, H, H, 3, L.stride, 1, 0};
    out.push_back({"BM_gpu_max_pool/cuda/" + mp.str(), [=](benchmark::State& st) { bm_max_pool(st, mp); }});
  }
  for (const Layer& L : layers(mode)) {
    const int H = S >> L.H_shift;
    const MixedPoolShape mx{N, L.C_in, H, H, L.stride, 0};
    out.push_back(
        {"BM_gpu_mixed_avg_pool/cuda/" + mx.str(), [=](benchmark::State& st) { bm_mixed_avg_pool(st, mx); }});
  }
  for (int cnl : kVariants) {
    uint64_t seed = 2000;
    for (const Layer& L : layers(mode)) {
      const int H = S >> L.H_shift;
      NLModuleShape s;
      s.N = N, s.C_in = L.C_in, s.H = H, s.W = H;
      s.C_out = L.stride == 2 ? 2 * L.C_in : L.C_in;  // a stage's first module doubles the width
      s.stride = L.stride, s.C_nl = cnl == 0 ? L.C_in : cnl, s.gpw = 4, s.shuffle = true, s.seed = seed++;
      if (!shapes_seen.insert(s.str()).second) continue;
      for (bool fused : {false, true})
        out.push_back({std::string("BM_gpu_nl_module/") + (fused ? "fused/" : "unfused/") + s.str(),
                       [=](benchmark::State& st) { bm_nl_module(st, s, fused); }});
    }
  }
  return out;
}

}  // namespace gpu_bench

// The names register_gpu_benchmarks registers for `mode` when a device is present (needs no device).
inline std::vector<std::string> gpu_benchmark_names(BenchMode mode) {
  std::vector<std::string> names;
  for (const gpu_bench::GpuBenchmark& b : gpu_bench::gpu_benchmark_list(mode)) names.push_back(b.name);
  return names;
}

// Registers the GPU benchmarks and returns their names; registers nothing (and returns {}) without a device.
inline std::vector<std::string> register_gpu_benchmarks_listed(BenchMode mode) {
  if (cuda_device_count_or_zero() == 0) return {};
  std::vector<std::string> names;
  for (gpu_bench::GpuBenchmark& b : gpu_bench::gpu_benchmark_list(mode)) {
    auto body = std::move(b.body);
    benchmark::RegisterBenchmark(b.name.c_str(),
                                 [body](benchmark::State& st) { gpu_bench::run_guarded(st, body); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime();
    names.push_back(b.name);
  }
  return names;
}

inline void register_gpu_benchmarks(BenchMode mode) { (void)register_gpu_benchmarks_listed(mode); }

}  // namespace rf

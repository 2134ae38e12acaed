// The GPU benchmarks (see gpu_benchmarks.h): setup, correctness checks, timing and counters.
//
// Timing: after an untimed warm-up launch (module load, cuRAND's generator set-up, cuDNN's plan search), one timed
// launch sizes the measurement: `reps` launches back to back on the stream (1..kMaxReps, about kTargetMs of GPU time)
// bracketed by ONE pair of CUDA events, so neither the host's launch cost nor the events' resolution (~0.5 us) is in
// a per-launch figure, as they were when a pair of events bracketed a single ~20 us launch. Each Google Benchmark
// iteration is one measurement and reports (measurement / reps) as its manual time, so times and rates are per
// launch; the iteration count is fixed (kMeasurements) because --benchmark_min_time counts manual time, which
// would multiply the wall time by reps. Counter launches_per_measurement says how many launches one spans.
// Correctness is checked in the setup, outside the timed region: regenerated vs materialised seeded conv agree,
// cuDNN's conv (ReLU applied on the host) agrees with ours, our Philox normals equal the CPU's bits, the pools equal
// the CPU reference, the unfused NL module sequence equals the fused module bit for bit. A failed check, or any
// CUDA / cuRAND / cuDNN error, ends that benchmark with SkipWithError (the gate ignores errored rows).
// Counters: FLOP/s (2 * MACs), bytes/s (what the op must read and write once), items/s (outputs or normals); the
// seeded conv and NL module also carry count_dw / count_512 / count_768 (how many modules of each NL-ResNet-18
// variant have this layer: scripts/device-summary.py weights the per-layer times into whole-network ratios) and
// tile_c (the channel tile the setup found fastest for that kernel, from 8 / 16 / 32).
#include "bench/cuda/gpu_benchmarks.h"

#include <cuda_runtime.h>
#include <curand.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/ops/nl_module.h"
#include "cuda/ops/pool.h"
#include "cuda/ops/seeded_conv.h"
#include "host/core/philox.h"
#include "host/ops/pool.h"

namespace rf {
namespace gpu_bench {
namespace {

constexpr double kTargetMs = 2.0;  // GPU time one measurement spans
constexpr int kMaxReps = 1000;
constexpr int kMeasurements = 10;  // Google Benchmark iterations per run

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
  std::vector<float> to_host(size_t count = SIZE_MAX) const {
    std::vector<float> h(std::min(count, n));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(h.data(), p, h.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
};

// `reps` launches back to back between one pair of events on the default stream: milliseconds for all of them.
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
  double milliseconds(F&& launch, int reps) {
    CUDA_CHECK(cudaEventRecord(start_, nullptr));
    for (int r = 0; r < reps; ++r) launch();
    CUDA_CHECK(cudaEventRecord(stop_, nullptr));
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return double(ms);
  }
  // Launches per measurement for one launch taking `one_ms`.
  static int reps_for(double one_ms) {
    return int(std::clamp(std::ceil(kTargetMs / std::max(one_ms, 1e-4)), 1.0, double(kMaxReps)));
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// Warm-up, sizing, then one measurement per iteration, reported per launch (see the header comment).
template <typename F>
void time_launches(benchmark::State& state, F&& launch) {
  launch();
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaDeviceSynchronize());
  EventTimer timer;
  const int reps = EventTimer::reps_for(timer.milliseconds(launch, 1));
  for (auto _ : state) state.SetIterationTime(timer.milliseconds(launch, reps) / reps / 1e3);
  CUDA_CHECK(cudaGetLastError());
  state.counters["launches_per_measurement"] = reps;
}

void set_flops(benchmark::State& state, double flops_per_launch) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_launch * double(state.iterations()), benchmark::Counter::kIsRate);
}
void set_bytes_items(benchmark::State& state, double bytes_per_launch, double items_per_launch) {
  state.SetBytesProcessed(int64_t(bytes_per_launch * double(state.iterations())));
  state.SetItemsProcessed(int64_t(items_per_launch * double(state.iterations())));
}

// max |a - b| over max(1, max |b|): the relative disagreement of two outputs.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
    m = std::max(m, std::fabs(double(b[i])));
  }
  return a.size() == b.size() ? d / m : INFINITY;
}

void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref, double tol) {
  const double d = rel_diff(got, ref);
  if (!(d <= tol)) throw Error(fmt::format("{}: relative difference {:.3g} exceeds {:.1g}", what, d, tol));
}

// The distinct seeded-conv layers of NL-ResNet-18 (CIFAR): input channels, input size as a divisor of the image
// size (stage s has S >> s), stride, and how many modules of the network have this layer (2 BasicBlocks per stage,
// 2 convs each; a stage's first conv has stride 2 on the previous stage's width).
struct Layer {
  int C_in, H_shift, stride, count;
};
std::vector<Layer> layers(BenchMode mode) {
  if (mode == BenchMode::smoke) return {{64, 0, 1, 4}, {64, 0, 2, 1}};
  return {{64, 0, 1, 4}, {64, 0, 2, 1}, {128, 1, 1, 3}, {128, 1, 2, 1}, {256, 2, 1, 3}, {256, 2, 2, 1}, {512, 3, 1, 3}};
}
int batch(BenchMode mode) { return mode == BenchMode::smoke ? 2 : mode == BenchMode::gate ? 32 : 256; }
int image(BenchMode mode) { return mode == BenchMode::smoke ? 8 : mode == BenchMode::gate ? 16 : 32; }
int64_t philox_n(BenchMode mode) {
  // full: 2^28 normals = 1 GiB of floats, long enough that launch overhead is noise.
  return mode == BenchMode::smoke ? (int64_t(1) << 16) : mode == BenchMode::gate ? (int64_t(1) << 24)
                                                                                  : (int64_t(1) << 28);
}
constexpr int kVariants[] = {0, 512, 768};  // C_nl; 0 = dw (C_nl = C_in)
const char* variant_name(int cnl) { return cnl == 0 ? "dw" : cnl == 512 ? "512" : "768"; }
using Counts = std::map<std::string, int>;  // variant -> modules with this layer

SeededConvSpec seeded_spec(const Layer& L, int cnl, uint64_t seed) {
  SeededConvSpec spec;
  spec.seed = seed;
  spec.C_in = L.C_in;
  spec.C_out = cnl == 0 ? L.C_in : cnl;
  spec.k = 3, spec.stride = L.stride, spec.pad = 1;
  spec.groups = std::gcd(spec.C_in, spec.C_out);
  spec.relu = true;
  return spec;
}

void set_counts(benchmark::State& state, const Counts& counts) {
  for (int cnl : kVariants) {
    const auto it = counts.find(variant_name(cnl));
    state.counters[std::string("count_") + variant_name(cnl)] = it == counts.end() ? 0 : it->second;
  }
}

// ---- seeded conv: impl 0 = materialized, 1 = regen, 2 = cuDNN (same shape and weights, no fused ReLU) ----
void bm_seeded_conv(benchmark::State& state, SeededConvSpec spec, int N, int H, int impl, const Counts& counts) {
  spec.validate();
  const Conv2dShape cs = spec.conv_shape(N, H, H);
  DeviceFloats x(size_t(N) * spec.C_in * H * H), y(size_t(N) * spec.C_out * cs.OH() * cs.OW()), y_ref(y.n),
      w(size_t(spec.weight_numel()));
  x.fill(7, 1.0f);
  seeded_conv_weights_cuda(spec, w.p);
  seeded_conv_forward_cuda(spec, N, H, H, x.p, y_ref.p, 0, nullptr, w.p);  // the reference: materialised, default
  double weight_bytes = 4.0 * double(w.n);
  if (impl == 2) {
    CudnnOptions opt;
    opt.search = CudnnAlgoSearch::exhaustive;  // cuDNN's best measured plan (searched in the warm-up)
    opt.allow_tf32 = false;                    // FP32 math, as our kernels
    CudnnContext ctx(nullptr, opt);
    cudnn_conv2d_forward(ctx, cs, x.p, w.p, nullptr, y.p);
    std::vector<float> got = y.to_host();
    for (float& v : got) v = std::max(v, 0.0f);  // ours fuses the ReLU
    expect_close("cuDNN vs the seeded conv", got, y_ref.to_host(), 1e-3);
    time_launches(state, [&] { cudnn_conv2d_forward(ctx, cs, x.p, w.p, nullptr, y.p); });
    std::string algo = ctx.algorithm_report();
    std::replace(algo.begin(), algo.end(), '\n', ' ');
    state.SetLabel("cuDNN fp32, no fused ReLU: " + algo);
  } else {
    const float* w_or_null = impl == 0 ? w.p : nullptr;
    // The fastest channel tile for this kernel and shape, as a model would tune it (setup, untimed).
    EventTimer timer;
    int best_tile = 0;
    double best_ms = 0;
    for (int tile : {8, 16, 32}) {
      const SeededConvLaunch launch{256, tile, 0};
      try {
        auto run = [&] { seeded_conv_forward_cuda(spec, N, H, H, x.p, y.p, 0, nullptr, w_or_null, launch); };
        run();
        CUDA_CHECK(cudaDeviceSynchronize());
        const double ms = timer.milliseconds(run, 3);
        if (best_tile == 0 || ms < best_ms) best_tile = tile, best_ms = ms;
      } catch (const Error&) {  // a tile the launcher refuses for this shape
      }
    }
    if (best_tile == 0) throw Error(fmt::format("{}: no channel tile of 8 / 16 / 32 launches", spec.str()));
    const SeededConvLaunch launch{256, best_tile, 0};
    seeded_conv_forward_cuda(spec, N, H, H, x.p, y.p, 0, nullptr, w_or_null, launch);
    expect_close(impl == 0 ? "materialised (best tile) vs materialised (default)" : "regenerated vs materialised",
                 y.to_host(), y_ref.to_host(), 1e-5);
    time_launches(state, [&] { seeded_conv_forward_cuda(spec, N, H, H, x.p, y.p, 0, nullptr, w_or_null, launch); });
    state.SetLabel(impl == 0 ? "weights read from device memory" : "weights regenerated in shared memory");
    state.counters["tile_c"] = best_tile;
    if (impl == 1) weight_bytes = 0;
  }
  set_counts(state, counts);
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

void bm_philox_normal(benchmark::State& state, int64_t n, bool ours) {
  DeviceFloats out{size_t(n)};
  if (ours) {
    seeded_normal_fill_cuda(1234, 1.0f, n, out.p);
    const size_t head = size_t(std::min<int64_t>(n, 1 << 16));
    std::vector<float> cpu(head);
    seeded_normal_fill(1234, 1.0f, int64_t(head), cpu.data());
    if (std::memcmp(cpu.data(), out.to_host(head).data(), head * sizeof(float)) != 0)
      throw Error("seeded_normal_fill_cuda: the first normals differ from the CPU's seeded_normal_fill bits");
    time_launches(state, [&] { seeded_normal_fill_cuda(1234, 1.0f, n, out.p); });
  } else {
    CurandGenerator gen(1234);  // n is even: curandGenerateNormal's Box-Muller pairs
    time_launches(state, [&] { CURAND_CHECK(curandGenerateNormal(gen.g, out.p, size_t(n), 0.0f, 1.0f)); });
  }
  set_bytes_items(state, 4.0 * double(n), double(n));
}

// ---- pools (checked against the CPU reference) ----
void max_pool_gpu(const Pool2dShape& s, const float* x, float* y) { max_pool2d_forward_cuda(s, x, y); }
void max_pool_ref(const Pool2dShape& s, const float* x, float* y) { max_pool2d_forward_ref<float>(s, x, y); }
void mixed_pool_gpu(const MixedPoolShape& s, const float* x, float* y) { mixed_avg_pool_forward_cuda(s, x, y); }
void mixed_pool_ref(const MixedPoolShape& s, const float* x, float* y) { mixed_avg_pool_forward_ref<float>(s, x, y); }

template <typename Shape, typename Gpu, typename Ref>
void bm_pool(benchmark::State& state, Shape s, Gpu&& gpu, Ref&& ref) {
  s.validate();
  DeviceFloats x(size_t(s.N) * s.C * s.H * s.W), y(size_t(s.N) * s.C * s.OH() * s.OW());
  x.fill(7, 1.0f);
  gpu(s, x.p, y.p);
  std::vector<float> want(y.n);
  ref(s, x.to_host().data(), want.data());
  expect_close(s.str(), y.to_host(), want, 1e-5);
  time_launches(state, [&] { gpu(s, x.p, y.p); });
  state.counters["reads"] =
      benchmark::Counter(double(s.window_reads()) * double(state.iterations()), benchmark::Counter::kIsRate);
  set_bytes_items(state, 4.0 * double(x.n + y.n), double(y.n));
}

// ---- NL module forward: fused (nl_module_forward_cuda) or unfused ----
// Unfused = what composing the ops one by one costs: each branch into its own contiguous buffer (seeded conv with
// weights regenerated, as in the fused module), three copies into the concat buffer, the grouped 1x1 conv without
// the shuffle, then the shuffle as G strided copies. The fused module writes the branches into their slices of
// the concat buffer and the 1x1 conv writes shuffled channels, so it saves the concat and shuffle traffic.
struct NlUnfused {
  NLModuleShape s;
  int64_t plane;
  // seeded conv (N, C_nl, ..), max pool (N, C_in, ..), mixed pool (N, C_in, ..), 1x1 (N, C_out, ..)
  DeviceFloats a, b, c, z;
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

void bm_nl_module(benchmark::State& state, NLModuleShape s, bool fused, const Counts& counts) {
  s.validate();
  const int64_t plane = int64_t(s.OH()) * s.OW();
  DeviceFloats x(size_t(s.N) * s.C_in * s.H * s.W), w_pw(size_t(s.C_out) * (s.C_cat() / s.gpw)),
      b_pw(size_t(s.C_out)), cat(size_t(int64_t(s.N) * s.C_cat() * plane)), y(size_t(int64_t(s.N) * s.C_out * plane));
  x.fill(7, 1.0f);
  w_pw.fill(8, 0.1f);
  b_pw.fill(9, 0.1f);
  if (fused) {
    time_launches(state, [&] { nl_module_forward_cuda(s, x.p, w_pw.p, b_pw.p, cat.p, y.p); });
    state.SetLabel("branches into concat slices, 1x1 writes shuffled channels");
  } else {
    NlUnfused u(s);
    // The unfused sequence must compute the fused module's output bit for bit (same kernels, same sums): a wrong
    // copy geometry ends the benchmark here rather than timing garbage.
    DeviceFloats y_ref(y.n);
    nl_module_forward_cuda(s, x.p, w_pw.p, b_pw.p, cat.p, y_ref.p);
    u.forward(x.p, w_pw.p, b_pw.p, cat.p, y.p);
    const std::vector<float> got = y.to_host(), ref = y_ref.to_host();
    if (std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) != 0)
      throw Error(fmt::format("{}: unfused output differs from nl_module_forward_cuda (relative {:.3g})", s.str(),
                              rel_diff(got, ref)));
    time_launches(state, [&] { u.forward(x.p, w_pw.p, b_pw.p, cat.p, y.p); });
    state.SetLabel("branches to own buffers + concat copies + 1x1 + shuffle copies");
  }
  const Conv2dShape cs = s.seeded_spec().conv_shape(s.N, s.H, s.W);
  const double pw_macs = double(s.N) * s.C_out * double(plane) * (s.C_cat() / s.gpw);
  set_counts(state, counts);
  set_flops(state, 2.0 * (double(cs.macs()) + pw_macs));
  set_bytes_items(state, 4.0 * double(x.n + y.n + w_pw.n + b_pw.n), double(y.n));
}

// Every GPU benchmark of a mode, whether or not a device is present (names and closures only; nothing runs).
std::vector<GpuBenchmark> gpu_benchmark_list(BenchMode mode) {
  const int N = batch(mode), S = image(mode);
  const bool cudnn = cudnn_available();
  // The variants' layers by shape; the 512 variant's last stage (C_in = C_nl = 512) is the dw variant's layer:
  // listed once, counted for both.
  struct ConvEntry {
    SeededConvSpec spec;
    int H;
    Counts counts;
  };
  std::vector<std::string> conv_order, nl_order;
  std::map<std::string, ConvEntry> convs;
  std::map<std::string, std::pair<NLModuleShape, Counts>> nls;
  for (int cnl : kVariants) {
    uint64_t seed = 1000, nl_seed = 2000;
    for (const Layer& L : layers(mode)) {
      const SeededConvSpec spec = seeded_spec(L, cnl, seed++);
      const int H = S >> L.H_shift;
      const std::string shape = fmt::format("N={},H={},{}", N, H, spec.str());
      if (!convs.count(shape)) conv_order.push_back(shape), convs[shape] = ConvEntry{spec, H, {}};
      convs[shape].counts[variant_name(cnl)] += L.count;
      NLModuleShape s;
      s.N = N, s.C_in = L.C_in, s.H = H, s.W = H;
      s.C_out = L.stride == 2 ? 2 * L.C_in : L.C_in;  // a stage's first module doubles the width
      s.stride = L.stride, s.C_nl = cnl == 0 ? L.C_in : cnl, s.gpw = 4, s.shuffle = true, s.seed = nl_seed++;
      if (!nls.count(s.str())) nl_order.push_back(s.str()), nls[s.str()] = {s, {}};
      nls[s.str()].second[variant_name(cnl)] += L.count;
    }
  }
  std::vector<GpuBenchmark> out;
  static const char* conv_impls[] = {"materialized", "regen", "cudnn"};
  for (const std::string& shape : conv_order) {
    const ConvEntry e = convs[shape];
    for (int impl = 0; impl < 3; ++impl) {
      if (impl == 2 && !cudnn) continue;
      out.push_back({std::string("BM_gpu_seeded_conv/") + conv_impls[impl] + "/" + shape,
                     [=](benchmark::State& st) { bm_seeded_conv(st, e.spec, N, e.H, impl, e.counts); }});
    }
  }
  const int64_t n = philox_n(mode);
  for (bool ours : {true, false})
    out.push_back({fmt::format("BM_gpu_philox_normal/{}/n={}", ours ? "ours" : "curand", n),
                   [=](benchmark::State& st) { bm_philox_normal(st, n, ours); }});
  for (const Layer& L : layers(mode)) {
    const int H = S >> L.H_shift;
    const Pool2dShape mp{N, L.C_in, H, H, 3, L.stride, 1, 0};
    out.push_back({"BM_gpu_max_pool/cuda/" + mp.str(),
                   [=](benchmark::State& st) { bm_pool(st, mp, max_pool_gpu, max_pool_ref); }});
  }
  for (const Layer& L : layers(mode)) {
    const int H = S >> L.H_shift;
    const MixedPoolShape mx{N, L.C_in, H, H, L.stride, 0};
    out.push_back({"BM_gpu_mixed_avg_pool/cuda/" + mx.str(),
                   [=](benchmark::State& st) { bm_pool(st, mx, mixed_pool_gpu, mixed_pool_ref); }});
  }
  for (const std::string& key : nl_order) {
    const auto& [s, counts] = nls[key];
    for (bool fused : {false, true})
      out.push_back({std::string("BM_gpu_nl_module/") + (fused ? "fused/" : "unfused/") + key,
                     [=, s = s, counts = counts](benchmark::State& st) { bm_nl_module(st, s, fused, counts); }});
  }
  return out;
}

// Runs a body; a CUDA / cuRAND / cuDNN / shape / check error ends this benchmark (not the binary) with its message.
void run_guarded(benchmark::State& state, const std::function<void(benchmark::State&)>& body) {
  try {
    body(state);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace
}  // namespace gpu_bench

std::vector<std::string> gpu_benchmark_names(BenchMode mode) {
  std::vector<std::string> names;
  for (const gpu_bench::GpuBenchmark& b : gpu_bench::gpu_benchmark_list(mode)) names.push_back(b.name);
  return names;
}

std::vector<std::string> register_gpu_benchmarks_listed(BenchMode mode) {
  if (cuda_device_count_or_zero() == 0) return {};
  std::vector<std::string> names;
  for (gpu_bench::GpuBenchmark& b : gpu_bench::gpu_benchmark_list(mode)) {
    auto body = std::move(b.body);
    benchmark::RegisterBenchmark(b.name.c_str(), [body](benchmark::State& st) { gpu_bench::run_guarded(st, body); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->Iterations(gpu_bench::kMeasurements);
    names.push_back(b.name);
  }
  return names;
}

}  // namespace rf

// bench_kernels: every CPU op, reference against fast path, on the shapes of ResNet-18 / NL-ResNet-18 at 32x32.
// Counters: MAC/s for convs, window reads/s for pools, bytes/s for memory-bound ops, normals/s for Philox.
//   bench_kernels [--smoke | --gate] [google benchmark flags]
// On the GPU (bench/cuda/gpu_benchmarks.h: CUDA events around many back-to-back launches, manual time per launch):
// seeded conv regenerated in shared memory vs materialised vs cuDNN, Philox ours vs cuRAND, pools, the fused NL
// module vs its unfused launches.
// Names: BM_<op>/<impl>/<shape>, impl = ref | cpu (| materialized | regen for the seeded conv), so a ratio is
// two rows of one run (reframe gate pairs each impl with its ref).
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#ifdef RF_HAVE_CUDA
#include "bench/cuda/gpu_benchmarks.h"  // the GPU half: registered only when a device is visible
#endif

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "host/core/philox.h"
#include "host/core/tensor.h"
#include "host/ops/batchnorm.h"
#include "host/ops/dense_loss.h"
#include "host/ops/upsample.h"
#include "host/ops/conv.h"
#include "host/ops/pool.h"
#include "host/ops/elementwise.h"
#include "host/ops/linear.h"
#include "host/ops/loss.h"
#include "host/ops/seeded_conv.h"
#include "host/ops/shuffle.h"

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

void BM_seeded_conv(benchmark::State& state, SeededConvSpec spec, int N, int H, int impl) {
  Conv2dShape s = spec.conv_shape(N, H, H);
  auto x = rnd(int64_t(N) * spec.C_in * H * H, 1);
  std::vector<float> w(size_t(spec.weight_numel())), y(size_t(int64_t(N) * spec.C_out * s.OH() * s.OW()));
  seeded_conv_weights(spec, w.data());
  for (auto _ : state) {
    if (impl == 1)
      seeded_conv_forward_cpu(spec, N, H, H, x.data(), w.data(), y.data());
    else if (impl == 2)
      seeded_conv_forward_regen_cpu(spec, N, H, H, x.data(), y.data());
    else
      seeded_conv_forward_ref<float>(spec, N, H, H, x.data(), w.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MACs"] = benchmark::Counter(double(s.macs()) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(spec.str());
}

// The NL modules' seeded convs at their ResNet-18 stage shapes (32x32 input): forward and input gradient
// through the dispatching CPU path, with the fused ReLU (backward masks dy by y > 0).
void BM_seeded_stage(benchmark::State& state, SeededConvSpec spec, int N, int H, bool backward) {
  Conv2dShape s = spec.conv_shape(N, H, H);
  auto x = rnd(int64_t(N) * spec.C_in * H * H, 1), dy = rnd(int64_t(N) * spec.C_out * s.OH() * s.OW(), 3);
  std::vector<float> w(size_t(spec.weight_numel())), y(dy.size()), dx(x.size());
  seeded_conv_weights(spec, w.data());
  seeded_conv_forward_cpu(spec, N, H, H, x.data(), w.data(), y.data());
  for (auto _ : state) {
    if (backward)
      seeded_conv_backward_data_cpu(spec, N, H, H, y.data(), dy.data(), w.data(), dx.data());
    else
      seeded_conv_forward_cpu(spec, N, H, H, x.data(), w.data(), y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MACs"] = benchmark::Counter(double(s.macs()) * double(state.iterations()), benchmark::Counter::kIsRate);
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

void BM_avg_pool(benchmark::State& state, Pool2dShape s, bool fast) {
  auto x = rnd(int64_t(s.N) * s.C * s.H * s.W, 1);
  std::vector<float> y(static_cast<size_t>(int64_t(s.N) * s.C * s.OH() * s.OW()));
  for (auto _ : state) {
    if (fast)
      avg_pool2d_forward_cpu(s, x.data(), y.data());
    else
      avg_pool2d_forward_ref<float>(s, x.data(), y.data());
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

// The memory-bound ops share one shape of benchmark: a closure per implementation over buffers the closures
// own, and a byte count per call (what the op must read and write once) for the bytes/s counter.
struct Buffers {
  std::vector<std::vector<float>> f;
  std::vector<int32_t> labels;
};

void BM_closure(benchmark::State& state, std::shared_ptr<Buffers> keep, std::function<void()> fn, double bytes) {
  (void)keep;
  fn();  // warm-up: first touch of the outputs
  for (auto _ : state) {
    fn();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(double(state.iterations()) * bytes));
}

void reg_pair(const std::string& op, const std::string& shape, std::shared_ptr<Buffers> b, std::function<void()> ref,
              std::function<void()> cpu, double bytes) {
  for (auto& [impl, fn] : {std::pair<const char*, std::function<void()>>{"ref", ref}, {"cpu", cpu}}) {
    std::string name = "BM_" + op + "/" + impl + "/" + shape;
    benchmark::RegisterBenchmark(name.c_str(), BM_closure, b, fn, bytes)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

std::shared_ptr<Buffers> buffers(std::initializer_list<int64_t> sizes) {
  auto b = std::make_shared<Buffers>();
  uint64_t seed = 11;
  for (int64_t n : sizes) b->f.push_back(rnd(n, seed++));
  return b;
}

void register_elementwise(int N, int S) {
  const int C = 64, HW = S * S;
  const int64_t n = int64_t(N) * C * HW;
  const std::string shape = fmt::format("N={},C={},HW={}", N, C, HW);
  {
    auto b = buffers({n, n});
    float *x = b->f[0].data(), *y = b->f[1].data();
    reg_pair("relu", shape, b, [=] { relu_forward_ref<float>(n, x, y); }, [=] { relu_forward_cpu(n, x, y); }, 8.0 * n);
  }
  {
    auto b = buffers({n, n, n});
    float *a = b->f[0].data(), *c = b->f[1].data(), *y = b->f[2].data();
    reg_pair("add_relu", shape, b, [=] { add_forward_ref<float>(n, a, c, y, true); },
             [=] { add_forward_cpu(n, a, c, y, true); }, 12.0 * n);
  }
  {
    auto b = buffers({n, n});
    float *x = b->f[0].data(), *y = b->f[1].data();
    reg_pair("channel_shuffle", shape + ",G=4", b, [=] { channel_shuffle_forward_ref<float>(N, C, HW, 4, x, y); },
             [=] { channel_shuffle_forward_cpu(N, C, HW, 4, x, y); }, 8.0 * n);
  }
  {
    auto b = buffers({n, n, 3 * n});
    const float* xs[3] = {b->f[0].data(), b->f[1].data(), b->f[0].data()};
    float* y = b->f[2].data();
    static const int Cs[3] = {64, 64, 64};
    std::vector<const float*> xv(xs, xs + 3);
    reg_pair("concat", shape + ",parts=3", b, [=] { concat_channels_forward_ref<float>(N, HW, 3, Cs, xv.data(), y); },
             [=] { concat_channels_forward_cpu(N, HW, 3, Cs, xv.data(), y); }, 24.0 * n);
  }
  {
    auto b = buffers({n, C, C, C, n});
    for (float& v : b->f[3]) v = 1.f + v * v;  // a variance
    float *x = b->f[0].data(), *g = b->f[1].data(), *be = b->f[2].data(), *var = b->f[3].data(), *y = b->f[4].data();
    BatchNormShape bs{N, C, HW};
    reg_pair("batchnorm_eval", bs.str(), b, [=] { batchnorm_forward_eval_ref<float>(bs, x, g, be, be, var, y); },
             [=] { batchnorm_forward_eval_cpu(bs, x, g, be, be, var, y); }, 8.0 * n);
  }
  {
    auto b = buffers({n, n, C, C, C, C, n, C, C});
    for (float& v : b->f[5]) v = 1.f + v * v;
    float *x = b->f[0].data(), *dy = b->f[1].data(), *g = b->f[2].data(), *mean = b->f[3].data();
    float *inv = b->f[5].data(), *dx = b->f[6].data(), *dg = b->f[7].data(), *db = b->f[8].data();
    BatchNormShape bs{N, C, HW};
    reg_pair("batchnorm_backward", bs.str(), b, [=] { batchnorm_backward_ref<float>(bs, x, dy, g, mean, inv, dx, dg, db); },
             [=] { batchnorm_backward_cpu(bs, x, dy, g, mean, inv, dx, dg, db); }, 12.0 * n);
  }
  {
    const int C4 = 512, HW4 = std::max(1, HW / 16), K = 10;
    const int64_t n4 = int64_t(N) * C4 * HW4;
    auto b = buffers({n4, int64_t(N) * C4, int64_t(K) * C4, K, int64_t(N) * K, int64_t(N) * K});
    float *x = b->f[0].data(), *p = b->f[1].data(), *w = b->f[2].data(), *bias = b->f[3].data();
    float *logits = b->f[4].data(), *probs = b->f[5].data();
    b->labels.resize(size_t(N));
    for (int i = 0; i < N; ++i) b->labels[size_t(i)] = i % K;
    const int32_t* lab = b->labels.data();
    std::string hs = fmt::format("N={},C={},HW={}", N, C4, HW4);
    reg_pair("global_avg_pool", hs, b, [=] { global_avg_pool_forward_ref<float>(N, C4, HW4, x, p); },
             [=] { global_avg_pool_forward_cpu(N, C4, HW4, x, p); }, 4.0 * double(n4));
    reg_pair("linear", fmt::format("N={},IN={},OUT={}", N, C4, K), b,
             [=] { linear_forward_ref<float>(N, C4, K, p, w, bias, logits); },
             [=] { linear_forward_cpu(N, C4, K, p, w, bias, logits); }, 4.0 * double(K * C4 + N * C4));
    reg_pair("softmax_cross_entropy", fmt::format("N={},C={}", N, K), b,
             [=] { softmax_cross_entropy_forward_ref<float>(N, K, logits, lab, probs); },
             [=] { softmax_cross_entropy_forward_cpu(N, K, logits, lab, probs); }, 8.0 * N * K);
  }
}

// The NL module's two pooling branches (max pool 3x3 pad 1 and the mixed average pool) on the shapes of
// NL-ResNet-18's modules, forward (both into their slices of a concat buffer, as the module runs them) and
// backward (both input gradients added into dx, as the module's backward does). At batch N and 1.
void register_nl_pools(int N, int S) {
  struct Case { int C, H, stride; };
  const Case cases[] = {{64, S, 1}, {64, S, 2}, {128, S / 2, 1}, {128, S / 2, 2}, {256, S / 4, 1}, {256, S / 4, 2},
                        {512, S / 8, 1}};
  for (int n : {N, 1})
    for (const Case& k : cases) {
      const Pool2dShape mp{n, k.C, k.H, k.H, 3, k.stride, 1};
      const int64_t plane = int64_t(mp.OH()) * mp.OW(), lead = int64_t(k.C) * plane, ns = lead + 2 * lead;
      const int64_t nx = int64_t(n) * k.C * k.H * k.H;
      Pool2dShape mps = mp;
      mps.y_nstride = ns;
      const MixedPoolShape mx{n, k.C, k.H, k.H, k.stride, ns};
      auto b = buffers({nx, int64_t(n) * ns, nx, nx});
      float *x = b->f[0].data(), *cat = b->f[1].data(), *dx = b->f[2].data(), *tmp = b->f[3].data();
      float *ymax = cat + lead, *ymix = cat + 2 * lead;
      const std::string shape = fmt::format("N={},C={},H={},W={},s={}", n, k.C, k.H, k.H, k.stride);
      reg_pair("nl_pools", shape, b,
               [=] {
                 max_pool2d_forward_ref<float>(mps, x, ymax);
                 mixed_avg_pool_forward_ref<float>(mx, x, ymix);
               },
               [=] { nl_pools_forward_cpu(mps, mx, x, ymax, ymix); }, 4.0 * double(nx + 2 * n * lead));
      reg_pair("nl_pools_backward", shape, b,
               [=] {
                 max_pool2d_backward_ref<float>(mps, x, ymax, tmp);
                 add_forward_ref<float>(nx, dx, tmp, dx, false);
                 mixed_avg_pool_backward_ref<float>(mx, ymix, tmp);
                 add_forward_ref<float>(nx, dx, tmp, dx, false);
               },
               [=] { nl_pools_backward_cpu(mps, mx, x, ymax, ymix, dx); },
               4.0 * double(3 * nx + 2 * n * lead));
    }
}

Conv2dShape conv(int N, int C, int H, int K, int k, int stride, int pad, int groups) {
  Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = H, s.K = K, s.k = k, s.stride = stride, s.pad = pad, s.groups = groups;
  return s;
}

// The detection/segmentation heads' ops: bilinear upsampling (x2 in the merge, x8 to the input), the
// per-pixel cross-entropy and the centre-point focal loss.
void register_dense_heads(int N, int S) {
  {
    UpsampleShape u{N, 64, S / 2, S / 2, S, S};
    auto b = buffers({u.x_numel(), u.y_numel()});
    float *x = b->f[0].data(), *y = b->f[1].data();
    reg_pair("upsample_bilinear", u.str(), b, [=] { upsample_bilinear_forward_ref<float>(u, x, y); },
             [=] { upsample_bilinear_forward_cpu(u, x, y); }, 4.0 * double(u.x_numel() + u.y_numel()));
    reg_pair("upsample_bilinear_backward", u.str(), b, [=] { upsample_bilinear_backward_ref<float>(u, y, x); },
             [=] { upsample_bilinear_backward_cpu(u, y, x); }, 4.0 * double(u.x_numel() + u.y_numel()));
  }
  {
    const int C = 12, H = 4 * S, W = 4 * S;
    const int64_t n = int64_t(N) * C * H * W;
    auto b = buffers({n, n});
    auto labels = std::make_shared<std::vector<uint8_t>>(size_t(int64_t(N) * H * W));
    for (size_t i = 0; i < labels->size(); ++i) (*labels)[i] = uint8_t(i % 13 == 0 ? 11 : i % 11);
    float *x = b->f[0].data(), *d = b->f[1].data();
    const uint8_t* l = labels->data();
    std::string shape = fmt::format("N={},C={},H={},W={}", N, C, H, W);
    reg_pair("pixel_cross_entropy", shape, b, [=, keep = labels] { pixel_cross_entropy_ref<float>(N, C, H, W, x, l, 11, d); },
             [=, keep = labels] { pixel_cross_entropy_cpu(N, C, H, W, x, l, 11, d); }, 8.0 * double(n));
  }
  {
    const int K = 3, H = S / 2, W = S / 2;
    const int64_t n = int64_t(N) * K * H * W;
    auto b = buffers({n, n, n});
    for (float& t : b->f[1]) t = t > 1.5f ? 1.f : std::min(0.99f, std::fabs(t) * 0.3f);  // some exact peaks
    float *x = b->f[0].data(), *t = b->f[1].data(), *d = b->f[2].data();
    reg_pair("centernet_focal_loss", fmt::format("N={},K={},H={},W={}", N, K, H, W), b,
             [=] { centernet_focal_loss_ref<float>(N, K, H, W, x, t, d); },
             [=] { centernet_focal_loss_cpu(N, K, H, W, x, t, d); }, 12.0 * double(n));
  }
}

void register_all(BenchMode mode) {
  const bool smoke = mode == BenchMode::smoke;
  const int N = smoke ? 2 : mode == BenchMode::gate ? 8 : 64;
  const int S = smoke ? 8 : mode == BenchMode::gate ? 16 : 32;
  // ResNet-18's 3x3 conv at stage 1 and 3, a shortcut, and the NL module's pointwise and seeded convs.
  std::vector<Conv2dShape> convs = {conv(N, 64, S, 64, 3, 1, 1, 1), conv(N, 256, S / 4, 256, 3, 1, 1, 1),
                                    conv(N, 128, S / 2, 256, 1, 2, 0, 1), conv(N, 192, S, 64, 1, 1, 0, 4),
                                    conv(N, 1536, S / 8, 512, 1, 1, 0, 4), conv(N, 64, S, 64, 3, 1, 1, 64),
                                    conv(N, 64, S, 512, 3, 1, 1, 64)};
  // The reference of the big ungrouped 3x3 convs takes seconds per call at N=64: timed in the small modes only.
  auto ref_affordable = [&](const Conv2dShape& s) { return mode != BenchMode::full || s.groups > 1 || s.k == 1; };
  for (const Conv2dShape& s : convs) reg("conv2d", BM_conv2d, s, ref_affordable(s));
  for (const Conv2dShape& s : {convs[0], convs[3], convs[5]})
    reg("conv2d_backward", BM_conv2d_backward, s, ref_affordable(s));
  // Seeded conv: the reference, the direct kernel on materialised weights, and the kernel that regenerates
  // each group's weights from the seed on the fly (the CPU twin of the CUDA shared-memory kernel).
  for (int cnl : {0, 512, 768}) {
    SeededConvSpec spec;
    spec.seed = 1;
    spec.C_in = 64;
    spec.C_out = cnl ? cnl : 64;
    spec.groups = std::gcd(spec.C_in, spec.C_out);
    for (int impl = 0; impl < 3; ++impl) {
      static const char* names[] = {"ref", "materialized", "regen"};
      std::string name = std::string("BM_seeded_conv/") + names[impl] + "/" + spec.str();
      benchmark::RegisterBenchmark(name.c_str(), BM_seeded_conv, spec, N, S, impl)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  if (mode == BenchMode::full) {
    struct Stage { int C, H, stride; };
    const Stage stages[] = {{64, 32, 1}, {64, 32, 2}, {128, 16, 1}, {128, 16, 2}, {256, 8, 1}, {256, 8, 2}, {512, 4, 1}};
    for (int cnl : {0, 512, 768})
      for (const Stage& st : stages)
        for (int n : {1, 64})
          for (bool bwd : {false, true}) {
            SeededConvSpec spec;
            spec.seed = 7, spec.C_in = st.C, spec.C_out = cnl ? cnl : st.C, spec.stride = st.stride;
            spec.groups = std::gcd(spec.C_in, spec.C_out);
            const std::string name = fmt::format("BM_seeded_stage/{}/{}/C={}/H={}/s={}/N={}", bwd ? "bwd" : "fwd",
                                                 cnl ? std::to_string(cnl) : "dw", st.C, st.H, st.stride, n);
            benchmark::RegisterBenchmark(name.c_str(), BM_seeded_stage, spec, n, st.H, bwd)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
          }
  }
  for (int stride : {1, 2}) {
    reg("max_pool", BM_max_pool, Pool2dShape{N, 64, S, S, 3, stride, 1}, true);
    reg("avg_pool", BM_avg_pool, Pool2dShape{N, 64, S, S, 3, stride, 1}, true);
    reg("mixed_avg_pool", BM_mixed_avg_pool, MixedPoolShape{N, 64, S, S, stride}, true);
  }
  register_nl_pools(N, S);
  reg("batchnorm_train", BM_batchnorm_train, BatchNormShape{N, 64, S * S}, true);
  register_elementwise(N, S);
  register_dense_heads(N, S);
  // Philox normals: ours (the CPU's seeded_normal_fill), the same stream the GPU regenerates.
  benchmark::RegisterBenchmark("BM_philox_normal/cpu", BM_philox_normal, int64_t(smoke ? 4096 : 1 << 22))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
#ifdef RF_HAVE_CUDA
  register_gpu_benchmarks(mode);
#endif
}

}  // namespace

int main(int argc, char** argv) { return rf::run_benchmark_main(argc, argv, register_all); }

// bench_models: model-level timing with Google Benchmark. Forward (eval) and a training step (forward +
// loss + backward + SGD) per model and batch size; reports images/s and MAC/s as counters, and the peak tensor
// memory of each (peak_MB: inference with the packed weights, or the training step).
//   bench_models [--smoke | --gate] [google benchmark flags]
// --smoke registers tiny shapes only (the CTest smoke test). Ratios between models come from the JSON
// (scripts/bench_ratio.py), measured in the same process. BM_gpu_forward and BM_gpu_train_step time the same
// models on the GPU (Model::to; the device synchronised after each iteration) with the device's peak tensor memory
// (gpu_peak_MB): with --device cuda (or auto on a GPU) at batch 1, 8, 64 and 256 instead of the CPU benchmarks;
// with --device cpu (the default) at batch 256 besides them where a device is visible (the device check's step).
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda/ops/train_step.h"
#include "cuda/runtime.h"
#include "host/core/device.h"
#include "host/core/philox.h"
#include "host/core/profile.h"
#include "host/models/layers.h"
#include "host/models/model.h"
#include "host/ops/loss.h"

using namespace rf;

namespace {

Tensor bench_input(int N, int S) {
  Tensor x = Tensor::empty(Shape{N, 3, S, S});
  seeded_normal_fill(7, 1.f, x.numel(), x.f32());
  return x;
}

// --profile: the per-op counters of the timed iterations, as "op:<kind>" counters in ms per iteration.
void report_profile(benchmark::State& state) {
  if (!profile::enabled()) return;
  for (const profile::Row& r : profile::snapshot())
    state.counters["op:" + r.kind] = r.seconds * 1e3 / double(std::max<int64_t>(1, state.iterations()));
}

void BM_forward(benchmark::State& state, std::string config, int N, int S) {
  Model m(ModelConfig::parse(config));
  Tensor x = bench_input(N, S);
  FrozenWeights frozen;  // inference, as the device side runs it (and ONNX Runtime's sessions)
  m.forward(x, false);  // warm-up: oneDNN primitive creation, allocator cache, the packed weights
  host_reset_peak();
  profile::reset();
  for (auto _ : state) {
    Tensor y = m.forward(x, false);
    benchmark::DoNotOptimize(y.f32());
  }
  ModelTotals t = m.totals(x.shape());
  state.SetItemsProcessed(state.iterations() * N);
  state.counters["MACs"] = benchmark::Counter(double(t.macs) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["batch"] = N;
  // The inference high-water mark of host tensors (weights, the session's packed weight copies, input,
  // activations, scratch), as the suites' inference_tensors figure; not RSS.
  state.counters["peak_MB"] = double(host_memory_stats().peak_live_bytes) / 1e6;
  report_profile(state);
  state.SetLabel(m.config().name());
}

void BM_train_step(benchmark::State& state, std::string config, int N, int S) {
  Model m(ModelConfig::parse(config));
  const int C = m.config().classes;
  Tensor x = bench_input(N, S);
  std::vector<int32_t> labels(static_cast<size_t>(N));
  for (int i = 0; i < N; ++i) labels[size_t(i)] = i % C;
  SGD opt(m.params(), 0.9f, 5e-4f);
  Tensor probs = Tensor::empty(Shape{N, C}), dlogits = Tensor::empty(Shape{N, C});
  auto step = [&]() {
    Tensor logits = m.forward(x, true);
    {
      RF_PROFILE("loss");
      softmax_cross_entropy_forward_cpu(N, C, logits.f32(), labels.data(), probs.f32());
      softmax_cross_entropy_backward_cpu(N, C, probs.f32(), labels.data(), dlogits.f32());
    }
    m.backward(dlogits);
    RF_PROFILE("SGD step");
    opt.step(0.01f, 5.f);
  };
  step();  // warm-up
  host_reset_peak();
  profile::reset();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * N);
  state.counters["batch"] = N;
  // Tracked-allocation high-water mark (host tensors: parameters, gradients, SGD state, activations, scratch)
  // over the timed steps, as the suites' train_tensors figure; not RSS (the allocator's cache is excluded).
  state.counters["peak_MB"] = double(host_memory_stats().peak_live_bytes) / 1e6;
  report_profile(state);
  state.SetLabel(m.config().name());
}

// The GPU twins: the model moved to the device, the batch uploaded once, the loss and SGD on the device.
void BM_gpu_forward(benchmark::State& state, std::string config, int N, int S) {
  Model m(ModelConfig::parse(config));
  m.to(Device::cuda);
  const Tensor x = bench_input(N, S).to(Device::cuda);
  m.forward(x, false);  // warm-up: cuDNN plans, the device allocator's cache
  gpu_synchronize();
  gpu_reset_peak();
  for (auto _ : state) {
    Tensor y = m.forward(x, false);
    gpu_synchronize();
  }
  state.SetItemsProcessed(state.iterations() * N);
  state.counters["batch"] = N;
  state.counters["gpu_peak_MB"] = double(gpu_memory_stats().peak_bytes) / 1e6;
  state.SetLabel(m.config().name());
}

void BM_gpu_train_step(benchmark::State& state, std::string config, int N, int S) {
  Model m(ModelConfig::parse(config));
  m.to(Device::cuda);
  const int C = m.config().classes;
  const Tensor x = bench_input(N, S).to(Device::cuda);
  std::vector<int32_t> labels(static_cast<size_t>(N));
  for (int i = 0; i < N; ++i) labels[size_t(i)] = i % C;
  const Tensor y = Tensor::borrow(labels.data(), Shape{N}, DType::i32).to(Device::cuda);
  SGD opt(m.params(), 0.9f, 5e-4f);
  Tensor probs = Tensor::empty(Shape{N, C}, DType::f32, Device::cuda);
  Tensor dlogits = Tensor::empty(Shape{N, C}, DType::f32, Device::cuda);
  auto step = [&]() {
    Tensor logits = m.forward(x, true);
    softmax_cross_entropy_forward_cuda(N, C, logits.f32(), y.data<int32_t>(), probs.f32());
    softmax_cross_entropy_backward_cuda(N, C, probs.f32(), y.data<int32_t>(), dlogits.f32());
    m.backward(dlogits);
    opt.step(0.01f, 5.f);
    gpu_synchronize();
  };
  step();  // warm-up
  gpu_reset_peak();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * N);
  state.counters["batch"] = N;
  state.counters["gpu_peak_MB"] = double(gpu_memory_stats().peak_bytes) / 1e6;
  state.SetLabel(m.config().name());
}

const char* kModels[] = {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512", "nl-resnet18:cnl=768"};

void register_all(BenchMode mode) {
  for (const char* cfg : kModels) {
    std::string name = ModelConfig::parse(cfg).name();
    auto add = [&](const char* what, auto fn, int N, int S) {
      std::string full = std::string(what) + "/" + name + "/N=" + std::to_string(N) + "/" + std::to_string(S) + "x" +
                         std::to_string(S);
      benchmark::RegisterBenchmark(full.c_str(), fn, cfg, N, S)->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    if (run_device() == Device::cuda) {  // --device cuda: the models on the GPU only
      for (int N : mode == BenchMode::full ? std::vector<int>{1, 8, 64, 256} : std::vector<int>{2})
        add("BM_gpu_forward", BM_gpu_forward, N, 32);
      for (int N : mode == BenchMode::full ? std::vector<int>{1, 8, 64, 256} : std::vector<int>{2})
        add("BM_gpu_train_step", BM_gpu_train_step, N, 32);
      continue;
    }
    switch (mode) {
      case BenchMode::smoke:
        add("BM_forward", BM_forward, 2, 16);
        add("BM_train_step", BM_train_step, 2, 16);
        break;
      case BenchMode::gate:  // the CI gate's ratios: each model over ResNet-18 at one batch
        add("BM_forward", BM_forward, 8, 32);
        add("BM_train_step", BM_train_step, 4, 32);
        break;
      case BenchMode::full:
        for (int N : {1, 8, 64, 256}) add("BM_forward", BM_forward, N, 32);
        for (int N : {1, 8, 64, 256}) add("BM_train_step", BM_train_step, N, 32);
        break;
    }
    if (mode == BenchMode::full && cuda_info().count > 0) {
      add("BM_gpu_forward", BM_gpu_forward, 256, 32);
      add("BM_gpu_train_step", BM_gpu_train_step, 256, 32);
    }
  }
}

}  // namespace

int main(int argc, char** argv) { return rf::run_benchmark_main(argc, argv, register_all); }

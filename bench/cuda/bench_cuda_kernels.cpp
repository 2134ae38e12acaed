// GPU kernel benchmark: the seeded 3x3 conv regenerating its weights in shared memory against the same kernel
// reading materialised weights (issue 4's >= 0.9x target), for every distinct seeded-conv layer of NL-ResNet-18
// dw / 512 / 768 at batch 256 (CIFAR 32x32), over the kernel's channel-tile choices; the NL module forward per
// layer; and Philox normal generation (ours, bit-exact with the CPU) against cuRAND's host API
// (curandGenerateNormal, PHILOX4_32_10) on the same GPU.
// Timing: CUDA events around each launch, warm-up first, median (and min / max) of --reps repetitions; regen and
// materialised launches interleaved so clock drift hits both. JSON (schema "reframe-bench/cuda-kernels/1") to
// --out, a short table to stdout. Exits 77 (CTest's skip code here) without a device. --smoke: tiny sizes, 2 reps.
#include <cuda_runtime.h>
#include <curand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_ops.h"
#include "cuda/ops/nl_module.h"
#include "cuda/ops/seeded_conv.h"
#include "cuda/ops/seeded_weights.h"

namespace {

struct Options {
  bool smoke = false;
  int batch = 256, reps = 25, warmup = 3;
  std::string out = "bench_cuda_kernels.json", git_rev = "unknown";
};

struct Stats {
  double median = 0, min = 0, max = 0;
  std::vector<double> all;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  s.all = v;
  std::sort(v.begin(), v.end());
  s.min = v.front(), s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

template <typename T>
struct Dev {
  T* p = nullptr;
  explicit Dev(size_t n) { CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(T))); }
  ~Dev() { CUDA_CHECK_NOTHROW(cudaFree(p)); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
};

// Times each of the launchers once per repetition (interleaved), after `warmup` untimed rounds: ms per launch.
std::vector<Stats> time_interleaved(const std::vector<std::function<void()>>& fns, int warmup, int reps) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int w = 0; w < warmup; ++w)
    for (auto& f : fns) f();
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<std::vector<double>> ms(fns.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < fns.size(); ++i) {
      CUDA_CHECK(cudaEventRecord(a));
      fns[i]();
      CUDA_CHECK(cudaEventRecord(b));
      CUDA_CHECK(cudaEventSynchronize(b));
      float t = 0;
      CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
      ms[i].push_back(double(t));
    }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  std::vector<Stats> out;
  for (auto& v : ms) out.push_back(stats_of(v));
  return out;
}

nlohmann::json stats_json(const Stats& s) {
  return {{"median_ms", s.median}, {"min_ms", s.min}, {"max_ms", s.max}, {"all_ms", s.all}};
}

// The distinct seeded-conv layers of NL-ResNet-18 (CIFAR): (C_in, H, stride, how many modules have it).
struct Layer {
  int C_in, H, stride, count;
};
const Layer kLayers[] = {{64, 32, 1, 4}, {64, 32, 2, 1}, {128, 16, 1, 3}, {128, 16, 2, 1},
                         {256, 8, 1, 3}, {256, 8, 2, 1}, {512, 4, 1, 3}};

int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }

int run(const Options& o) {
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  nlohmann::json doc;
  doc["schema"] = "reframe-bench/cuda-kernels/1";
  doc["device"] = prop.name;
  doc["sm"] = fmt::format("{}.{}", prop.major, prop.minor);
  doc["multiprocessors"] = prop.multiProcessorCount;
  doc["cudnn_runtime_version"] = rf::cudnn_runtime_version();
  doc["git_rev"] = o.git_rev;
  doc["batch"] = o.batch;
  doc["reps"] = o.reps;
  doc["warmup"] = o.warmup;
  doc["smoke"] = o.smoke;
  std::printf("device %s (sm %d.%d, %d SMs), batch %d, %d reps (median)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, o.batch, o.reps);

  // ---- seeded conv: regenerated vs materialised weights ----
  std::printf("\n%-5s %-16s %6s %5s | %-7s %10s %10s %7s %12s\n", "var", "layer (C_in,H,s)", "C_nl", "g", "tile_c",
              "regen ms", "mater. ms", "ratio", "1-tile ms");
  nlohmann::json conv_rows = nlohmann::json::array(), summary = nlohmann::json::array();
  for (int cnl : {0, 512, 768}) {
    const std::string var = cnl == 0 ? "dw" : std::to_string(cnl);
    double net_regen = 0, net_mat = 0;
    for (const Layer& L : kLayers) {
      const int H = o.smoke ? std::min(L.H, 8) : L.H;
      const int C_in = o.smoke ? std::min(L.C_in, 64) : L.C_in;
      const int C_nl = cnl == 0 ? C_in : (o.smoke ? std::min(cnl, 96) : cnl);
      rf::SeededConvSpec spec;
      spec.seed = 1000, spec.C_in = C_in, spec.C_out = C_nl, spec.k = 3, spec.stride = L.stride, spec.pad = 1;
      spec.groups = gcd(C_in, C_nl), spec.relu = true;
      const rf::Conv2dShape cs = spec.conv_shape(o.batch, H, H);
      Dev<float> x(size_t(o.batch) * C_in * H * H), y(size_t(o.batch) * C_nl * cs.OH() * cs.OW()),
          w(size_t(spec.weight_numel()));
      rf::seeded_normal_fill_cuda(7, 1.0f, int64_t(o.batch) * C_in * H * H, x.p);
      rf::seeded_conv_weights_cuda(spec, w.p);
      double best_regen = 1e30, best_mat = 1e30;
      for (int tile : {8, 16, 32}) {
        const rf::SeededConvLaunch launch{256, tile, 0};
        // Third: regenerating, one position tile per block (grid_x clamped to the tile count): what the block
        // loop over position tiles saves.
        const rf::SeededConvLaunch one_tile{256, tile, 1 << 30};
        const auto st = time_interleaved(
            {[&] { rf::seeded_conv_forward_cuda(spec, o.batch, H, H, x.p, y.p, 0, nullptr, nullptr, launch); },
             [&] { rf::seeded_conv_forward_cuda(spec, o.batch, H, H, x.p, y.p, 0, nullptr, w.p, launch); },
             [&] { rf::seeded_conv_forward_cuda(spec, o.batch, H, H, x.p, y.p, 0, nullptr, nullptr, one_tile); }},
            o.warmup, o.reps);
        best_regen = std::min(best_regen, st[0].median);
        best_mat = std::min(best_mat, st[1].median);
        const std::string layer = fmt::format("({},{},{})", C_in, H, L.stride);
        std::printf("%-5s %-16s %6d %5d | %-7d %10.4f %10.4f %7.3f %12.4f\n", var.c_str(), layer.c_str(), C_nl,
                    spec.groups, tile, st[0].median, st[1].median, st[1].median / st[0].median, st[2].median);
        conv_rows.push_back({{"variant", var}, {"C_in", C_in}, {"H", H}, {"stride", L.stride}, {"C_nl", C_nl},
                             {"groups", spec.groups}, {"count_in_net", L.count}, {"tile_c", tile}, {"threads", 256},
                             {"macs", cs.macs()}, {"regen", stats_json(st[0])}, {"materialised", stats_json(st[1])},
                             {"regen_one_tile_per_block", stats_json(st[2])},
                             {"throughput_ratio_regen_over_materialised", st[1].median / st[0].median}});
      }
      net_regen += L.count * best_regen;
      net_mat += L.count * best_mat;
    }
    summary.push_back({{"variant", var}, {"net_regen_ms", net_regen}, {"net_materialised_ms", net_mat},
                       {"throughput_ratio", net_mat / net_regen}});
  }
  doc["seeded_conv_forward"] = conv_rows;
  doc["seeded_conv_network_summary"] = summary;

  // ---- NL module forward (regenerating), dw variant, per layer ----
  nlohmann::json nl_rows = nlohmann::json::array();
  std::printf("\nNL module forward (dw, regenerated weights)\n%-16s %10s\n", "layer", "ms");
  for (const Layer& L : kLayers) {
    const int H = o.smoke ? std::min(L.H, 8) : L.H, C_in = o.smoke ? std::min(L.C_in, 64) : L.C_in;
    rf::NLModuleShape s{o.batch, C_in, H, H, L.stride == 2 ? 2 * C_in : C_in, L.stride, C_in, 4, true, 1000};
    Dev<float> x(size_t(s.N) * C_in * H * H), wpw(size_t(s.C_out) * (s.C_cat() / 4)), bpw(size_t(s.C_out)),
        cat(size_t(s.N) * s.C_cat() * s.OH() * s.OW()), y(size_t(s.N) * s.C_out * s.OH() * s.OW());
    rf::seeded_normal_fill_cuda(7, 1.0f, int64_t(s.N) * C_in * H * H, x.p);
    rf::seeded_normal_fill_cuda(8, 0.1f, int64_t(s.C_out) * (s.C_cat() / 4), wpw.p);
    rf::seeded_normal_fill_cuda(9, 0.1f, s.C_out, bpw.p);
    const auto st = time_interleaved({[&] { rf::nl_module_forward_cuda(s, x.p, wpw.p, bpw.p, cat.p, y.p); }},
                                     o.warmup, o.reps);
    std::printf("%-16s %10.4f\n", s.str().c_str(), st[0].median);
    nl_rows.push_back({{"module", s.str()}, {"count_in_net", L.count}, {"forward", stats_json(st[0])}});
  }
  doc["nl_module_forward_dw"] = nl_rows;

  // ---- Philox normals: ours (bit-exact with the CPU) vs cuRAND's host API ----
  {
    const int64_t n = o.smoke ? (int64_t(1) << 20) : (int64_t(1) << 28);  // 1 GiB of floats
    Dev<float> buf{size_t(n)};
    curandGenerator_t gen;
    CURAND_CHECK(curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(gen, 1234));
    const auto st = time_interleaved({[&] { rf::seeded_normal_fill_cuda(1234, 1.0f, n, buf.p); },
                                      [&] { CURAND_CHECK(curandGenerateNormal(gen, buf.p, size_t(n), 0.0f, 1.0f)); }},
                                     o.warmup, o.reps);
    CURAND_CHECK(curandDestroyGenerator(gen));
    const double ours = double(n) / (st[0].median * 1e-3) / 1e9, theirs = double(n) / (st[1].median * 1e-3) / 1e9;
    std::printf("\nPhilox normals, n=%lld: ours %.1f G/s (%.4f ms), curandGenerateNormal %.1f G/s (%.4f ms), "
                "ratio %.3f\n",
                static_cast<long long>(n), ours, st[0].median, theirs, st[1].median, ours / theirs);
    doc["philox_normals"] = {{"n", n}, {"ours", stats_json(st[0])}, {"curand_generate_normal", stats_json(st[1])},
                             {"ours_gnormals_per_s", ours}, {"curand_gnormals_per_s", theirs},
                             {"throughput_ratio_ours_over_curand", ours / theirs}};
  }

  std::printf("\nseeded conv, whole network (best tile per layer, weighted by module count):\n");
  for (const auto& s : summary)
    std::printf("  %-4s regen %.4f ms, materialised %.4f ms, throughput ratio %.3f (target >= 0.9)\n",
                s["variant"].get<std::string>().c_str(), s["net_regen_ms"].get<double>(),
                s["net_materialised_ms"].get<double>(), s["throughput_ratio"].get<double>());
  std::ofstream(o.out) << doc.dump(1) << "\n";
  std::printf("wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_cuda_kernels: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--smoke") o.smoke = true, o.batch = 4, o.reps = 2, o.warmup = 1;
    else if (a == "--out") o.out = value("--out");
    else if (a == "--batch") o.batch = std::stoi(value("--batch"));
    else if (a == "--reps") o.reps = std::stoi(value("--reps"));
    else if (a == "--git-rev") o.git_rev = value("--git-rev");
    else {
      std::fprintf(stderr, "usage: bench_cuda_kernels [--smoke] [--out FILE] [--batch N] [--reps R] [--git-rev REV]\n");
      return 2;
    }
  }
  if (rf::cuda_device_count_or_zero() == 0) {
    std::printf("bench_cuda_kernels: no CUDA device visible: skipped\n");
    return 77;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_kernels: %s\n", e.what());
    return 1;
  }
}

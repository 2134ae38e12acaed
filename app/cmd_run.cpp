// `reframe run`: the device side of a package: read and verify it (a delta rebuilt on --base), regenerate the
// seeded weights, run inference on synthetic or given input and time it; optionally the logit difference to a
// reference package. Covered by tests/package/cli_package.sh and tests/app/cli_options.sh.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "host/core/device.h"
#include "app/options.h"
#include "app/package_print.h"
#include "host/core/parallel.h"
#include "host/core/philox.h"
#include "host/core/printable.h"
#include "host/models/layers.h"
#include "host/package/model_package.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct RunOptions {
  std::string path, base, input, reference, output;
  int batch = 1, reps = 20, warmup = 2, size = 0;  // size 0: 32 for the cifar stem, 224 for the large one
  uint64_t seed = 7;
  bool json = false;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

int cmd_run(const RunOptions& o) {
  RF_CHECK(o.batch >= 1 && o.reps >= 1 && o.warmup >= 0, "run: --batch and --reps must be >= 1, --warmup >= 0");
  if (!o.output.empty()) check_output_file(o.output, "--output");
  const auto t_read = Clock::now();
  uint64_t sent = 0;
  Package p = read_full(o.path, o.base, &sent);
  const double read_ms = ms_since(t_read);
  double regen_s = 0;
  const auto t_load = Clock::now();
  std::unique_ptr<Model> m = load_model(p, o.path, &regen_s);
  const double load_ms = ms_since(t_load);
  const ModelConfig& cfg = m->config();
  // The regeneration inside load_model is one cold call (first touch, cold caches); report the warm median too.
  std::vector<double> regen_warm;
  if (!p.has(kPkgMaterialized)) {
    m->regenerate_seeded();
    for (int i = 0; i < 7; ++i) {
      const auto t0 = Clock::now();
      m->regenerate_seeded();
      regen_warm.push_back(ms_since(t0));
    }
    std::sort(regen_warm.begin(), regen_warm.end());
  }
  const double regen_median_ms = regen_warm.empty() ? 0.0 : regen_warm[regen_warm.size() / 2];
  m->to(run_device());  // --device: the timed forwards run there (inputs up, logits back: part of each timing)
  FrozenWeights frozen;  // inference from here on: the convs keep their weights in the fast path's layout
  auto forward = [&](const Tensor& in) { return m->forward(in.to(m->device()), false).to(Device::cpu); };
  const int S = o.size > 0 ? o.size : (cfg.stem == "large" ? 224 : 32);
  const int64_t per_image = int64_t(3) * S * S;

  // --input is streamed in batches of --batch images, so a large file never becomes one giant tensor: the first
  // batch is timed, and top-1 (and the reference's logit difference) cover every image, batch by batch.
  std::ifstream in;
  int64_t n_images = o.batch;
  const uint64_t image_bytes = uint64_t(per_image) * 4;
  auto read_batch = [&](int64_t first, int64_t n) {
    Tensor t = Tensor::empty(Shape{n, 3, S, S});
    in.read(reinterpret_cast<char*>(t.f32()), std::streamsize(uint64_t(n) * image_bytes));
    RF_CHECK(in.gcount() == std::streamsize(uint64_t(n) * image_bytes), "{}: read failed at image {} (file changed?)",
             o.input, first);
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t.f32()[i]))
        RF_FAIL("{}: value {} (image {}) is {}, expected finite floats", o.input, first * per_image + i,
                first + i / per_image, t.f32()[i]);
    return t;
  };
  Tensor x;
  std::string input_desc;
  if (!o.input.empty()) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(o.input, ec);
    RF_CHECK(!ec, "{}: cannot read the input file: {}", o.input, ec.message());
    if (size == 0 || size % image_bytes != 0)
      RF_FAIL("{}: {} bytes, expected a non-zero multiple of {} (raw float32 NCHW images of 3x{}x{}; set --size)",
              o.input, size, image_bytes, S, S);
    n_images = int64_t(size / image_bytes);
    in.open(o.input, std::ios::binary);
    RF_CHECK(in.good(), "{}: cannot open the input file", o.input);
    x = read_batch(0, std::min<int64_t>(o.batch, n_images));
    input_desc = fmt::format("{} ({} images, streamed in batches of {})", o.input, n_images, x.size(0));
  } else {
    x = Tensor::empty(Shape{o.batch, 3, S, S});
    seeded_normal_fill(o.seed, 1.f, x.numel(), x.f32());
    input_desc = fmt::format("synthetic N(0,1), seed {}", o.seed);
  }

  for (int i = 0; i < o.warmup; ++i) forward(x);
  host_reset_peak();
  std::vector<double> times;
  Tensor logits;
  for (int i = 0; i < o.reps; ++i) {
    const auto t0 = Clock::now();
    logits = forward(x);
    times.push_back(ms_since(t0));
  }
  std::sort(times.begin(), times.end());
  const double median = times.size() % 2 ? times[times.size() / 2]
                                          : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
  const HostMemoryStats mem = host_memory_stats();
  const int64_t N = x.size(0);
  std::unique_ptr<Model> r;
  if (!o.reference.empty()) {
    Package rp = read_package(o.reference);
    r = load_model(rp, o.reference);
    RF_CHECK(r->out_shape(x.shape()) == logits.shape(), "{}: reference gives logits {}, the package {}", o.reference,
             r->out_shape(x.shape()).str(), logits.shape().str());
  }
  std::vector<int64_t> top1;
  top1.reserve(size_t(n_images));
  std::vector<uint8_t> outputs;  // --output: every image's raw network output, in input order
  double max_diff = -1, mean_diff = -1, diff_sum = 0, diff_count = 0;
  for (int64_t first = 0; first < n_images;) {
    Tensor xb = first == 0 ? x : read_batch(first, std::min<int64_t>(o.batch, n_images - first));
    Tensor lb = first == 0 ? logits : forward(xb);
    const int64_t nb = xb.size(0), K = lb.size(1);
    if (!o.output.empty()) {
      const auto* b = reinterpret_cast<const uint8_t*>(lb.f32());
      outputs.insert(outputs.end(), b, b + lb.numel() * int64_t(sizeof(float)));
    }
    for (int64_t n = 0; n < nb; ++n) {
      const float* l = lb.f32() + n * K;
      top1.push_back(std::max_element(l, l + K) - l);
    }
    if (r) {
      Tensor rl = r->forward(xb, false);
      max_diff = std::max(max_diff, 0.0);
      for (int64_t i = 0; i < rl.numel(); ++i) {
        const double d = std::fabs(double(rl.f32()[i]) - double(lb.f32()[i]));
        max_diff = std::max(max_diff, d);
        diff_sum += d;
      }
      diff_count += double(rl.numel());
    }
    first += nb;
  }
  if (r) mean_diff = diff_sum / diff_count;
  if (!o.output.empty()) write_file_atomic(o.output, outputs);
  const double rss = max_rss_mib();
  if (o.json) {
    nlohmann::json j = {{"schema", "reframe.run/1"},
                        {"file", o.path},
                        {"base", o.base},
                        {"config", p.config},
                        {"model", cfg.name()},
                        {"package_bytes", sent},
                        {"rebuilt_package_bytes", o.base.empty() ? 0 : p.file_bytes},
                        {"input", input_desc},
                        {"batch", N},
                        {"images", n_images},
                        {"threads", num_threads()},
                        {"device", device_name(m->device())},
                        {"read_verify_ms", read_ms},
                        {"load_ms", load_ms},
                        {"regenerate_ms", regen_s * 1e3},  // the single cold call inside the load
                        {"regenerate_ms_cold", regen_s * 1e3},
                        {"regenerate_ms_median_warm", regen_median_ms},
                        {"regenerate_warm_reps", regen_warm.size()},
                        {"latency_ms_median", median},
                        {"latency_ms_min", times.front()},
                        {"reps", o.reps},
                        {"images_per_s", double(N) / (median * 1e-3)},
                        {"max_rss_mib", rss},
                        {"host_tensor_peak_mib", double(mem.peak_live_bytes) / (1 << 20)},
                        {"top1", top1}};
    if (max_diff >= 0) {
      j["reference"] = o.reference;
      j["logit_max_abs_diff"] = max_diff;
      j["logit_mean_abs_diff"] = mean_diff;
    }
    fmt::print("{}\n", json_text(j));  // invalid UTF-8 in a package's strings repaired, not thrown
    return 0;
  }
  fmt::print("{}: {} ({} bytes{})\n", o.path, cfg.name(), thousands(sent),
             o.base.empty() ? "" : fmt::format(", a delta rebuilt on {} into {} bytes", o.base,
                                               thousands(p.file_bytes)));
  fmt::print("  read + verify     {:9.3f} ms\n", read_ms);
  if (p.has(kPkgMaterialized))
    fmt::print("  regenerate seeds  {:9.3f} ms (materialised package: nothing to regenerate)\n", 0.0);
  else
    fmt::print("  regenerate seeds  {:9.3f} ms median of {} warm calls ({} NL modules); the first, cold call at "
               "load: {:.3f} ms\n", regen_median_ms, regen_warm.size(), m->nl_modules().size(), regen_s * 1e3);
  fmt::print("  build + load      {:9.3f} ms (includes the regeneration)\n", load_ms);
  fmt::print("  input             {} -> {}\n", input_desc, x.shape().str());
  fmt::print("  latency           median {:.3f} ms, min {:.3f} ms over {} reps (batch {}, {} threads): {:.1f} "
             "images/s\n", median, times.front(), o.reps, N, num_threads(), double(N) / (median * 1e-3));
  fmt::print("  memory            max RSS {:.1f} MiB; host tensor peak {:.2f} MiB during inference\n", rss,
             double(mem.peak_live_bytes) / (1 << 20));
  fmt::print("  top-1             [");
  for (int64_t n = 0; n < std::min<int64_t>(n_images, 16); ++n) fmt::print("{}{}", n ? " " : "", top1[size_t(n)]);
  fmt::print("{}]{}\n", n_images > 16 ? " ..." : "", n_images > 1 ? fmt::format(" ({} images)", n_images) : "");
  if (max_diff >= 0)
    fmt::print("  vs {}: logits max |diff| {:.3g}, mean |diff| {:.3g}\n", o.reference, max_diff, mean_diff);
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<RunOptions>(
      app, out, "run", "Device side: read, verify, regenerate seeded weights, run inference, time it",
      [](const RunOptions& r) {
        // The synthetic input batch is allocated at once: refuse sizes no machine holds before reading anything.
        const double side = r.size > 0 ? r.size : 224, bytes = double(r.batch) * 3 * side * side * 4;
        if (bytes > double(int64_t(4) << 30))
          RF_FAIL("run: --batch {} at --size {}: a {:.1f} GiB input batch (expected at most 4 GiB; lower either)",
                  r.batch, int(side), bytes / double(int64_t(1) << 30));
        return cmd_run(r);
      });
  add_device_option(c, out.back(), true);
  c->add_option("package", o->path, "package file (or a delta, with --base)")->required();
  c->add_option("--base", o->base, "base package when PACKAGE is a delta");
  c->add_option("--input", o->input, "raw float32 NCHW images (3 x size x size each), already normalised exactly "
                                     "as in training ((pixel/255 - mean) / std; see `reframe inspect`), fed to "
                                     "the network as they are; default: synthetic N(0,1). For image files use "
                                     "`reframe predict`");
  c->add_option("--size", o->size, "input height = width (default 32, or 224 for the large stem)")
      ->check(CLI::Range(8, 4096));
  c->add_option("--batch", o->batch, "images per forward pass (the timed batch; --input is streamed in batches of "
                                     "this size)")->check(CLI::Range(1, 65536));
  c->add_option("--reps", o->reps, "timed repetitions (the median is reported)")->check(CLI::Range(1, 100000));
  c->add_option("--warmup", o->warmup, "untimed repetitions first")->check(CLI::Range(0, 1000));
  c->add_option("--seed", o->seed, "seed of the synthetic input")->check(seed_value());
  c->add_option("--reference", o->reference, "also run this package and report the logit difference");
  c->add_option("--output", o->output, "write the network's raw outputs of every image (float32, the output shape "
                                       "per image, in input order) to this file (what tests/export compares ONNX "
                                       "Runtime against)");
  c->add_flag("--json", o->json, "emit JSON (schema reframe.run/1)");
}

}  // namespace rf

// `reframe pack`, `inspect`, `run`, `apply`: the cloud-to-device path on .rfpk packages (docs/PACKAGE.md).
// Checked by tests/package/test_package.cpp (the library underneath) and scripts/test.sh (the fuzz corpus is
// written with `reframe pack`).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/predict.h"
#include "host/core/parallel.h"
#include "host/core/philox.h"
#include "host/core/printable.h"
#include "host/package/model_package.h"
#include "training/outputs.h"

namespace rf {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string thousands(uint64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string hex64(uint64_t v) { return fmt::format("0x{:016x}", v); }

std::string flags_str(uint32_t f) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (f & bit) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(kPkgZstd, "zstd");
  add(kPkgDelta, "delta");
  add(kPkgBnFolded, "bn_folded");
  add(kPkgMaterialized, "materialized");
  return s.empty() ? "none" : s;
}

double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// The package a command runs on: a full package, or a delta rebuilt on its base. *sent: the bytes of PATH.
Package read_full(const std::string& path, const std::string& base, uint64_t* sent) {
  Package p = read_package(path);
  *sent = p.file_bytes;
  if (base.empty()) return p;
  Package b = read_package(base);
  return apply_delta(b, p, base, path);
}

}  // namespace

int cmd_pack(const PackCmdOptions& o) {
  RF_CHECK(o.model.empty() != o.from.empty(), "pack: give exactly one of --model (a config) or --from (a package)");
  RF_CHECK(!o.out.empty(), "pack: --out is required");
  RF_CHECK(o.zstd >= 0 && o.zstd <= 19, "pack: --zstd {} (expected a level 1..19, or 0 for none)", o.zstd);
  check_output_file(o.out, "--out");  // before any model is built or package read
  PackOptions po;
  po.dtype = parse_storage_dtype(o.dtype);
  po.zstd_level = o.zstd;
  po.fold_bn = o.fold_bn;
  po.materialize = o.materialize;
  std::unique_ptr<Model> m;
  PackageMeta meta;
  if (!o.model.empty()) {
    m = build_model(ModelConfig::parse(o.model));
  } else {
    Package src = read_package(o.from);
    RF_CHECK(!src.has(kPkgBnFolded), "{}: is BN-folded (an inference package); repack from an unfolded one", o.from);
    m = load_model(src, o.from);
    meta = src.meta;  // a repack keeps the inference metadata
  }
  apply_meta_options(meta, o.meta_size, o.meta_mean, o.meta_std, o.meta_classes, "pack");
  if (int64_t(meta.classes.size()) > m->config().classes)
    RF_FAIL("pack: --classes gives {} names, the model has {} outputs", meta.classes.size(), m->config().classes);
  Package p = pack_model(*m, po);
  p.meta = meta;
  std::string kind = "package";
  if (!o.base.empty()) {
    Package base = read_package(o.base);
    p = make_delta(base, p);
    kind = "delta";
  }
  write_package(o.out, p, o.zstd);
  int changed = 0;
  for (const PackedTensor& t : p.tensors) changed += !t.from_base;
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"schema", "reframe.pack/1"}, {"file", o.out}, {"kind", kind},
                                      {"bytes", p.file_bytes}, {"config", p.config}, {"flags", flags_str(p.flags)},
                                      {"tensors", p.tensors.size()}, {"stored_tensors", changed},
                                      {"payload_hash", hex64(p.payload_hash)}}
                           .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}: {} {} bytes ({}; {}, flags {}; {} of {} tensors stored)\n", o.out, kind,
               thousands(p.file_bytes), m->config().name(), o.dtype, flags_str(p.flags), changed, p.tensors.size());
  }
  return 0;
}

int cmd_inspect(const InspectOptions& o) {
  Package p = read_package(o.path);
  ByteBreakdown b = package_breakdown(p);
  uint64_t v_learn = 0, v_state = 0, v_seeded = 0;
  for (const PackedTensor& t : p.tensors) {
    const uint64_t n = uint64_t(t.numel());
    (t.kind == TensorKind::learnable ? v_learn : t.kind == TensorKind::state ? v_state : v_seeded) += n;
  }
  // Seeded weights the seeds stand for (from the config's layer graph), when the config is valid.
  int64_t seeded_by_seeds = -1;
  std::string name = "?";
  try {
    ModelConfig cfg = ModelConfig::parse(p.config);
    name = cfg.name();
    seeded_by_seeds = seeded_values(cfg);  // from the config alone: inspect never builds the model
  } catch (const Error&) {
  }
  if (o.json) {
    nlohmann::json tj = nlohmann::json::array();
    if (!o.no_tensors)
      for (const PackedTensor& t : p.tensors)
        tj.push_back({{"name", t.name}, {"kind", tensor_kind_name(t.kind)}, {"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape}, {"numel", t.numel()}, {"bytes", t.data.size()}, {"offset", t.offset},
                      {"from_base", t.from_base}});
    nlohmann::json j = {
        {"schema", "reframe.package/1"},
        {"file", o.path},
        {"bytes", p.file_bytes},
        {"version", p.version},
        {"flags", flags_str(p.flags)},
        {"config", p.config},
        {"model", name},
        {"seed_rule", p.seed_rule},
        {"base_seed", p.base_seed},
        {"seeds", p.seeds},
        {"generator", p.generator},
        {"distribution", p.distribution},
        {"payload_hash", hex64(p.payload_hash)},
        {"checksum", hex64(p.file_checksum)},
        {"tensor_count", p.tensors.size()},
        {"breakdown",
         {{"header", b.header}, {"meta", b.meta}, {"seeds", b.seeds}, {"learnable", b.learnable},
          {"state", b.state}, {"seeded", b.seeded}, {"padding", b.padding}, {"payload_raw", b.payload_raw},
          {"payload_stored", b.payload_stored}, {"file", b.file}}},
        {"values",
         {{"learnable", v_learn}, {"state", v_state}, {"seeded_stored", v_seeded},
          {"seeded_from_seeds", seeded_by_seeds}}},
        {"tensors", tj}};
    if (!p.meta.empty())
      j["metadata"] = {{"input_h", p.meta.input_h}, {"input_w", p.meta.input_w}, {"mean", json_floats(p.meta.mean)},
                       {"std", json_floats(p.meta.std)}, {"classes", p.meta.classes}};
    if (p.has(kPkgDelta)) {
      j["base_payload_hash"] = hex64(p.base_payload_hash);
      j["target_payload_hash"] = hex64(p.target_payload_hash);
    }
    fmt::print("{}\n", json_text(j));  // invalid UTF-8 in a package's strings repaired, not thrown
    return 0;
  }
  fmt::print("{}: reframe package v{}, {} bytes, flags {}\n", o.path, p.version, thousands(p.file_bytes),
             flags_str(p.flags));
  // Strings from the file are printed escaped: a hostile package must not drive the terminal.
  fmt::print("  config        {}  ({})\n", printable(p.config), name);
  fmt::print("  seeds         rule {}, base {}, {} seeds: [", printable(p.seed_rule), p.base_seed, p.seeds.size());
  for (size_t i = 0; i < p.seeds.size(); ++i) fmt::print("{}{}", i ? " " : "", p.seeds[i]);
  fmt::print("]\n  generator     {}\n  distribution  {}\n", printable(p.generator), printable(p.distribution));
  fmt::print("  payload       {} bytes raw, {} stored, xxh64 {}; file checksum {} (verified)\n",
             thousands(p.payload_raw), thousands(p.payload_stored), hex64(p.payload_hash), hex64(p.file_checksum));
  if (p.meta.empty()) {
    fmt::print("  metadata      none (format version 1: predict needs --size/--mean/--std/--classes)\n");
  } else {
    auto fl = [](const std::vector<float>& v) {
      std::string s;
      for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:g}", i ? "," : "", v[i]);
      return v.empty() ? std::string("not recorded") : s;
    };
    std::string names;
    for (size_t k = 0; k < p.meta.classes.size() && k < 12; ++k) names += (k ? "," : "") + p.meta.classes[k];
    if (p.meta.classes.size() > 12) names += ",...";
    fmt::print("  metadata      input {}, mean {}, std {}, {} class names [{}]\n",
               p.meta.input_h ? fmt::format("{}x{}", p.meta.input_h, p.meta.input_w) : "not recorded",
               fl(p.meta.mean), fl(p.meta.std), p.meta.classes.size(), names);
  }
  if (p.has(kPkgDelta))
    fmt::print("  delta         base payload {}, rebuilds payload {}\n", hex64(p.base_payload_hash),
               hex64(p.target_payload_hash));
  if (!o.no_tensors) {
    fmt::print("  tensors ({}):\n    {:<36} {:<9} {:<5} {:<20} {:>11} {:>10}\n", p.tensors.size(), "name", "kind",
               "dtype", "shape", "bytes", "offset");
    for (const PackedTensor& t : p.tensors)
      fmt::print("    {:<36} {:<9} {:<5} {:<20} {:>11} {:>10}\n", printable(t.name), tensor_kind_name(t.kind),
                 dtype_name(t.dtype), Shape(t.shape).str(), t.from_base ? "from base" : thousands(t.data.size()),
                 t.offset);
  }
  const double total = double(b.header + b.payload_raw);
  auto row = [&](const char* what, uint64_t v) {
    fmt::print("    {:<10} {:>13} {:>6.2f}%\n", what, thousands(v), 100.0 * double(v) / total);
  };
  fmt::print("  bytes (uncompressed layout):\n");
  row("header", b.header);
  row("meta", b.meta);
  row("seeds", b.seeds);
  row("learnable", b.learnable);
  row("state", b.state);
  row("seeded", b.seeded);
  row("padding", b.padding);
  fmt::print("    {:<10} {:>13}   file {} bytes{}\n", "total", thousands(uint64_t(total)), thousands(b.file),
             p.has(kPkgZstd) ? fmt::format(" (zstd: {:.1f}% of raw)", 100.0 * double(b.file) / total) : "");
  fmt::print("  values: learnable {}, BN state {}, seeded stored {}, seeded from seeds {}\n", thousands(v_learn),
             thousands(v_state), thousands(v_seeded), seeded_by_seeds < 0 ? "?" : thousands(uint64_t(seeded_by_seeds)));
  return 0;
}

int cmd_run(const RunOptions& o) {
  RF_CHECK(o.batch >= 1 && o.reps >= 1 && o.warmup >= 0, "run: --batch and --reps must be >= 1, --warmup >= 0");
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

  for (int i = 0; i < o.warmup; ++i) m->forward(x, false);
  host_reset_peak();
  std::vector<double> times;
  Tensor logits;
  for (int i = 0; i < o.reps; ++i) {
    const auto t0 = Clock::now();
    logits = m->forward(x, false);
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
  double max_diff = -1, mean_diff = -1, diff_sum = 0, diff_count = 0;
  for (int64_t first = 0; first < n_images;) {
    Tensor xb = first == 0 ? x : read_batch(first, std::min<int64_t>(o.batch, n_images - first));
    Tensor lb = first == 0 ? logits : m->forward(xb, false);
    const int64_t nb = xb.size(0), K = lb.size(1);
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

int cmd_apply(const ApplyOptions& o) {
  RF_CHECK(o.zstd >= 0 && o.zstd <= 19, "apply: --zstd {} (expected a level 1..19, or 0 for none)", o.zstd);
  check_output_file(o.out, "--out");
  Package base = read_package(o.base);
  Package delta = read_package(o.delta);
  Package full = apply_delta(base, delta, o.base, o.delta);
  write_package(o.out, full, o.zstd);
  fmt::print("{}: rebuilt {} bytes from {} + {} (payload hash {} verified)\n", o.out, thousands(full.file_bytes),
             o.base, o.delta, hex64(full.payload_hash));
  return 0;
}

}  // namespace rf

// `reframe inspect`: a package verified, its header, metadata, tensors and byte breakdown printed (or as JSON,
// schema reframe.package/1). Strings from the file are printed escaped. --seeded-hashes builds the model and
// hashes each NL module's regenerated weights: the same bits on every build and architecture
// (scripts/check-arm64.sh compares the x86 and ARM builds' lists). Covered by tests/package/cli_package.sh.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/package_print.h"
#include "app/predict.h"
#include "host/core/check.h"
#include "host/core/printable.h"
#include "host/models/layers.h"
#include "host/package/model_package.h"
#include "host/package/xxhash64.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct InspectOptions {
  std::string path;
  bool json = false, no_tensors = false, seeded_hashes = false;
};

// --seeded-hashes: the model the package describes, its seeded weights regenerated from the seeds (also when the
// package stores them), one row per NL module: parameter name, seed, values, XXH64 of the fp32 bits.
nlohmann::json seeded_hashes(const Package& p, const std::string& path) {
  RF_CHECK(!p.has(kPkgDelta), "{}: --seeded-hashes needs a full package, not a delta (rebuild it with `apply`)",
           path);
  std::unique_ptr<Model> m = load_model(p, path);
  m->regenerate_seeded();
  nlohmann::json rows = nlohmann::json::array();
  for (NLModule* nl : m->nl_modules()) {
    const Tensor& w = nl->seeded_weight.value;
    rows.push_back({{"name", nl->seeded_weight.name}, {"seed", nl->seeded_spec().seed}, {"numel", w.numel()},
                    {"xxh64", hex64(xxhash64(w.f32(), sizeof(float) * size_t(w.numel())))}});
  }
  return rows;
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
    if (o.seeded_hashes) j["seeded_hashes"] = seeded_hashes(p, o.path);
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
  if (o.seeded_hashes) {
    const nlohmann::json rows = seeded_hashes(p, o.path);
    fmt::print("  seeded weights regenerated from the seeds, xxh64 of the fp32 bits ({} NL modules):\n", rows.size());
    for (const nlohmann::json& r : rows)
      fmt::print("    {:<36} seed {:<20} {:>9} values  xxh64 {}\n", printable(r["name"].get<std::string>()),
                 r["seed"].get<uint64_t>(), r["numel"].get<int64_t>(), r["xxh64"].get<std::string>());
  }
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<InspectOptions>(
      app, out, "inspect", "Verify a package and print its header, tensors and byte breakdown", cmd_inspect);
  c->add_option("package", o->path, "package file")->required();
  c->add_flag("--json", o->json, "emit JSON (schema reframe.package/1)");
  c->add_flag("--no-tensors", o->no_tensors, "omit the tensor list");
  c->add_flag("--seeded-hashes", o->seeded_hashes, "build the model and print the XXH64 of each NL module's "
                                                   "regenerated seeded weights (equal on every architecture)");
}

}  // namespace rf

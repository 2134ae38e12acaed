// `reframe pack`: a model package (.rfpk) from a config (the freshly initialised model) or from a package (a
// checkpoint) repacked with other options; a delta against --base; the inference metadata `reframe predict`
// needs. Covered by tests/package/cli_package.sh and tests/app/cli_options.sh.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/options.h"
#include "app/package_print.h"
#include "app/predict.h"
#include "host/package/model_package.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct PackCmdOptions {
  std::string model;           // config text: pack the freshly initialised model
  std::string from;            // or a package (a checkpoint) to repack
  std::string base;            // write a delta against this package
  std::string out;
  std::string dtype = "fp32";  // fp32 | fp16 | int8, as given (printed back); parsed into pack.dtype
  PackOptions pack;            // --zstd, --fold-bn, --materialize
  bool json = false;
  // Inference metadata to record (docs/PACKAGE.md, version 2); "" keeps what --from's package has.
  std::string meta_size, meta_mean, meta_std, meta_classes;
};

int cmd_pack(const PackCmdOptions& o) {
  RF_CHECK(o.model.empty() != o.from.empty(), "pack: give exactly one of --model (a config) or --from (a package)");
  RF_CHECK(!o.out.empty(), "pack: --out is required");
  RF_CHECK(o.pack.zstd_level >= 0 && o.pack.zstd_level <= 19,
           "pack: --zstd {} (expected a level 1..19, or 0 for none)", o.pack.zstd_level);
  check_output_file(o.out, "--out");  // before any model is built or package read
  PackOptions po = o.pack;
  po.dtype = parse_storage_dtype(o.dtype);
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
  write_package(o.out, p, po.zstd_level);
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

}  // namespace

void add_pack_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<PackCmdOptions>(
      app, out, "pack", "Write a model package (.rfpk): config, seeds, learnable tensors, BN state", cmd_pack);
  c->add_option("--model,-m", o->model, "model config: pack the freshly initialised model, e.g. nl-resnet18:cnl=dw");
  c->add_option("--from", o->from, "package (checkpoint) to repack with other options");
  c->add_option("--base", o->base, "write a delta (update) against this package: only changed tensors");
  c->add_option("--out,-o", o->out, "output file")->required();
  c->add_option("--dtype", o->dtype, "storage of learnable weights: fp32, fp16 or int8 (per-output-channel scale)")
      ->check(storage_dtype());
  c->add_option("--zstd", o->pack.zstd_level, "compress the payload with zstd at this level (1..19)")->expected(0, 1)
      ->default_str("3");
  c->add_flag("--fold-bn", o->pack.fold_bn, "inference package: fold BN into the preceding conv");
  c->add_flag("--materialize", o->pack.materialize, "store seeded weights as tensors too (to see what seeds save)");
  c->add_flag("--json", o->json, "emit JSON");
  c->add_option("--input-size", o->meta_size, "record the network input size, S or HxW (for `reframe predict`)");
  c->add_option("--mean", o->meta_mean, "record the input normalisation mean, R,G,B on the 0..1 pixel scale");
  c->add_option("--std", o->meta_std, "record the input normalisation std, R,G,B");
  c->add_option("--classes", o->meta_classes, "record the class names, a,b,c or @FILE (one a line)");
}

}  // namespace rf

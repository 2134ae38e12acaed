// `reframe export PKG --onnx OUT.onnx`: the package read and verified (a delta rebuilt on --base), the model
// regenerated exactly as `reframe run` does (load_model), written as a standard ONNX graph (host/export/) checked by
// onnx::checker, atomically; prints what the ONNX file weighs against the package. Covered by
// tests/export/cli_export.sh and tests/export/onnx_runtime.sh.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/package_print.h"
#include "host/export/onnx_export.h"
#include "host/package/model_package.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct ExportOptions {
  std::string path, base, onnx;
  int size = 0;  // 0: the package's input size, else 32 / 224 by stem
};

int cmd_export(const ExportOptions& o) {
  RF_CHECK(onnx_export_available(), "export: this reframe was built without libonnx (Debian libonnx-dev; "
           "scripts/setup.sh installs it, then rebuild)");
  check_output_file(o.onnx, "--onnx");
  uint64_t sent = 0;
  Package p = read_full(o.path, o.base, &sent);
  std::unique_ptr<Model> m = load_model(p, o.path);
  OnnxExportOptions eo;
  eo.input_h = eo.input_w = o.size;
  eo.source = o.path;
  OnnxExport e = export_onnx(*m, p, eo);
  write_file_atomic(o.onnx, e.bytes);
  const double ratio = double(e.bytes.size()) / double(sent);
  fmt::print("{}: {} ({}) -> {}: ONNX opset 17, {} nodes, {} initializers\n", o.path, m->config().name(),
             dtype_name(p.tensors.empty() ? DType::f32 : p.tensors.front().dtype), o.onnx, e.nodes, e.initializers);
  const Shape os = m->out_shape(Shape{1, 3, e.input_h, e.input_w});
  std::string out_dims = "N";
  for (int i = 1; i < os.ndim; ++i) out_dims += fmt::format(", {}", os[i]);
  fmt::print("  input  '{}' (N, 3, {}, {}) float32, normalised as in training; output '{}' ({})\n", e.input_name,
             e.input_h, e.input_w, e.output_name, out_dims);
  fmt::print("  bytes  ONNX {} against the package's {} ({:.2f}x): the ONNX file carries {} bytes of regenerated "
             "seeded weights that the package sends as {} seeds\n", thousands(e.bytes.size()), thousands(sent), ratio,
             thousands(e.seeded_bytes), p.seeds.size());
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<ExportOptions>(app, out, "export",
                                           "Regenerate a package's model and write it as an ONNX graph", cmd_export);
  c->add_option("package", o->path, "package file (or a delta, with --base)")->required();
  c->add_option("--base", o->base, "base package when PACKAGE is a delta");
  c->add_option("--onnx", o->onnx, "output ONNX file (written atomically)")->required();
  c->add_option("--size", o->size, "input height = width (default: the package's, else 32 or 224 for the large "
                                   "stem; dense models: a multiple of 32)")->check(CLI::Range(8, 4096));
}

}  // namespace rf

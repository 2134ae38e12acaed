// `reframe apply BASE DELTA -o NEW`: a full package rebuilt from a base and a delta, verified by the payload
// hash the delta records. Covered by tests/package/cli_package.sh.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/commands.h"
#include "app/package_print.h"
#include "host/package/model_package.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct ApplyOptions {
  std::string base, delta, out;
  int zstd = 0;
};

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

}  // namespace

void add_apply_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<ApplyOptions>(
      app, out, "apply", "Rebuild a full package from a base and a delta (verified by hash)", cmd_apply);
  c->add_option("base", o->base, "base package")->required();
  c->add_option("delta", o->delta, "delta package")->required();
  c->add_option("--out,-o", o->out, "output file")->required();
  c->add_option("--zstd", o->zstd, "compress the output payload at this level")->expected(0, 1)->default_str("3");
}

}  // namespace rf

// `reframe merge PART.json... -o OUT.json`: the results of a suite run spread with `--shard I/N` (one part per
// machine or job-array task) combined into the one results file `reframe report` and `reframe gate` read
// (suites/merge.h). Covered by tests/suites/test_shard_merge.cpp (the merge itself) and tests/app/cli_options.sh.
#include <cstdio>
#include <fstream>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "host/core/check.h"
#include "host/core/printable.h"
#include "suites/merge.h"
#include "training/outputs.h"

namespace rf {

namespace {

struct MergeCmdOptions {
  std::vector<std::string> parts;
  std::string out;
};

int cmd_merge(const MergeCmdOptions& m) {
  check_output_file(m.out, "-o");
  std::vector<std::pair<std::string, nlohmann::json>> parts;
  for (const std::string& path : m.parts) {
    std::ifstream is(path, std::ios::binary);
    RF_CHECK(is, "merge: {}: cannot open", printable(path));
    nlohmann::json j = nlohmann::json::parse(is, nullptr, false);
    RF_CHECK(!j.is_discarded(), "merge: {}: not valid JSON (expected a suite's results file)", printable(path));
    parts.emplace_back(path, std::move(j));
  }
  nlohmann::json merged = merge_parts(parts);
  write_json_atomic(m.out, merged);
  std::printf("merged %zu parts (%zu models) into %s\n", parts.size(), merged["models"].size(),
              printable(m.out).c_str());
  return 0;
}

}  // namespace

void add_merge_command(CLI::App& app, Commands& out) {
  auto [a, m] = add_command<MergeCmdOptions>(app, out, "merge",
                                             "Combine the parts of a suite run made with --shard I/N into one results "
                                             "file", cmd_merge);
  a->add_option("parts", m->parts, "every part's results JSON (classify.json, detect.json or segment.json)")
      ->required();
  a->add_option("-o,--out", m->out, "the merged results file")->required();
}

}  // namespace rf

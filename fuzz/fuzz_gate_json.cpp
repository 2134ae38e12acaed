// libFuzzer target for the gate's JSON readers (gate/gate.cpp): any byte string, parsed as JSON, must either
// give figures or throw rf::Error naming the input, never crash, hang, overflow or hit undefined behaviour
// (ASan/UBSan report those). One entry point reads every kind the gate takes: a reframe.gate/1 baseline (with
// its machine record), suite results (classify/detect/segment) and Google Benchmark JSON. What is read then
// goes through what the gate does with it: a baseline file written from the figures must read back to the
// same figures, and comparing them with themselves must find no regression. Seed corpus: tests/data/fuzz-corpus/gate_json/.
// fuzz-sources: gate/gate.cpp
// fuzz-libs: -lfmt
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "host/core/check.h"
#include "gate/gate.h"

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // not JSON: load_figures reports that before any reader runs
  std::vector<rf::gate::Figure> figs;
  try {
    figs = rf::gate::extract(j, "fuzz-input", [](const std::string&) {});
  } catch (const rf::Error& e) {
    if (std::string(e.what()).find("fuzz-input") == std::string::npos) std::abort();  // errors name the file
    return 0;
  }
  if (j.is_object() && j.contains("machine") && j.at("schema") == "reframe.gate/1") {
    rf::gate::Machine m = rf::gate::machine_from_json(j.at("machine"), "fuzz-input: machine");  // valid: extract took it
    (void)rf::gate::describe(m);
    (void)rf::gate::class_differences(m, m);
    rf::gate::Machine back = rf::gate::machine_from_json(rf::gate::machine_to_json(m), "fuzz-machine");
    if (!rf::gate::class_differences(m, back).empty()) std::abort();
  }
  if (figs.empty()) return 0;  // only Google Benchmark JSON without twins (a warning); load_figures refuses it
  // Whatever was read must write as a baseline and read back to the same figures.
  json written = json::parse(rf::gate::to_json(figs).dump());
  std::vector<rf::gate::Figure> back = rf::gate::from_json(written, "fuzz-baseline");
  if (back.size() != figs.size()) std::abort();
  for (size_t i = 0; i < figs.size(); ++i)
    if (back[i].name != figs[i].name || back[i].kind != figs[i].kind || back[i].value != figs[i].value) std::abort();
  // Names may repeat in a single input (load_figures refuses that); compare() needs distinct names.
  std::set<std::string> names;
  for (const auto& f : figs) names.insert(f.name);
  if (names.size() == figs.size()) {
    auto rows = rf::gate::compare(back, figs, rf::gate::Options{});
    if (rf::gate::count_regressions(rows) != 0 || rf::gate::count_compared(rows) != int(figs.size())) std::abort();
    (void)rf::gate::markdown(rows, true);
  }
  return 0;
}

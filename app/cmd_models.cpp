// `reframe models`: the accounting table of MODELS.md, computed from the layer graphs (scripts/run.sh records
// `models --json --layers` for the report; no CTest runs the command).
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "host/models/model.h"

namespace rf {

namespace {

struct ModelsOptions {
  std::vector<std::string> models;  // empty: MODELS.md's table
  int input = 32, classes = 10, batch = 1;
  bool json = false, layers = false;
};

struct Row {
  std::string label;
  ModelConfig cfg;
  Shape in;
};

nlohmann::json totals_json(const ModelTotals& t) {
  return {{"learnable_params", t.learnable}, {"seeded_weights", t.seeded}, {"bn_state", t.state},
          {"macs", t.macs},                  {"pool_window_reads", t.pool_reads},
          {"activation_bytes", t.act_bytes}, {"peak_layer_activation_bytes", t.peak_act_bytes}};
}

nlohmann::json layer_json(const LayerCost& r) {
  return {{"name", r.name},         {"type", r.type},           {"in", r.in.vec()},
          {"out", r.out.vec()},     {"learnable", r.learnable}, {"seeded", r.seeded},
          {"state", r.state},       {"macs", r.macs},           {"pool_reads", r.pool_reads},
          {"act_bytes", r.act_bytes}};
}

std::string thousands(int64_t v) {
  std::string s = std::to_string(v), out;
  int n = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (n && n % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++n;
  }
  return out;
}

int cmd_models(const ModelsOptions& o) {
  std::vector<Row> rows;
  if (o.models.empty()) {
    // MODELS.md's table: the four CIFAR models, then ResNet-18 at 224x224 with 1000 classes.
    for (const ModelConfig& c : standard_models(o.classes, o.input >= 64 ? "large" : "cifar"))
      rows.push_back({c.name(), c, Shape{o.batch, 3, o.input, o.input}});
    if (o.input == 32 && o.classes == 10) {
      ModelConfig big = ModelConfig::parse("resnet18:classes=1000,stem=large");
      rows.push_back({"resnet18 (224x224, 1000 classes)", big, Shape{o.batch, 3, 224, 224}});
    }
  } else {
    for (const std::string& text : o.models) {
      ModelConfig c = ModelConfig::parse(text);
      rows.push_back({c.name(), c, Shape{o.batch, 3, o.input, o.input}});
    }
  }

  nlohmann::json out = nlohmann::json::array();
  if (!o.json)
    fmt::print("{:<34} {:>12} {:>10} {:>8} {:>15} {:>12} {:>8}\n", "model", "learnable", "seeded", "BN state",
               "MACs", "pool reads", "vs R18");
  int64_t base_macs = 0;
  for (const Row& r : rows) {
    Model m(r.cfg);
    std::vector<LayerCost> layers = m.account(r.in);
    ModelTotals t = sum_costs(layers);
    if (base_macs == 0) base_macs = t.macs;
    nlohmann::json j = {{"model", r.label},          {"config", r.cfg.str()}, {"input", r.in.vec()},
                        {"totals", totals_json(t)}};
    if (o.layers) {
      nlohmann::json lj = nlohmann::json::array();
      for (const LayerCost& l : layers) lj.push_back(layer_json(l));
      j["layers"] = lj;
    }
    out.push_back(j);
    if (!o.json) {
      fmt::print("{:<34} {:>12} {:>10} {:>8} {:>15} {:>12} {:>7.1f}%\n", r.label, thousands(t.learnable),
                 thousands(t.seeded), thousands(t.state), thousands(t.macs), thousands(t.pool_reads),
                 100.0 * double(t.macs) / double(base_macs));
      if (o.layers) {
        for (const LayerCost& l : layers)
          fmt::print("    {:<30} {:<15} {:>18} -> {:<18} {:>10} {:>8} {:>13} {:>11}\n", l.name, l.type, l.in.str(),
                     l.out.str(), thousands(l.learnable), thousands(l.seeded), thousands(l.macs),
                     thousands(l.pool_reads));
      }
    }
  }
  if (o.json) fmt::print("{}\n", nlohmann::json{{"schema", "reframe.models/1"}, {"models", out}}.dump(2));
  return 0;
}

}  // namespace

void add_models_command(CLI::App& app, Commands& out) {
  auto [c, o] = add_command<ModelsOptions>(
      app, out, "models", "Parameter, seed, state, MAC and pooling accounting of the models", cmd_models);
  c->add_option("--model,-m", o->models, "model configs, e.g. nl-resnet18:cnl=dw,gpw=4 (default: all of MODELS.md)");
  c->add_option("--input", o->input, "input height and width")->check(CLI::Range(1, 4096));
  c->add_option("--classes", o->classes, "number of classes")->check(CLI::Range(1, 100000));
  c->add_option("--batch", o->batch, "batch size")->check(CLI::Range(1, 65536));
  c->add_flag("--json", o->json, "emit JSON");
  c->add_flag("--layers", o->layers, "per-layer breakdown");
}

}  // namespace rf

// Model configuration text form.
#include "host/models/config.h"

#include <sstream>

#include "host/core/check.h"
#include "host/core/philox.h"

namespace rf {

static std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

static int64_t parse_int(const std::string& text, const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    long long v = std::stoll(value, &used, 10);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  RF_FAIL("model config '{}': {}={} is not an integer", text, key, value);
}

ModelConfig ModelConfig::parse(const std::string& text) {
  ModelConfig c;
  auto colon = text.find(':');
  c.arch = text.substr(0, colon);
  if (c.arch == "nl-resnet18-dw" || c.arch == "nl-resnet18-512" || c.arch == "nl-resnet18-768") {
    // Shorthand: the variant in the name.
    std::string v = c.arch.substr(12);
    c.arch = "nl-resnet18";
    c.cnl = v == "dw" ? 0 : std::stoi(v);
  }
  if (c.arch != "resnet18" && c.arch != "nl-resnet18")
    RF_FAIL("model config '{}': unknown architecture '{}' (expected resnet18 or nl-resnet18)", text, c.arch);
  if (colon != std::string::npos) {
    for (const std::string& kv : split(text.substr(colon + 1), ',')) {
      if (kv.empty()) continue;
      auto eq = kv.find('=');
      if (eq == std::string::npos) RF_FAIL("model config '{}': '{}' is not key=value", text, kv);
      std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      if (key == "cnl") {
        c.cnl = value == "dw" ? 0 : int(parse_int(text, key, value));
      } else if (key == "gpw") {
        c.gpw = int(parse_int(text, key, value));
      } else if (key == "shuffle") {
        if (value != "on" && value != "off") RF_FAIL("model config '{}': shuffle={} (expected on or off)", text, value);
        c.shuffle = value == "on";
      } else if (key == "classes") {
        c.classes = int(parse_int(text, key, value));
      } else if (key == "stem") {
        c.stem = value;
      } else if (key == "seed") {
        c.seed = uint64_t(parse_int(text, key, value));
      } else if (key == "seed_rule") {
        c.seed_rule = value;
      } else if (key == "init_seed") {
        c.init_seed = uint64_t(parse_int(text, key, value));
      } else if (key == "task") {
        c.task = value;
      } else if (key == "neck") {
        c.neck = int(parse_int(text, key, value));
      } else if (key == "head_nl") {
        if (value != "on" && value != "off") RF_FAIL("model config '{}': head_nl={} (expected on or off)", text, value);
        c.head_nl = value == "on";
      } else {
        RF_FAIL("model config '{}': unknown key '{}' (expected cnl, gpw, shuffle, classes, stem, seed, seed_rule, "
                "init_seed, task, neck, head_nl)", text, key);
      }
    }
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
  RF_CHECK(arch == "resnet18" || arch == "nl-resnet18", "model config: arch '{}' (expected resnet18 or nl-resnet18)",
           arch);
  RF_CHECK(cnl >= 0 && cnl <= 65536, "model config: cnl={} (expected dw or 1..65536)", cnl);
  RF_CHECK(gpw >= 1 && gpw <= 64, "model config: gpw={} (expected 1..64)", gpw);
  RF_CHECK(64 % gpw == 0, "model config: gpw={} must divide every block width (64, 128, 256, 512)", gpw);
  RF_CHECK(classes >= 1 && classes <= 100000, "model config: classes={} (expected 1..100000)", classes);
  RF_CHECK(stem == "cifar" || stem == "large", "model config: stem '{}' (expected cifar or large)", stem);
  RF_CHECK(seed_rule == "base+i", "model config: seed_rule '{}' (expected base+i)", seed_rule);
  if (is_nl() && cnl > 0)
    RF_CHECK((cnl + 2 * 64) % gpw == 0, "model config: cnl={} gives a concat width not divisible by gpw={}", cnl, gpw);
  RF_CHECK(task == "classify" || task == "detect" || task == "segment",
           "model config: task '{}' (expected classify, detect or segment)", task);
  RF_CHECK(neck >= 8 && neck <= 1024 && neck % 8 == 0, "model config: neck={} (expected a multiple of 8 in 8..1024)",
           neck);
  if (is_dense() && head_nl) {
    RF_CHECK(is_nl(), "model config: head_nl=on needs the nl-resnet18 architecture (its seeds and NL options)");
    RF_CHECK(neck % gpw == 0 && (nl_width(neck) + 2 * neck) % gpw == 0,
             "model config: neck={} with cnl={} gives NL widths not divisible by gpw={}", neck, cnl, gpw);
  }
}

std::string ModelConfig::str() const {
  std::string s = arch;
  if (is_nl()) {
    s += ":cnl=" + (cnl == 0 ? std::string("dw") : std::to_string(cnl));
    s += ",gpw=" + std::to_string(gpw) + ",shuffle=" + (shuffle ? "on" : "off");
    s += ",seed=" + std::to_string(seed) + ",seed_rule=" + seed_rule + ",";
  } else {
    s += ":";
  }
  s += "classes=" + std::to_string(classes) + ",stem=" + stem + ",init_seed=" + std::to_string(init_seed);
  // Classification configs keep their old text (packages written before the dense tasks still match).
  if (is_dense()) s += ",task=" + task + ",neck=" + std::to_string(neck) + ",head_nl=" + (head_nl ? "on" : "off");
  return s;
}

std::string ModelConfig::name() const {
  if (!is_nl()) return arch;
  return arch + "-" + (cnl == 0 ? std::string("dw") : std::to_string(cnl));
}

uint64_t ModelConfig::module_seed(int i) const { return rf::module_seed(seed, i); }

std::vector<ModelConfig> standard_models(int classes, const std::string& stem) {
  std::vector<ModelConfig> out;
  for (const char* t : {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=512", "nl-resnet18:cnl=768"}) {
    ModelConfig c = ModelConfig::parse(t);
    c.classes = classes;
    c.stem = stem;
    out.push_back(c);
  }
  return out;
}

}  // namespace rf

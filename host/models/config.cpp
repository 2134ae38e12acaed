// Model configuration text form.
#include "host/models/config.h"

#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/core/printable.h"

namespace rf {

static std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// Strict decimal: digits only (no sign, no spaces, no 0x), so what is written is exactly what str() gives back.
static bool all_digits(const std::string& v) {
  if (v.empty() || v.size() > 20) return false;
  for (char ch : v)
    if (ch < '0' || ch > '9') return false;
  return true;
}

// An integer field within [lo, hi]; the error names the field, what was read and the accepted range.
static int parse_int(const std::string& text, const std::string& key, const std::string& value, int lo, int hi) {
  if (all_digits(value) && value.size() <= 10) {  // <= 10 digits: no overflow of unsigned long long
    const unsigned long long v = std::strtoull(value.c_str(), nullptr, 10);
    if (v >= (unsigned long long)lo && v <= (unsigned long long)hi) return int(v);
  }
  RF_FAIL("model config '{}': {}={} (expected an integer in {}..{})", printable(text), key, printable(value), lo, hi);
}

// Seeds are unsigned 64-bit: 0..18446744073709551615, every value round-trips through str() and packages.
// A negative seed is refused rather than wrapped (seed=-1 would silently mean 18446744073709551615).
// key=on|off -> true|false (shuffle, head_nl).
static bool parse_on_off(const std::string& text, const std::string& key, const std::string& value) {
  if (value != "on" && value != "off")
    RF_FAIL("model config '{}': {}={} (expected on or off)", printable(text), key, printable(value));
  return value == "on";
}

static uint64_t parse_seed(const std::string& text, const std::string& key, const std::string& value) {
  if (all_digits(value)) {
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
    if (errno == 0 && end == value.c_str() + value.size()) return uint64_t(v);
  }
  RF_FAIL("model config '{}': {}={} (expected an unsigned integer 0..18446744073709551615)", printable(text), key,
          printable(value));
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
    RF_FAIL("model config '{}': unknown architecture '{}' (expected resnet18 or nl-resnet18)", printable(text),
            printable(c.arch));
  if (colon != std::string::npos) {
    std::set<std::string> seen;
    for (const std::string& kv : split(text.substr(colon + 1), ',')) {
      if (kv.empty()) continue;
      auto eq = kv.find('=');
      if (eq == std::string::npos) RF_FAIL("model config '{}': '{}' is not key=value", printable(text), printable(kv));
      std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      if (!seen.insert(key).second)
        RF_FAIL("model config '{}': key '{}' given twice (expected each key once)", printable(text), printable(key));
      if (key == "cnl") {
        c.cnl = value == "dw" ? 0 : parse_int(text, key, value, 1, kMaxCnl);
      } else if (key == "gpw") {
        c.gpw = parse_int(text, key, value, 1, 64);
      } else if (key == "shuffle") {
        c.shuffle = parse_on_off(text, key, value);
      } else if (key == "classes") {
        c.classes = parse_int(text, key, value, 1, 100000);
      } else if (key == "stem") {
        c.stem = value;
      } else if (key == "seed") {
        c.seed = parse_seed(text, key, value);
      } else if (key == "seed_rule") {
        c.seed_rule = value;
      } else if (key == "init_seed") {
        c.init_seed = parse_seed(text, key, value);
      } else if (key == "task") {
        c.task = value;
      } else if (key == "neck") {
        c.neck = parse_int(text, key, value, 8, 1024);
      } else if (key == "head_nl") {
        c.head_nl = parse_on_off(text, key, value);
      } else {
        RF_FAIL("model config '{}': unknown key '{}' (expected cnl, gpw, shuffle, classes, stem, seed, seed_rule, "
                "init_seed, task, neck, head_nl)", printable(text), printable(key));
      }
    }
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
  RF_CHECK(arch == "resnet18" || arch == "nl-resnet18", "model config: arch '{}' (expected resnet18 or nl-resnet18)",
           printable(arch));
  RF_CHECK(cnl >= 0 && cnl <= kMaxCnl, "model config: cnl={} (expected dw or 1..{})", cnl, kMaxCnl);
  RF_CHECK(gpw >= 1 && gpw <= 64, "model config: gpw={} (expected 1..64)", gpw);
  RF_CHECK(64 % gpw == 0, "model config: gpw={} must divide every block width (64, 128, 256, 512)", gpw);
  RF_CHECK(classes >= 1 && classes <= 100000, "model config: classes={} (expected 1..100000)", classes);
  RF_CHECK(stem == "cifar" || stem == "large", "model config: stem '{}' (expected cifar or large)", printable(stem));
  RF_CHECK(seed_rule == "base+i", "model config: seed_rule '{}' (expected base+i)", printable(seed_rule));
  if (is_nl() && cnl > 0)
    RF_CHECK((cnl + 2 * 64) % gpw == 0, "model config: cnl={} gives a concat width not divisible by gpw={}", cnl, gpw);
  RF_CHECK(task == "classify" || task == "detect" || task == "segment",
           "model config: task '{}' (expected classify, detect or segment)", printable(task));
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

// Model configuration: a small struct with a text form, e.g. "nl-resnet18:cnl=dw,gpw=4,classes=10".
// Checked by tests/models/test_config.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rf {

// Widest NL seeded conv a config may ask for: 4096 keeps the seeded weights under 2^28 values (1 GiB) and the
// activations of a training batch within a workstation's memory; MODELS.md's widths are dw, 512 and 768.
constexpr int kMaxCnl = 4096;

struct ModelConfig {
  std::string arch = "resnet18";  // "resnet18" | "nl-resnet18"
  int cnl = 0;                    // NL modules' seeded-conv width C_nl; 0 means "dw" (C_nl = C_in)
  int gpw = 4;                    // groups of the learnable pointwise (1x1) conv
  bool shuffle = true;            // channel shuffle after the pointwise conv
  int classes = 10;
  std::string stem = "cifar";     // "cifar" (3x3 s1) | "large" (7x7 s2 + 3x3 max pool s2)
  uint64_t seed = 0;              // base seed of the NL modules' seeded convs
  std::string seed_rule = "base+i";  // module i (network order) gets seed base + i
  uint64_t init_seed = 1;         // seed of the learnable parameters' initialisation
  // Task head (host/models/dense.h): "classify" (global pool + linear), "detect" (centre-point head) or
  // "segment" (per-pixel classifier), the last two on a stride-8 merge of stages 2-4 `neck` channels wide;
  // head_nl swaps the merge's and the head's 3x3 convs for NL modules. Dense tasks use the large stem.
  std::string task = "classify";
  int neck = 64;
  bool head_nl = false;

  bool is_nl() const { return arch == "nl-resnet18"; }
  bool is_dense() const { return task != "classify"; }
  // Parses "arch[:key=value,...]"; keys: cnl (dw|1..4096), gpw (1..64), shuffle (on|off), classes (1..100000),
  // stem (cifar|large), seed and init_seed (unsigned 64-bit, 0..2^64-1, decimal digits only: negative seeds
  // are refused, every accepted seed round-trips), seed_rule, task (classify|detect|segment), neck (8..1024),
  // head_nl (on|off); each key at most once. Throws rf::Error naming the bad key or value and what was
  // expected, with control characters of the text escaped (printable.h).
  static ModelConfig parse(const std::string& text);
  std::string str() const;   // canonical text form, parse(str()) == *this
  std::string name() const;  // short display name: "resnet18", "nl-resnet18-dw", "nl-resnet18-512"
  void validate() const;
  bool operator==(const ModelConfig& o) const { return str() == o.str(); }

  // C_nl of a module whose input has C_in channels.
  int nl_width(int C_in) const { return cnl == 0 ? C_in : cnl; }
  // The seed of NL module i under the seed rule.
  uint64_t module_seed(int i) const;
};

// The models of MODELS.md's table, in its order (the 224x224 row is resnet18 with classes=1000, stem=large).
std::vector<ModelConfig> standard_models(int classes = 10, const std::string& stem = "cifar");

}  // namespace rf

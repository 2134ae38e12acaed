// Model <-> package (see model_package.h). Tensors are matched by parameter name, in the model's network order,
// so a package written by one build loads in another as long as the layer graph (from the config) agrees.
#include "host/package/model_package.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "host/ops/batchnorm.h"
#include "host/package/fp16.h"

namespace rf {

namespace {

static_assert(sizeof(float) == 4, "fp32 storage assumes 4-byte floats");

bool host_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void put_f32(uint8_t* out, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) out[i] = uint8_t(u >> (8 * i));
}

// Reduced precision applies to learnable weights of 2+ dims, the bulk of the bytes; biases, BN gamma/beta,
// BN state and materialised seeded weights stay fp32.
DType storage_dtype_for(const Param& q, DType requested) {
  if (q.kind == ParamKind::learnable && q.value.ndim() >= 2) return requested;
  return DType::f32;
}

PackedTensor encode(const std::string& name, TensorKind kind, const Shape& shape, const float* v, DType dtype) {
  PackedTensor t;
  t.name = name;
  t.kind = kind;
  t.dtype = dtype;
  t.shape = shape.vec();
  const int64_t n = shape.numel();
  t.data.resize(size_t(t.stored_bytes()));
  uint8_t* out = t.data.data();
  if (dtype == DType::f32) {
    if (host_little_endian()) {
      std::memcpy(out, v, size_t(n) * 4);
    } else {
      for (int64_t i = 0; i < n; ++i) put_f32(out + 4 * i, v[i]);
    }
  } else if (dtype == DType::f16) {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = float_to_half(v[i]);
      out[2 * i] = uint8_t(h);
      out[2 * i + 1] = uint8_t(h >> 8);
    }
  } else if (dtype == DType::i8) {
    // Symmetric per-output-channel: scale = max|w| / 127 over the row, q = round(w / scale) in [-127, 127].
    const int64_t rows = shape[0], cols = n / rows;
    int8_t* q = reinterpret_cast<int8_t*>(out + 4 * rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* w = v + r * cols;
      float amax = 0.f;
      for (int64_t i = 0; i < cols; ++i) amax = std::max(amax, std::fabs(w[i]));
      RF_CHECK(std::isfinite(amax), "tensor '{}' row {}: non-finite weight, cannot quantise to int8", name, r);
      const float scale = amax / 127.f;
      put_f32(out + 4 * r, scale);
      for (int64_t i = 0; i < cols; ++i) {
        const float x = scale > 0.f ? std::nearbyint(w[i] / scale) : 0.f;
        q[r * cols + i] = int8_t(std::max(-127.f, std::min(127.f, x)));
      }
    }
  } else {
    RF_FAIL("tensor '{}': storage dtype {} not supported (expected f32, f16 or i8)", name, dtype_name(dtype));
  }
  return t;
}

struct BnGroup {
  std::string prefix;
  size_t gamma, beta, mean, var;  // indices into params
};

// BN layers in network order, found by their running_mean (the four params are collected together).
std::vector<BnGroup> bn_groups(const std::vector<Param*>& ps) {
  std::vector<BnGroup> out;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (!ends_with(ps[i]->name, ".running_mean")) continue;
    const std::string prefix = ps[i]->name.substr(0, ps[i]->name.size() - 13);
    RF_CHECK(i >= 2 && i + 1 < ps.size() && ps[i - 2]->name == prefix + ".weight" &&
                 ps[i - 1]->name == prefix + ".bias" && ps[i + 1]->name == prefix + ".running_var",
             "BN '{}': expected its params in the order weight, bias, running_mean, running_var", prefix);
    out.push_back({prefix, i - 2, i - 1, i, i + 1});
  }
  return out;
}

float bn_eps() { return BatchNormShape{}.eps; }

// The NL module slots of NL-ResNet-18 (model.cpp's order and names), from the config alone.
struct NlSlot {
  std::string name;
  int C_in, C_out;
};
std::vector<NlSlot> nl_slots(const ModelConfig& cfg) {
  std::vector<NlSlot> out;
  if (!cfg.is_nl()) return out;
  const int widths[4] = {64, 128, 256, 512};
  int C = 64;
  for (int s = 0; s < 4; ++s)
    for (int b = 0; b < 2; ++b) {
      const std::string block = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      out.push_back({block + ".nl1", C, widths[s]});
      out.push_back({block + ".nl2", widths[s], widths[s]});
      C = widths[s];
    }
  if (cfg.is_dense() && cfg.head_nl) {  // model.cpp: after the backbone, the merge's then the head's
    out.push_back({"neck.nl", cfg.neck, cfg.neck});
    if (cfg.task == "detect") out.push_back({"head.nl", cfg.neck, cfg.neck});
  }
  return out;
}

int64_t gcd64(int64_t a, int64_t b) { return b == 0 ? a : gcd64(b, a % b); }

// Caps what a package may make the reader build: the learnable tensors whose size the config controls (the
// NL pointwise convs, the classifier) must be in the package with the shapes the config implies (so the file's
// own bytes pay for them), and the seeded weights, which no file bytes pay for, are capped.
constexpr int64_t kMaxSeededValues = int64_t(1) << 28;  // 1 GiB of fp32
void check_config_fits(const ModelConfig& cfg, const Package& p, const std::string& what) {
  auto expect = [&](const std::string& name, const std::vector<int64_t>& shape) {
    const PackedTensor* t = p.find(name);
    if (!t) RF_FAIL("{}: tensor '{}' is missing; config '{}' needs it", what, name, p.config);
    if (t->shape != shape)
      RF_FAIL("{}: tensor '{}' field 'shape' is {}, expected {} for config '{}'", what, name, Shape(t->shape).str(),
              Shape(shape).str(), p.config);
  };
  if (cfg.task == "classify") {
    expect("head.fc.weight", {cfg.classes, 512});
  } else {
    const int64_t D = cfg.neck;
    expect(cfg.task == "detect" ? "head.heat.weight" : "head.cls.weight", {cfg.classes, D, 1, 1});
    expect("neck.lat4.weight", {D, 512, 1, 1});
  }
  for (const NlSlot& m : nl_slots(cfg))
    expect(m.name + ".pw.weight", {m.C_out, (cfg.nl_width(m.C_in) + 2 * m.C_in) / cfg.gpw, 1, 1});
  const int64_t seeded = seeded_values(cfg);
  if (seeded > kMaxSeededValues)
    RF_FAIL("{}: config '{}' needs {} seeded weights, expected at most {} (refusing to allocate them)", what,
            p.config, seeded, kMaxSeededValues);
}

}  // namespace

int64_t seeded_values(const ModelConfig& cfg) {
  int64_t n = 0;
  for (const NlSlot& m : nl_slots(cfg)) {
    const int64_t C_nl = cfg.nl_width(m.C_in);
    n += C_nl * (m.C_in / gcd64(m.C_in, C_nl)) * 9;
  }
  return n;
}

float bn_identity_var() { return 1.0f - bn_eps(); }

DType parse_storage_dtype(const std::string& s) {
  if (s == "f32" || s == "fp32") return DType::f32;
  if (s == "f16" || s == "fp16") return DType::f16;
  if (s == "i8" || s == "int8") return DType::i8;
  RF_FAIL("storage dtype '{}': expected fp32, fp16 or int8", s);
}

Package pack_model(Model& m, const PackOptions& o) {
  const ModelConfig& cfg = m.config();
  RF_CHECK(o.dtype == DType::f32 || o.dtype == DType::f16 || o.dtype == DType::i8,
           "pack: storage dtype {} (expected f32, f16 or i8)", dtype_name(o.dtype));
  Package p;
  p.config = cfg.str();
  p.seed_rule = cfg.seed_rule;
  p.base_seed = cfg.seed;
  p.generator = kGeneratorId;
  p.distribution = kDistributionId;
  for (NLModule* nl : m.nl_modules()) p.seeds.push_back(nl->seeded_spec().seed);
  if (o.fold_bn) p.flags |= kPkgBnFolded;
  if (o.materialize) p.flags |= kPkgMaterialized;

  std::vector<Param*> ps = m.params();
  std::vector<std::vector<float>> vals(ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    const Tensor host = ps[i]->value.to(Device::cpu);  // a copy only for a model on the GPU
    vals[i].assign(host.f32(), host.f32() + host.numel());
  }
  std::vector<bool> drop(ps.size(), false);
  if (o.fold_bn) {
    // y = (z - mean) * k + beta with k = gamma / sqrt(var + eps), computed exactly as the engine's eval BN does;
    // z = W x + b. So W' = k W (row-wise), b' = (b - mean) k + beta. For an NL module the BN follows the
    // pointwise conv *and* the channel shuffle: pointwise channel o lands at BN channel pos(o), so row o is
    // scaled by k[pos(o)], which keeps the fold exact. Convs without a bias (stem, shortcuts, ResNet-18's 3x3s)
    // keep b' in the BN's beta; the rest of that BN becomes the identity.
    for (const BnGroup& g : bn_groups(ps)) {
      size_t conv = ps.size();
      for (size_t j = g.gamma; j-- > 0;)
        if (ps[j]->kind == ParamKind::learnable && ps[j]->value.ndim() == 4) {
          conv = j;
          break;
        }
      RF_CHECK(conv < ps.size(), "fold BN '{}': no learnable conv before it", g.prefix);
      const std::string conv_prefix = ps[conv]->name.substr(0, ps[conv]->name.size() - 7);  // minus ".weight"
      const bool has_bias = conv + 1 < g.gamma && ps[conv + 1]->name == conv_prefix + ".bias";
      const int64_t K = ps[conv]->value.size(0), row = ps[conv]->value.numel() / K;
      RF_CHECK(K == ps[g.gamma]->value.numel(), "fold BN '{}': {} channels, conv '{}' has {}", g.prefix,
               ps[g.gamma]->value.numel(), ps[conv]->name, K);
      const bool shuffled = cfg.is_nl() && cfg.shuffle && ends_with(conv_prefix, ".pw");
      const int64_t G = cfg.gpw;
      auto pos = [&](int64_t oc) { return shuffled ? (oc % G) * (K / G) + oc / G : oc; };
      std::vector<float>& W = vals[conv];
      const std::vector<float>&gamma = vals[g.gamma], &mean = vals[g.mean], &var = vals[g.var];
      std::vector<float>& beta = vals[g.beta];
      std::vector<float> newb(static_cast<size_t>(K));
      for (int64_t oc = 0; oc < K; ++oc) {
        const int64_t c = pos(oc);
        const float k = float(double(gamma[c]) / std::sqrt(double(var[c]) + double(bn_eps())));
        for (int64_t i = 0; i < row; ++i) W[oc * row + i] *= k;
        const float b = has_bias ? vals[conv + 1][oc] : 0.f;
        newb[oc] = (b - mean[c]) * k + beta[c];
      }
      drop[g.gamma] = drop[g.mean] = drop[g.var] = true;
      if (has_bias) {
        vals[conv + 1] = newb;
        drop[g.beta] = true;
      } else {
        for (int64_t oc = 0; oc < K; ++oc) beta[pos(oc)] = newb[oc];
      }
    }
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    const Param& q = *ps[i];
    if (drop[i] || (q.kind == ParamKind::seeded && !o.materialize)) continue;
    for (size_t k = 0; k < vals[i].size(); ++k)  // the reader refuses them: never write one
      RF_CHECK(std::isfinite(vals[i][k]), "pack: tensor '{}' value {} is {}, expected finite values (diverged "
               "training?)", q.name, k, vals[i][k]);
    p.tensors.push_back(encode(q.name, TensorKind(int(q.kind)), q.value.shape(), vals[i].data(),
                               storage_dtype_for(q, o.dtype)));
  }
  return p;
}

std::unique_ptr<Model> load_model(const Package& p, const std::string& what, double* regen_seconds) {
  if (p.has(kPkgDelta))
    RF_FAIL("{}: is a delta (update) package; rebuild it first with `reframe apply BASE DELTA -o NEW` or run it "
            "with `reframe run DELTA --base BASE`", what);
  ModelConfig cfg;
  try {
    cfg = ModelConfig::parse(p.config);
  } catch (const Error& e) {
    RF_FAIL("{}: payload field 'config': {}", what, e.what());
  }
  if (p.generator != kGeneratorId)
    RF_FAIL("{}: payload field 'generator' is '{}', expected '{}'", what, p.generator, kGeneratorId);
  if (p.distribution != kDistributionId)
    RF_FAIL("{}: payload field 'distribution' is '{}', expected '{}'", what, p.distribution, kDistributionId);
  if (p.seed_rule != cfg.seed_rule)
    RF_FAIL("{}: payload field 'seed_rule' is '{}', the config says '{}'", what, p.seed_rule, cfg.seed_rule);
  if (p.base_seed != cfg.seed)
    RF_FAIL("{}: payload field 'base_seed' is {}, the config says {}", what, p.base_seed, cfg.seed);
  check_config_fits(cfg, p, what);
  if (int64_t(p.meta.classes.size()) > cfg.classes)
    RF_FAIL("{}: metadata field 'class_count' is {}, expected at most the config's {} classes", what,
            p.meta.classes.size(), cfg.classes);
  std::unique_ptr<Model> m = build_model(cfg);
  const std::vector<NLModule*> nl = m->nl_modules();
  if (p.seeds.size() != nl.size())
    RF_FAIL("{}: payload field 'seed_count' is {}, expected {} (one per NL module of {})", what, p.seeds.size(),
            nl.size(), cfg.name());
  for (size_t i = 0; i < nl.size(); ++i)
    if (p.seeds[i] != nl[i]->seeded_spec().seed)
      RF_FAIL("{}: seed {} ({}) is {}, expected {} under the seed rule '{}' with base {}", what, i, nl[i]->name(),
              p.seeds[i], nl[i]->seeded_spec().seed, cfg.seed_rule, cfg.seed);

  std::map<std::string, const PackedTensor*> by_name;
  for (const PackedTensor& t : p.tensors)
    if (!by_name.emplace(t.name, &t).second) RF_FAIL("{}: tensor '{}' appears twice", what, t.name);
  std::vector<Param*> ps = m->params();
  std::set<std::string> bn_prefixes;
  for (const BnGroup& g : bn_groups(ps)) bn_prefixes.insert(g.prefix);
  const bool folded = p.has(kPkgBnFolded), materialized = p.has(kPkgMaterialized);
  size_t used = 0;
  for (Param* q : ps) {
    auto it = by_name.find(q->name);
    const PackedTensor* t = it == by_name.end() ? nullptr : it->second;
    used += t != nullptr;
    const size_t dot = q->name.rfind('.');
    const std::string prefix = q->name.substr(0, dot), leaf = q->name.substr(dot + 1);
    if (folded && bn_prefixes.count(prefix)) {
      // Folded BN: identity, except beta which may hold the folded bias of a conv that has none.
      if (t && leaf != "bias")
        RF_FAIL("{}: tensor '{}' is present, but the package is BN-folded (expected only '{}.bias')", what,
                q->name, prefix);
      if (!t) {
        q->value.fill(leaf == "weight" ? 1.f : leaf == "running_var" ? bn_identity_var() : 0.f);
        continue;
      }
    } else if (q->kind == ParamKind::seeded && !materialized) {
      if (t)
        RF_FAIL("{}: tensor '{}' holds seeded weights, but the package is not marked materialized", what,
                q->name);
      continue;
    } else if (!t) {
      RF_FAIL("{}: tensor '{}' ({} {}) is missing; {} needs it", what, q->name, param_kind_name(q->kind),
              q->value.shape().str(), cfg.name());
    }
    if (int(t->kind) != int(q->kind))
      RF_FAIL("{}: tensor '{}' field 'kind' is {}, expected {}", what, q->name, tensor_kind_name(t->kind),
              param_kind_name(q->kind));
    if (Shape(t->shape) != q->value.shape())
      RF_FAIL("{}: tensor '{}' field 'shape' is {}, expected {} for {}", what, q->name, Shape(t->shape).str(),
              q->value.shape().str(), cfg.name());
    std::vector<float> v = decode_tensor(*t, what);  // refuses non-finite values
    if (leaf == "running_var")  // a BN variance below 0 gives NaN outputs through 1/sqrt(var + eps)
      for (size_t i = 0; i < v.size(); ++i)
        if (!(v[i] >= 0.f))
          RF_FAIL("{}: tensor '{}' value {} is {}, expected a BN running variance >= 0", what, q->name, i, v[i]);
    std::memcpy(q->value.f32(), v.data(), v.size() * sizeof(float));
  }
  if (used != p.tensors.size()) {
    std::set<std::string> names;
    for (Param* q : ps) names.insert(q->name);
    for (const PackedTensor& t : p.tensors)
      if (!names.count(t.name))
        RF_FAIL("{}: tensor '{}' is not a parameter of {} (config '{}')", what, t.name, cfg.name(), p.config);
  }
  if (!materialized) {
    const auto t0 = std::chrono::steady_clock::now();
    m->regenerate_seeded();
    const auto t1 = std::chrono::steady_clock::now();
    if (regen_seconds) *regen_seconds = std::chrono::duration<double>(t1 - t0).count();
  } else if (regen_seconds) {
    *regen_seconds = 0;
  }
  return m;
}

// What a delta carries unchanged from its target, and a full package from its delta: the model config, the
// seed rule and seeds, and the metadata (not the flags, hashes or tensors).
static void copy_description(Package& to, const Package& from) {
  to.config = from.config;
  to.seed_rule = from.seed_rule;
  to.base_seed = from.base_seed;
  to.generator = from.generator;
  to.distribution = from.distribution;
  to.seeds = from.seeds;
  to.meta = from.meta;
}

Package make_delta(const Package& base, const Package& target_in) {
  RF_CHECK(!base.has(kPkgDelta) && !target_in.has(kPkgDelta), "make_delta: base and target must be full packages");
  Package target = target_in;
  serialize_payload(target);  // the target's content hash, independent of how it will be stored
  Package d;
  d.flags = (target.flags & ~uint32_t(kPkgZstd)) | kPkgDelta;
  copy_description(d, target);
  d.base_payload_hash = base.payload_hash ? base.payload_hash : [&] {
    Package b = base;
    serialize_payload(b);
    return b.payload_hash;
  }();
  d.target_payload_hash = target.payload_hash;
  for (const PackedTensor& t : target.tensors) {
    const PackedTensor* b = base.find(t.name);
    PackedTensor e = t;
    if (b && b->kind == t.kind && b->dtype == t.dtype && b->shape == t.shape && b->data == t.data) {
      e.from_base = true;
      e.data.clear();
    }
    d.tensors.push_back(std::move(e));
  }
  return d;
}

Package apply_delta(const Package& base, const Package& delta, const std::string& base_what,
                    const std::string& delta_what) {
  if (!delta.has(kPkgDelta)) RF_FAIL("{}: is not a delta package (header flag 'delta' is not set)", delta_what);
  if (base.has(kPkgDelta))
    RF_FAIL("{}: is itself a delta; a delta applies to a full package", base_what);
  if (base.payload_hash != delta.base_payload_hash)
    RF_FAIL("{}: wrong base for delta {}: the delta was made for a base with payload hash 0x{:016x}, this base has "
            "0x{:016x}", base_what, delta_what, delta.base_payload_hash, base.payload_hash);
  Package full;
  full.flags = delta.flags & ~uint32_t(kPkgDelta | kPkgZstd);
  copy_description(full, delta);
  for (const PackedTensor& t : delta.tensors) {
    if (!t.from_base) {
      full.tensors.push_back(t);
      continue;
    }
    const PackedTensor* b = base.find(t.name);
    if (!b) RF_FAIL("{}: tensor '{}' is marked from_base, but base {} has no such tensor", delta_what, t.name,
                    base_what);
    if (b->kind != t.kind || b->dtype != t.dtype || b->shape != t.shape)
      RF_FAIL("{}: tensor '{}' is marked from_base as {} {}, but base {} holds {} {}", delta_what, t.name,
              dtype_name(t.dtype), Shape(t.shape).str(), base_what, dtype_name(b->dtype), Shape(b->shape).str());
    PackedTensor e = *b;
    e.from_base = false;
    full.tensors.push_back(std::move(e));
  }
  serialize_payload(full);
  full.payload_stored = full.payload_raw;
  full.file_bytes = kPackageHeaderBytes + full.payload_raw + kPackageTrailerBytes;  // as an uncompressed file
  if (full.payload_hash != delta.target_payload_hash)
    RF_FAIL("{}: the package rebuilt from base {} has payload hash 0x{:016x}, the delta expects 0x{:016x}",
            delta_what, base_what, full.payload_hash, delta.target_payload_hash);
  return full;
}

}  // namespace rf

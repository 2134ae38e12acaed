// .rfpk packages: round trips (bit-identical fp32 logits; measured fp16 / int8 / BN-folding error), byte counts
// against MODELS.md, deltas, atomic writes, and every kind of bad input (each must throw rf::Error naming the
// file and the field; a flipped byte anywhere, every truncation).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "host/core/philox.h"
#include "host/ops/batchnorm.h"
#include "host/package/model_package.h"
#include "host/package/package.h"
#include "host/package/xxhash64.h"
#include "testing.h"

namespace rf {
namespace {

// What training would do to a fresh model: every learnable tensor and every BN statistic moves away from its
// init (so BN folding and state storage are really exercised).
void perturb(Model& m, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (Param* p : m.params()) {
    if (p->kind == ParamKind::seeded) continue;
    float* v = p->value.f32();
    const std::string& n = p->name;
    for (int64_t i = 0; i < p->value.numel(); ++i) {
      const float r = nd(gen);
      const bool gamma = p->value.ndim() == 1 && n.find(".bn") != std::string::npos && n.size() > 7 &&
                         n.compare(n.size() - 7, 7, ".weight") == 0;
      if (n.find("running_var") != std::string::npos) {
        v[i] = 0.5f + r * r;
      } else if (n.find("running_mean") != std::string::npos) {
        v[i] = 0.2f * r;
      } else if (gamma) {
        v[i] = 1.f + 0.2f * r;
      } else if (p->value.ndim() == 1) {
        v[i] = 0.1f * r;  // biases, BN beta
      } else {
        v[i] += 0.1f * std::fabs(v[i]) * r;
      }
    }
  }
}

Tensor input(int64_t N, int S = 32) {
  Tensor x = Tensor::empty(Shape{N, 3, S, S});
  seeded_normal_fill(11, 1.f, x.numel(), x.f32());
  return x;
}

std::vector<float> vec(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

Package reread(Package p, int zstd = 0) {
  std::vector<uint8_t> b = serialize_package(p, zstd);
  return parse_package(b.data(), b.size(), "mem.rfpk");
}

struct Diff {
  double max = 0, mean = 0, scale = 0;  // scale: max |logit| of the reference
};
Diff diff(const std::vector<float>& ref, const std::vector<float>& got) {
  Diff d;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(double(ref[i]) - double(got[i]));
    d.max = std::max(d.max, e);
    d.mean += e;
    d.scale = std::max(d.scale, std::fabs(double(ref[i])));
  }
  d.mean /= double(ref.size());
  return d;
}

// Expects fn() to throw rf::Error whose message contains every one of the needles.
using rf::testing::expect_error;

// ---- round trips ---------------------------------------------------------------------------------------------

// Every NL storage variant on dw; ResNet-18 (44 MB, slow to compress) and the 512 variant plain only.
TEST(PackageRoundTrip, Fp32GivesBitIdenticalLogits) {
  for (const char* text : {"nl-resnet18:cnl=dw", "resnet18", "nl-resnet18:cnl=512,seed=77"}) {
    SCOPED_TRACE(text);
    const bool all = std::string(text) == "nl-resnet18:cnl=dw";
    auto m = build_model(ModelConfig::parse(text));
    perturb(*m, 1);
    const Tensor x = input(1);
    const std::vector<float> ref = vec(m->forward(x, false));
    for (int zstd : {0, 3}) {
      for (bool materialize : {false, true}) {
        if (!all && (zstd || materialize)) continue;
        PackOptions o;
        o.materialize = materialize;
        Package p = reread(pack_model(*m, o), zstd);
        EXPECT_EQ(p.has(kPkgZstd), zstd > 0);
        auto back = load_model(p, "mem.rfpk");
        const std::vector<float> got = vec(back->forward(x, false));
        ASSERT_EQ(got.size(), ref.size());
        EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)), 0)
            << "zstd=" << zstd << " materialize=" << materialize << " max diff " << diff(ref, got).max;
      }
    }
  }
}

TEST(PackageRoundTrip, FileWriteIsAtomicAndReadable) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rfpk_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  Package p = pack_model(*m, {});
  const std::string path = (dir / "m.rfpk").string();
  write_package(path, p);
  write_package(path, p, 5);  // overwrite in place, compressed
  Package q = read_package(path);
  EXPECT_TRUE(q.has(kPkgZstd));
  EXPECT_EQ(q.payload_hash, p.payload_hash);
  EXPECT_EQ(uint64_t(fs::file_size(path)), q.file_bytes);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1) << "a temp file was left behind";
  expect_error([&] { write_package((dir / "no_such_dir" / "x.rfpk").string(), p); }, {"no_such_dir", "temp file"});
  EXPECT_FALSE(fs::exists(dir / "no_such_dir"));
  fs::remove_all(dir);
}

// The byte counts of real packages follow the parameter counts of MODELS.md exactly.
TEST(PackageBytes, MatchModelsMdCounts) {
  const int64_t want_learnable[] = {11173962, 1107786, 1294154, 1539914};
  const int64_t want_seeded[] = {0, 30528, 73728, 131328};
  std::vector<ModelConfig> cfgs = standard_models();
  ASSERT_EQ(cfgs.size(), 4u);
  uint64_t r18_fp32 = 0;
  for (size_t k = 0; k < cfgs.size(); ++k) {
    SCOPED_TRACE(cfgs[k].str());
    auto m = build_model(cfgs[k]);
    for (DType dt : {DType::f32, DType::f16, DType::i8}) {
      PackOptions o;
      o.dtype = dt;
      Package p = reread(pack_model(*m, o));
      ByteBreakdown b = package_breakdown(p);
      int64_t learn = 0, state = 0, want_bytes = 0;
      for (const PackedTensor& t : p.tensors) {
        ASSERT_NE(t.kind, TensorKind::seeded);
        (t.kind == TensorKind::learnable ? learn : state) += t.numel();
        if (t.kind == TensorKind::learnable) {
          const bool reduced = t.shape.size() >= 2;
          want_bytes += !reduced || dt == DType::f32 ? 4 * t.numel()
                        : dt == DType::f16          ? 2 * t.numel()
                                                    : t.numel() + 4 * t.shape[0];
        }
      }
      EXPECT_EQ(learn, want_learnable[k]);
      EXPECT_EQ(state, 9600);
      EXPECT_EQ(int64_t(b.learnable), want_bytes);
      EXPECT_EQ(b.state, 4u * 9600u);
      EXPECT_EQ(b.seeds, 8u + 8u * p.seeds.size());
      EXPECT_EQ(b.header + b.meta + b.seeds + b.learnable + b.state + b.seeded + b.padding, p.file_bytes);
      if (k == 0 && dt == DType::f32) r18_fp32 = p.file_bytes;
      const double ratio = double(p.file_bytes) / double(r18_fp32);
      std::printf("  %-24s %-4s %12llu bytes  %6.2f%% of resnet18 fp32\n", cfgs[k].name().c_str(), dtype_name(dt),
                  (unsigned long long)p.file_bytes, 100 * ratio);
      if (k == 1 && dt == DType::f32) {
        EXPECT_LT(ratio, 0.101);  // learnable + BN state alone: 9.99 %; + names and alignment
      }
      if (k == 1 && dt == DType::i8) {
        EXPECT_LT(ratio, 0.03);
      }
    }
    // Materialised: exactly the seeded weights (fp32) more, which is what the seeds save.
    PackOptions o;
    Package plain = reread(pack_model(*m, o));
    o.materialize = true;
    Package mat = reread(pack_model(*m, o));
    EXPECT_EQ(package_breakdown(mat).seeded, 4u * uint64_t(want_seeded[k]));
    EXPECT_EQ(plain.seeds.size(), cfgs[k].is_nl() ? 16u : 0u);
  }
}

// fp16 / int8 storage: a real, measured, reported difference, small against the logits' scale.
TEST(PackageRoundTrip, Fp16AndInt8DifferenceIsMeasuredAndSmall) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw"}) {
    auto m = build_model(ModelConfig::parse(text));
    perturb(*m, 2);
    const Tensor x = input(1);
    const std::vector<float> ref = vec(m->forward(x, false));
    for (DType dt : {DType::f16, DType::i8}) {
      PackOptions o;
      o.dtype = dt;
      Package p = reread(pack_model(*m, o));
      const Diff d = diff(ref, vec(load_model(p, "mem.rfpk")->forward(x, false)));
      std::printf("  %-20s %-4s logits: max |diff| %.3g, mean |diff| %.3g (max |logit| %.3g)\n", text,
                  dtype_name(dt), d.max, d.mean, d.scale);
      EXPECT_GT(d.max, 0.0) << "reduced precision should change something";
      EXPECT_LT(d.max, (dt == DType::f16 ? 5e-3 : 5e-2) * d.scale) << dtype_name(dt);
    }
  }
}

// ---- BN folding ----------------------------------------------------------------------------------------------

TEST(PackageFold, IdentityVarMakesEvalBnExact) {
  const int C = 7, HW = 33;
  std::vector<float> x(C * HW), y(C * HW), gamma(C, 1.f), beta(C, 0.f), mean(C, 0.f), var(C, bn_identity_var());
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (float& v : x) v = nd(gen);
  batchnorm_forward_eval_cpu(BatchNormShape{1, C, HW}, x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                             y.data());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
}

TEST(PackageFold, FoldedLogitsMatchWithinRounding) {
  for (const char* text : {"resnet18", "nl-resnet18:cnl=dw", "nl-resnet18:cnl=768,shuffle=off"}) {
    SCOPED_TRACE(text);
    auto m = build_model(ModelConfig::parse(text));
    perturb(*m, 3);
    const Tensor x = input(1);
    const std::vector<float> ref = vec(m->forward(x, false));
    PackOptions o;
    o.fold_bn = true;
    Package p = reread(pack_model(*m, o));
    Package unfolded = reread(pack_model(*m, {}));
    EXPECT_TRUE(p.has(kPkgBnFolded));
    EXPECT_LT(p.file_bytes, unfolded.file_bytes);
    for (const PackedTensor& t : p.tensors) {
      EXPECT_EQ(t.name.find("running_"), std::string::npos) << t.name;
      EXPECT_NE(t.kind, TensorKind::state) << t.name;
    }
    const Diff d = diff(ref, vec(load_model(p, "mem.rfpk")->forward(x, false)));
    std::printf("  %-34s folded: max |diff| %.3g (max |logit| %.3g), %llu -> %llu bytes\n", text, d.max, d.scale,
                (unsigned long long)unfolded.file_bytes, (unsigned long long)p.file_bytes);
    EXPECT_LT(d.max, 1e-4 * d.scale + 1e-6);
    // A wrong permutation (folding the shuffle as if absent) must be caught by this test: it is not a tautology.
    if (std::string(text) == "nl-resnet18:cnl=dw") {
      ModelConfig noshuffle = m->config();
      noshuffle.shuffle = false;
      Package wrong = p;
      wrong.config = noshuffle.str();
      const Diff dw = diff(ref, vec(load_model(wrong, "mem.rfpk")->forward(x, false)));
      EXPECT_GT(dw.max, 1e-3 * d.scale);
    }
  }
}

// ---- deltas --------------------------------------------------------------------------------------------------

TEST(PackageDelta, RetrainedHeadTravelsAloneAndRebuildsExactly) {
  auto m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  perturb(*m, 4);
  Package base = reread(pack_model(*m, {}));
  // "Retrain" the classifier only.
  for (Param* p : m->params())
    if (p->name.rfind("head.", 0) == 0)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] *= 1.5f;
  const Tensor x = input(1);
  const std::vector<float> ref = vec(m->forward(x, false));
  Package target = reread(pack_model(*m, {}));
  Package delta = reread(make_delta(base, target), 3);
  int stored = 0;
  for (const PackedTensor& t : delta.tensors)
    if (!t.from_base) {
      ++stored;
      EXPECT_EQ(t.name.rfind("head.", 0), 0u) << t.name;
    }
  EXPECT_EQ(stored, 2);
  EXPECT_LT(delta.file_bytes, 40000u);
  std::printf("  delta (new head) %llu bytes vs full %llu\n", (unsigned long long)delta.file_bytes,
              (unsigned long long)target.file_bytes);
  Package rebuilt = apply_delta(base, delta, "old.rfpk", "delta.rfpk");
  EXPECT_EQ(rebuilt.payload_hash, target.payload_hash);
  const std::vector<float> got = vec(load_model(reread(rebuilt), "new.rfpk")->forward(x, false));
  EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)), 0);

  // The wrong base, a delta used as a base, a delta loaded as a model: clear errors.
  auto other = build_model(ModelConfig::parse("nl-resnet18:cnl=dw,init_seed=9"));
  Package wrong = reread(pack_model(*other, {}));
  expect_error([&] { apply_delta(wrong, delta, "other.rfpk", "delta.rfpk"); }, {"other.rfpk", "wrong base"});
  expect_error([&] { apply_delta(delta, delta, "delta.rfpk", "delta.rfpk"); }, {"delta.rfpk", "itself a delta"});
  expect_error([&] { apply_delta(base, base, "old.rfpk", "old.rfpk"); }, {"old.rfpk", "not a delta"});
  expect_error([&] { load_model(delta, "delta.rfpk"); }, {"delta.rfpk", "reframe apply"});
  // A base whose tensor was swapped after the fact (same hash claimed): the rebuilt hash check catches it.
  Package forged = base;
  forged.tensors[0].data[0] ^= 1;
  expect_error([&] { apply_delta(forged, delta, "forged.rfpk", "delta.rfpk"); }, {"delta.rfpk", "payload hash"});
}

// ---- bad input -----------------------------------------------------------------------------------------------

// A small hand-made package: every field kind, every storage dtype, a few hundred bytes.
Package tiny_package() {
  Package p;
  p.config = "nl-resnet18:cnl=dw";
  p.seed_rule = "base+i";
  p.base_seed = 5;
  p.generator = kGeneratorId;
  p.distribution = kDistributionId;
  p.seeds = {5, 6};
  PackedTensor a{"a.weight", TensorKind::learnable, DType::f32, {3, 2}, false, {}, 0};
  PackedTensor b{"b.weight", TensorKind::learnable, DType::i8, {2, 3}, false, {}, 0};
  PackedTensor c{"c.running_var", TensorKind::state, DType::f16, {5}, false, {}, 0};
  for (PackedTensor* t : {&a, &b, &c}) {
    t->data.resize(t->stored_bytes());
    for (size_t i = 0; i < t->data.size(); ++i) t->data[i] = uint8_t(i * 7 + 1);
  }
  std::memset(b.data.data(), 0, 8);  // int8 scales 0.0f: valid
  p.tensors = {a, b, c};
  return p;
}

void put_le(std::vector<uint8_t>& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = uint8_t(v >> (8 * i));
}

// Header + checksums around a raw payload, as docs/PACKAGE.md lays them out (valid hashes, so the parser sees
// the payload's lies).
std::vector<uint8_t> wrap(const std::vector<uint8_t>& payload, uint32_t flags = 0, uint64_t raw_override = 0) {
  std::vector<uint8_t> f(64 + payload.size() + 8, 0);
  std::memcpy(f.data(), kPackageMagic, 8);
  put_le(f, 8, kPackageVersionNoMeta, 2);  // raw payloads here have no metadata block
  put_le(f, 10, 64, 2);
  put_le(f, 12, flags, 4);
  put_le(f, 16, payload.size(), 8);
  put_le(f, 24, raw_override ? raw_override : payload.size(), 8);
  put_le(f, 32, xxhash64(payload.data(), payload.size()), 8);
  std::memcpy(f.data() + 64, payload.data(), payload.size());
  put_le(f, f.size() - 8, xxhash64(f.data(), f.size() - 8), 8);
  return f;
}

Package parse(const std::vector<uint8_t>& b) { return parse_package(b.data(), b.size(), "bad.rfpk"); }

// Offsets of payload fields of tiny_package().
size_t seed_count_at(const Package& p) {
  return 4 + p.config.size() + 4 + p.seed_rule.size() + 8 + 4 + p.generator.size() + 4 + p.distribution.size();
}
size_t tensor0_at(const Package& p) { return seed_count_at(p) + 4 + 8 * p.seeds.size() + 4; }

TEST(PackageErrors, TinyPackageRoundTripsAndWrapMatchesTheDocumentedLayout) {
  Package p = tiny_package();
  std::vector<uint8_t> bytes = serialize_package(p);
  Package q = tiny_package();
  EXPECT_EQ(wrap(serialize_payload(q)), bytes);
  Package r = parse(bytes);
  ASSERT_EQ(r.tensors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.tensors[i].data, p.tensors[i].data);
    EXPECT_EQ(r.tensors[i].offset % 64, 0u);
  }
  EXPECT_EQ(r.seeds, p.seeds);
}

TEST(PackageErrors, EveryFlippedByteAndEveryTruncationIsAnError) {
  Package p = tiny_package();
  const std::vector<uint8_t> good = serialize_package(p);
  int checked = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xFF)}) {
      std::vector<uint8_t> b = good;
      b[i] ^= mask;
      expect_error([&] { parse(b); }, {"bad.rfpk"});
      ++checked;
    }
  }
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> b(good.begin(), good.begin() + n);
    expect_error([&] { parse(b); }, {"bad.rfpk"});
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  expect_error([&] { parse(longer); }, {"bad.rfpk", "payload_stored_bytes", "trailing"});
  // A real package too (int8 + zstd, ~1 MB), sampled: each flip is caught by the checksum (or the header).
  auto m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  PackOptions o;
  o.dtype = DType::i8;
  Package real = pack_model(*m, o);
  const std::vector<uint8_t> rb = serialize_package(real, 3);
  for (size_t i = 0; i < rb.size(); i += rb.size() / 97 + 1) {
    std::vector<uint8_t> b = rb;
    b[i] ^= 0x04;
    expect_error([&] { parse(b); }, {"bad.rfpk"});
  }
  for (size_t n : {size_t(0), size_t(7), size_t(64), size_t(71), rb.size() / 2, rb.size() - 1}) {
    std::vector<uint8_t> b(rb.begin(), rb.begin() + n);
    expect_error([&] { parse(b); }, {"bad.rfpk"});
  }
  EXPECT_GT(checked, 1000);
}

TEST(PackageErrors, EachFieldGetsItsOwnMessage) {
  Package p = tiny_package();
  const std::vector<uint8_t> good = serialize_package(p);
  auto patched = [&](size_t at, uint64_t v, int n) {
    std::vector<uint8_t> b = good;
    put_le(b, at, v, n);
    return b;
  };
  expect_error([&] { read_package("/nonexistent/dir/m.rfpk"); }, {"/nonexistent/dir/m.rfpk", "cannot open"});
  expect_error([&] { parse(std::vector<uint8_t>(good.begin(), good.begin() + 40)); }, {"bad.rfpk", "truncated"});
  expect_error([&] { parse(patched(0, 'X', 1)); }, {"bad.rfpk", "magic"});
  expect_error([&] { parse(patched(8, 3, 2)); }, {"bad.rfpk", "'version' is 3, expected 1 or 2"});
  expect_error([&] { parse(patched(10, 32, 2)); }, {"bad.rfpk", "header_bytes"});
  expect_error([&] { parse(patched(12, 0x100, 4)); }, {"bad.rfpk", "flags"});
  // The header claims more payload than the file holds: caught by size, before any hashing or allocation.
  expect_error([&] { parse(patched(16, uint64_t(1) << 40, 8)); },
               {"bad.rfpk", "payload_stored_bytes", "holds only"});
  expect_error([&] { parse(patched(64 + 20, 0x55, 1)); }, {"bad.rfpk", "checksum mismatch"});

  // Lies inside the payload, with valid hashes around them.
  Package q = tiny_package();
  const std::vector<uint8_t> pay = serialize_payload(q);
  auto lie = [&](size_t at, uint64_t v, int n) {
    std::vector<uint8_t> b = pay;
    put_le(b, at, v, n);
    return wrap(b);
  };
  const size_t sc = seed_count_at(q), t0 = tensor0_at(q), name_len = q.tensors[0].name.size();
  const size_t kind_at = t0 + 2 + name_len, dtype_at = kind_at + 1, ndim_at = kind_at + 2, dims_at = kind_at + 4;
  expect_error([&] { parse(lie(0, 1u << 30, 4)); }, {"bad.rfpk", "'config'"});
  expect_error([&] { parse(lie(sc, 0xFFFFFFFFu, 4)); }, {"bad.rfpk", "seed_count"});
  expect_error([&] { parse(lie(sc + 4 + 16, 0xFFFFFFFFu, 4)); }, {"bad.rfpk", "tensor_count"});
  expect_error([&] { parse(lie(kind_at, 7, 1)); }, {"bad.rfpk", "a.weight", "'kind'"});
  expect_error([&] { parse(lie(dtype_at, 9, 1)); }, {"bad.rfpk", "a.weight", "'dtype' is 9"});
  expect_error([&] { parse(lie(dtype_at, uint8_t(DType::f64), 1)); }, {"bad.rfpk", "'dtype' is 3"});
  expect_error([&] { parse(lie(ndim_at, 0, 1)); }, {"bad.rfpk", "'ndim'"});
  expect_error([&] { parse(lie(ndim_at, 200, 1)); }, {"bad.rfpk", "'ndim'"});
  expect_error([&] { parse(lie(dims_at, uint64_t(1) << 62, 8)); }, {"bad.rfpk", "a.weight", "'shape'"});
  expect_error([&] { parse(lie(dims_at, 1u << 30, 8)); }, {"bad.rfpk", "a.weight", "holds more values"});
  expect_error([&] { parse(lie(dims_at, 4, 8)); }, {"bad.rfpk", "a.weight", "'data_bytes'"});
  expect_error([&] { parse(lie(dims_at + 16, 0, 8)); }, {"bad.rfpk", "a.weight", "'data_offset'"});
  expect_error([&] { parse(lie(dims_at + 24, uint64_t(1) << 50, 8)); }, {"bad.rfpk", "'data_bytes'"});
  expect_error([&] { parse(lie(kind_at + 3, 1, 1)); }, {"bad.rfpk", "from_base", "not a delta"});
  // zstd: a frame whose declared size disagrees, and an absurd raw size (no allocation of it).
  expect_error([&] { parse(wrap(pay, kPkgZstd)); }, {"bad.rfpk", "zstd"});
  expect_error([&] { parse(wrap(pay, kPkgZstd, uint64_t(1) << 31)); }, {"bad.rfpk", "payload_raw_bytes"});
  expect_error([&] { parse(wrap(pay, 0, pay.size() + 64)); }, {"bad.rfpk", "payload_raw_bytes"});
  // int8 scales must be finite.
  Package nanscale = tiny_package();
  const float nan = NAN;
  std::memcpy(nanscale.tensors[1].data.data(), &nan, 4);
  expect_error([&] { decode_tensor(nanscale.tensors[1], "bad.rfpk"); }, {"bad.rfpk", "b.weight", "scale"});
}

TEST(PackageErrors, ModelLevelMismatchesNameTheTensor) {
  auto m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  Package good = pack_model(*m, {});
  {
    Package p = good;
    p.config = "nl-resnet18:cnl=512";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "nl1.pw.weight", "'shape'"});
  }
  {
    Package p = good;
    p.tensors.erase(p.tensors.begin() + 3);
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "missing"});
  }
  {
    Package p = good;
    p.tensors.push_back(p.tensors[0]);
    p.tensors.back().name = "extra.weight";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "extra.weight", "not a parameter"});
  }
  {
    Package p = good;
    p.config = "nl-resnet18:cnl=dw,wings=2";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "'config'", "wings"});
  }
  {
    Package p = good;
    p.seeds[3] = 99;
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "seed 3", "expected 3"});
  }
  {
    Package p = good;
    p.seeds.pop_back();
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "seed_count"});
  }
  {
    Package p = good;
    p.generator = "mt19937";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "generator", "philox4x32-10"});
  }
  // Configs that would make the reader allocate what no file bytes pay for are refused before building.
  {
    Package p = good;
    p.config = "nl-resnet18:cnl=65535,gpw=1";  // refused by the config parser itself (cnl <= 4096)
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "'config'", "cnl=65535", "1..4096"});
    p.config = "nl-resnet18:cnl=4095,gpw=1";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "layer1.0.nl1.pw.weight", "'shape'"});
    p.config = "nl-resnet18:cnl=dw,classes=100000";
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "head.fc.weight", "(100000, 512)"});
    EXPECT_EQ(seeded_values(ModelConfig::parse("nl-resnet18:cnl=dw")), 30528);
    EXPECT_EQ(seeded_values(ModelConfig::parse("nl-resnet18:cnl=512")), 73728);
    EXPECT_EQ(seeded_values(ModelConfig::parse("nl-resnet18:cnl=768")), 131328);
    EXPECT_EQ(seeded_values(ModelConfig::parse("resnet18")), 0);
    // The widest config the parser accepts stays below the reader's cap of seeded weights.
    EXPECT_LT(seeded_values(ModelConfig::parse("nl-resnet18:cnl=4095,gpw=1")), int64_t(1) << 28);
  }
  {
    Package p = good;
    p.tensors[0].kind = TensorKind::state;
    expect_error([&] { load_model(p, "m.rfpk"); }, {"m.rfpk", "stem.conv.weight", "'kind'"});
  }
}

// Issue 18, class 4: values no writer produces are refused by the reader, naming the file and the tensor, even
// when the package's hashes are valid (they are recomputed here by serialize_package).
TEST(PackageErrors, NonFiniteValuesNegativeVarianceAndInt8MinusOneTwentyEightAreRefused) {
  auto m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  Package good = pack_model(*m, {});
  auto find = [](Package& p, const std::string& name) -> PackedTensor& {
    for (PackedTensor& t : p.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  };
  auto put = [](PackedTensor& t, size_t i, float v) { std::memcpy(t.data.data() + 4 * i, &v, 4); };
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    Package p = good;
    put(find(p, "layer2.1.nl1.pw.weight"), 5, bad);
    Package q = reread(p);  // valid hashes
    expect_error([&] { load_model(q, "nan.rfpk"); }, {"nan.rfpk", "layer2.1.nl1.pw.weight", "value 5", "finite"});
  }
  {
    Package p = good;
    put(find(p, "layer1.0.bn1.running_var"), 2, -0.5f);
    Package q = reread(p);
    expect_error([&] { load_model(q, "var.rfpk"); },
                 {"var.rfpk", "layer1.0.bn1.running_var", "-0.5", "running variance >= 0"});
    put(find(p, "layer1.0.bn1.running_var"), 2, std::nanf(""));
    Package r = reread(p);
    expect_error([&] { load_model(r, "var.rfpk"); }, {"var.rfpk", "layer1.0.bn1.running_var", "finite"});
  }
  {
    PackOptions po;
    po.dtype = DType::i8;
    Package p = pack_model(*m, po);
    PackedTensor& t = find(p, "head.fc.weight");
    ASSERT_EQ(t.dtype, DType::i8);
    t.data[4 * size_t(t.shape[0]) + 7] = 0x80;  // q = -128
    Package q = reread(p);
    expect_error([&] { load_model(q, "i8.rfpk"); }, {"i8.rfpk", "head.fc.weight", "-128", "-127..127"});
  }
  {
    PackOptions po;
    po.dtype = DType::f16;
    Package p = pack_model(*m, po);
    PackedTensor& t = find(p, "layer3.0.nl2.pw.weight");
    ASSERT_EQ(t.dtype, DType::f16);
    t.data[2 * 9] = 0x00, t.data[2 * 9 + 1] = 0x7C;  // +inf in fp16
    Package q = reread(p);
    expect_error([&] { load_model(q, "f16.rfpk"); }, {"f16.rfpk", "layer3.0.nl2.pw.weight", "value 9", "inf"});
  }
  // The writer never produces such a package: pack refuses non-finite weights.
  auto m2 = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  m2->params()[0]->value.f32()[3] = std::nanf("");
  expect_error([&] { pack_model(*m2, {}); }, {"pack", m2->params()[0]->name, "value 3", "finite"});
}

}  // namespace
}  // namespace rf

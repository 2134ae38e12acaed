// The inference metadata (format version 2): round trip, the version rule (no metadata -> version 1, byte-identical
// to before), deltas carry it, and every bad value in the block is refused naming the file and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/package/model_package.h"
#include "host/package/package.h"
#include "host/package/xxhash64.h"
#include "testing.h"

namespace rf {
namespace {

using rf::testing::expect_error;

PackageMeta good_meta() {
  PackageMeta m;
  m.input_h = 32, m.input_w = 32;
  m.mean = {0.4914f, 0.4822f, 0.4465f};
  m.std = {0.2023f, 0.1994f, 0.2010f};
  m.classes = {"airplane", "automobile", "bird"};
  return m;
}

Package small_package() {
  Package p;
  p.config = "x";
  p.seed_rule = "base+i";
  p.generator = "g";
  p.distribution = "d";
  PackedTensor t;
  t.name = "w";
  t.shape = {2};
  t.data.assign(8, 1);
  p.tensors = {t};
  return p;
}

TEST(PackageMeta, RoundTripAndVersionRule) {
  Package p = small_package();
  std::vector<uint8_t> v1 = serialize_package(p);
  EXPECT_EQ(v1[8], 1);  // no metadata: version 1, as older writers wrote it
  Package r1 = parse_package(v1.data(), v1.size(), "v1.rfpk");
  EXPECT_EQ(r1.version, 1);
  EXPECT_TRUE(r1.meta.empty());
  p.meta = good_meta();
  std::vector<uint8_t> v2 = serialize_package(p, 3);
  EXPECT_EQ(v2[8], 2);
  Package r2 = parse_package(v2.data(), v2.size(), "v2.rfpk");
  EXPECT_EQ(r2.version, 2);
  EXPECT_EQ(r2.meta.input_h, 32);
  EXPECT_EQ(r2.meta.mean, good_meta().mean);
  EXPECT_EQ(r2.meta.std, good_meta().std);
  EXPECT_EQ(r2.meta.classes, good_meta().classes);
  ASSERT_EQ(r2.tensors.size(), 1u);
  EXPECT_EQ(r2.tensors[0].data, p.tensors[0].data);
}

TEST(PackageMeta, DeltaCarriesMetadataAndModelChecksClassCount) {
  std::unique_ptr<Model> m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  Package base = pack_model(*m, PackOptions{});
  Package target = pack_model(*m, PackOptions{});
  target.meta = good_meta();
  serialize_payload(base);
  Package d = make_delta(base, target);
  std::vector<uint8_t> db = serialize_package(d);
  Package dr = parse_package(db.data(), db.size(), "d.rfpk");
  Package full = apply_delta(base, dr, "base.rfpk", "d.rfpk");
  EXPECT_EQ(full.meta.classes, good_meta().classes);
  EXPECT_NO_THROW(load_model(full, "full.rfpk"));
  full.meta.classes.assign(11, "c");  // the model has 10 outputs
  expect_error([&] { load_model(full, "full.rfpk"); }, {"full.rfpk", "'class_count' is 11", "10 classes"});
}

TEST(PackageMeta, WriterRefusesWhatTheReaderWould) {
  auto refuse = [](PackageMeta m, std::vector<std::string> needles) {
    Package p = small_package();
    p.meta = m;
    expect_error([&] { serialize_package(p); }, needles);
  };
  PackageMeta m = good_meta();
  m.std[1] = 0.f;
  refuse(m, {"'std' value 1", "> 0"});
  m = good_meta();
  m.mean[2] = NAN;
  refuse(m, {"'mean' value 2", "finite"});
  m = good_meta();
  m.input_w = 0;
  refuse(m, {"'input_h'/'input_w' is 32x0"});
  m = good_meta();
  m.std.pop_back();
  refuse(m, {"'mean'/'std' have 3/2 values"});
  m = good_meta();
  m.classes[1] = "";
  refuse(m, {"class name 1 is 0 bytes"});
}

// Patches a version-2 file's metadata block at payload offset `at` and re-signs it (so the parser sees the lie).
std::vector<uint8_t> patched(std::vector<uint8_t> f, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[64 + at + size_t(i)] = uint8_t(v >> (8 * i));
  const uint64_t h = xxhash64(f.data() + 64, f.size() - 72);
  for (int i = 0; i < 8; ++i) f[32 + size_t(i)] = uint8_t(h >> (8 * i));
  const uint64_t c = xxhash64(f.data(), f.size() - 8);
  for (int i = 0; i < 8; ++i) f[f.size() - 8 + size_t(i)] = uint8_t(c >> (8 * i));
  return f;
}

TEST(PackageMeta, ReaderRefusesBadBlocks) {
  Package p = small_package();
  p.meta = good_meta();
  const std::vector<uint8_t> f = serialize_package(p);
  // Payload: config "x" (4+1), seed_rule (4+6), base_seed 8, generator (4+1), distribution (4+1), seed_count 4.
  const size_t meta_at = 5 + 10 + 8 + 5 + 5 + 4;
  auto parse = [](const std::vector<uint8_t>& b) { return parse_package(b.data(), b.size(), "bad.rfpk"); };
  EXPECT_NO_THROW(parse(f));
  expect_error([&] { parse(patched(f, meta_at, 70000)); }, {"bad.rfpk", "'input_h'/'input_w' is 70000x32"});
  expect_error([&] { parse(patched(f, meta_at + 8, 1000)); }, {"bad.rfpk", "'channels' is 1000"});
  const size_t std1 = meta_at + 12 + 12 + 4;
  expect_error([&] { parse(patched(f, std1, 0xBF800000u)); }, {"bad.rfpk", "'std' value 1 is -1"});
  const size_t count = meta_at + 12 + 24;
  expect_error([&] { parse(patched(f, count, 0xFFFFFFFFu)); }, {"bad.rfpk", "'class_count' is 4294967295"});
  expect_error([&] { parse(patched(f, count, 50)); }, {"bad.rfpk"});  // names run into the directory: some error
}

}  // namespace
}  // namespace rf

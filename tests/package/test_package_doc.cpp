// docs/PACKAGE.md against the writer: the tensor-name table (parsed from the doc) must list exactly the names and
// kinds `pack` writes for every model family, plain, materialised and BN-folded; the BN epsilon and identity
// variance the doc states must be the code's; the metadata block and the from_base offsets must sit where the doc
// says. An independent reader is written from the doc, so a doc that drifts from the writer is a bug.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "host/ops/batchnorm.h"
#include "host/package/model_package.h"
#include "host/package/package.h"

#ifndef RF_SOURCE_DIR
#define RF_SOURCE_DIR "."
#endif

namespace rf {
namespace {

std::string read_doc() {
  std::ifstream f(std::string(RF_SOURCE_DIR) + "/docs/PACKAGE.md");
  EXPECT_TRUE(f.good()) << "cannot open docs/PACKAGE.md under " << RF_SOURCE_DIR;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '`')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '`')) ++i;
  return s.substr(i);
}

struct Row {
  std::string name, kind, models, folded;
};

std::vector<Row> name_table(const std::string& doc) {
  const size_t a = doc.find("<!-- tensor-names:begin"), b = doc.find("<!-- tensor-names:end");
  EXPECT_NE(a, std::string::npos);
  EXPECT_NE(b, std::string::npos);
  std::vector<Row> rows;
  std::istringstream in(doc.substr(a, b - a));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;  // header, separator, comment
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|') {
        cells.push_back(trim(cell));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    EXPECT_EQ(cells.size(), 5u) << line;
    if (cells.size() == 5) rows.push_back({cells[0], cells[1], cells[3], cells[4]});
  }
  return rows;
}

// Does a row's "models" condition hold for this config?
bool applies(const std::string& models, const ModelConfig& c) {
  std::istringstream in(models);
  for (std::string tok; std::getline(in, tok, ',');) {
    tok = trim(tok);
    const bool head_nl = c.is_nl() && c.head_nl;
    bool ok;
    if (tok == "all") ok = true;
    else if (tok == "r18") ok = !c.is_nl();
    else if (tok == "nl") ok = c.is_nl();
    else if (tok == "classify" || tok == "detect" || tok == "segment") ok = c.task == tok;
    else if (tok == "dense") ok = c.is_dense();
    else if (tok == "head_nl") ok = head_nl;
    else if (tok == "head_conv") ok = c.is_dense() && !head_nl;
    else {
      ADD_FAILURE() << "unknown condition '" << tok << "' in docs/PACKAGE.md's tensor-name table";
      ok = false;
    }
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> expand(const std::string& pattern) {
  std::vector<std::string> out = {pattern};
  auto sub = [&](const std::string& ph, const std::vector<std::string>& vals) {
    std::vector<std::string> next;
    for (const std::string& s : out) {
      const size_t at = s.find(ph);
      if (at == std::string::npos) {
        next.push_back(s);
        continue;
      }
      for (const std::string& v : vals) next.push_back(s.substr(0, at) + v + s.substr(at + ph.size()));
    }
    out = next;
  };
  sub("{s}", {"1", "2", "3", "4"});
  sub("{b}", {"0", "1"});
  sub("{t}", {"2", "3", "4"});
  return out;
}

// name -> kind of what the doc says a package of `c` holds.
std::map<std::string, std::string> doc_names(const std::vector<Row>& rows, const ModelConfig& c, bool materialized,
                                             bool folded) {
  std::map<std::string, std::string> out;
  for (const Row& r : rows) {
    if (!applies(r.models, c)) continue;
    if (r.kind == "seeded" && (!materialized || folded)) continue;
    if (folded && r.folded.rfind("yes", 0) != 0) continue;
    for (const std::string& n : expand(r.name)) out[n] = r.kind;
  }
  return out;
}

std::map<std::string, std::string> written_names(Model& m, bool materialized, bool folded) {
  PackOptions o;
  o.materialize = materialized;
  o.fold_bn = folded;
  Package p = pack_model(m, o);
  std::map<std::string, std::string> out;
  for (const PackedTensor& t : p.tensors) out[t.name] = tensor_kind_name(t.kind);
  return out;
}

TEST(PackageDoc, TensorNameTableMatchesTheWriterForEveryModel) {
  const std::vector<Row> rows = name_table(read_doc());
  ASSERT_GT(rows.size(), 40u);
  const char* configs[] = {
      "resnet18",
      "resnet18:classes=1000,stem=large",
      "nl-resnet18:cnl=dw",
      "nl-resnet18:cnl=512",
      "nl-resnet18:cnl=768,gpw=2",
      "resnet18:task=detect,stem=large",
      "nl-resnet18:cnl=dw,task=detect,stem=large",
      "nl-resnet18:cnl=dw,task=detect,stem=large,head_nl=on",
      "resnet18:task=segment,stem=large",
      "nl-resnet18:cnl=dw,task=segment,stem=large",
      "nl-resnet18:cnl=dw,task=segment,stem=large,head_nl=on",
  };
  for (const char* text : configs) {
    const ModelConfig c = ModelConfig::parse(text);
    std::unique_ptr<Model> model = build_model(c);  // once: initialising ResNet-18 is the slow part
    for (int variant = 0; variant < 3; ++variant) {
      const bool materialized = variant == 1, folded = variant == 2;
      const auto want = doc_names(rows, c, materialized, folded);
      const auto got = written_names(*model, materialized, folded);
      const std::string where = std::string(text) + (materialized ? " --materialize" : folded ? " --fold-bn" : "");
      for (const auto& [name, kind] : got) {
        auto it = want.find(name);
        if (it == want.end())
          ADD_FAILURE() << where << ": the writer writes '" << name << "', docs/PACKAGE.md's table does not list it";
        else
          EXPECT_EQ(it->second, kind) << where << ": kind of '" << name << "'";
      }
      for (const auto& [name, kind] : want)
        if (!got.count(name))
          ADD_FAILURE() << where << ": docs/PACKAGE.md lists '" << name << "', the writer does not write it";
    }
  }
}

TEST(PackageDoc, BnEpsilonAndIdentityVarianceAreTheCodes) {
  const std::string doc = read_doc();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(doc, m, std::regex("`bn_eps = ([0-9.e+-]+)`, as f32: 0x([0-9A-F]{8})")));
  EXPECT_EQ(std::stof(m[1].str()), BatchNormShape{}.eps);
  uint32_t bits;
  const float eps = BatchNormShape{}.eps;
  std::memcpy(&bits, &eps, 4);
  EXPECT_EQ(m[2].str(), fmt::format("{:08X}", bits));
  ASSERT_TRUE(std::regex_search(doc, m, std::regex("`bn_identity_var = ([0-9.]+)` \\(0x([0-9A-F]{8})")));
  const float iv = bn_identity_var();
  EXPECT_EQ(std::stof(m[1].str()), iv);
  std::memcpy(&bits, &iv, 4);
  EXPECT_EQ(m[2].str(), fmt::format("{:08X}", bits));
}

TEST(PackageDoc, VersionsAndMetadataBlockLayout) {
  const std::string doc = read_doc();
  EXPECT_NE(doc.find("format versions 1 and 2"), std::string::npos);
  EXPECT_EQ(kPackageVersionNoMeta, 1);
  EXPECT_EQ(kPackageVersion, 2);
  // No metadata: version 1. Metadata: version 2 and the block right after the seeds, as the doc's table says.
  Package p = pack_model(*build_model(ModelConfig::parse("nl-resnet18:cnl=dw")), PackOptions{});
  std::vector<uint8_t> v1 = serialize_package(p);
  EXPECT_EQ(v1[8], 1);
  p.meta.input_h = 32, p.meta.input_w = 24, p.meta.mean = {0.5f, 0.25f, 0.125f}, p.meta.std = {1.f, 2.f, 4.f};
  p.meta.classes = {"cat", "\xc3\xa9t\xc3\xa9"};  // UTF-8 "été": lengths are bytes
  std::vector<uint8_t> f = serialize_package(p);
  EXPECT_EQ(f[8], 2);
  const uint8_t* b = f.data() + 64;
  size_t at = 0;
  auto u = [&](int n) {
    uint64_t x = 0;
    for (int i = 0; i < n; ++i) x |= uint64_t(b[at + size_t(i)]) << (8 * i);
    at += size_t(n);
    return x;
  };
  for (int i = 0; i < 2; ++i) at += size_t(u(4));  // config, seed_rule
  at += 8;                                           // base_seed
  for (int i = 0; i < 2; ++i) at += size_t(u(4));  // generator, distribution
  at += 8 * size_t(u(4));                            // seeds
  EXPECT_EQ(u(4), 32u);
  EXPECT_EQ(u(4), 24u);
  ASSERT_EQ(u(4), 3u);
  for (float want : {0.5f, 0.25f, 0.125f, 1.f, 2.f, 4.f}) {
    const uint32_t w = uint32_t(u(4));
    float got;
    std::memcpy(&got, &w, 4);
    EXPECT_EQ(got, want);
  }
  ASSERT_EQ(u(4), 2u);
  EXPECT_EQ(u(2), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b + at), 3), "cat");
  at += 3;
  EXPECT_EQ(u(2), 5u);
  at += 5;
  EXPECT_EQ(u(4), p.tensors.size());  // tensor_count follows the block
}

TEST(PackageDoc, FromBaseOffsetIsTheAlignedPositionItsDataWouldHave) {
  Package a = pack_model(*build_model(ModelConfig::parse("nl-resnet18:cnl=dw")), PackOptions{});
  Package b = pack_model(*build_model(ModelConfig::parse("nl-resnet18:cnl=dw,seed=5")), PackOptions{});
  serialize_payload(a);
  Package d = make_delta(a, b);
  std::vector<uint8_t> bytes = serialize_package(d);
  Package r = parse_package(bytes.data(), bytes.size(), "delta");
  uint64_t pos = (r.table_bytes + 63) / 64 * 64;  // the aligned end of the directory
  int from_base = 0;
  for (const PackedTensor& t : r.tensors) {
    EXPECT_EQ(t.offset, pos) << t.name;
    pos = (t.offset + t.data.size() + 63) / 64 * 64;
    from_base += t.from_base;
  }
  EXPECT_GT(from_base, 10);
}

}  // namespace
}  // namespace rf

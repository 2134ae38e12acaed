// The suites' terminal tables, read as a newcomer reads them: no ResNet-18 in the run -> "% R18" shows "—" and the
// footnote says why (never "0.0%"); one seed -> no "± 0.00"; regeneration is the warm median and says so; the
// warm regeneration helper takes the median of several calls.
#include <gtest/gtest.h>

#include <oneapi/dnnl/dnnl.h>

#include "host/core/build_info.h"
#include "training/provenance.h"
#include "suites/classify.h"
#include "suites/dense.h"
#include "suites/measure.h"

namespace rf {
namespace {

using json = nlohmann::json;

json metric(std::vector<double> v) { return mean_std_json(v); }

json classify_model(const std::string& name, double bytes, std::vector<double> acc) {
  return {{"model", name},
          {"learnable_params", 1000},
          {"macs", 5000},
          {"package_bytes", {{"f32", bytes}, {"f16", bytes / 2}, {"i8", bytes / 4}}},
          {"throughput_images_per_s", {{"64", 100.0}, {"256", 120.0}}},
          {"latency_batch1_ms", 1.5},
          {"regen_seconds_median", metric({0.00046})},
          {"val_acc", metric(acc)},
          {"test_acc", metric(acc)},
          {"test_acc_int8", metric(acc)}};
}

TEST(SuiteTables, ClassifyWithoutResNet18ShowsTheReferenceIsAbsent) {
  json r = {{"models", json::array({classify_model("nl-resnet18-dw", 4.4e6, {0.5})})}};
  const std::string t = classify_table(r);
  EXPECT_EQ(t.find("0.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("—"), std::string::npos) << t;
  EXPECT_NE(t.find("no resnet18 in this run"), std::string::npos) << t;
  EXPECT_EQ(t.find("±"), std::string::npos) << t;  // one seed: no spread to show
  EXPECT_NE(t.find("50.00%"), std::string::npos) << t;
  EXPECT_NE(t.find("0.460"), std::string::npos) << t;  // regen ms, the warm median
  EXPECT_NE(t.find("median of 7 warm calls"), std::string::npos) << t;
  EXPECT_EQ(t.find("Against resnet18"), std::string::npos) << t;
}

TEST(SuiteTables, ClassifyWithResNet18AndSeeds) {
  json r = {{"models", json::array({classify_model("resnet18", 4.4e7, {0.5, 0.6}),
                                    classify_model("nl-resnet18-dw", 4.4e6, {0.4, 0.5})})}};
  const std::string t = classify_table(r);
  EXPECT_NE(t.find("100.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("10.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("±"), std::string::npos) << t;
  EXPECT_EQ(t.find("no resnet18"), std::string::npos) << t;
  EXPECT_NE(t.find("Against resnet18"), std::string::npos) << t;
}

TEST(SuiteTables, DenseWithoutResNet18ShowsTheReferenceIsAbsent) {
  json m = {{"model", "nl-resnet18-dw"},
            {"learnable_params", 1000},
            {"macs", 5000},
            {"package_bytes", {{"f32", 4.4e6}, {"f16", 2.2e6}, {"i8", 1.1e6}}},
            {"latency_batch1_ms", 3.0},
            {"regen_seconds_median", metric({0.001})},
            {"map50", metric({0.3})},
            {"map_coco", metric({0.1})},
            {"map50_int8", metric({0.29})}};
  json r = {{"schema", "reframe.detect/1"},
            {"models", json::array({m})},
            {"budget", {{"epochs", 1}, {"batch", 8}, {"lr", 0.01}, {"loss", "focal"}, {"seeds", 1}}},
            {"dataset", {{"input", {3, 64, 64}}}}};
  const std::string t = dense_table(r);
  EXPECT_EQ(t.find("0.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("no resnet18 in this run"), std::string::npos) << t;
  EXPECT_EQ(t.find("±"), std::string::npos) << t;
  EXPECT_NE(t.find("1.000"), std::string::npos) << t;
}

TEST(SuiteTables, WarmRegenerationIsAMedianOfRepeatedCalls) {
  std::unique_ptr<Model> m = build_model(ModelConfig::parse("nl-resnet18:cnl=dw"));
  const double t = regen_seconds_median(*m, 3);
  EXPECT_GT(t, 0.0);
  EXPECT_LT(t, 1.0);
}

// Every results file's provenance carries the build facts `reframe --version` prints.
TEST(SuiteTables, ProvenanceCarriesTheBuildFacts) {
  const json p = provenance_json("reframe bench classify");
  ASSERT_TRUE(p.contains("build_facts")) << p.dump();
  const json& b = p["build_facts"];
  for (const char* k : {"version", "compiler", "build_type", "simd", "cuda", "cudnn", "mpi", "onednn", "native"})
    EXPECT_TRUE(b.contains(k)) << k << " missing in " << b.dump();
  EXPECT_EQ(b["simd"], simd_level());
  EXPECT_EQ(b["onednn"].get<std::string>().rfind(fmt::format("{}.{}.", DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR), 0), 0u)
      << b.dump();
#ifdef RF_HAVE_CUDA
  EXPECT_TRUE(b["cuda"].get<bool>());
#endif
  const std::string v = version_text();
  for (const char* line : {"reframe ", "git revision", "compiler", "SIMD level", "CUDA", "cuDNN", "MPI", "oneDNN"})
    EXPECT_NE(v.find(line), std::string::npos) << line << " missing in:\n" << v;
}

}  // namespace
}  // namespace rf
